"""The gateway's side of the response cache (routing.cache): look up before planning,
answer a hit (JSON or a replayed SSE stream) and record it, store a good answer after it
was sent.

A hit is recorded like any request, with ``cache_status`` (exact / semantic), cost 0, and
``cache_savings_usd``, what the original call cost; it takes no budget reservation and
calls no provider. Trouble with the cache (Redis down, a bad entry) is a miss, never an
error. Clients opt out per request: ``Cache-Control: no-cache`` skips the lookup,
``no-store`` the write; ``x-aura-cache-ttl`` shortens the TTL.
"""

from __future__ import annotations

import json
import logging
import time
from decimal import Decimal
from typing import Any

from asgiref.sync import sync_to_async

from aura import background
from aura.db import releasing_connection
from aura.redis import async_client
from routing.cache import exact, replay
from routing.cache.keys import CacheKey, cache_key, model_scope
from routing.cache.semantic import semantic_hit_record, semantic_lookup, semantic_store
from routing.gateway import execution
from routing.gateway.accounting import usage_record
from routing.gateway.context import RoutingContext
from routing.gateway.framing import Request, Send, header_text, send_json, start_sse
from tenants.auth import KeyPrincipal

log = logging.getLogger("aura.gateway.cache")

# An answer is stored only when the model finished on its own.
STORABLE_FINISH = frozenset({"stop", "tool_calls"})


def _directives(req: Request) -> set[str]:
    raw = req.headers.get("cache-control", "")
    return {part.strip().lower().split("=", 1)[0] for part in raw.split(",") if part.strip()}


def key_for(ctx: RoutingContext, body: dict[str, Any]) -> CacheKey | None:
    """The cache key of a validated chat body, or None when its tenant does not cache (or
    the request cannot be: several choices)."""
    if not ctx.cache.enabled or body.get("n", 1) != 1:
        return None
    model = body["model"]
    scope = model_scope(
        model,
        resolved_by_policy=model == "auto" or model in ctx.policy.aliases,
        policy_version=ctx.policy_version,
    )
    return cache_key(body, tenant_id=ctx.tenant_id, model=scope)


def prepare(req: Request, ctx: RoutingContext, body: dict[str, Any]) -> None:
    req.cache_key = key_for(ctx, body)
    req.cache_settings = ctx.cache


async def answer_from_cache(
    req: Request, send: Send, principal: KeyPrincipal, body: dict[str, Any]
) -> bool:
    """Serve the request from the cache if it can; True when it did."""
    key = req.cache_key
    if key is None or "no-cache" in _directives(req):
        return False
    try:
        entry = await exact.lookup(async_client(), principal.tenant_id, key.exact)
    except Exception:
        log.warning("cache lookup failed; treating as a miss", exc_info=True)
        return False
    if entry is not None:
        await _send_hit(req, send, principal, body, entry, kind="exact", similarity=None)
        return True
    if req.cache_settings is None or req.cache_settings.mode != "semantic" or not key.prompt:
        return False
    try:
        found = await _semantic_lookup(req, principal.tenant_id, key)
    except Exception:
        log.warning("semantic cache lookup failed; treating as a miss", exc_info=True)
        return False
    if found is None:
        return False
    await _send_hit(req, send, principal, body, found[0], kind="semantic", similarity=found[1])
    entry_id = found[0]["id"]
    background.detach(_off_loop(semantic_hit_record, entry_id=entry_id))
    return True


async def _off_loop(fn: Any, **kwargs: Any) -> Any:
    """A database call from the event loop: in a worker thread, its connection released."""
    return await sync_to_async(releasing_connection(fn), thread_sensitive=False)(**kwargs)


async def _semantic_lookup(
    req: Request, tenant_id: int, key: CacheKey
) -> tuple[dict[str, Any], float] | None:
    from routing.cache.embedders import get_embedder  # numpy: only once a tenant needs it

    settings = req.cache_settings
    assert settings is not None
    embedder = get_embedder(settings.embedder)
    vector = (await embedder.aembed([key.prompt]))[0]
    req.cache_vector = vector  # stored with the answer on a miss
    found = await _off_loop(
        semantic_lookup,
        tenant_id=tenant_id,
        partition=key.partition,
        prompt=key.prompt,
        embedding=vector,
        embedder=embedder.name,
        threshold=settings.similarity_threshold,
    )
    if found.entry is None:
        return None
    e = found.entry
    entry = {
        "id": e.pk,
        "provider": e.provider,
        "model_id": (e.response or {}).get("model", ""),
        "response": e.response,
        "prompt_tokens": e.prompt_tokens,
        "completion_tokens": e.completion_tokens,
        "cost_usd": str(e.cost_usd),
    }
    return entry, float(found.similarity or 0.0)


async def _send_hit(
    req: Request,
    send: Send,
    principal: KeyPrincipal,
    body: dict[str, Any],
    entry: dict[str, Any],
    *,
    kind: str,
    similarity: float | None,
) -> None:
    stream = bool(body.get("stream"))
    overhead = (time.perf_counter() - req.started) * 1000
    headers = [
        (b"x-aura-request-id", req.request_id.encode()),
        (b"x-aura-provider", header_text(entry.get("provider", ""))),
        (b"x-aura-model", header_text(entry.get("model_id", ""))),
        (b"x-aura-cost-usd", b"0"),
        (b"x-aura-cache", kind.encode()),
        (b"x-aura-overhead-ms", f"{overhead:.2f}".encode()),
        (b"x-aura-fallbacks", b"0"),
    ]
    if similarity is not None:
        headers.append((b"x-aura-cache-similarity", f"{similarity:.4f}".encode()))
    # Recorded before the answer goes out, like every request: a client that leaves
    # mid-send still shows in usage.
    usage_record(
        req,
        principal,
        kind="chat",
        outcome=execution.Outcome(),
        status="ok",
        http_status=200,
        prompt_tokens=int(entry.get("prompt_tokens") or 0),
        completion_tokens=int(entry.get("completion_tokens") or 0),
        cost=Decimal(0),
        stream=stream,
        cache_status=kind,
        cache_savings=Decimal(str(entry.get("cost_usd") or 0)),
        served=(entry.get("provider", ""), entry.get("model_id", ""), None),
    )
    response = entry["response"]
    if not stream:
        await send_json(send, 200, json.dumps(replay.completion(response)).encode(), headers)
        return
    await start_sse(send, headers)
    include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
    await send(
        {
            "type": "http.response.body",
            "body": b"".join(replay.stream_events(response, include_usage=include_usage)),
        }
    )


def _ttl(req: Request, ctx: RoutingContext) -> int:
    ttl = ctx.cache.ttl_seconds
    asked = req.headers.get("x-aura-cache-ttl", "").strip()
    if asked.isdigit() and int(asked) > 0:
        ttl = min(ttl, int(asked))
    return ttl


def store_later(
    req: Request,
    ctx: RoutingContext,
    target: Any,
    response: dict[str, Any],
    *,
    prompt_tokens: int,
    completion_tokens: int,
    cost: Decimal,
) -> None:
    """Store a good answer in the background (after it was sent; never on the hot path)."""
    key = req.cache_key
    if key is None or "no-store" in _directives(req):
        return
    choices: list[Any] = response.get("choices") or []
    if len(choices) != 1 or choices[0].get("finish_reason") not in STORABLE_FINISH:
        return
    value = exact.encode_entry(
        model=key.model,
        provider=target.provider,
        model_id=target.model_id,
        response=response,
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
        cost_usd=cost,
    )
    ttl = _ttl(req, ctx)
    semantic = ctx.cache.mode == "semantic" and bool(key.prompt)
    vector = req.cache_vector

    async def write() -> None:
        try:
            await exact.store(async_client(), ctx.tenant_id, key.exact, value, ttl)
        except Exception:
            log.warning("cache store failed", exc_info=True)
        if not semantic:
            return
        try:
            from routing.cache.embedders import get_embedder

            embedder = get_embedder(ctx.cache.embedder)
            embedding = vector or (await embedder.aembed([key.prompt]))[0]
            await _off_loop(
                semantic_store,
                tenant_id=ctx.tenant_id,
                partition=key.partition,
                model=key.model,
                provider=target.provider,
                prompt=key.prompt,
                embedding=embedding,
                embedder=embedder.name,
                response=response,
                ttl_seconds=ttl,
                prompt_tokens=prompt_tokens,
                completion_tokens=completion_tokens,
                cost_usd=cost,
            )
        except Exception:
            log.warning("semantic cache store failed", exc_info=True)

    background.detach(write())
