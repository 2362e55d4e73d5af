"""GET /metrics: every process's instruments (monitoring.metrics) in Prometheus' text format,
plus what is read only when Prometheus asks, never on a request's path:

* ``aura_cache_hit_rate``: hits / lookups, from the cache counters just collected;
* ``aura_circuit_breaker_open{endpoint}``: 1 while an endpoint's breaker is not closed (open
  or half-open), from the breakers' shared open set in Redis; 0 for the other endpoints the
  health checker reports;
* ``aura_provider_health_score`` / ``aura_provider_health_status``: the health checker's
  per-endpoint state, the Redis hash ``aura:health:v1`` (monitoring.state; field: endpoint,
  value: JSON ``{"status", "score", "provider", "expires"}``; past ``expires`` the checker
  has stopped, and the status is unknown, as the gateway reads it);
* ``aura_metrics_source_up{source}``: 0 when one of those Redis reads failed.

A scrape always answers: a missing hash, garbage in it or Redis down leave those families
empty (and the source at 0), never a 500. With ``METRICS_TOKEN`` set, a scrape must send
``Authorization: Bearer <token>``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import math
import time
from collections.abc import Iterable, Iterator
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe
from prometheus_client import REGISTRY
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import choose_encoder
from prometheus_client.multiprocess import MultiProcessCollector

from aura.redis import sync_client
from monitoring import metrics
from monitoring.state import BOARD_KEY as HEALTH_KEY
from routing.gateway.breaker import OPEN_SET

log = logging.getLogger(__name__)

HEALTH_STATUSES = ("healthy", "degraded", "down", "unknown")


def cache_hit_rate(families: Iterable[Metric]) -> GaugeMetricFamily:
    hits = lookups = 0.0
    for family in families:
        for sample in family.samples:
            if sample.name == "aura_cache_requests_total":
                lookups += sample.value
                if sample.labels.get("result") != "miss":
                    hits += sample.value
    gauge = GaugeMetricFamily(
        "aura_cache_hit_rate",
        "Share of cache lookups answered from the cache (exact or semantic), since the "
        "counters started; no sample before the first lookup.",
    )
    if lookups:
        gauge.add_metric([], hits / lookups)
    return gauge


def _text(raw: Any) -> str:
    return raw.decode(errors="replace") if isinstance(raw, bytes) else str(raw)


def health_entries(rows: dict[Any, Any], now: float) -> list[tuple[str, str, str, float | None]]:
    """(endpoint, provider, status, score or None) per hash field; an entry that is not
    the expected JSON object, or has expired, says status unknown (and no score)."""
    entries: list[tuple[str, str, str, float | None]] = []
    for field, raw in rows.items():
        endpoint = _text(field)
        try:
            data = json.loads(raw)
        except (ValueError, TypeError):
            data = None
        if not isinstance(data, dict):
            entries.append((endpoint, "", "unknown", None))
            continue
        status = data.get("status")
        provider = data.get("provider")
        score = data.get("score")
        if (
            isinstance(score, bool)
            or not isinstance(score, int | float)
            or not math.isfinite(score)
        ):
            score = None
        expires = data.get("expires")
        if isinstance(expires, int | float) and expires < now:
            status, score = "unknown", None
        entries.append(
            (
                endpoint,
                provider if isinstance(provider, str) else "",
                status if status in HEALTH_STATUSES else "unknown",
                None if score is None else min(1.0, max(0.0, float(score))),
            )
        )
    return entries


def redis_families(redis: Any) -> Iterator[Metric]:
    score = GaugeMetricFamily(
        "aura_provider_health_score",
        "Health checker's score of a provider endpoint (0: down .. 1: healthy).",
        labels=["provider", "endpoint"],
    )
    status = GaugeMetricFamily(
        "aura_provider_health_status",
        "1 for the health checker's current status of a provider endpoint, 0 for the others.",
        labels=["provider", "endpoint", "status"],
    )
    breaker = GaugeMetricFamily(
        "aura_circuit_breaker_open",
        "1 while the endpoint's circuit breaker is not closed (open or half-open), else 0.",
        labels=["endpoint"],
    )
    up = GaugeMetricFamily(
        "aura_metrics_source_up",
        "1 when the scrape could read the source (health, breakers) from Redis, else 0.",
        labels=["source"],
    )
    health_rows: Any = None
    open_rows: Any = None
    try:
        pipe = redis.pipeline(transaction=False)
        pipe.hgetall(HEALTH_KEY)
        pipe.zrange(OPEN_SET, 0, -1, withscores=True)
        # raise_on_error=False: a key of the wrong type fails its own read, not both.
        health_rows, open_rows = pipe.execute(raise_on_error=False)
    except Exception as exc:
        log.warning("metrics: Redis unreadable at scrape time (%s)", type(exc).__name__)
    known: dict[str, None] = {}
    health_ok = isinstance(health_rows, dict)
    if health_ok:
        for endpoint, provider, current, value in health_entries(health_rows, time.time()):
            known[endpoint] = None
            if value is not None:
                score.add_metric([provider, endpoint], value)
            for name in HEALTH_STATUSES:
                status.add_metric([provider, endpoint, name], 1.0 if name == current else 0.0)
    breakers_ok = isinstance(open_rows, list)
    if breakers_ok:
        open_now = {_text(member) for member, _until in open_rows}
        for endpoint in sorted(open_now | set(known)):
            breaker.add_metric([endpoint], 1.0 if endpoint in open_now else 0.0)
    up.add_metric(["health"], 1.0 if health_ok else 0.0)
    up.add_metric(["breakers"], 1.0 if breakers_ok else 0.0)
    yield from (score, status, breaker, up)


class Exposition:
    """What one scrape shows (a collector for prometheus_client's encoders)."""

    def collect(self) -> Iterator[Metric]:
        try:
            metrics.flush()  # what this process counted since its last flush
            metrics.usage_writer_backlog_sample()  # and its backlog, now
        except Exception:
            log.warning("metrics: this process's counts could not be written", exc_info=True)
        if metrics.MULTIPROC_DIR:
            families = list(MultiProcessCollector(None, metrics.MULTIPROC_DIR).collect())
            # The files hold only series that were written: name the others too (no
            # samples), as a single process's registry does, so every family is listed.
            seen = {family.name for family in families}
            for instrument in metrics.INSTRUMENTS:
                families.extend(f for f in instrument.describe() if f.name not in seen)
        else:
            families = list(REGISTRY.collect())
        yield from families
        yield cache_hit_rate(families)
        yield from redis_families(sync_client())


def _authorized(request: HttpRequest, token: str) -> bool:
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer":
        return False
    # Digests, so that the comparison's time says nothing about the token, not even its length.
    return hmac.compare_digest(
        hashlib.sha256(given.strip().encode()).digest(), hashlib.sha256(token.encode()).digest()
    )


@require_safe
@never_cache
def metrics_view(request: HttpRequest) -> HttpResponse:
    token = settings.METRICS_TOKEN
    if token and not _authorized(request, token):
        response = HttpResponse(
            "Send the metrics token: Authorization: Bearer <METRICS_TOKEN>.\n",
            status=401,
            content_type="text/plain; charset=utf-8",
        )
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    encoder, content_type = choose_encoder(request.headers.get("accept", ""))
    return HttpResponse(encoder(Exposition()), content_type=content_type)
