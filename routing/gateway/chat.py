"""POST /v1/chat/completions: validate, plan, run (or hand off to streaming), account, answer."""

from __future__ import annotations

import json
import time
from dataclasses import replace
from typing import Any

from routing import engine
from routing.engine import classify
from routing.gateway import caching, execution, learning
from routing.gateway.accounting import account
from routing.gateway.context import cache
from routing.gateway.dispatch import execute, health, rate_limit, rng, set_priority
from routing.gateway.errors import GatewayError, plan_error
from routing.gateway.framing import Request, Send, json_body, meta_headers, send_json
from routing.gateway.guard import overruns
from routing.gateway.requests import InvalidRequest, route_request_for_chat, validate_chat
from routing.gateway.streaming import stream
from tenants.auth import KeyPrincipal


async def chat_completions(req: Request, send: Send, principal: KeyPrincipal) -> None:
    body = json_body(req)
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
    set_priority(req, principal)
    body = _without_routing_hints(body)
    ctx = await cache.aget(principal.tenant_id)
    await rate_limit(ctx, principal, rr.prompt_tokens)
    caching.prepare(req, ctx, body)
    if req.cache_key is not None and await caching.answer_from_cache(req, send, principal, body):
        return
    snapshot = await health(ctx)
    learned = None
    if ctx.learning.enabled:
        learned = await learning.learned_for_request(ctx, body)
        if learned is not None and learned.predictions:
            snapshot = replace(
                snapshot, learned_quality=learned.quality_by_candidate(ctx.candidates)
            )
    started = time.perf_counter()
    plan = engine.plan(rr, ctx.candidates, ctx.policy, snapshot, rng=rng, counter=ctx.counter)
    req.plan_seconds = time.perf_counter() - started
    ctx.counter += 1
    if not plan.steps:
        raise plan_error(plan, rr.model)
    if body.get("stream"):
        await stream(req, send, principal, body, rr, plan, ctx, learned)
        return
    (completion, outcome), guard, downgraded = await execute(
        req,
        principal,
        "chat",
        ctx,
        rr,
        plan,
        lambda p, out, g: execution.complete(p, ctx, body, out, g, rr.prompt_tokens),
    )
    ct = outcome.target
    assert ct is not None
    usage = completion.usage
    estimated = usage is None or outcome.hedge_estimated
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
    headers = meta_headers(req, ct, cost + outcome.hedge_cost, outcome, plan)
    if downgraded is not None:
        headers.append((b"x-aura-budget", f"downgraded; budget={downgraded.rule.id}".encode()))
    # Account before answering (settlement runs in the background, adding no latency): a
    # client that goes away during the send must not leave its reservation holding money.
    account(
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
    await send_json(send, 200, payload, headers)
    if learned is not None:
        learning.remember_later(req, ctx, learned, ct.key, cost, body)
    caching.store_later(
        req,
        ctx,
        ct,
        completion.body,
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
        cost=cost,
    )


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
