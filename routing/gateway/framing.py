"""ASGI framing for the gateway: the request object, body reading (bounded, strict JSON),
JSON and SSE responses, and the x-aura-* headers every answer carries."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from aura.middleware import new_request_id
from aura.text import find_unstorable, finite_float, has_surrogate_escape, refuse_constant
from routing import engine
from routing.gateway import execution
from routing.gateway.errors import GatewayError

if TYPE_CHECKING:
    from routing.cache.config import CacheSettings
    from routing.cache.keys import CacheKey

Scope = dict[str, Any]


Receive = Callable[[], Awaitable[dict[str, Any]]]


Send = Callable[[dict[str, Any]], Awaitable[None]]


MAX_BODY_BYTES = 16 * 1024 * 1024


JSON_CONTENT = (b"content-type", b"application/json")


class Request:
    __slots__ = (
        "body",
        "cache_key",
        "cache_settings",
        "cache_vector",
        "disconnected",
        "headers",
        "kind",
        "method",
        "model",
        "path",
        "peer",
        "plan_seconds",
        "priority",
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
        self.priority = 1  # its rank in an overloaded endpoint's queue (shedding.NORMAL)
        self.record_uid = ""  # set when a provisional record is journaled
        self.recorded = False  # its final usage record was handed to the writer
        self.cache_key: CacheKey | None = None  # set when the tenant caches and may store
        self.cache_settings: CacheSettings | None = None
        self.cache_vector: list[float] | None = None  # the last turn's embedding, once made
        self.plan_seconds: float | None = None  # the engine's decision time, once planned


async def read_body(req: Request, receive: Receive) -> None:
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


def json_body(req: Request) -> Any:
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


async def start_sse(send: Send, headers: list[tuple[bytes, bytes]]) -> None:
    """The response start of a server-sent-events stream."""
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


async def send_json(
    send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]]
) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [JSON_CONTENT, (b"content-length", str(len(body)).encode()), *headers],
        }
    )
    await send({"type": "http.response.body", "body": body})


def header_text(text: str, limit: int = 300) -> bytes:
    """A header-safe (ASCII, one line) rendering of ``text``."""
    return " ".join(text.split())[:limit].encode("ascii", "replace")


def sse(obj: dict[str, Any]) -> bytes:
    return b"data: " + json.dumps(obj, separators=(",", ":")).encode() + b"\n\n"


def meta_headers(
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
        headers.append((b"x-aura-requested-model", header_text(req.model)))
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
        headers.append((b"x-aura-fallback-reason", header_text(why)))
    return headers
