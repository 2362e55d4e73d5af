"""The exact layer: one Redis key per (tenant, exact key), expiring with its TTL, and a
per-tenant index (a sorted set by store time) that caps how many entries a tenant keeps:
storing past the cap evicts the oldest."""

from __future__ import annotations

import json
import time
from decimal import Decimal
from typing import Any

from django.conf import settings

from aura.money import plain_decimal
from routing.cache.config import MAX_TTL_SECONDS

_PREFIX = "aura:cache:x"

# KEYS[1] entry, KEYS[2] index; ARGV: value, ttl, now, cap, index horizon.
_STORE = """
redis.call('SET', KEYS[1], ARGV[1], 'EX', tonumber(ARGV[2]))
redis.call('ZADD', KEYS[2], tonumber(ARGV[3]), KEYS[1])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', tonumber(ARGV[5]))
local over = redis.call('ZCARD', KEYS[2]) - tonumber(ARGV[4])
if over > 0 then
  local oldest = redis.call('ZRANGE', KEYS[2], 0, over - 1)
  redis.call('ZREMRANGEBYRANK', KEYS[2], 0, over - 1)
  redis.call('DEL', unpack(oldest))
end
redis.call('EXPIRE', KEYS[2], tonumber(ARGV[6]))
return over
"""


def entry_key(tenant_id: int, exact: str) -> str:
    return f"{_PREFIX}:{tenant_id}:{exact}"


def index_key(tenant_id: int) -> str:
    return f"{_PREFIX}i:{tenant_id}"


def _cap() -> int:
    return int(settings.CACHE_MAX_ENTRIES_PER_TENANT)


async def lookup(redis: Any, tenant_id: int, exact: str) -> dict[str, Any] | None:
    raw = await redis.get(entry_key(tenant_id, exact))
    if raw is None:
        return None
    entry: dict[str, Any] = json.loads(raw)
    return entry


def lookup_sync(redis: Any, tenant_id: int, exact: str) -> dict[str, Any] | None:
    raw = redis.get(entry_key(tenant_id, exact))
    return json.loads(raw) if raw is not None else None


def encode_entry(
    *,
    model: str,
    provider: str,
    model_id: str,
    response: dict[str, Any],
    prompt_tokens: int,
    completion_tokens: int,
    cost_usd: Decimal,
) -> str:
    return json.dumps(
        {
            "model": model,
            "provider": provider,
            "model_id": model_id,
            "response": response,
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "cost_usd": plain_decimal(cost_usd),
            "stored_at": time.time(),
        },
        separators=(",", ":"),
    )


async def store(redis: Any, tenant_id: int, exact: str, value: str, ttl_seconds: int) -> None:
    now = time.time()
    await redis.eval(
        _STORE,
        2,
        entry_key(tenant_id, exact),
        index_key(tenant_id),
        value,
        ttl_seconds,
        now,
        _cap(),
        now - MAX_TTL_SECONDS,
        MAX_TTL_SECONDS,
    )


def entries(redis: Any, tenant_id: int) -> int:
    """Live entries of a tenant (sync; the index may briefly count expired ones)."""
    index = index_key(tenant_id)
    members = redis.zrange(index, 0, -1)
    if not members:
        return 0
    return int(redis.exists(*members))


def purge(redis: Any, tenant_id: int, model: str | None = None) -> int:
    """Delete a tenant's entries (of one model scope's name when given); returns how many."""
    index = index_key(tenant_id)
    members = redis.zrange(index, 0, -1)
    if not members:
        return 0
    if model is None:
        gone = int(redis.delete(*members))
        redis.delete(index)
        return gone
    doomed = []
    for member, raw in zip(members, redis.mget(members), strict=True):
        if raw is None:
            doomed.append(member)
            continue
        scope = json.loads(raw).get("model", "")
        if scope == model or scope.split("@policy-v", 1)[0] == model:
            doomed.append(member)
    if not doomed:
        return 0
    live = int(redis.exists(*doomed))
    redis.delete(*doomed)
    redis.zrem(index, *doomed)
    return live
