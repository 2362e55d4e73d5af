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
import logging
import math
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aura import background, lifecycle
from aura.middleware import request_id_var
from billing.usage import writer
from routing.gateway.accounting import record_refusal
from routing.gateway.chat import chat_completions
from routing.gateway.embeddings import embeddings
from routing.gateway.errors import GatewayError
from routing.gateway.framing import Receive, Request, Scope, Send, read_body, send_json
from routing.gateway.model_list import models
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


async def drain(seconds: float = 10.0) -> None:
    """Finish the work requests left behind: settlements, alert hand-offs, usage records.
    Run at shutdown (ASGI lifespan) so a deploy loses none of it."""
    await background.drain(seconds)
    await writer.drain(seconds)


@lifecycle.on_shutdown
async def _drain_on_shutdown() -> None:
    await drain()


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
        await read_body(req, receive)
        watcher = asyncio.ensure_future(receive())
        watcher.add_done_callback(on_disconnect)
        await handler(req, send, principal)
    except GatewayError as exc:
        if principal is not None and not req.recorded:
            record_refusal(req, principal, exc.status, exc.code or exc.type)
        headers = [(b"x-aura-request-id", req.request_id.encode()), *exc.headers]
        await send_json(send, exc.status, exc.body(), headers)
    except asyncio.CancelledError:
        if not req.disconnected:
            raise
        # Client went away: the upstream call was cancelled with us; nothing to answer.
        if principal is not None and req.record_uid and not req.recorded:
            record_refusal(req, principal, 499, "client_disconnected")
        if task is not None:
            task.uncancel()
    except Exception:
        log.exception("unhandled gateway error")
        if principal is not None and not req.recorded:
            with contextlib.suppress(Exception):
                record_refusal(req, principal, 500, "internal_error")
        err = GatewayError(
            500,
            f"Internal server error (request id {req.request_id}).",
            type="server_error",
            code="internal_error",
        )
        with contextlib.suppress(Exception):  # headers may already be out
            await send_json(
                send, 500, err.body(), [(b"x-aura-request-id", req.request_id.encode())]
            )
    finally:
        finished = True
        if watcher is not None and not watcher.done():
            watcher.cancel()
        request_id_var.reset(token)
