"""ASGI entry point.

``/v1/`` goes to the gateway (routing.gateway.app: a lean ASGI app, see its docstring for
why it is not a Django view); Django serves everything else. This thin outer layer also
adds what Django's handler lacks: the
ASGI lifespan protocol (so per-process resources such as the shared outbound HTTP client
are opened and flushed/closed cleanly) and in-process /static/ for the admin.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Awaitable, Callable
from typing import Any

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "aura.settings")
django_app = get_asgi_application()

from django.conf import settings  # noqa: E402
from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler  # noqa: E402

from aura import lifecycle  # noqa: E402
from routing.gateway.app import app as gateway_app  # noqa: E402

log = logging.getLogger("aura.asgi")

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

_http_app = ASGIStaticFilesHandler(django_app) if settings.AURA_SERVE_STATIC else django_app


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            try:
                await lifecycle.startup()
            except Exception as exc:
                log.exception("startup failed")
                await send({"type": "lifespan.startup.failed", "message": str(exc)})
                return
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            try:
                await lifecycle.shutdown()
            finally:
                await send({"type": "lifespan.shutdown.complete"})
            return


async def application(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        await _lifespan(receive, send)
        return
    if scope["path"].startswith("/v1/") or scope["path"] == "/v1":
        await gateway_app(scope, receive, send)
        return
    await _http_app(scope, receive, send)  # type: ignore[arg-type]
