"""Per-process start-up and shutdown hooks run by the ASGI lifespan protocol."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

_startup: list[Callable[[], Awaitable[None]]] = []
_shutdown: list[Callable[[], Awaitable[None]]] = []


def on_startup(fn: Callable[[], Awaitable[None]]) -> Callable[[], Awaitable[None]]:
    _startup.append(fn)
    return fn


def on_shutdown(fn: Callable[[], Awaitable[None]]) -> Callable[[], Awaitable[None]]:
    _shutdown.append(fn)
    return fn


async def startup() -> None:
    for fn in _startup:
        await fn()


async def shutdown() -> None:
    # Reverse order: what started last (e.g. a writer using the pool) stops first.
    for fn in reversed(_shutdown):
        await fn()


async def _close_shared_clients() -> None:
    from aura.http import aclose_client
    from aura.redis import aclose_async_client

    await aclose_client()
    await aclose_async_client()


on_shutdown(_close_shared_clients)
