"""The gateway's budget guard: reserve per plan step, settle after, alert on thresholds.

Used by routing.gateway through routing.execution's StepGuard protocol; does nothing (and
costs nothing) for tenants without budgets.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from django.conf import settings

from aura.redis import async_client
from billing.budgets import (
    RESERVATION_TTL_MS,
    BudgetExceeded,
    BudgetRule,
    Budgets,
    Reservation,
    crossed_thresholds,
    to_nano,
)
from routing import engine
from routing.context import RoutingContext

log = logging.getLogger(__name__)

# Reserve prompts at 125 % of the local token estimate (see BudgetGuard.acquire).
PROMPT_MARGIN = 1.25


def applicable_rules(ctx: RoutingContext, key_id: int) -> list[BudgetRule]:
    return [r for r in ctx.budgets if r.api_key_id is None or r.api_key_id == key_id]


class BudgetGuard:
    """Reserves each attempted step's worst case; the winner's is settled by ``settle``."""

    def __init__(
        self, ctx: RoutingContext, rules: list[BudgetRule], rr: engine.RouteRequest
    ) -> None:
        self.rr = rr
        self.tz = ctx.timezone
        self.targets = ctx.targets
        self.budgets = Budgets(
            rules,
            tz_name=ctx.timezone,
            redis=async_client(),
            now=datetime.now(UTC),
            fail_open=getattr(settings, "BUDGET_FAIL_OPEN", False),
        )

    async def acquire(self, candidate: engine.Candidate) -> Reservation | None:
        # The prompt is counted locally and providers' tokenizers differ: reserve with a
        # margin so the settled real cost stays inside the reservation.
        prompt = math.ceil(self.rr.prompt_tokens * PROMPT_MARGIN)
        worst = engine.estimate_cost(candidate, prompt, self.rr.max_output_tokens)
        target = self.targets.get(candidate.key)
        ttl_ms = RESERVATION_TTL_MS
        if target is not None:
            # Held for as long as the step can possibly run, retries included.
            attempts = target.max_retries + 1
            ttl_ms = max(ttl_ms, int((target.target.timeouts.total * attempts + 60) * 1000))
        return await self.budgets.reserve(worst, int(time.time() * 1000), ttl_ms=ttl_ms)

    def release(self, token: Any) -> None:
        if token is not None:
            _spawn(self.budgets.release(token))

    def abandon(self, token: Any, candidate: engine.Candidate) -> None:
        if token is not None:
            prompt_cost = Decimal(self.rr.prompt_tokens) * Decimal(str(candidate.input_price))
            _spawn(self.settle(token, prompt_cost / Decimal(1_000_000)))

    async def settle(self, token: Any, cost: Decimal) -> None:
        """Settle the real cost and enqueue alerts for thresholds this request crossed."""
        results = await self.budgets.settle(token, cost)
        actual = to_nano(cost)
        for counter, spent_after in results:
            crossed = crossed_thresholds(counter.rule, spent_after - actual, spent_after)
            for threshold in crossed:
                spent = Decimal(spent_after) / Decimal(1_000_000_000)
                _enqueue_alert(counter.rule.id, counter.start, threshold, spent)


def _spawn(coro: Any) -> None:
    """Run outside the caller's cancellation scope: a second cancel must not leave a
    reservation holding money."""
    from routing.gateway import _background

    _background(coro)


def _enqueue_alert(budget_id: int, period_start: datetime, threshold: int, spent: Decimal) -> None:
    """Hand the crossing to billing.alerts off the event loop (a DB write and a broker
    publish); the alert row's unique constraint makes repeats harmless."""

    def enqueue() -> None:
        from aura.db import releasing_connection
        from billing.alerts import budget_alert_enqueue

        try:
            releasing_connection(budget_alert_enqueue)(
                budget_id=budget_id, period_start=period_start, threshold=threshold, spent_usd=spent
            )
        except Exception:
            log.exception("could not enqueue the budget alert for budget %s", budget_id)

    from routing.gateway import _background

    _background(asyncio.get_running_loop().run_in_executor(None, enqueue))


def budget_error_message(exc: BudgetExceeded, tz_name: str) -> str:
    rule = exc.rule
    scope = f"API key {rule.api_key_id}" if rule.api_key_id else "tenant"
    if rule.period == "request":
        return (
            f"Budget exceeded: the {scope} per-request budget (id {rule.id}) allows "
            f"${rule.limit_usd:.6f}; this request may cost up to ${exc.needed:.6f}."
        )
    resets = exc.resets_at.astimezone(_zone(tz_name)).isoformat() if exc.resets_at else "?"
    return (
        f"Budget exceeded: the {scope} {_ADJECTIVE[rule.period]} budget (id {rule.id}) is "
        f"${rule.limit_usd:.6f}; spent ${exc.spent:.6f} with ${exc.reserved:.6f} reserved by "
        f"requests in flight; this request may cost up to ${exc.needed:.6f}. "
        f"It resets at {resets}."
    )


_ADJECTIVE = {"hour": "hourly", "day": "daily", "week": "weekly", "month": "monthly"}


def _zone(name: str) -> Any:
    import zoneinfo

    return zoneinfo.ZoneInfo(name)
