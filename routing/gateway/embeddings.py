"""POST /v1/embeddings."""

from __future__ import annotations

import json
import time

from routing import engine
from routing.gateway import execution
from routing.gateway.accounting import account
from routing.gateway.context import cache
from routing.gateway.dispatch import execute, health, rate_limit, rng, set_priority
from routing.gateway.errors import GatewayError, plan_error
from routing.gateway.framing import Request, Send, json_body, meta_headers, send_json
from routing.gateway.requests import (
    InvalidRequest,
    route_request_for_embeddings,
    validate_embeddings,
)
from tenants.auth import KeyPrincipal


async def embeddings(req: Request, send: Send, principal: KeyPrincipal) -> None:
    req.kind = "embeddings"
    body = json_body(req)
    if isinstance(body, dict) and isinstance(body.get("model"), str):
        req.model = body["model"]
    try:
        validate_embeddings(body)
        rr = route_request_for_embeddings(body)
    except InvalidRequest as exc:
        raise GatewayError(400, exc.message, param=exc.param, code=exc.code) from None
    set_priority(req, principal)
    ctx = await cache.aget(principal.tenant_id)
    await rate_limit(ctx, principal, rr.prompt_tokens)
    snapshot = await health(ctx)
    started = time.perf_counter()
    plan = engine.plan(rr, ctx.candidates, ctx.policy, snapshot, rng=rng, counter=ctx.counter)
    req.plan_seconds = time.perf_counter() - started
    if not plan.steps:
        raise plan_error(plan, rr.model)
    (result, outcome), guard, _ = await execute(
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
    headers = meta_headers(req, ct, cost, outcome, plan)
    account(
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
    await send_json(send, 200, json.dumps(result).encode(), headers)
