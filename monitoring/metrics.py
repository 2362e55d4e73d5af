"""Prometheus instruments, the one call per request that feeds them, and the plumbing that
keeps them right with several processes (uvicorn workers, Celery pool children).

Multiprocess mode: when ``PROMETHEUS_MULTIPROC_DIR`` is set (``make run`` and compose set
it), every process writes its samples to memory-mapped files in that folder and ``/metrics``
(monitoring.scrape) sums them, so a scrape that lands on any worker sees every worker. Files
are named after a process identifier of *host name and pid*, not the bare pid: compose's
web and worker containers share the folder and both number their processes from 1. Gauges
say how to combine processes (``livesum``: only live processes count); a process that stops
cleanly removes its live-gauge files (ASGI shutdown, Celery's worker_process_shutdown), and
a gateway process starting sweeps those of dead processes of its own host. Counters of
dead processes stay: totals must not drop when a worker is replaced. Without the variable:
one ordinary in-process registry.

Hot path: ``request_observed`` is called once per request by the gateway's accounting,
with the usage record it already built. It only adds to pending sums in dicts (one lock, a
few key tuples; no Redis, no formatting, no file write); ``flush`` writes them to the
instruments once a second, at a scrape, and at shutdown, so a process killed outright loses
at most its last second of counts. Figures: ``bench/metrics_cost.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import glob
import logging
import math
import os
import socket
import threading
from bisect import bisect_left
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from django.conf import settings
from prometheus_client import Counter, Gauge, Histogram, disable_created_metrics, values
from prometheus_client.multiprocess import mark_process_dead

from aura import lifecycle

log = logging.getLogger(__name__)

MULTIPROC_DIR = os.environ.get("PROMETHEUS_MULTIPROC_DIR", "")
# `_` separates the parts of a sample file's name (gauge_livesum_<identifier>.db).
_HOST = socket.gethostname().replace("_", "-").replace("/", "-") or "host"
_identifier = f"{_HOST}-{os.getpid()}"


def process_identifier() -> str:
    """This process's name in the multiprocess folder; asked on every sample write, so it
    is a cached string, renewed in a forked child (Celery's prefork pool)."""
    return _identifier


def _renew_identifier() -> None:
    global _identifier
    _identifier = f"{_HOST}-{os.getpid()}"


os.register_at_fork(after_in_child=_renew_identifier)

if MULTIPROC_DIR:
    os.makedirs(MULTIPROC_DIR, exist_ok=True)
    # Must happen before the first instrument below is built (each reads ValueClass).
    values.ValueClass = values.MultiProcessValue(process_identifier)
# A `_created` series per label set doubles the series count for no dashboard's benefit.
disable_created_metrics()

TENANT_LABELS: bool = bool(getattr(settings, "METRICS_TENANT_LABELS", False))

# Seconds: an LLM call takes from milliseconds (cache, embeddings) to minutes (long output).
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)
# The engine decides in tens of microseconds; a slow decision is a millisecond or more.
DECISION_BUCKETS = (0.00002, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05)

REQUESTS = Counter(
    "aura_requests_total",
    "Requests that authenticated, by kind, answering (or last tried) provider and model, "
    "usage-record status (ok, error, cut, cancelled) and HTTP code.",
    ["kind", "provider", "model", "status", "code"],
)
REQUEST_DURATION = Histogram(
    "aura_request_duration_seconds",
    "Time from the request's arrival to its usage record (for streams: to the end).",
    ["provider", "model", "status"],
    buckets=LATENCY_BUCKETS,
)
DECISIONS = Counter(
    "aura_router_decisions_total",
    "What answered each request: primary, fallback, cache_exact, cache_semantic, failed "
    "(every step failed), cancelled, or refused:<family> (not sent to any provider).",
    ["provider", "reason"],
)
DECISION_SECONDS = Histogram(
    "aura_router_decision_seconds",
    "Time the routing engine took to plan a request.",
    buckets=DECISION_BUCKETS,
)
CACHE_REQUESTS = Counter(
    "aura_cache_requests_total",
    "Requests of tenants with the response cache on, by result (exact, semantic, miss).",
    ["result"],
)
CACHE_SAVINGS = Counter(
    "aura_cache_savings_usd_total", "What cache hits would have cost (USD, original call)."
)
COST = Counter(
    "aura_cost_usd_total",
    "Provider cost of requests (USD), by provider and model"
    + (" and tenant id." if TENANT_LABELS else "."),
    ["provider", "model", "tenant"] if TENANT_LABELS else ["provider", "model"],
)
PROVIDER_DURATION = Histogram(
    "aura_provider_request_duration_seconds",
    "Duration of each upstream call (every attempt: retries, fallbacks, hedged calls).",
    ["provider"],
    buckets=LATENCY_BUCKETS,
)
PROVIDER_ERRORS = Counter(
    "aura_provider_errors_total",
    "Failed upstream calls by provider and kind (server, timeout, connection, rate_limit, "
    "auth, malformed, bad_request, ...), streams cut after their first byte included.",
    ["provider", "kind"],
)
BUDGET_REFUSALS = Counter(
    "aura_budget_refusals_total", "Requests refused because a block budget could not fit them."
)
RATE_LIMIT_REFUSALS = Counter(
    "aura_rate_limit_refusals_total", "Requests refused by a tenant or key RPM/TPM limit."
)
USAGE_WRITER_BACKLOG = Gauge(
    "aura_usage_writer_backlog",
    "Usage records journaled but not yet in Postgres (all gateway processes).",
    multiprocess_mode="livesum",
)
CELERY_TASKS = Counter(
    "aura_celery_tasks_total",
    "Celery tasks finished, by task name and state (success, failure, retry).",
    ["task", "state"],
)


INSTRUMENTS = (
    REQUESTS,
    REQUEST_DURATION,
    DECISIONS,
    DECISION_SECONDS,
    CACHE_REQUESTS,
    CACHE_SAVINGS,
    COST,
    PROVIDER_DURATION,
    PROVIDER_ERRORS,
    BUDGET_REFUSALS,
    RATE_LIMIT_REFUSALS,
    USAGE_WRITER_BACKLOG,
    CELERY_TASKS,
)


class AttemptLike(Protocol):
    """What the gateway's execution.Attempt carries that metrics read."""

    provider: str
    ok: bool
    kind: str | None
    latency_ms: float


NONE = "none"
CACHE_REASONS = {"exact": "cache_exact", "semantic": "cache_semantic"}
# Attempts that called nobody (or were cut short by the client): no duration, no error.
NOT_CALLS = frozenset({"circuit_open", "budget", "cancelled", "overloaded"})
# Refused by the gateway's load shedding: the plan's endpoints were full, nothing was called.
SHED_CODES = frozenset({"queue_full", "server_overloaded"})
# A refused request's reason, from its error code (else from its HTTP status): a fixed set,
# since codes can come from elsewhere.
REFUSAL_FAMILIES = {
    "budget_exceeded": "refused:budget",
    "budget_unavailable": "refused:budget_unavailable",
    "max_cost_exceeded": "refused:max_cost",
    "rate_limit_exceeded": "refused:rate_limit",
    "model_not_found": "refused:not_found",
    "model_not_allowed": "refused:policy",
    "context_length_exceeded": "refused:too_large",
    "body_too_large": "refused:too_large",
    "unsupported_request": "refused:unsupported",
    "no_model_available": "refused:no_model",
    "internal_error": "refused:internal",
    "queue_full": "refused:overloaded",
    "server_overloaded": "refused:overloaded",
}


def refusal_reason(code: str, http_status: int | None) -> str:
    found = REFUSAL_FAMILIES.get(code)
    if found is not None:
        return found
    if http_status == 400:
        return "refused:invalid_request"
    if http_status is not None and http_status >= 500:
        return "refused:server_error"
    return "refused:other"


# Pending increments, written to the instruments by flush(): (counter, *label values) ->
# amount, and (histogram, *label values) -> [sum, count per bucket...]. In multiprocess mode
# every instrument write is a locked write to a memory-mapped file (several µs); adding to a
# dict here costs a tenth of that, and flush() writes each touched series once a second.
_lock = threading.Lock()
_counts: dict[tuple[Any, ...], float] = {}
_observed: dict[tuple[Any, ...], list[float]] = {}
_BOUNDS: dict[Any, list[float]] = {
    h: [*buckets, math.inf]
    for h, buckets in (
        (REQUEST_DURATION, LATENCY_BUCKETS),
        (DECISION_SECONDS, DECISION_BUCKETS),
        (PROVIDER_DURATION, LATENCY_BUCKETS),
    )
}
FLUSH_INTERVAL = 1.0


def request_observed(
    record: Mapping[str, Any],
    attempts: Sequence[AttemptLike],
    *,
    cache_consulted: bool,
    decision_seconds: float | None,
) -> None:
    """Count one finished request from its usage record (billing.usage's fields) and its
    attempts. Never raises: metrics must not fail a request."""
    try:
        _observe(record, attempts, cache_consulted, decision_seconds)
    except Exception:
        log.exception("metrics: a request could not be counted")


def _observe(
    record: Mapping[str, Any],
    attempts: Sequence[AttemptLike],
    cache_consulted: bool,
    decision_seconds: float | None,
) -> None:
    status: str = record["status"]
    http_status = record["http_status"]
    error_code: str = record["error_code"]
    cache_status: str = record["cache_status"]
    # Without a provider the model is what the client asked for: unbounded, so not a label.
    reached = bool(record["provider"])
    provider: str = record["provider"] if reached else NONE
    model: str = record["model"] if reached else NONE
    if cache_status != "miss":
        reason = CACHE_REASONS.get(cache_status, "cache_other")
    elif status == "cancelled":
        reason = "cancelled"
    elif not reached or error_code in SHED_CODES:
        reason = refusal_reason(error_code, http_status)
    elif status == "error":
        reason = "failed"
    else:
        reason = "fallback" if record["fallbacks"] else "primary"
    cost = record["cost_usd"]
    savings = record["cache_savings_usd"] if cache_consulted else 0
    with _lock:
        counts = _counts
        key: tuple[Any, ...] = (REQUESTS, record["kind"], provider, model, status, http_status)
        counts[key] = counts.get(key, 0) + 1
        _add((REQUEST_DURATION, provider, model, status), record["latency_ms"] / 1000)
        key = (DECISIONS, provider, reason)
        counts[key] = counts.get(key, 0) + 1
        if decision_seconds is not None:
            _add((DECISION_SECONDS,), decision_seconds)
        if cache_consulted:
            key = (CACHE_REQUESTS, cache_status)
            counts[key] = counts.get(key, 0) + 1
            if savings:
                key = (CACHE_SAVINGS,)
                counts[key] = counts.get(key, 0) + float(savings)
        if cost:
            key = (
                (COST, provider, model, record["tenant_id"])
                if TENANT_LABELS
                else (COST, provider, model)
            )
            counts[key] = counts.get(key, 0) + float(cost)
        for attempt in attempts:
            if attempt.ok:
                _add((PROVIDER_DURATION, attempt.provider), attempt.latency_ms / 1000)
            elif attempt.kind not in NOT_CALLS:
                _add((PROVIDER_DURATION, attempt.provider), attempt.latency_ms / 1000)
                key = (PROVIDER_ERRORS, attempt.provider, attempt.kind or "unknown")
                counts[key] = counts.get(key, 0) + 1
        if status == "cut":  # the stream failed after its first byte: its code is the kind
            key = (PROVIDER_ERRORS, provider, error_code or "unknown")
            counts[key] = counts.get(key, 0) + 1
        elif error_code == "budget_exceeded":
            counts[(BUDGET_REFUSALS,)] = counts.get((BUDGET_REFUSALS,), 0) + 1
        elif error_code == "rate_limit_exceeded":
            counts[(RATE_LIMIT_REFUSALS,)] = counts.get((RATE_LIMIT_REFUSALS,), 0) + 1


def _add(key: tuple[Any, ...], value: float) -> None:
    """One histogram observation into the pending buffers (the caller holds _lock)."""
    bounds = _BOUNDS[key[0]]
    pending = _observed.get(key)
    if pending is None:
        pending = _observed[key] = [0.0] * (len(bounds) + 1)
    pending[0] += value
    pending[bisect_left(bounds, value) + 1] += 1  # Prometheus buckets: value <= bound


def _label(value: Any) -> str:
    return NONE if value is None else str(value)


_children: dict[tuple[Any, ...], Any] = {}


def _child(key: tuple[Any, ...]) -> Any:
    child = _children.get(key)
    if child is None:
        metric, *labels = key
        child = metric.labels(*(_label(v) for v in labels)) if labels else metric
        _children[key] = child
    return child


def flush() -> None:
    """Write the pending increments to the instruments (files, in multiprocess mode).
    Gateway processes do it every FLUSH_INTERVAL, a scrape for its own process, and a
    process stopping for itself."""
    global _counts, _observed
    with _lock:
        counts, _counts = _counts, {}
        observed, _observed = _observed, {}
    for key, amount in counts.items():
        _child(key).inc(amount)
    for key, pending in observed.items():
        child = _child(key)
        # prometheus_client has no public call that adds n observations to a bucket.
        child._sum.inc(pending[0])
        for bucket, n in zip(child._buckets, pending[1:], strict=True):
            if n:
                bucket.inc(n)


# --------------------------------------------------------------------------- backlog


def usage_writer_backlog_sample() -> None:
    """Publish this process's usage-writer backlog (at scrape time, and every
    FLUSH_INTERVAL in gateway processes in multiprocess mode)."""
    from billing.usage import writer  # billing's writer; imported here, not for every user

    USAGE_WRITER_BACKLOG.set(writer.backlog)


_flusher: asyncio.Task[None] | None = None


async def _flush_forever() -> None:
    while True:
        await asyncio.sleep(FLUSH_INTERVAL)
        try:
            flush()
            usage_writer_backlog_sample()
        except Exception:
            log.exception("metrics: flush failed")


# --------------------------------------------------------------------------- processes


def sweep_dead_processes(directory: str = MULTIPROC_DIR, host: str = _HOST) -> list[str]:
    """Remove the live-gauge files of processes of this host that are gone (killed before
    they could do it themselves); returns their identifiers. Other hosts' files are theirs."""
    removed = []
    for path in glob.glob(os.path.join(directory, "gauge_live*_*.db")):
        ident = os.path.basename(path)[: -len(".db")].rsplit("_", 1)[-1]
        ident_host, _, pid = ident.rpartition("-")
        if ident_host != host or not pid.isdigit() or _alive(int(pid)):
            continue
        mark_process_dead(ident, directory)
        removed.append(ident)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def process_stopped() -> None:
    """This process is stopping: its live gauges must stop counting."""
    if MULTIPROC_DIR:
        mark_process_dead(process_identifier(), MULTIPROC_DIR)


@lifecycle.on_startup
async def _on_startup() -> None:
    """In multiprocess mode a scrape reaches one process: the others write what they
    counted every FLUSH_INTERVAL (in single-process mode the scrape flushes itself)."""
    global _flusher
    if not MULTIPROC_DIR:
        return
    try:
        sweep_dead_processes()
    except OSError:  # metrics must not keep a gateway process from starting
        log.exception("metrics: could not sweep %s", MULTIPROC_DIR)
    _flusher = asyncio.get_running_loop().create_task(_flush_forever(), name="aura-metrics")


@lifecycle.on_shutdown
async def _on_shutdown() -> None:
    global _flusher
    if _flusher is not None:
        _flusher.cancel()
        with contextlib.suppress(BaseException):
            await _flusher
        _flusher = None
    # Guarded: the shutdown hooks after this one (closing shared clients) must still run.
    try:
        flush()
    except Exception:
        log.exception("metrics: last flush failed")
    try:
        process_stopped()
    except OSError:
        log.exception("metrics: could not remove this process's live gauges")


# --------------------------------------------------------------------------- celery


def _celery_task_done(state: str) -> Any:
    def receiver(sender: Any = None, **_: Any) -> None:
        name = getattr(sender, "name", None) or "unknown"
        CELERY_TASKS.labels(name, state).inc()

    return receiver


def _connect_celery_signals() -> None:
    from celery import signals

    for signal, state in (
        (signals.task_success, "success"),
        (signals.task_failure, "failure"),
        (signals.task_retry, "retry"),
    ):
        signal.connect(_celery_task_done(state), weak=False, dispatch_uid=f"aura-metrics-{state}")
    # A pool child stopping (prefork), and the worker itself (solo/threads pools write here).
    for signal, uid in (
        (signals.worker_process_shutdown, "aura-metrics-process-shutdown"),
        (signals.worker_shutdown, "aura-metrics-worker-shutdown"),
    ):
        signal.connect(lambda **_: process_stopped(), weak=False, dispatch_uid=uid)


_connect_celery_signals()
