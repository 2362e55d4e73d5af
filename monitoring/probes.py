from __future__ import annotations

from aura.redis import sync_client


def redis_ping() -> None:
    if not sync_client().ping():
        raise RuntimeError("Redis did not answer PING")
