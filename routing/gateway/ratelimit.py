"""Requests- and tokens-per-minute limits per tenant and per API key, shared by every
worker through Redis (one atomic script per request, only when limits are configured).

Token buckets refilled continuously: ``rpm`` holds up to that many requests and refills
at rpm/60 per second; ``tpm`` likewise in tokens. A request is admitted only if every
applicable bucket can pay (requests: 1; tokens: the prompt estimate); otherwise nothing is
taken and the caller learns how long to wait (Retry-After). Completion tokens, unknown up
front, are charged after the answer and may take a bucket below zero, which delays the
next requests — the usual way TPM limits treat output. Redis unreachable: limits fail open
(they protect capacity, not money) and it is logged.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)

_ADMIT = """
local now = tonumber(ARGV[1])
local n = #KEYS
local level = {}
local failed, wait = 0, 0
for i = 1, n do
  local cap = tonumber(ARGV[1 + (i - 1) * 2 + 1])
  local cost = math.min(tonumber(ARGV[1 + (i - 1) * 2 + 2]), cap)
  local v = redis.call('HMGET', KEYS[i], 't', 'ts')
  local tokens = tonumber(v[1] or cap)
  local ts = tonumber(v[2] or now)
  tokens = math.min(cap, tokens + math.max(0, now - ts) * cap / 60000)
  level[i] = tokens
  if tokens < cost then
    local w = math.ceil((cost - tokens) * 60000 / cap)
    if w > wait then wait, failed = w, i end
  end
end
if failed > 0 then return {failed, wait} end
for i = 1, n do
  local cap = tonumber(ARGV[1 + (i - 1) * 2 + 1])
  local cost = math.min(tonumber(ARGV[1 + (i - 1) * 2 + 2]), cap)
  redis.call('HSET', KEYS[i], 't', tostring(level[i] - cost), 'ts', now)
  redis.call('PEXPIRE', KEYS[i], 120000)
end
return {0, 0}
"""

_CHARGE = """
local now = tonumber(ARGV[1])
for i = 1, #KEYS do
  local cap = tonumber(ARGV[1 + (i - 1) * 2 + 1])
  local cost = tonumber(ARGV[1 + (i - 1) * 2 + 2])
  local v = redis.call('HMGET', KEYS[i], 't', 'ts')
  local tokens = tonumber(v[1] or cap)
  local ts = tonumber(v[2] or now)
  tokens = math.min(cap, tokens + math.max(0, now - ts) * cap / 60000)
  redis.call('HSET', KEYS[i], 't', tostring(tokens - cost), 'ts', now)
  redis.call('PEXPIRE', KEYS[i], 120000)
end
return 1
"""


@dataclass(frozen=True, slots=True)
class Limited:
    """Refused: which limit, and seconds until it would admit this request."""

    name: str
    limit: int
    retry_after: float


def _buckets(limits: Mapping[str, int], tenant_id: int, key_id: int) -> list[tuple[str, str, int]]:
    out = []
    for name, scope in (("rpm", f"t:{tenant_id}"), ("tpm", f"t:{tenant_id}")):
        if limits.get(name):
            out.append((f"tenant {name}", f"aura:rl:{scope}:{name}", int(limits[name])))
    for name in ("key_rpm", "key_tpm"):
        if limits.get(name):
            unit = name.removeprefix("key_")
            out.append((f"API key {unit}", f"aura:rl:k:{key_id}:{unit}", int(limits[name])))
    return out


_scripts: dict[int, tuple[Any, Any]] = {}


def _for(redis: Any) -> tuple[Any, Any]:
    pair = _scripts.get(id(redis))
    if pair is None:
        pair = _scripts[id(redis)] = (redis.register_script(_ADMIT), redis.register_script(_CHARGE))
    return pair


async def admit(
    redis: Any, limits: Mapping[str, int], *, tenant_id: int, key_id: int, tokens: int, now_ms: int
) -> Limited | None:
    buckets = _buckets(limits, tenant_id, key_id)
    if not buckets:
        return None
    args: list[Any] = [now_ms]
    for name, _, cap in buckets:
        args += [cap, 1 if name.endswith("rpm") else max(1, tokens)]
    try:
        failed, wait_ms = await _for(redis)[0](keys=[k for _, k, _ in buckets], args=args)
    except Exception as exc:
        log.warning("rate limits not checked (Redis unavailable, failing open): %s", exc)
        return None
    if int(failed) == 0:
        return None
    name, _, cap = buckets[int(failed) - 1]
    return Limited(name, cap, math.ceil(int(wait_ms) / 1000))


async def charge_tokens(
    redis: Any, limits: Mapping[str, int], *, tenant_id: int, key_id: int, tokens: int, now_ms: int
) -> None:
    """Charge completion tokens after the answer (TPM buckets only)."""
    buckets = [b for b in _buckets(limits, tenant_id, key_id) if b[0].endswith("tpm")]
    if not buckets or tokens <= 0:
        return
    args: list[Any] = [now_ms]
    for _, _, cap in buckets:
        args += [cap, tokens]
    try:
        await _for(redis)[1](keys=[k for _, k, _ in buckets], args=args)
    except Exception as exc:
        log.warning("completion tokens not charged to TPM limits: %s", exc)
