"""Between a validated request and a provider: rate limits, the health snapshot, and running
the plan under the tenant's and key's budgets (with downgrade), every failure becoming a
recorded OpenAI error."""

from __future__ import annotations

import asyncio
import dataclasses
import random
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from aura.redis import async_client
from billing.budgets import BudgetExceeded, BudgetUnavailable
from monitoring.state import board
from routing import engine
from routing.gateway import execution, ratelimit, shedding
from routing.gateway.accounting import record_cancelled, record_failure, record_provisional
from routing.gateway.breaker import breakers, stats
from routing.gateway.context import RoutingContext
from routing.gateway.errors import GatewayError, all_failed_error, budget_error, overloaded_error
from routing.gateway.framing import Request
from routing.gateway.guard import BudgetGuard, applicable_rules
from tenants.auth import KeyPrincipal

T = TypeVar("T")


rng = random.Random()


async def health(ctx: RoutingContext) -> engine.HealthSnapshot:
    # Both refresh from Redis at most once a second; a warm request reads memory only.
    if breakers.needs_refresh():
        await breakers.arefresh(async_client())
    if board.needs_refresh():
        await board.arefresh(async_client())
    return stats.snapshot(breakers.open_endpoints(), board)


def set_priority(req: Request, principal: KeyPrincipal) -> None:
    """The request's queue rank from its key and ``x-aura-priority`` (which may only lower
    it); a value that is not a priority is a 400 naming the header."""
    try:
        req.priority = shedding.request_priority(
            principal.priority, req.headers.get(shedding.PRIORITY_HEADER)
        )
    except ValueError as exc:
        raise GatewayError(
            400, f"Invalid header: {exc}.", param=shedding.PRIORITY_HEADER, code="invalid_priority"
        ) from None


async def rate_limit(ctx: RoutingContext, principal: KeyPrincipal, prompt_tokens: int) -> None:
    if not ctx.rate_limits:
        return
    refused = await ratelimit.admit(
        async_client(),
        ctx.rate_limits,
        tenant_id=principal.tenant_id,
        key_id=principal.key_id,
        tokens=prompt_tokens,
        now_ms=int(time.time() * 1000),
    )
    if refused is not None:
        raise GatewayError(
            429,
            f"Rate limit reached: {refused.name} limit of {refused.limit} per minute. "
            f"Retry in {refused.retry_after:.0f} s.",
            type="rate_limit_error",
            code="rate_limit_exceeded",
            headers=[(b"retry-after", str(int(refused.retry_after)).encode())],
        )


async def execute(
    req: Request,
    principal: KeyPrincipal,
    kind: str,
    ctx: RoutingContext,
    rr: engine.RouteRequest,
    plan: engine.Plan,
    run: Callable[[engine.Plan, execution.Outcome, BudgetGuard | None], Awaitable[T]],
    *,
    stream: bool = False,
) -> tuple[T, BudgetGuard | None, BudgetExceeded | None]:
    """Run the plan under budgets; every way it can fail becomes a recorded OpenAI error."""
    outcome = execution.Outcome(priority=req.priority)
    record_provisional(req, principal, kind, ctx, rr, plan, stream=stream)
    try:
        return await _budgeted(ctx, principal, rr, plan, lambda p, g: run(p, outcome, g))
    except asyncio.CancelledError:
        record_cancelled(req, principal, kind, outcome, ctx, rr.prompt_tokens, stream=stream)
        raise
    except execution.ClientError as exc:
        record_failure(req, principal, kind, exc.outcome, 400, exc.error.kind)
        raise GatewayError(
            400,
            f"The provider refused the request: {exc.outcome.attempts[-1].message}",
            code=exc.error.provider_code or "upstream_bad_request",
        ) from None
    except execution.AllFailed as exc:
        err = all_failed_error(exc)
        record_failure(req, principal, kind, exc.outcome, err.status, err.code or "")
        raise err from None
    except execution.Overloaded as exc:
        err = overloaded_error(exc)
        record_failure(req, principal, kind, exc.outcome, err.status, err.code or "")
        raise err from None


async def _budgeted(
    ctx: RoutingContext,
    principal: KeyPrincipal,
    rr: engine.RouteRequest,
    plan: engine.Plan,
    run: Callable[[engine.Plan, BudgetGuard | None], Awaitable[T]],
) -> tuple[T, BudgetGuard | None, BudgetExceeded | None]:
    """Run the plan under the tenant's and key's budgets.

    A ``block`` budget that cannot take the reservation refuses the request (402). A
    ``downgrade`` budget re-plans with the remaining money as the cost cap, so only models
    whose worst case fits are tried; the response then says so in ``x-aura-budget``.
    """
    rules = applicable_rules(ctx, principal.key_id)
    if not rules:
        return await run(plan, None), None, None
    guard = BudgetGuard(ctx, rules, rr)
    try:
        return await run(plan, guard), guard, None
    except BudgetUnavailable:
        raise GatewayError(
            503,
            "Budgets cannot be checked right now (budget store unreachable); refusing rather "
            "than risking overspend. Retry shortly.",
            type="server_error",
            code="budget_unavailable",
        ) from None
    except BudgetExceeded as exc:
        if exc.rule.mode != "downgrade":
            raise budget_error(exc, ctx) from None
        first = exc
    cap = float(first.rule.limit_usd if first.rule.period == "request" else first.remaining)
    cheaper = dataclasses.replace(
        rr, max_cost=cap if rr.max_cost is None else min(cap, rr.max_cost)
    )
    plan = engine.plan(cheaper, ctx.candidates, ctx.policy, await health(ctx), rng=rng)
    if not plan.steps:
        raise budget_error(first, ctx)
    guard = BudgetGuard(ctx, rules, cheaper)
    try:
        return await run(plan, guard), guard, first
    except BudgetExceeded as exc:
        raise budget_error(exc, ctx) from None
