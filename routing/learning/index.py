"""Each process's copy of the tenants' fitted predictors, refreshed from Redis.

The warm path makes no database query and at most one Redis GET per tenant a second (the
version); a new predictor is fetched and decoded off the event loop. A tenant with no
predictor costs one GET a second and nothing else.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from asgiref.sync import sync_to_async

from aura.redis import async_client, sync_client
from routing.learning import store
from routing.learning.predict import Predictor

log = logging.getLogger(__name__)
CHECK_INTERVAL = 1.0


def _as_bytes(value: bytes | str | None) -> bytes | None:
    return value.encode() if isinstance(value, str) else value


@dataclass(slots=True)
class _Entry:
    version: bytes | None
    predictor: Predictor | None
    checked_at: float


class PredictorCache:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._entries: dict[int, _Entry] = {}

    def clear(self) -> None:
        self._entries.clear()

    def _cached(self, tenant_id: int) -> _Entry | None:
        entry = self._entries.get(tenant_id)
        if entry is not None and self.clock() - entry.checked_at < CHECK_INTERVAL:
            return entry
        return None

    def _keep(self, tenant_id: int, version: bytes | None, raw: bytes | None) -> Predictor | None:
        predictor = store.loads(raw) if raw else None
        self._entries[tenant_id] = _Entry(version, predictor, self.clock())
        return predictor

    def _unchanged(self, tenant_id: int, version: bytes | None) -> bool:
        old = self._entries.get(tenant_id)
        if old is not None and version == old.version:
            old.checked_at = self.clock()
            return True
        return False

    def _stale(self, tenant_id: int) -> Predictor | None:
        # Redis down or a bad blob: keep what we had (or route on the catalog).
        log.warning("learned predictor refresh failed for tenant %s", tenant_id)
        old = self._entries.get(tenant_id)
        if old is None:
            return None
        old.checked_at = self.clock()
        return old.predictor

    async def aget(self, tenant_id: int) -> Predictor | None:
        entry = self._cached(tenant_id)
        if entry is not None:
            return entry.predictor
        try:
            client = async_client()
            version = _as_bytes(await client.get(store.version_key(tenant_id)))
            if self._unchanged(tenant_id, version):
                return self._entries[tenant_id].predictor
            raw = _as_bytes(await client.get(store.model_key(tenant_id))) if version else None
            return await sync_to_async(self._keep)(tenant_id, version, raw)
        except Exception:
            return self._stale(tenant_id)

    def get(self, tenant_id: int) -> Predictor | None:
        entry = self._cached(tenant_id)
        if entry is not None:
            return entry.predictor
        try:
            client = sync_client()
            version = _as_bytes(client.get(store.version_key(tenant_id)))
            if self._unchanged(tenant_id, version):
                return self._entries[tenant_id].predictor
            raw = _as_bytes(client.get(store.model_key(tenant_id))) if version else None
            return self._keep(tenant_id, version, raw)
        except Exception:
            return self._stale(tenant_id)


predictors = PredictorCache()
