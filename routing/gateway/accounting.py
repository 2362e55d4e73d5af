"""What a request owes: its usage record (journaled before the response completes), the
provisional record written before anything goes upstream, budget settlement and
completion-token charges against TPM limits."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from aura import background
from aura.redis import async_client
from billing.usage import writer
from monitoring import metrics
from routing import engine
from routing.gateway import execution, ratelimit
from routing.gateway.context import RoutingContext
from routing.gateway.framing import Request
from routing.gateway.guard import BudgetGuard
from tenants.auth import KeyPrincipal


def usage_record(
    req: Request,
    principal: KeyPrincipal,
    *,
    kind: str,
    outcome: execution.Outcome,
    status: str,
    http_status: int | None,
    prompt_tokens: int = 0,
    completion_tokens: int = 0,
    cached_tokens: int = 0,
    cost: Decimal = Decimal(0),
    estimated: bool = False,
    stream: bool = False,
    ttft_ms: float | None = None,
    error_code: str = "",
    provisional: bool = False,
    cache_status: str = "miss",
    cache_savings: Decimal = Decimal(0),
    served: tuple[str, str, int | None] | None = None,
) -> None:
    """Hand the request's usage record to the writer (journaled before this returns).

    ``provisional``: what to record if this process dies before the final record; it
    shares the final record's id, so recovery stores exactly one of them. ``served``:
    (provider, model, endpoint id) when no call was made (a cache hit).
    """
    ct = served or _last_target(outcome)
    latency = (time.perf_counter() - req.started) * 1000
    if not req.record_uid:
        req.record_uid = writer.new_uid()
    record = {
        "record_uid": req.record_uid,
        "tenant_id": principal.tenant_id,
        "created_at": datetime.now(UTC),
        "request_id": req.request_id,
        "api_key_id": principal.key_id,
        "kind": kind,
        "provider": ct[0],
        "model": ct[1] or req.model,
        "endpoint_id": ct[2],
        "endpoint": _endpoint_name(outcome) if served is None else "",
        "status": status,
        "http_status": http_status,
        "error_code": error_code,
        "stream": stream,
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "cached_tokens": cached_tokens,
        "cost_usd": cost,
        "cost_estimated": estimated,
        "latency_ms": round(latency, 3),
        "ttft_ms": ttft_ms,
        "overhead_ms": round(max(0.0, latency - outcome.upstream_ms), 3),
        "cache_status": cache_status,
        "cache_savings_usd": cache_savings,
        "fallbacks": outcome.fallbacks,
        "attempts": [a.as_dict() for a in outcome.attempts]
        if len(outcome.attempts) > 1 or status != "ok"
        else [],
    }
    if provisional:
        writer.provisional(record)
        return
    req.recorded = True
    writer.submit(record)
    metrics.request_observed(
        record,
        outcome.attempts,
        cache_consulted=req.cache_key is not None,
        decision_seconds=req.plan_seconds,
    )


def record_provisional(
    req: Request,
    principal: KeyPrincipal,
    kind: str,
    ctx: RoutingContext,
    rr: engine.RouteRequest,
    plan: engine.Plan,
    *,
    stream: bool,
) -> None:
    """Before anything goes upstream: if this process dies from here on, the request is
    recorded as interrupted, charged its prompt at the primary's price (estimated)."""
    primary = ctx.targets[plan.steps[0].candidate.key]
    outcome = execution.Outcome(target=primary)
    usage_record(
        req,
        principal,
        kind=kind,
        outcome=outcome,
        status="interrupted",
        http_status=None,
        prompt_tokens=rr.prompt_tokens,
        cost=primary.cost(rr.prompt_tokens, 0),
        estimated=True,
        stream=stream,
        error_code="gateway_interrupted",
        provisional=True,
    )


def record_refusal(req: Request, principal: KeyPrincipal, status: int, code: str) -> None:
    """A request answered with an error before (or without) reaching a provider."""
    usage_record(
        req,
        principal,
        kind=req.kind,
        outcome=execution.Outcome(),
        status="cancelled" if status == 499 else "error",
        http_status=status,
        error_code=code,
    )


def account(
    req: Request,
    principal: KeyPrincipal,
    ctx: RoutingContext,
    outcome: execution.Outcome,
    guard: BudgetGuard | None,
    *,
    kind: str,
    status: str,
    prompt_tokens: int,
    cost: Decimal,
    completion_tokens: int = 0,
    **record: Any,
) -> None:
    """Everything a served request owes: its usage record, its budget settlement and its
    completion tokens against TPM limits (the last two in the background).

    ``cost`` is the answering call's; the record adds what hedged calls that lost cost
    (execution settled their reservations)."""
    usage_record(
        req,
        principal,
        kind=kind,
        outcome=outcome,
        status=status,
        http_status=200,
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
        cost=cost + outcome.hedge_cost,
        **record,
    )
    if guard is not None:
        background.detach(guard.settle(outcome.reservation, cost))
    charge_completion(ctx, principal, completion_tokens)


def _last_target(outcome: execution.Outcome) -> tuple[str, str, int | None]:
    """(provider, model, endpoint id) of the answering or, failing that, last tried model."""
    if outcome.target is not None:
        t = outcome.target
        return t.provider, t.model_id, t.endpoint_id
    if outcome.attempts:
        a = outcome.attempts[-1]
        return a.provider, a.key.split("/", 1)[-1], None
    return "", "", None


def _endpoint_name(outcome: execution.Outcome) -> str:
    if outcome.target is not None:
        return outcome.target.endpoint_name
    return outcome.attempts[-1].endpoint if outcome.attempts else ""


def charge_completion(ctx: RoutingContext, principal: KeyPrincipal, tokens: int) -> None:
    if ctx.rate_limits.get("tpm") or ctx.rate_limits.get("key_tpm"):
        background.detach(
            ratelimit.charge_tokens(
                async_client(),
                ctx.rate_limits,
                tenant_id=principal.tenant_id,
                key_id=principal.key_id,
                tokens=tokens,
                now_ms=int(time.time() * 1000),
            )
        )


def record_cancelled(
    req: Request,
    principal: KeyPrincipal,
    kind: str,
    outcome: execution.Outcome,
    ctx: RoutingContext,
    prompt_tokens: int,
    *,
    stream: bool = False,
) -> None:
    """Cancelled (client gone) while executing. If it reached a provider it is charged for
    the prompt by local count and flagged estimated (every hedged call's, when hedging)."""
    last = outcome.attempts[-1] if outcome.attempts else None
    # A request cancelled while queued for a full endpoint (load shedding) reached nobody.
    reached = last is not None and last.kind != "overloaded"
    target = ctx.targets.get(last.key) if last is not None and reached else None
    if outcome.hedge_cost:
        cost = outcome.hedge_cost
    else:
        cost = target.cost(prompt_tokens, 0) if target is not None else Decimal(0)
    usage_record(
        req,
        principal,
        kind=kind,
        outcome=outcome,
        status="cancelled",
        http_status=499,  # nginx's "client closed request": no response was sent
        prompt_tokens=prompt_tokens if target is not None else 0,
        cost=cost,
        estimated=target is not None,
        stream=stream,
        error_code="client_disconnected" if req.disconnected else "cancelled",
    )


def record_failure(
    req: Request,
    principal: KeyPrincipal,
    kind: str,
    outcome: execution.Outcome,
    status: int,
    code: str,
) -> None:
    usage_record(
        req,
        principal,
        kind=kind,
        outcome=outcome,
        status="error",
        http_status=status,
        error_code=code,
        cost=outcome.hedge_cost,  # hedged calls cancelled when another one failed the request
        estimated=outcome.hedge_estimated,
    )
