"""Circuit breakers per provider endpoint, shared by every process through Redis.

State machine (per endpoint), evaluated atomically inside Redis by one Lua script:

* **closed**: outcomes are counted in a fixed window (``window`` seconds). When at least
  ``min_requests`` were seen and the failure rate reaches ``failure_rate``, the breaker
  **opens** for ``cooldown`` seconds. It also opens after ``consecutive`` failures in a
  row with no success after the first of them: an endpoint that dies under heavy traffic
  would otherwise stay closed until its failures outweighed the window's earlier
  successes (hundreds of failed calls at a few hundred requests a second).
* **open**: the engine excludes the endpoint (reason ``circuit_open``).
* **half-open**: once the cooldown has passed, one probe request at a time is let through
  (a short Redis lock); its success closes the breaker, its failure re-opens it.

Cost on the hot path: reading state is local (a snapshot of open endpoints refreshed from
Redis at most once per ``REFRESH_INTERVAL``); failures are written at once; successes of
closed endpoints are batched and flushed with the refresh, because they only dilute the
failure rate. The clock is injected (tests drive it), and Redis time is never read.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from monitoring.state import HealthBoard, board
from routing import engine

log = logging.getLogger(__name__)

OPEN_SET = "aura:cb:open"
REFRESH_INTERVAL = 1.0
PROBE_LOCK_SECONDS = 30

_RECORD = """
local k = KEYS[1]
local openset = KEYS[2]
local ep = ARGV[1]
local now = tonumber(ARGV[2])
local ok = tonumber(ARGV[3])
local fail = tonumber(ARGV[4])
local window = tonumber(ARGV[5])
local minreq = tonumber(ARGV[6])
local rate = tonumber(ARGV[7])
local cooldown = tonumber(ARGV[8])
local consecutive = tonumber(ARGV[9])
local ok_at = tonumber(ARGV[10])
local st = redis.call('HMGET', k, 'state', 'window_start', 'ok', 'fail', 'open_until',
                      'consec', 'first_fail')
local state = st[1] or 'closed'
local wstart = tonumber(st[2] or '0')
local nok = tonumber(st[3] or '0')
local nfail = tonumber(st[4] or '0')
local until_ = tonumber(st[5] or '0')
local consec = tonumber(st[6] or '0')
local first_fail = tonumber(st[7] or '0')
if state == 'open' then
  if now < until_ then
    return {'open', tostring(until_)}
  end
  state = 'half_open'
end
if state == 'half_open' then
  if fail > 0 then
    until_ = now + cooldown
    redis.call('HSET', k, 'state', 'open', 'open_until', until_, 'ok', 0, 'fail', 0)
    redis.call('ZADD', openset, until_, ep)
    -- The probe is over: release its lock so the next cooldown can admit a new probe.
    redis.call('DEL', k .. ':probe')
    return {'open', tostring(until_)}
  end
  if ok > 0 then
    redis.call('HSET', k, 'state', 'closed', 'window_start', now, 'ok', 0, 'fail', 0)
    redis.call('ZREM', openset, ep)
    redis.call('DEL', k .. ':probe')
    return {'closed', '0'}
  end
  return {'half_open', tostring(until_)}
end
if now - wstart >= window then
  wstart = now
  nok = 0
  nfail = 0
end
nok = nok + ok
nfail = nfail + fail
-- Successes arrive in batches up to a second late: only one that happened after the run
-- of failures began ends it.
if ok > 0 and ok_at >= first_fail then
  consec = 0
end
if fail > 0 then
  if consec == 0 then
    first_fail = now
  end
  consec = consec + fail
end
local total = nok + nfail
if fail > 0 and ((total >= minreq and nfail / total >= rate) or consec >= consecutive) then
  until_ = now + cooldown
  redis.call('HSET', k, 'state', 'open', 'open_until', until_, 'window_start', wstart, 'ok', 0,
             'fail', 0, 'consec', 0)
  redis.call('ZADD', openset, until_, ep)
  redis.call('EXPIRE', k, 86400)
  return {'open', tostring(until_)}
end
redis.call('HSET', k, 'state', 'closed', 'window_start', wstart, 'ok', nok, 'fail', nfail,
           'consec', consec, 'first_fail', first_fail)
redis.call('EXPIRE', k, 86400)
return {'closed', '0'}
"""


@dataclass(frozen=True, slots=True)
class BreakerConfig:
    window: float = 30.0
    min_requests: int = 5
    failure_rate: float = 0.5
    cooldown: float = 30.0
    consecutive: int = 10


def _key(endpoint: str) -> str:
    return f"aura:cb:{endpoint}"


class Breakers:
    """Process-local view of the shared breaker state, plus the write path."""

    def __init__(
        self, config: BreakerConfig | None = None, clock: Callable[[], float] = time.time
    ) -> None:
        self.config = config or BreakerConfig()
        self.clock = clock
        self._open_until: dict[str, float] = {}
        self._pending_ok: dict[str, int] = defaultdict(int)
        self._pending_ok_at: dict[str, float] = {}
        self._refreshed_at = float("-inf")
        self._script_sha: str | None = None

    # ------------------------------------------------------------------ reading

    def open_endpoints(self) -> frozenset[str]:
        """Endpoints to exclude now: open and still cooling down."""
        now = self.clock()
        return frozenset(ep for ep, until in self._open_until.items() if until > now)

    def is_half_open(self, endpoint: str) -> bool:
        until = self._open_until.get(endpoint)
        return until is not None and until <= self.clock()

    def needs_refresh(self) -> bool:
        return self.clock() - self._refreshed_at >= REFRESH_INTERVAL

    def _apply_snapshot(self, rows: list[tuple[Any, float]]) -> None:
        self._open_until = {
            (ep.decode() if isinstance(ep, bytes) else str(ep)): float(score) for ep, score in rows
        }
        self._refreshed_at = self.clock()

    # ------------------------------------------------------------------ async (gateway)

    async def arefresh(self, redis: Any) -> None:
        """Flush batched successes and re-read the open set (call at most once a second)."""
        self._refreshed_at = self.clock()
        pending, self._pending_ok = self._pending_ok, defaultdict(int)
        pending_at, self._pending_ok_at = self._pending_ok_at, {}
        try:
            for ep, n in pending.items():
                await self._arun(redis, ep, ok=n, fail=0, ok_at=pending_at.get(ep, 0.0))
            rows = await redis.zrange(OPEN_SET, 0, -1, withscores=True)
        except Exception:
            log.warning("circuit-breaker refresh failed; keeping the last snapshot")
            return
        self._apply_snapshot(rows)

    async def _arun(
        self, redis: Any, endpoint: str, *, ok: int, fail: int, ok_at: float | None = None
    ) -> str:
        c = self.config
        now = self.clock()
        args = [
            endpoint,
            now,
            ok,
            fail,
            c.window,
            c.min_requests,
            c.failure_rate,
            c.cooldown,
            c.consecutive,
            now if ok_at is None else ok_at,
        ]
        if self._script_sha is None:
            self._script_sha = await redis.script_load(_RECORD)
        try:
            result = await redis.evalsha(self._script_sha, 2, _key(endpoint), OPEN_SET, *args)
        except Exception as exc:
            if "NOSCRIPT" not in str(exc):
                raise
            self._script_sha = await redis.script_load(_RECORD)
            result = await redis.evalsha(self._script_sha, 2, _key(endpoint), OPEN_SET, *args)
        state = result[0].decode() if isinstance(result[0], bytes) else str(result[0])
        until = float(result[1])
        if state == "open":
            self._open_until[endpoint] = until
        elif state == "closed":
            self._open_until.pop(endpoint, None)
        return state

    async def arecord(self, redis: Any, endpoint: str, *, success: bool) -> None:
        """Record one outcome. Failures and half-open probes are written at once."""
        if success and not self.is_half_open(endpoint):
            self._pending_ok[endpoint] += 1
            self._pending_ok_at[endpoint] = self.clock()
            return
        # This process's own successes still batched for the endpoint go with the failure,
        # first: a success between two failures must break their run. (Another process's
        # arrive with its next refresh, within a second.)
        ok = self._pending_ok.pop(endpoint, 0) if not success else 1
        ok_at = self._pending_ok_at.pop(endpoint, None) if not success else None
        try:
            await self._arun(redis, endpoint, ok=ok, fail=int(not success), ok_at=ok_at)
        except Exception:
            log.warning("circuit-breaker write failed for %s", endpoint)

    async def atry_probe(self, redis: Any, endpoint: str) -> bool:
        """For a half-open endpoint: may this request be the probe? One at a time."""
        try:
            got = await redis.set(_key(endpoint) + ":probe", "1", nx=True, ex=PROBE_LOCK_SECONDS)
        except Exception:
            return False
        return bool(got)

    # ------------------------------------------------------------------ sync (API, tasks)

    def refresh_sync(self, redis: Any) -> None:
        try:
            rows = redis.zrange(OPEN_SET, 0, -1, withscores=True)
        except Exception:
            log.warning("circuit-breaker refresh failed; keeping the last snapshot")
            return
        self._apply_snapshot(rows)

    def state_sync(self, redis: Any, endpoint: str) -> dict[str, Any]:
        raw = redis.hgetall(_key(endpoint))
        data = {k.decode(): v.decode() for k, v in raw.items()}
        state = data.get("state", "closed")
        until = float(data.get("open_until", 0) or 0)
        if state == "open" and until <= self.clock():
            state = "half_open"
        return {"state": state, "open_until": until or None}

    def reset_sync(self, redis: Any, endpoint: str) -> None:
        """Operator action: close a breaker by hand."""
        redis.delete(_key(endpoint), _key(endpoint) + ":probe")
        redis.zrem(OPEN_SET, endpoint)
        self._open_until.pop(endpoint, None)


breakers = Breakers()


class LocalStats:
    """Per-process in-flight counts and latency EWMA per candidate key (for the engine)."""

    ALPHA = 0.2

    def __init__(self) -> None:
        self.in_flight: dict[str, int] = defaultdict(int)
        self.latency_ms: dict[str, float] = {}

    def start(self, key: str) -> None:
        self.in_flight[key] += 1

    def finish(self, key: str, latency_ms: float | None) -> None:
        self.in_flight[key] -= 1
        if latency_ms is not None:
            prev = self.latency_ms.get(key)
            self.latency_ms[key] = (
                latency_ms if prev is None else prev + self.ALPHA * (latency_ms - prev)
            )

    def snapshot(
        self, open_endpoints: frozenset[str], board: HealthBoard | None = None
    ) -> engine.HealthSnapshot:
        if board is None or not board.entries:
            return engine.HealthSnapshot(
                open_endpoints=open_endpoints, latency_ms=self.latency_ms, in_flight=self.in_flight
            )
        return engine.HealthSnapshot(
            open_endpoints=open_endpoints,
            latency_ms=self.latency_ms,
            in_flight=self.in_flight,
            down_endpoints=board.down,
            health_scores=board.scores,
            unproven=board.unproven,
        )


stats = LocalStats()


def health_snapshot_sync(ctx: Any = None) -> engine.HealthSnapshot:
    """Snapshot for synchronous callers (routing API): reads breakers and the health board
    from Redis."""
    from aura.redis import sync_client

    breakers.refresh_sync(sync_client())
    board.refresh_sync(sync_client())
    return stats.snapshot(breakers.open_endpoints(), board)
