"""The health board: every endpoint's health state, shared by all processes through Redis.

The probe round (monitoring.health) writes one Redis hash, field = endpoint name (the
circuit breaker's name, e.g. ``ep3``, ``ollama-default``, ``ep3:t7``), value = JSON::

    {"status": "healthy|degraded|down|unknown", "score": 0..1, "provider": "<slug>",
     "ever_healthy": true, "expires": <unix time>}

Readers (the gateway, the routing API, /metrics) keep a parsed copy refreshed at most
once per ``REFRESH_INTERVAL``: a warm request reads memory only. An entry past its
``expires`` (the checker stopped: no worker, no beat) counts as unknown, so a stale
"down" never keeps an endpoint out of routing for good.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)

BOARD_KEY = "aura:health:v1"
REFRESH_INTERVAL = 1.0
STATUSES = ("unknown", "healthy", "degraded", "down")


@dataclass(frozen=True, slots=True)
class BoardEntry:
    status: str
    score: float
    provider: str
    ever_healthy: bool
    expires: float

    def as_json(self) -> str:
        return json.dumps(
            {
                "status": self.status,
                "score": round(self.score, 4),
                "provider": self.provider,
                "ever_healthy": self.ever_healthy,
                "expires": round(self.expires, 1),
            }
        )


def parse_board(raw: Mapping[Any, Any]) -> dict[str, BoardEntry]:
    """Entries of a HGETALL reply; malformed ones are skipped (and logged once each)."""
    entries: dict[str, BoardEntry] = {}
    for name, value in raw.items():
        key = name.decode() if isinstance(name, bytes) else str(name)
        try:
            data = json.loads(value)
            status = str(data["status"])
            if status not in STATUSES:
                raise ValueError(f"unknown status {status!r}")
            score = min(1.0, max(0.0, float(data["score"])))
            entries[key] = BoardEntry(
                status=status,
                score=score,
                provider=str(data.get("provider", "")),
                ever_healthy=bool(data.get("ever_healthy", False)),
                expires=float(data.get("expires", 0)),
            )
        except (ValueError, TypeError, KeyError) as exc:
            log.warning("health board entry %r is malformed (%s); ignored", key, exc)
    return entries


def board_write(redis: Any, entries: Mapping[str, BoardEntry], *, keep: set[str]) -> None:
    """Publish ``entries`` and drop fields of endpoints no longer probed (not in ``keep``)."""
    pipe = redis.pipeline()
    if entries:
        pipe.hset(BOARD_KEY, mapping={k: e.as_json() for k, e in entries.items()})
    for field in redis.hkeys(BOARD_KEY):
        name = field.decode() if isinstance(field, bytes) else str(field)
        if name not in keep:
            pipe.hdel(BOARD_KEY, name)
    pipe.execute()


class HealthBoard:
    """A process's parsed copy of the board, with what the engine needs precomputed."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self.entries: dict[str, BoardEntry] = {}
        self.down: frozenset[str] = frozenset()
        self.scores: dict[str, float] = {}
        self.unproven: frozenset[str] = frozenset()
        self._refreshed_at = float("-inf")

    def needs_refresh(self) -> bool:
        return self.clock() - self._refreshed_at >= REFRESH_INTERVAL

    def apply(self, raw: Mapping[Any, Any]) -> None:
        now = self.clock()
        self._refreshed_at = now
        live = {k: e for k, e in parse_board(raw).items() if e.expires > now}
        self.entries = live
        self.down = frozenset(k for k, e in live.items() if e.status == "down")
        self.scores = {k: e.score for k, e in live.items() if e.score < 1.0}
        self.unproven = frozenset(k for k, e in live.items() if not e.ever_healthy)

    async def arefresh(self, redis: Any) -> None:
        self._refreshed_at = self.clock()
        try:
            raw = await redis.hgetall(BOARD_KEY)
        except Exception:
            log.warning("health board refresh failed; keeping the last copy")
            return
        self.apply(raw)

    def refresh_sync(self, redis: Any) -> None:
        self._refreshed_at = self.clock()
        try:
            raw = redis.hgetall(BOARD_KEY)
        except Exception:
            log.warning("health board refresh failed; keeping the last copy")
            return
        self.apply(raw)


board = HealthBoard()
