"""Work a request leaves behind, run after its response and outside its cancellation scope.

A client that goes away must not stop its reservation from being settled or its usage
from being handed off, so the gateway detaches such work here; ``drain`` finishes it at
shutdown (the ASGI lifespan), so a deploy loses none of it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any

_tasks: set[asyncio.Future[Any]] = set()


def detach(coro: Awaitable[Any]) -> None:
    """Run ``coro`` to completion whatever happens to the task that started it."""
    task = asyncio.ensure_future(coro)
    _tasks.add(task)
    task.add_done_callback(_tasks.discard)


async def drain(seconds: float) -> None:
    """Wait (up to ``seconds``) for everything detached so far."""
    if _tasks:
        await asyncio.wait(list(_tasks), timeout=seconds)
