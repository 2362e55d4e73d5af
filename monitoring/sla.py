"""SLA figures per provider, model and endpoint over a window, and the 15-minute series the
anomaly detector reads. Selectors: reads only (``monitoring.sla_alerts`` acts on them).

Figures of one group (a provider slug, a model key ``<provider>/<model id>``, or an
endpoint name as the gateway's breakers name it: ``ep<id>``, ``<provider>-default``,
``ep<id>:t<tenant>``) over the window ``(until - window, until]``:

* **availability**: % of health probes that succeeded (``HealthCheck``). A provider pools
  the probes of its endpoints, a model those of the endpoints serving it (an endpoint with
  no served models listed serves every model of its provider). No probes: ``None``.
* **success rate**: % of upstream attempts that succeeded (usage records' ``attempts``;
  a record without attempts is one successful attempt: the gateway stores the list only
  when there was a retry, a fallback or a failure). Attempts that say nothing about the
  upstream are left out: refused before the call (``budget``, ``circuit_open``,
  ``overloaded``), abandoned by the client (``cancelled``), or refused for the request's own
  fault (``bad_request``, ``context_length``, ``content_filter``). A stream cut by the
  upstream after its first byte is a failed attempt. No attempts: ``None``.
* **latency p50/p95/p99**: end-to-end latency (``latency_ms``, as the client saw it) of
  successful requests that went upstream (cache misses); **TTFT p50/p95**: time to first
  token of those that streamed. ``percentile_cont``: linear interpolation between ranks.
* **requests**, **errors**: requests that went upstream (cache misses, health-check
  probes excluded), and those of them answered with an error or a cut stream; grouped by
  the answering (or, failing that, last tried) provider, model and endpoint.
* **throughput**: requests per minute and output (completion) tokens per second, averaged
  over the window.

Each figure with a target (``SLA_AVAILABILITY``, ``SLA_SUCCESS_RATE``,
``SLA_LATENCY_P95_MS``: warning, critical) has a status ``ok`` / ``warning`` /
``critical`` (``None`` without data); a row's ``status`` is its worst.

A ``Scope`` says whose traffic counts (one tenant's, or everyone's) and whose probes (the
endpoints the caller may see). Indexes: a tenant's traffic is read through
``usage_tenant_time`` (tenant, created_at); everyone's through the BRIN index
``usage_time_brin`` on created_at (append-only, so a window is a few block ranges); probes
through ``check_target_time`` (target, checked_at). Attempts are unnested with
``jsonb_array_elements`` inside those rows only.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connection
from django.db.models import Count, Q

from monitoring.models import EndpointHealth, HealthCheck

WINDOWS: dict[str, timedelta] = {
    "1h": timedelta(hours=1),
    "24h": timedelta(hours=24),
    "7d": timedelta(days=7),
}
GROUPS = ("provider", "model", "endpoint")
# Attempt error kinds that say nothing about the upstream's health (see the docstring).
EXCLUDED_ERROR_KINDS = (
    "cancelled",
    "budget",
    "circuit_open",
    "overloaded",
    "bad_request",
    "context_length",
    "content_filter",
)
# Request statuses that count as errors (cancelled: the client left; interrupted: AURA died).
ERROR_STATUSES = ("error", "cut")
# The anomaly series: 15-minute buckets, bucket 0 the current one, 96 of baseline (24 h).
BUCKET = timedelta(minutes=15)
BASELINE_BUCKETS = 96


# ------------------------------------------------------------------------------ targets


@dataclass(frozen=True, slots=True)
class SlaTarget:
    metric: str
    warning: float
    critical: float
    higher_is_better: bool

    def breach(self, value: float | None) -> tuple[str, float] | None:
        """(severity, the level crossed) when ``value`` misses the target, else None."""
        if value is None:
            return None
        if self.higher_is_better:
            if value < self.critical:
                return "critical", self.critical
            if value < self.warning:
                return "warning", self.warning
        else:
            if value > self.critical:
                return "critical", self.critical
            if value > self.warning:
                return "warning", self.warning
        return None

    def status(self, value: float | None) -> str | None:
        if value is None:
            return None
        found = self.breach(value)
        return found[0] if found else "ok"

    def as_dict(self) -> dict[str, Any]:
        return {
            "warning": self.warning,
            "critical": self.critical,
            "direction": "min" if self.higher_is_better else "max",
        }


def sla_targets() -> dict[str, SlaTarget]:
    """The targets, keyed by the figure they judge."""
    avail, success, latency = (
        settings.SLA_AVAILABILITY,
        settings.SLA_SUCCESS_RATE,
        settings.SLA_LATENCY_P95_MS,
    )
    return {
        "availability": SlaTarget("availability", float(avail[0]), float(avail[1]), True),
        "success_rate": SlaTarget("success_rate", float(success[0]), float(success[1]), True),
        "latency_p95_ms": SlaTarget("latency_p95_ms", float(latency[0]), float(latency[1]), False),
    }


_SEVERITY_RANK = {None: 0, "ok": 1, "warning": 2, "critical": 3}


def worst_status(statuses: Iterable[str | None]) -> str | None:
    return max(statuses, key=lambda s: _SEVERITY_RANK[s], default=None)


# ------------------------------------------------------------------------------ scope


@dataclass(frozen=True, slots=True)
class TargetRef:
    id: int
    name: str
    provider: str
    provider_id: int
    endpoint_id: int | None
    tenant_id: int | None


@dataclass(frozen=True, slots=True)
class Scope:
    """Whose traffic counts (``tenant_id``; None: every tenant's) and whose probes
    (``targets``). ``endpoints`` restricts the traffic to those endpoint names, and
    ``exclude_endpoints`` leaves some out (the platform's figures without tenants' own
    endpoints and keys)."""

    tenant_id: int | None
    targets: tuple[TargetRef, ...]
    endpoints: frozenset[str] | None = None
    exclude_endpoints: frozenset[str] = frozenset()


def _target_refs(qs: Any) -> tuple[TargetRef, ...]:
    return tuple(
        TargetRef(pk, name, slug, provider_id, endpoint_id, tenant_id)
        for pk, name, slug, provider_id, endpoint_id, tenant_id in qs.order_by("name").values_list(
            "id", "name", "provider__slug", "provider_id", "endpoint_id", "tenant_id"
        )
    )


def scope_for_tenant(tenant_id: int) -> Scope:
    """A tenant's view: its own traffic; probes of the platform's endpoints and its own.
    (Inactive targets too: their probes still fall inside the longer windows.)"""
    qs = EndpointHealth.objects.filter(Q(tenant__isnull=True) | Q(tenant_id=tenant_id))
    return Scope(tenant_id=tenant_id, targets=_target_refs(qs))


def scope_everything() -> Scope:
    """Operators: every tenant's traffic, every endpoint's probes."""
    return Scope(tenant_id=None, targets=_target_refs(EndpointHealth.objects.all()))


def scope_platform() -> Scope:
    """The platform's own service: every tenant's traffic on the platform's endpoints (not
    on tenants' own endpoints or keys, whose failures are theirs), the platform's probes."""
    owned = frozenset(
        EndpointHealth.objects.filter(tenant__isnull=False).values_list("name", flat=True)
    )
    platform = EndpointHealth.objects.filter(tenant__isnull=True)
    return Scope(tenant_id=None, targets=_target_refs(platform), exclude_endpoints=owned)


def scope_tenant_endpoints(tenant_id: int) -> Scope:
    """A tenant's own endpoints and keys: its traffic on them, their probes."""
    targets = _target_refs(EndpointHealth.objects.filter(tenant_id=tenant_id))
    return Scope(tenant_id=tenant_id, targets=targets, endpoints=frozenset(t.name for t in targets))


# ------------------------------------------------------------------------------ SQL

# The endpoint a request went to: the record's own ``endpoint`` (the answering, else last
# tried, endpoint's name, written by the gateway since billing/0008); for records older
# than that column, its answering attempt's (else its last tried), or, when no attempts
# were stored (one successful call), the name the gateway gives its endpoint id, with a
# tenant's own key on a shared endpoint recognised by its probed target name.
_REQUEST_ROWS = """
    SELECT u.provider AS provider,
           u.provider || '/' || u.model AS model,
           e.name AS endpoint,
           u.status, u.stream, u.latency_ms, u.ttft_ms, u.completion_tokens,
           floor(extract(epoch FROM (%(until)s - u.created_at)) / %(bucket)s)::int AS bucket
      FROM billing_usagerecord u
     CROSS JOIN LATERAL (
           SELECT CASE WHEN u.endpoint_id IS NULL THEN u.provider || '-default'
                       ELSE 'ep' || u.endpoint_id END AS base) b
     CROSS JOIN LATERAL (
           SELECT CASE
             WHEN u.endpoint <> '' THEN u.endpoint
             WHEN jsonb_array_length(u.attempts) > 0 THEN coalesce(
                 (SELECT a->>'endpoint'
                    FROM jsonb_array_elements(u.attempts) WITH ORDINALITY AS x(a, i)
                   WHERE a ? 'endpoint'
                   ORDER BY (a->>'ok')::boolean DESC, i DESC LIMIT 1), '')
             WHEN b.base || ':t' || u.tenant_id = ANY(%(keyed)s) THEN b.base || ':t' || u.tenant_id
             ELSE b.base END AS name) e
     WHERE u.created_at > %(since)s AND u.created_at <= %(until)s {tenant}
       AND u.kind <> 'health_check' AND u.provider <> '' AND u.cache_status = 'miss'
"""

# One row per upstream attempt (see the module docstring for what counts).
_ATTEMPT_ROWS = """
    SELECT a->>'provider' AS provider, a->>'model' AS model,
           coalesce(a->>'endpoint', '') AS endpoint,
           CASE WHEN u.status = 'cut' AND x.i = jsonb_array_length(u.attempts)
                     AND (a->>'ok')::boolean THEN false
                ELSE (a->>'ok')::boolean END AS ok,
           CASE WHEN u.status = 'cut' AND x.i = jsonb_array_length(u.attempts)
                     AND (a->>'ok')::boolean THEN u.error_code
                ELSE coalesce(a->>'error', '') END AS error,
           floor(extract(epoch FROM (%(until)s - u.created_at)) / %(bucket)s)::int AS bucket
      FROM billing_usagerecord u
     CROSS JOIN LATERAL jsonb_array_elements(u.attempts) WITH ORDINALITY AS x(a, i)
     WHERE u.created_at > %(since)s AND u.created_at <= %(until)s {tenant}
       AND u.kind <> 'health_check'
    UNION ALL
    SELECT r.provider, r.model, r.endpoint, true, '', r.bucket
      FROM ({requests} AND u.status = 'ok' AND u.attempts = '[]'::jsonb) r
"""


def _params(scope: Scope, since: datetime, until: datetime) -> dict[str, Any]:
    keyed = [t.name for t in scope.targets if ":t" in t.name]
    if scope.tenant_id is None:
        # Every tenant's keyed targets (a platform-wide scope may list only the platform's).
        keyed = list(
            EndpointHealth.objects.filter(name__contains=":t").values_list("name", flat=True)
        )
    return {
        "since": since,
        "until": until,
        "tenant": scope.tenant_id,
        "keyed": keyed,
        "bucket": BUCKET.total_seconds(),
        "excluded_kinds": list(EXCLUDED_ERROR_KINDS),
        "error_statuses": list(ERROR_STATUSES),
        "only": sorted(scope.endpoints or ()),
        "exclude": sorted(scope.exclude_endpoints),
    }


def _endpoint_filter(scope: Scope, column: str) -> str:
    sql = ""
    if scope.endpoints is not None:
        sql += f" AND {column} = ANY(%(only)s)"
    if scope.exclude_endpoints:
        sql += f" AND {column} <> ALL(%(exclude)s)"
    return sql


def _sql(scope: Scope) -> tuple[str, str]:
    tenant = "AND u.tenant_id = %(tenant)s" if scope.tenant_id is not None else ""
    requests = _REQUEST_ROWS.format(tenant=tenant)
    attempts = _ATTEMPT_ROWS.format(tenant=tenant, requests=requests)
    return requests, attempts


def _grouped(groups: Sequence[str], *also: str) -> str:
    """Select list of a GROUPING SETS query over ``groups``: the three group columns
    (NULL for kinds not asked for), which of them each row is grouped by (0: this one), and
    ``also``."""
    columns = [g if g in groups else "NULL" for g in GROUPS]
    flags = [f"GROUPING({g})" if g in groups else "1" for g in GROUPS]
    return ", ".join([*columns, *flags, *also])


def _sets(groups: Sequence[str], *also: str) -> str:
    return ", ".join("(" + ", ".join([g, *also]) + ")" for g in groups)


def _fetch(sql: str, params: dict[str, Any]) -> list[tuple[Any, ...]]:
    with connection.cursor() as cur:
        cur.execute(sql, params)
        return list(cur.fetchall())


# ------------------------------------------------------------------------------ model keys


def _endpoint_labels() -> dict[str, str]:
    """Endpoint name -> the endpoint row's own name (what the gateway appends to a model's
    key, ``<provider>/<model>@<endpoint>``, where several endpoints serve one model)."""
    from routing.models import ProviderEndpoint

    return {f"ep{pk}": name for pk, name in ProviderEndpoint.objects.values_list("id", "name")}


def model_key(raw: str, endpoint: str, labels: dict[str, str]) -> str:
    """The catalog key of an attempt's or record's model, without the gateway's
    ``@<endpoint>`` suffix."""
    label = labels.get(endpoint.split(":", 1)[0])
    if label and raw.endswith("@" + label):
        return raw[: -len(label) - 1]
    return raw


# ------------------------------------------------------------------------------ figures


@dataclass(slots=True)
class _Acc:
    provider: str = ""
    probes: int = 0
    probes_ok: int = 0
    attempts: int = 0
    attempts_ok: int = 0
    requests: int = 0
    errors: int = 0
    output_tokens: int = 0
    ok_requests: int = 0
    latency: Sequence[float | None] = (None, None, None)
    streams: int = 0
    ttft: Sequence[float | None] = (None, None)


def _pct(part: int, whole: int) -> float | None:
    return round(100.0 * part / whole, 3) if whole else None


def _ms(value: float | None) -> float | None:
    return round(float(value), 2) if value is not None else None


@dataclass(slots=True)
class SlaRow:
    group: str
    name: str
    provider: str
    availability: float | None
    probes: int
    success_rate: float | None
    attempts: int
    failed_attempts: int
    latency_p50_ms: float | None
    latency_p95_ms: float | None
    latency_p99_ms: float | None
    ttft_p50_ms: float | None
    ttft_p95_ms: float | None
    requests: int
    errors: int
    ok_requests: int
    streams: int
    requests_per_minute: float
    output_tokens_per_second: float
    statuses: dict[str, str | None] = field(default_factory=dict)

    @property
    def status(self) -> str | None:
        return worst_status(self.statuses.values())

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "provider": self.provider,
            "status": self.status,
            "statuses": dict(self.statuses),
            "availability": self.availability,
            "probes": self.probes,
            "success_rate": self.success_rate,
            "attempts": self.attempts,
            "failed_attempts": self.failed_attempts,
            "latency_ms": {
                "p50": self.latency_p50_ms,
                "p95": self.latency_p95_ms,
                "p99": self.latency_p99_ms,
            },
            "ttft_ms": {"p50": self.ttft_p50_ms, "p95": self.ttft_p95_ms},
            "requests": self.requests,
            "errors": self.errors,
            "successful_requests": self.ok_requests,
            "streams": self.streams,
            "requests_per_minute": self.requests_per_minute,
            "output_tokens_per_second": self.output_tokens_per_second,
        }


def _served_models(targets: Sequence[TargetRef]) -> dict[int, list[str]]:
    """Target id -> the model keys it serves (for a model's availability)."""
    from routing.models import CatalogModel, ProviderEndpoint

    by_provider: dict[int, list[str]] = defaultdict(list)
    keys: dict[int, str] = {}
    for pk, provider_id, slug, model_id in CatalogModel.objects.filter(enabled=True).values_list(
        "id", "provider_id", "provider__slug", "model_id"
    ):
        keys[pk] = f"{slug}/{model_id}"
        by_provider[provider_id].append(keys[pk])
    endpoint_ids = {t.endpoint_id for t in targets if t.endpoint_id is not None}
    served: dict[int, list[str]] = defaultdict(list)
    through = ProviderEndpoint.served_models.through
    for endpoint_id, model_pk in through.objects.filter(
        providerendpoint_id__in=endpoint_ids
    ).values_list("providerendpoint_id", "catalogmodel_id"):
        if model_pk in keys:
            served[endpoint_id].append(keys[model_pk])
    # No served models listed: every model of the provider.
    return {
        t.id: served.get(t.endpoint_id or 0) or by_provider.get(t.provider_id, []) for t in targets
    }


def _group_of(group: str, provider: str, model: str, endpoint: str) -> str:
    return {"provider": provider, "model": model, "endpoint": endpoint}[group]


def sla_figures(
    *, scope: Scope, groups: Sequence[str], window: timedelta, until: datetime
) -> dict[str, list[SlaRow]]:
    """Figures of every group of the kinds ``groups`` over ``(until - window, until]``,
    as rows sorted by name (four queries, whatever the groups)."""
    since = until - window
    params = _params(scope, since, until)
    requests_sql, attempts_sql = _sql(scope)
    labels = _endpoint_labels() if "model" in groups else {}
    accs: dict[str, dict[str, _Acc]] = {g: defaultdict(_Acc) for g in groups}

    # Probes per target (check_target_time).
    by_target = {t.id: t for t in scope.targets}
    checks = (
        HealthCheck.objects.filter(
            target_id__in=list(by_target), checked_at__gt=since, checked_at__lte=until
        )
        .values_list("target_id")
        .order_by()
    )
    probe_counts = checks.annotate(n=Count("id"), ok=Count("id", filter=Q(ok=True)))
    served = _served_models(scope.targets) if "model" in groups else {}
    for target_id, n, ok in probe_counts:
        t = by_target[target_id]
        names = {
            "provider": [t.provider],
            "endpoint": [t.name],
            "model": served.get(t.id, []),
        }
        for g in groups:
            for name in names[g]:
                acc = accs[g][name]
                acc.provider = acc.provider or t.provider
                acc.probes += n
                acc.probes_ok += ok

    ep_filter = _endpoint_filter(scope, "endpoint")
    # Attempts (success rate).
    sql = f"""
        SELECT provider, model, endpoint,
               count(*) FILTER (WHERE ok), count(*) FILTER (WHERE NOT ok)
          FROM ({attempts_sql}) t
         WHERE error <> ALL(%(excluded_kinds)s) {ep_filter}
         GROUP BY 1, 2, 3
    """  # noqa: S608 - only constant SQL fragments are interpolated
    for provider, raw, endpoint, ok, failed in _fetch(sql, params):
        for g in groups:
            name = _group_of(g, provider or "", model_key(raw or "", endpoint, labels), endpoint)
            if not name:
                continue
            acc = accs[g][name]
            acc.provider = acc.provider or provider or ""
            acc.attempts += ok + failed
            acc.attempts_ok += ok

    # Requests, errors, output tokens.
    sql = f"""
        SELECT provider, model, endpoint, count(*),
               count(*) FILTER (WHERE status = ANY(%(error_statuses)s)),
               coalesce(sum(completion_tokens), 0)
          FROM ({requests_sql}) r
         WHERE true {ep_filter}
         GROUP BY 1, 2, 3
    """  # noqa: S608 - only constant SQL fragments are interpolated
    for provider, raw, endpoint, n, errors, tokens in _fetch(sql, params):
        for g in groups:
            name = _group_of(g, provider, model_key(raw, endpoint, labels), endpoint)
            if not name:
                continue
            acc = accs[g][name]
            acc.provider = acc.provider or provider
            acc.requests += n
            acc.errors += errors
            acc.output_tokens += int(tokens)

    # Percentiles of successful requests: one pass, a grouping set per group kind.
    sql = f"""
        SELECT {_grouped(groups)}, count(*),
               percentile_cont(ARRAY[0.5, 0.95, 0.99]) WITHIN GROUP (ORDER BY latency_ms),
               count(*) FILTER (WHERE stream AND ttft_ms IS NOT NULL),
               percentile_cont(ARRAY[0.5, 0.95]) WITHIN GROUP (ORDER BY ttft_ms)
                   FILTER (WHERE stream AND ttft_ms IS NOT NULL)
          FROM ({requests_sql}) r
         WHERE status = 'ok' {ep_filter}
         GROUP BY GROUPING SETS ({_sets(groups)})
    """  # noqa: S608 - only constant SQL fragments are interpolated
    for provider, model, endpoint, gp, gm, _, n, lat, streams, ttft in _fetch(sql, params):
        g = "provider" if gp == 0 else "model" if gm == 0 else "endpoint"
        name = {"provider": provider, "model": model, "endpoint": endpoint}[g]
        if not name:
            continue
        acc = accs[g][name]
        acc.ok_requests = n
        acc.latency = lat or (None, None, None)
        acc.streams = streams
        acc.ttft = ttft or (None, None)

    targets = sla_targets()
    minutes = window.total_seconds() / 60
    out: dict[str, list[SlaRow]] = {}
    for g in groups:
        rows = []
        for name, acc in sorted(accs[g].items()):
            row = SlaRow(
                group=g,
                name=name,
                provider=acc.provider or (name if g == "provider" else ""),
                availability=_pct(acc.probes_ok, acc.probes),
                probes=acc.probes,
                success_rate=_pct(acc.attempts_ok, acc.attempts),
                attempts=acc.attempts,
                failed_attempts=acc.attempts - acc.attempts_ok,
                latency_p50_ms=_ms(acc.latency[0]),
                latency_p95_ms=_ms(acc.latency[1]),
                latency_p99_ms=_ms(acc.latency[2]),
                ttft_p50_ms=_ms(acc.ttft[0]),
                ttft_p95_ms=_ms(acc.ttft[1]),
                requests=acc.requests,
                errors=acc.errors,
                ok_requests=acc.ok_requests,
                streams=acc.streams,
                requests_per_minute=round(acc.requests / minutes, 4),
                output_tokens_per_second=round(acc.output_tokens / (minutes * 60), 4),
            )
            row.statuses = {
                metric: target.status(getattr(row, metric)) for metric, target in targets.items()
            }
            rows.append(row)
        out[g] = rows
    return out


# ------------------------------------------------------------------------------ series


@dataclass(slots=True)
class Series:
    """One group's figures per 15-minute bucket (index 0: the current interval)."""

    latency_p95_ms: list[float | None]
    ok_requests: list[int]
    error_rate: list[float | None]  # failed / counted attempts, 0..1
    attempts: list[int]


def _empty_series() -> Series:
    n = BASELINE_BUCKETS + 1
    return Series([None] * n, [0] * n, [None] * n, [0] * n)


def anomaly_series(
    *, scope: Scope, groups: Sequence[str], until: datetime
) -> dict[tuple[str, str], Series]:
    """(group kind, name) -> its p95 latency and attempt error rate per bucket over the
    current interval and the 24 hours before it (two queries)."""
    since = until - BUCKET * (BASELINE_BUCKETS + 1)
    params = _params(scope, since, until)
    requests_sql, attempts_sql = _sql(scope)
    labels = _endpoint_labels() if "model" in groups else {}
    ep_filter = _endpoint_filter(scope, "endpoint")
    series: dict[tuple[str, str], Series] = defaultdict(_empty_series)
    counts: dict[tuple[str, str], list[list[int]]] = defaultdict(
        lambda: [[0] * (BASELINE_BUCKETS + 1), [0] * (BASELINE_BUCKETS + 1)]
    )
    sql = f"""
        SELECT provider, model, endpoint, bucket,
               count(*) FILTER (WHERE ok), count(*) FILTER (WHERE NOT ok)
          FROM ({attempts_sql}) t
         WHERE error <> ALL(%(excluded_kinds)s) {ep_filter}
         GROUP BY 1, 2, 3, 4
    """  # noqa: S608 - only constant SQL fragments are interpolated
    for provider, raw, endpoint, bucket, ok, failed in _fetch(sql, params):
        if not 0 <= bucket <= BASELINE_BUCKETS:
            continue
        for g in groups:
            name = _group_of(g, provider or "", model_key(raw or "", endpoint, labels), endpoint)
            if name:
                c = counts[(g, name)]
                c[0][bucket] += ok
                c[1][bucket] += failed
    for key, (oks, fails) in counts.items():
        s = series[key]
        for b in range(BASELINE_BUCKETS + 1):
            total = oks[b] + fails[b]
            s.attempts[b] = total
            s.error_rate[b] = fails[b] / total if total else None

    sql = f"""
        SELECT {_grouped(groups, "bucket")}, count(*),
               percentile_cont(0.95) WITHIN GROUP (ORDER BY latency_ms)
          FROM ({requests_sql}) r
         WHERE status = 'ok' {ep_filter}
         GROUP BY GROUPING SETS ({_sets(groups, "bucket")})
    """  # noqa: S608 - only constant SQL fragments are interpolated
    for provider, model, endpoint, gp, gm, _, bucket, n, p95 in _fetch(sql, params):
        if not 0 <= bucket <= BASELINE_BUCKETS:
            continue
        g = "provider" if gp == 0 else "model" if gm == 0 else "endpoint"
        name = {"provider": provider, "model": model, "endpoint": endpoint}[g]
        if name:
            s = series[(g, name)]
            s.ok_requests[bucket] = n
            s.latency_p95_ms[bucket] = float(p95) if p95 is not None else None
    return dict(series)
