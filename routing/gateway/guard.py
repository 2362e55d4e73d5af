"""The gateway's budget guard: reserve per plan step, settle after, alert on thresholds.

Used by the gateway through routing.gateway.execution's StepGuard protocol; does nothing (and
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

from aura import background
from aura.money import usd
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
from routing.gateway.context import RoutingContext

log = logging.getLogger(__name__)

# Reserve prompts at 125 % of the local token estimate (see BudgetGuard.acquire).
PROMPT_MARGIN = 1.25
# A stream is cut once AURA's count of the delivered text passes max_tokens by this much
# (providers' tokenizers differ from the local estimate); it is reserved up to that cap.
STREAM_CAP_FACTOR = 1.15
STREAM_CAP_EXTRA = 4
# Learned overruns: models seen billing more than max_tokens (shared through Redis).
OVERRUN_KEY = "aura:overrun"
OVERRUN_REFRESH = 5.0
OVERRUN_TTL_S = 7 * 86400
OVERRUN_MAX = 64.0

_RAISE_OVERRUN = """
local cur = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '0')
if tonumber(ARGV[2]) > cur then redis.call('HSET', KEYS[1], ARGV[1], ARGV[2]) end
redis.call('EXPIRE', KEYS[1], ARGV[3])
return 1
"""


def stream_output_cap(max_tokens: int) -> int:
    """Completion tokens (by AURA's count) after which a stream is cut, and reserved."""
    return math.ceil(max_tokens * STREAM_CAP_FACTOR) + STREAM_CAP_EXTRA


class OverrunMargins:
    """Per model (candidate key), the largest ratio of billed completion tokens to
    ``max_tokens`` seen: a provider that bills beyond ``max_tokens`` is reserved for what it
    really bills, in every worker (Redis, refreshed every few seconds), from then on."""

    def __init__(self, clock: Any = time.monotonic) -> None:
        self.clock = clock
        self._margins: dict[str, float] = {}
        self._refreshed_at = float("-inf")

    def margin(self, key: str) -> float:
        return self._margins.get(key, 1.0)

    def clear(self) -> None:
        self._margins.clear()
        self._refreshed_at = float("-inf")

    def refresh_soon(self, redis: Any) -> None:
        """Re-read the shared margins in the background if they are due (never on the
        request's path: a request uses what this process knew a few seconds ago)."""
        now = self.clock()
        if now - self._refreshed_at >= OVERRUN_REFRESH:
            self._refreshed_at = now
            _spawn(self.refresh(redis))

    async def refresh(self, redis: Any) -> None:
        try:
            raw = await redis.hgetall(OVERRUN_KEY)
        except Exception:  # keep what this process knows
            log.warning("overrun margins not refreshed (Redis unavailable)")
            return
        for k, v in raw.items():
            key = k.decode() if isinstance(k, bytes) else str(k)
            self._margins[key] = max(self._margins.get(key, 1.0), float(v))

    def observe(self, key: str, max_tokens: int | None, completion_tokens: int) -> None:
        if not max_tokens or completion_tokens <= max_tokens:
            return
        ratio = min(OVERRUN_MAX, completion_tokens / max_tokens)
        if ratio <= self.margin(key):
            return
        self._margins[key] = ratio
        log.warning(
            "%s billed %d completion tokens for max_tokens=%d: reserving %.2fx from now on",
            key,
            completion_tokens,
            max_tokens,
            ratio,
        )
        _spawn(self._publish(key, ratio))

    async def _publish(self, key: str, ratio: float) -> None:
        try:
            await async_client().eval(
                _RAISE_OVERRUN, 1, OVERRUN_KEY, key, f"{ratio:.4f}", OVERRUN_TTL_S
            )
        except Exception:
            log.warning("overrun margin of %s not shared (Redis unavailable)", key)


overruns = OverrunMargins()


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

    def output_reserved(self, candidate: engine.Candidate) -> int | None:
        """Completion tokens reserved: ``max_tokens``, up to the stream cap for a stream (it
        is cut there), times the model's learned overrun for a plain call; None (the
        model's max output) when the request set no ``max_tokens``."""
        out = self.rr.max_output_tokens
        if out is None:
            return None
        if "streaming" in self.rr.needs:
            return stream_output_cap(out)
        margin = overruns.margin(candidate.key)
        if margin > 1.0:
            return max(out, min(math.ceil(out * margin), candidate.max_output or out))
        return out

    async def acquire(self, candidate: engine.Candidate) -> Reservation | None:
        overruns.refresh_soon(self.budgets.redis)
        # The prompt is counted locally and providers' tokenizers differ: reserve with a
        # margin so the settled real cost stays inside the reservation.
        prompt = math.ceil(self.rr.prompt_tokens * PROMPT_MARGIN)
        worst = engine.estimate_cost(candidate, prompt, self.output_reserved(candidate))
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

    def abandon(self, token: Any, candidate: engine.Candidate, cost: Decimal | None = None) -> None:
        if token is not None:
            if cost is None:
                prompt = Decimal(self.rr.prompt_tokens) * Decimal(str(candidate.input_price))
                cost = prompt / Decimal(1_000_000)
            _spawn(self.settle(token, cost))

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

    background.detach(coro)


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

    background.detach(asyncio.get_running_loop().run_in_executor(None, enqueue))


def budget_error_message(exc: BudgetExceeded, tz_name: str) -> str:
    rule = exc.rule
    scope = f"API key {rule.api_key_id}" if rule.api_key_id else "tenant"
    if rule.period == "request":
        return (
            f"Budget exceeded: the {scope} per-request budget (id {rule.id}) allows "
            f"{usd(rule.limit_usd)}; this request may cost up to {usd(exc.needed)}."
        )
    resets = exc.resets_at.astimezone(_zone(tz_name)).isoformat() if exc.resets_at else "?"
    return (
        f"Budget exceeded: the {scope} {_ADJECTIVE[rule.period]} budget (id {rule.id}) is "
        f"{usd(rule.limit_usd)}; spent {usd(exc.spent)} with {usd(exc.reserved)} reserved by "
        f"requests in flight; this request may cost up to {usd(exc.needed)}. "
        f"It resets at {resets}."
    )


_ADJECTIVE = {"hour": "hourly", "day": "daily", "week": "weekly", "month": "monthly"}


def _zone(name: str) -> Any:
    import zoneinfo

    return zoneinfo.ZoneInfo(name)
