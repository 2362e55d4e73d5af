"""Streaming chat completions: SSE relay with usage, the max_tokens cut-off, and accounting
whatever way the stream ends (done, cut by the provider, or the client gone)."""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from typing import TYPE_CHECKING, Any

from routing import engine
from routing.engine import classify
from routing.engine.failures import attempt_message
from routing.gateway import caching, execution, learning
from routing.gateway.accounting import account
from routing.gateway.context import RoutingContext
from routing.gateway.dispatch import execute
from routing.gateway.framing import Request, Send, meta_headers, sse, start_sse
from routing.gateway.guard import PROMPT_MARGIN, stream_output_cap
from routing.providers.base import ProviderError, redact
from tenants.auth import KeyPrincipal

if TYPE_CHECKING:
    from routing.learning.prediction import Learned


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
    body = sse(done)
    if want_usage:
        completion = classify.estimate_tokens("".join(delivered))
        usage = {
            "prompt_tokens": rr.prompt_tokens,
            "completion_tokens": completion,
            "total_tokens": rr.prompt_tokens + completion,
        }
        body += sse({**base, "choices": [], "usage": usage})
    await send({"type": "http.response.body", "body": body + b"data: [DONE]\n\n"})


async def stream(
    req: Request,
    send: Send,
    principal: KeyPrincipal,
    body: dict[str, Any],
    rr: engine.RouteRequest,
    plan: engine.Plan,
    ctx: RoutingContext,
    learned: Learned | None = None,
) -> None:
    (first, agen, outcome), guard, downgraded = await execute(
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
    # The worst case as the budget reserves it: the local prompt count with its margin,
    # and output up to where the stream is cut (not max_tokens: a provider may overrun).
    cap = stream_output_cap(rr.max_output_tokens) if rr.max_output_tokens else None
    worst = engine.estimate_cost(served, math.ceil(rr.prompt_tokens * PROMPT_MARGIN), cap)
    headers = meta_headers(req, ct, f"{worst:.10f}", outcome, plan)
    headers.append((b"x-aura-cost-estimate", b"upper-bound"))
    if downgraded is not None:
        headers.append((b"x-aura-budget", f"downgraded; budget={downgraded.rule.id}".encode()))
    usage: dict[str, Any] | None = None
    delivered: list[str] = []
    status, error_code = "ok", ""
    chunk: dict[str, Any] | None = first
    finish: str | None = None  # the model's own finish reason, for the cache
    tool_calls_seen = False
    try:
        # Inside the try: a client gone before the headers still gets its stream closed,
        # its usage recorded and its reservation settled.
        await start_sse(send, headers)
        # A provider that ignores max_tokens is cut off where the budget reservation ends.
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
                finish = choice.get("finish_reason") or finish
                delta = choice.get("delta") or {}
                if delta.get("content"):
                    delivered.append(delta["content"])
                for call in delta.get("tool_calls") or ():
                    tool_calls_seen = True
                    fn = call.get("function") or {}
                    delivered.append((fn.get("name") or "") + (fn.get("arguments") or ""))
            await send({"type": "http.response.body", "body": sse(chunk), "more_body": True})
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
            await send({"type": "http.response.body", "body": sse(event), "more_body": False})
    except asyncio.CancelledError:
        status, error_code = "cancelled", "client_disconnected"
        raise
    finally:
        # The stream held its endpoint's slot (load shedding) until now, whatever ended it.
        if outcome.slot is not None:
            outcome.slot.release()
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
        account(
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
        if learned is not None and status == "ok" and not error_code:
            learning.remember_later(req, ctx, learned, ct.key, cost, body)
        if status == "ok" and not error_code and finish == "stop" and not tool_calls_seen:
            caching.store_later(
                req,
                ctx,
                ct,
                {
                    "id": first.get("id"),
                    "object": "chat.completion",
                    "created": first.get("created"),
                    "model": first.get("model"),
                    "choices": [
                        {
                            "index": 0,
                            "message": {"role": "assistant", "content": "".join(delivered)},
                            "finish_reason": "stop",
                        }
                    ],
                    "usage": usage,
                },
                prompt_tokens=prompt_tokens,
                completion_tokens=completion_tokens,
                cost=cost,
            )
        with contextlib.suppress(Exception):
            await agen.aclose()  # type: ignore[attr-defined]  # adapters return async generators
