"""Shared Redis clients: one sync pool per process, one async pool per event loop."""

from __future__ import annotations

import asyncio
import functools

import redis
import redis.asyncio as aioredis
from django.conf import settings

_async_clients: dict[int, aioredis.Redis] = {}


@functools.cache
def sync_client() -> redis.Redis:
    return redis.Redis.from_url(settings.REDIS_URL, socket_timeout=2, socket_connect_timeout=2)


def async_client() -> aioredis.Redis:
    """A client bound to the running loop (redis.asyncio pools cannot cross loops)."""
    loop_id = id(asyncio.get_running_loop())
    client = _async_clients.get(loop_id)
    if client is None:
        client = aioredis.Redis.from_url(
            settings.REDIS_URL, socket_timeout=2, socket_connect_timeout=2, max_connections=256
        )
        _async_clients[loop_id] = client
    return client


async def aclose_async_client() -> None:
    loop_id = id(asyncio.get_running_loop())
    client = _async_clients.pop(loop_id, None)
    if client is not None:
        await client.aclose()
