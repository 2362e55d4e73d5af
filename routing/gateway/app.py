"""The OpenAI-compatible gateway: /v1/chat/completions, /v1/embeddings, /v1/models.

A plain ASGI application mounted in front of Django for ``/v1/`` (see aura/asgi.py).
Why not a Django async view: on this hardware Django's handler alone costs ~1.5 ms of CPU
per request (request_started/finished signals and response.close run through
sync_to_async thread hops, plus the middleware chain), which is most of the gateway's
budget; this app costs a few tens of microseconds for the same framing. It still uses
Django for configuration, models (cold path only) and settings. No thread is held while
waiting on an upstream, and no database transaction is open across an upstream call:
the warm path does no query at all (auth, policy and catalog come from in-process caches;
usage records are written in batches by billing.usage).

Every response carries x-aura-request-id, x-aura-provider, x-aura-model,
x-aura-cost-usd, x-aura-cache, x-aura-overhead-ms and x-aura-fallbacks; errors use
OpenAI's error object.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import math
import random
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, TypeVar

from aura import background, lifecycle
from aura.middleware import new_request_id, request_id_var
from aura.redis import async_client
from aura.text import find_unstorable, finite_float, has_surrogate_escape, refuse_constant
from billing.budgets import BudgetExceeded, BudgetUnavailable
from billing.usage import writer
from routing import engine
from routing.engine import classify
from routing.engine.failures import attempt_message, plan_failure
from routing.gateway import execution, ratelimit
from routing.gateway.breaker import breakers, stats
from routing.gateway.context import RoutingContext, cache
from routing.gateway.guard import (
    BudgetGuard,
    applicable_rules,
    budget_error_message,
    overruns,
    stream_output_cap,
)
from routing.gateway.requests import (
    InvalidRequest,
    route_request_for_chat,
    route_request_for_embeddings,
    validate_chat,
    validate_embeddings,
)
from routing.providers.base import ProviderError, redact
from tenants.auth import (
    ApiKeyTouch,
    AuthError,
    AuthThrottled,
    KeyPrincipal,
    bearer_token,
    client_address,
    resolver,
)

log = logging.getLogger("aura.gateway")
T = TypeVar("T")

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

MAX_BODY_BYTES = 16 * 1024 * 1024
_rng = random.Random()
_JSON = (b"content-type", b"application/json")


class GatewayError(Exception):
    """An error answered in OpenAI's shape."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",
        param: str | None = None,
        code: str | None = None,
        headers: list[tuple[bytes, bytes]] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.param = param
        self.code = code
        self.headers = headers or []

    def body(self) -> bytes:
        err = {"message": self.message, "type": self.type, "param": self.param, "code": self.code}
        return json.dumps({"error": err}).encode()


class Request:
    __slots__ = (
        "body",
        "disconnected",
        "headers",
        "kind",
        "method",
        "model",
        "path",
        "peer",
        "record_uid",
        "recorded",
        "request_id",
        "started",
    )

    def __init__(self, scope: Scope, started: float) -> None:
        self.method: str = scope["method"]
        self.path: str = scope["path"]
        self.headers: dict[str, str] = {
            k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]
        }
        self.started = started
        client = scope.get("client")
        self.peer: str | None = client[0] if client else None
        self.request_id = new_request_id(self.headers.get("x-request-id"))
        self.body = b""
        self.disconnected = False
        self.kind = "chat"
        self.model = ""  # as requested, once the body is read
        self.record_uid = ""  # set when a provisional record is journaled
        self.recorded = False  # its final usage record was handed to the writer


async def _read_body(req: Request, receive: Receive) -> None:
    declared = req.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise GatewayError(
            413, f"Request body exceeds {MAX_BODY_BYTES} bytes.", code="body_too_large"
        )
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            req.disconnected = True
            raise asyncio.CancelledError
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise GatewayError(
                413, f"Request body exceeds {MAX_BODY_BYTES} bytes.", code="body_too_large"
            )
        chunks.append(chunk)
        if not message.get("more_body"):
            break
    req.body = chunks[0] if len(chunks) == 1 else b"".join(chunks)


def _json_body(req: Request) -> Any:
    if not req.body:
        raise GatewayError(
            400, "The request body is empty; send a JSON object.", code="invalid_json"
        )
    try:
        # Strict: UTF-8 only (json.loads(bytes) would let encoded surrogates through),
        # finite numbers only (NaN, Infinity and 1e400 would go upstream as invalid JSON).
        body = json.loads(
            req.body.decode("utf-8"), parse_constant=refuse_constant, parse_float=finite_float
        )
    except (ValueError, UnicodeDecodeError) as exc:
        raise GatewayError(
            400, f"The request body is not valid JSON: {exc}.", code="invalid_json"
        ) from None
    except RecursionError:  # e.g. 100k nested arrays: bad input, not a server error
        raise GatewayError(
            400, "The request body is nested too deeply.", code="invalid_json"
        ) from None
    if has_surrogate_escape(req.body):
        found = find_unstorable(body)
        if found is not None:
            where = found[1] or "(body)"
            raise GatewayError(
                400,
                f"'{where}' contains a lone UTF-16 surrogate, which is not valid Unicode text.",
                param=where,
                code="invalid_json",
            )
    return body


async def _authenticate(req: Request) -> KeyPrincipal:
    token = bearer_token(req.headers.get("authorization")) or req.headers.get("api-key")
    if not token:
        raise GatewayError(
            401,
            "You didn't provide an API key. Send it as 'Authorization: Bearer aura-…'.",
            code="missing_api_key",
        )
    address = client_address(req.peer, req.headers.get("x-forwarded-for"))
    try:
        principal, touch = await resolver.aresolve(token, address)
    except AuthThrottled as exc:
        raise GatewayError(
            429,
            exc.message,
            type="rate_limit_error",
            code=exc.code,
            headers=[(b"retry-after", str(math.ceil(exc.retry_after)).encode())],
        ) from None
    except AuthError as exc:
        raise GatewayError(401, exc.message, code=exc.code) from None
    if touch:
        # last_used_at: at most once a minute, never in the request's critical path.
        background.detach(
            asyncio.get_running_loop().run_in_executor(
                None, ApiKeyTouch.touch_releasing, principal.key_id
            )
        )
    return principal


async def _health(ctx: RoutingContext) -> engine.HealthSnapshot:
    if breakers.needs_refresh():
        await breakers.arefresh(async_client())
    return stats.snapshot(breakers.open_endpoints())


def _plan_error(plan: engine.Plan, model: str) -> GatewayError:
    failure = plan_failure(plan, model)
    assert failure is not None
    return GatewayError(
        failure.status, failure.message, type=failure.type, param=failure.param, code=failure.code
    )


def _all_failed_error(exc: execution.AllFailed) -> GatewayError:
    tried = "; ".join(f"{a.key}: {a.message[:200]}" for a in exc.outcome.attempts)
    last = exc.last
    if last is not None and last.kind == "rate_limit":
        retry = str(int(last.retry_after or 1))
        return GatewayError(
            429,
            f"Every provider is rate limiting this request. Tried: {tried}",
            type="rate_limit_error",
            code="rate_limited",
            headers=[(b"retry-after", retry.encode())],
        )
    status = 504 if last is not None and last.kind == "timeout" else 502
    if not exc.outcome.attempts:
        status = 503
    return GatewayError(
        status,
        f"Every provider in the plan failed. Tried: {tried or 'none'}",
        type="server_error",
        code="upstream_failed",
    )


def _meta_headers(
    req: Request,
    ctx_target: Any,
    cost: Decimal | str,
    outcome: execution.Outcome,
    plan: engine.Plan | None = None,
    cache_status: str = "miss",
) -> list[tuple[bytes, bytes]]:
    # AURA's own time so far: everything but the time spent waiting on providers (for a
    # stream, until its first chunk, which is when these headers go out).
    overhead = max(0.0, (time.perf_counter() - req.started) * 1000 - outcome.upstream_ms)
    fallbacks = outcome.fallbacks
    headers = [
        (b"x-aura-request-id", req.request_id.encode()),
        (b"x-aura-provider", (ctx_target.provider if ctx_target else "").encode()),
        (b"x-aura-model", (ctx_target.model_id if ctx_target else "").encode()),
        (b"x-aura-cost-usd", (f"{cost:.10f}" if isinstance(cost, Decimal) else cost).encode()),
        (b"x-aura-cache", cache_status.encode()),
        (b"x-aura-overhead-ms", f"{overhead:.2f}".encode()),
        (b"x-aura-fallbacks", str(fallbacks).encode()),
    ]
    if req.model and req.model != "auto":
        headers.append((b"x-aura-requested-model", _header_text(req.model)))
    substituted = bool(
        plan is not None
        and plan.requested
        and ctx_target is not None
        and ctx_target.key not in plan.requested
    )
    if fallbacks or substituted:
        # Which model answered is x-aura-model; this says why it was not the first choice.
        failed = [f"{a.key}: {a.message}" for a in outcome.attempts if not a.ok]
        why = "; ".join(failed) or "the requested model is unavailable (circuit open)"
        headers.append((b"x-aura-fallback-reason", _header_text(why)))
    return headers


def _header_text(text: str, limit: int = 300) -> bytes:
    """A header-safe (ASCII, one line) rendering of ``text``."""
    return " ".join(text.split())[:limit].encode("ascii", "replace")


async def _send_json(
    send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]]
) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [_JSON, (b"content-length", str(len(body)).encode()), *headers],
        }
    )
    await send({"type": "http.response.body", "body": body})


def _usage_record(
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
) -> None:
    """Hand the request's usage record to the writer (journaled before this returns).

    ``provisional``: what to record if this process dies before the final record; it
    shares the final record's id, so recovery stores exactly one of them.
    """
    ct = _last_target(outcome)
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
        "cache_status": "miss",
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


def _record_provisional(
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
    _usage_record(
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


def _record_refusal(req: Request, principal: KeyPrincipal, status: int, code: str) -> None:
    """A request answered with an error before (or without) reaching a provider."""
    _usage_record(
        req,
        principal,
        kind=req.kind,
        outcome=execution.Outcome(),
        status="cancelled" if status == 499 else "error",
        http_status=status,
        error_code=code,
    )


def _account(
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
    completion tokens against TPM limits (the last two in the background)."""
    _usage_record(
        req,
        principal,
        kind=kind,
        outcome=outcome,
        status=status,
        http_status=200,
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
        cost=cost,
        **record,
    )
    if guard is not None:
        background.detach(guard.settle(outcome.reservation, cost))
    _charge_completion(ctx, principal, completion_tokens)


def _last_target(outcome: execution.Outcome) -> tuple[str, str, int | None]:
    """(provider, model, endpoint id) of the answering or, failing that, last tried model."""
    if outcome.target is not None:
        t = outcome.target
        return t.provider, t.model_id, t.endpoint_id
    if outcome.attempts:
        a = outcome.attempts[-1]
        return a.provider, a.key.split("/", 1)[-1], None
    return "", "", None


async def _rate_limit(ctx: RoutingContext, principal: KeyPrincipal, prompt_tokens: int) -> None:
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


def _charge_completion(ctx: RoutingContext, principal: KeyPrincipal, tokens: int) -> None:
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


async def _execute(
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
    outcome = execution.Outcome()
    _record_provisional(req, principal, kind, ctx, rr, plan, stream=stream)
    try:
        return await _budgeted(ctx, principal, rr, plan, lambda p, g: run(p, outcome, g))
    except asyncio.CancelledError:
        _record_cancelled(req, principal, kind, outcome, ctx, rr.prompt_tokens, stream=stream)
        raise
    except execution.ClientError as exc:
        _record_failure(req, principal, kind, exc.outcome, 400, exc.error.kind)
        raise GatewayError(
            400,
            f"The provider refused the request: {exc.outcome.attempts[-1].message}",
            code=exc.error.provider_code or "upstream_bad_request",
        ) from None
    except execution.AllFailed as exc:
        err = _all_failed_error(exc)
        _record_failure(req, principal, kind, exc.outcome, err.status, err.code or "")
        raise err from None


async def drain(seconds: float = 10.0) -> None:
    """Finish the work requests left behind: settlements, alert hand-offs, usage records.
    Run at shutdown (ASGI lifespan) so a deploy loses none of it."""
    await background.drain(seconds)
    await writer.drain(seconds)


@lifecycle.on_shutdown
async def _drain_on_shutdown() -> None:
    await drain()


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
            raise _budget_error(exc, ctx) from None
        first = exc
    cap = float(first.rule.limit_usd if first.rule.period == "request" else first.remaining)
    cheaper = dataclasses.replace(
        rr, max_cost=cap if rr.max_cost is None else min(cap, rr.max_cost)
    )
    plan = engine.plan(cheaper, ctx.candidates, ctx.policy, await _health(ctx), rng=_rng)
    if not plan.steps:
        raise _budget_error(first, ctx)
    guard = BudgetGuard(ctx, rules, cheaper)
    try:
        return await run(plan, guard), guard, first
    except BudgetExceeded as exc:
        raise _budget_error(exc, ctx) from None


def _budget_error(exc: BudgetExceeded, ctx: RoutingContext) -> GatewayError:
    headers = []
    if exc.resets_at is not None:
        headers.append((b"x-aura-budget-resets-at", exc.resets_at.isoformat().encode()))
    return GatewayError(
        402,
        budget_error_message(exc, ctx.timezone),
        type="insufficient_quota",
        code="budget_exceeded",
        headers=headers,
    )


# --------------------------------------------------------------------------- handlers


async def chat_completions(req: Request, send: Send, principal: KeyPrincipal) -> None:
    body = _json_body(req)
    if isinstance(body, dict) and isinstance(body.get("model"), str):
        req.model = body["model"]
    try:
        validate_chat(body)
        hints = {
            k: v
            for k, v in (
                ("objective", req.headers.get("x-aura-objective")),
                ("session_id", req.headers.get("x-aura-session-id")),
                ("max_cost", req.headers.get("x-aura-max-cost")),
                ("tier", req.headers.get("x-aura-tier")),
            )
            if v
        }
        rr = route_request_for_chat(body, hints)
    except InvalidRequest as exc:
        raise GatewayError(400, exc.message, param=exc.param, code=exc.code) from None
    body = _without_routing_hints(body)
    ctx = await cache.aget(principal.tenant_id)
    await _rate_limit(ctx, principal, rr.prompt_tokens)
    plan = engine.plan(
        rr, ctx.candidates, ctx.policy, await _health(ctx), rng=_rng, counter=ctx.counter
    )
    ctx.counter += 1
    if not plan.steps:
        raise _plan_error(plan, rr.model)
    if body.get("stream"):
        await _stream(req, send, principal, body, rr, plan, ctx)
        return
    (completion, outcome), guard, downgraded = await _execute(
        req,
        principal,
        "chat",
        ctx,
        rr,
        plan,
        lambda p, out, g: execution.complete(p, ctx, body, out, g),
    )
    ct = outcome.target
    assert ct is not None
    usage = completion.usage
    estimated = usage is None
    if usage is None:
        text = _completion_text(completion.body)
        prompt_tokens, completion_tokens, cached = (
            rr.prompt_tokens,
            classify.estimate_tokens(text),
            0,
        )
    else:
        prompt_tokens, completion_tokens, cached = (
            usage.prompt_tokens,
            usage.completion_tokens,
            usage.cached_tokens,
        )
    if usage is not None:
        overruns.observe(ct.key, rr.max_output_tokens, completion_tokens)
    cost = ct.cost(prompt_tokens, completion_tokens, cached)
    payload = json.dumps(completion.body).encode()
    headers = _meta_headers(req, ct, cost, outcome, plan)
    if downgraded is not None:
        headers.append((b"x-aura-budget", f"downgraded; budget={downgraded.rule.id}".encode()))
    # Account before answering (settlement runs in the background, adding no latency): a
    # client that goes away during the send must not leave its reservation holding money.
    _account(
        req,
        principal,
        ctx,
        outcome,
        guard,
        kind="chat",
        status="ok",
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
        cached_tokens=cached,
        cost=cost,
        estimated=estimated,
    )
    await _send_json(send, 200, payload, headers)


def _without_routing_hints(body: dict[str, Any]) -> dict[str, Any]:
    """Routing hints in `metadata` (aura_*) are ours; providers must not see them."""
    metadata = body.get("metadata")
    if not isinstance(metadata, dict) or not any(k.startswith("aura_") for k in metadata):
        return body
    rest = {k: v for k, v in metadata.items() if not k.startswith("aura_")}
    trimmed = {k: v for k, v in body.items() if k != "metadata"}
    if rest:
        trimmed["metadata"] = rest
    return trimmed


def _completion_text(body: dict[str, Any]) -> str:
    try:
        msg = body["choices"][0]["message"]
    except (KeyError, IndexError, TypeError):
        return ""
    text = msg.get("content") or ""
    for call in msg.get("tool_calls") or ():
        fn = call.get("function") or {}
        text += (fn.get("name") or "") + (fn.get("arguments") or "")
    return text if isinstance(text, str) else ""


def _record_cancelled(
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
    the prompt by local count and flagged estimated."""
    target = ctx.targets.get(outcome.attempts[-1].key) if outcome.attempts else None
    cost = target.cost(prompt_tokens, 0) if target is not None else Decimal(0)
    _usage_record(
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


def _record_failure(
    req: Request,
    principal: KeyPrincipal,
    kind: str,
    outcome: execution.Outcome,
    status: int,
    code: str,
) -> None:
    _usage_record(
        req,
        principal,
        kind=kind,
        outcome=outcome,
        status="error",
        http_status=status,
        error_code=code,
    )


async def _send_capped_end(
    send: Send,
    last: dict[str, Any],
    rr: engine.RouteRequest,
    delivered: list[str],
    want_usage: bool,
) -> None:
    """End a stream AURA cut at max_tokens as the model would have: finish "length"."""
    base: dict[str, Any] = {k: last[k] for k in ("id", "object", "created", "model") if k in last}
    done = {**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "length"}]}
    body = _sse(done)
    if want_usage:
        completion = classify.estimate_tokens("".join(delivered))
        usage = {
            "prompt_tokens": rr.prompt_tokens,
            "completion_tokens": completion,
            "total_tokens": rr.prompt_tokens + completion,
        }
        body += _sse({**base, "choices": [], "usage": usage})
    await send({"type": "http.response.body", "body": body + b"data: [DONE]\n\n"})


def _sse(obj: dict[str, Any]) -> bytes:
    return b"data: " + json.dumps(obj, separators=(",", ":")).encode() + b"\n\n"


async def _stream(
    req: Request,
    send: Send,
    principal: KeyPrincipal,
    body: dict[str, Any],
    rr: engine.RouteRequest,
    plan: engine.Plan,
    ctx: RoutingContext,
) -> None:
    (first, agen, outcome), guard, downgraded = await _execute(
        req,
        principal,
        "chat",
        ctx,
        rr,
        plan,
        lambda p, out, g: execution.open_stream(p, ctx, body, out, g),
        stream=True,
    )
    ct = outcome.target
    assert ct is not None
    ttft_ms = (time.perf_counter() - req.started) * 1000
    want_usage = bool((body.get("stream_options") or {}).get("include_usage"))
    # The serving model may come from a downgraded plan, so look it up in the context.
    served = next(c for c in ctx.candidates if c.key == ct.key)
    worst = engine.estimate_cost(served, rr.prompt_tokens, rr.max_output_tokens)
    headers = _meta_headers(req, ct, f"{worst:.10f}", outcome, plan)
    headers.append((b"x-aura-cost-estimate", b"upper-bound"))
    if downgraded is not None:
        headers.append((b"x-aura-budget", f"downgraded; budget={downgraded.rule.id}".encode()))
    usage: dict[str, Any] | None = None
    delivered: list[str] = []
    status, error_code = "ok", ""
    chunk: dict[str, Any] | None = first
    try:
        # Inside the try: a client gone before the headers still gets its stream closed,
        # its usage recorded and its reservation settled.
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", b"text/event-stream; charset=utf-8"),
                    (b"cache-control", b"no-cache"),
                    (b"x-accel-buffering", b"no"),
                    *headers,
                ],
            }
        )
        # A provider that ignores max_tokens is cut off where the budget reservation ends.
        cap = stream_output_cap(rr.max_output_tokens) if rr.max_output_tokens else None
        counted = 0
        while chunk is not None:
            u = chunk.get("usage")
            if u:
                usage = u
                if not want_usage:
                    if not chunk.get("choices"):
                        chunk = await anext(agen, None)
                        continue
                    chunk = {k: v for k, v in chunk.items() if k != "usage"}
            pieces = len(delivered)
            for choice in chunk.get("choices") or ():
                delta = choice.get("delta") or {}
                if delta.get("content"):
                    delivered.append(delta["content"])
                for call in delta.get("tool_calls") or ():
                    fn = call.get("function") or {}
                    delivered.append((fn.get("name") or "") + (fn.get("arguments") or ""))
            await send({"type": "http.response.body", "body": _sse(chunk), "more_body": True})
            if cap is not None and not u:
                counted += sum(classify.estimate_tokens(p) for p in delivered[pieces:])
                if counted >= cap:
                    status, error_code = "ok", "max_tokens_enforced"
                    await _send_capped_end(send, chunk, rr, delivered, want_usage)
                    return
            chunk = await anext(agen, None)
        await send({"type": "http.response.body", "body": b"data: [DONE]\n\n", "more_body": False})
    except ProviderError as exc:
        # Bytes already reached the client: no failover now. End with an explicit error
        # event and no [DONE], so no client mistakes a cut answer for a complete one.
        status, error_code = "cut", exc.kind
        event = {
            "error": {
                "message": "Upstream stream failed: "
                + attempt_message(
                    exc.kind,
                    exc.status,
                    exc.provider_code,
                    redact(exc.message, ct.target.api_key),
                    tenant_owned=ct.tenant_owned,
                ),
                "type": "server_error",
                "param": None,
                "code": "upstream_stream_error",
            }
        }
        with contextlib.suppress(Exception):  # the client may be gone too
            await send({"type": "http.response.body", "body": _sse(event), "more_body": False})
    except asyncio.CancelledError:
        status, error_code = "cancelled", "client_disconnected"
        raise
    finally:
        # Account first (no await before it): a client that closes the connection once the
        # stream has ended cancels this task, and nothing may cancel the accounting.
        if usage is not None and status == "ok":
            prompt_tokens = int(usage.get("prompt_tokens") or 0)
            completion_tokens = int(usage.get("completion_tokens") or 0)
            cached = int(((usage.get("prompt_tokens_details") or {}).get("cached_tokens")) or 0)
            estimated = False
        else:
            # Cut, cancelled, or no usage from upstream: charge what was delivered, flagged.
            prompt_tokens = (
                int(usage.get("prompt_tokens") or rr.prompt_tokens) if usage else rr.prompt_tokens
            )
            completion_tokens = classify.estimate_tokens("".join(delivered))
            cached, estimated = 0, True
        cost = ct.cost(prompt_tokens, completion_tokens, cached)
        _account(
            req,
            principal,
            ctx,
            outcome,
            guard,
            kind="chat",
            status=status,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            cached_tokens=cached,
            cost=cost,
            estimated=estimated,
            stream=True,
            ttft_ms=ttft_ms,
            error_code=error_code,
        )
        with contextlib.suppress(Exception):
            await agen.aclose()  # type: ignore[attr-defined]  # adapters return async generators


async def embeddings(req: Request, send: Send, principal: KeyPrincipal) -> None:
    req.kind = "embeddings"
    body = _json_body(req)
    if isinstance(body, dict) and isinstance(body.get("model"), str):
        req.model = body["model"]
    try:
        validate_embeddings(body)
        rr = route_request_for_embeddings(body)
    except InvalidRequest as exc:
        raise GatewayError(400, exc.message, param=exc.param, code=exc.code) from None
    ctx = await cache.aget(principal.tenant_id)
    await _rate_limit(ctx, principal, rr.prompt_tokens)
    plan = engine.plan(
        rr, ctx.candidates, ctx.policy, await _health(ctx), rng=_rng, counter=ctx.counter
    )
    if not plan.steps:
        raise _plan_error(plan, rr.model)
    (result, outcome), guard, _ = await _execute(
        req,
        principal,
        "embeddings",
        ctx,
        rr,
        plan,
        lambda p, out, g: execution.embed(p, ctx, body, out, g),
    )
    ct = outcome.target
    assert ct is not None
    usage = result.get("usage") or {}
    estimated = not usage.get("prompt_tokens")
    prompt_tokens = int(usage.get("prompt_tokens") or rr.prompt_tokens)
    cost = ct.cost(prompt_tokens, 0)
    headers = _meta_headers(req, ct, cost, outcome, plan)
    _account(
        req,
        principal,
        ctx,
        outcome,
        guard,
        kind="embeddings",
        status="ok",
        prompt_tokens=prompt_tokens,
        cost=cost,
        estimated=estimated,
    )
    await _send_json(send, 200, json.dumps(result).encode(), headers)


def _visible_models(ctx: RoutingContext) -> list[dict[str, Any]]:
    """Models this tenant may call: allowed by policy, credentials present."""
    p = ctx.policy
    seen: dict[str, dict[str, Any]] = {}
    ids = [c.model_id for c in ctx.candidates]
    for c in ctx.candidates:
        if not c.has_credentials:
            continue
        if p.allowed_providers is not None and c.provider not in p.allowed_providers:
            continue
        if c.provider in p.denied_providers:
            continue
        if p.allowed_models is not None and not ({c.key, c.model_id} & p.allowed_models):
            continue
        if {c.key, c.model_id} & p.denied_models:
            continue
        if p.local_only and not c.is_local:
            continue
        model_id = c.model_id if ids.count(c.model_id) == 1 else c.key
        seen[model_id] = {
            "id": model_id,
            "object": "model",
            "created": 0,
            "owned_by": c.provider,
            "aura": {
                "key": c.key,
                "tier": c.tier,
                "capabilities": sorted(c.capabilities),
                "context_window": c.context_window,
                "local": c.is_local,
            },
        }
    out = [{"id": "auto", "object": "model", "created": 0, "owned_by": "aura"}]
    for alias in p.aliases:
        out.append({"id": alias, "object": "model", "created": 0, "owned_by": "aura"})
    return out + sorted(seen.values(), key=lambda m: m["id"])


async def models(req: Request, send: Send, principal: KeyPrincipal) -> None:
    req.kind = "models"
    ctx = await cache.aget(principal.tenant_id)
    data = _visible_models(ctx)
    if req.path.startswith("/v1/models/"):
        wanted = req.path[len("/v1/models/") :]
        match = next((m for m in data if m["id"] == wanted), None)
        if match is None:
            raise GatewayError(
                404, f"The model '{wanted}' does not exist.", param="model", code="model_not_found"
            )
        payload: Any = match
    else:
        payload = {"object": "list", "data": data}
    await _send_json(
        send, 200, json.dumps(payload).encode(), [(b"x-aura-request-id", req.request_id.encode())]
    )


ROUTES: dict[tuple[str, str], Callable[[Request, Send, KeyPrincipal], Awaitable[None]]] = {
    ("POST", "/v1/chat/completions"): chat_completions,
    ("POST", "/v1/embeddings"): embeddings,
    ("GET", "/v1/models"): models,
}


def _route(req: Request) -> Callable[[Request, Send, KeyPrincipal], Awaitable[None]]:
    handler = ROUTES.get((req.method, req.path.rstrip("/") if req.path != "/" else req.path))
    if handler is not None:
        return handler
    if req.method == "GET" and req.path.startswith("/v1/models/"):
        return models
    if any(path == req.path.rstrip("/") for _, path in ROUTES):
        raise GatewayError(
            405, f"Method {req.method} is not allowed on {req.path}.", code="method_not_allowed"
        )
    raise GatewayError(404, f"Unknown endpoint {req.method} {req.path}.", code="unknown_url")


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    req = Request(scope, time.perf_counter())
    token = request_id_var.set(req.request_id)
    task = asyncio.current_task()
    watcher: asyncio.Task[Any] | None = None
    finished = False

    def on_disconnect(fut: asyncio.Future[Any]) -> None:
        if not finished and not fut.cancelled() and task is not None:
            req.disconnected = True
            task.cancel()

    principal: KeyPrincipal | None = None
    try:
        handler = _route(req)
        # Authenticate from the headers first: nobody without a key gets a body buffered.
        principal = await _authenticate(req)
        await _read_body(req, receive)
        watcher = asyncio.ensure_future(receive())
        watcher.add_done_callback(on_disconnect)
        await handler(req, send, principal)
    except GatewayError as exc:
        if principal is not None and not req.recorded:
            _record_refusal(req, principal, exc.status, exc.code or exc.type)
        headers = [(b"x-aura-request-id", req.request_id.encode()), *exc.headers]
        await _send_json(send, exc.status, exc.body(), headers)
    except asyncio.CancelledError:
        if not req.disconnected:
            raise
        # Client went away: the upstream call was cancelled with us; nothing to answer.
        if principal is not None and req.record_uid and not req.recorded:
            _record_refusal(req, principal, 499, "client_disconnected")
        if task is not None:
            task.uncancel()
    except Exception:
        log.exception("unhandled gateway error")
        if principal is not None and not req.recorded:
            with contextlib.suppress(Exception):
                _record_refusal(req, principal, 500, "internal_error")
        err = GatewayError(
            500,
            f"Internal server error (request id {req.request_id}).",
            type="server_error",
            code="internal_error",
        )
        with contextlib.suppress(Exception):  # headers may already be out
            await _send_json(
                send, 500, err.body(), [(b"x-aura-request-id", req.request_id.encode())]
            )
    finally:
        finished = True
        if watcher is not None and not watcher.done():
            watcher.cancel()
        request_id_var.reset(token)
