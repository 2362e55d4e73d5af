"""SLA and anomaly alerts: judge the figures (``monitoring.sla``), raise and resolve alerts.

``sla_evaluate`` runs every minute (task ``evaluate_sla``, before escalation and
notification) over two kinds of scope:

* **the platform** (operators' alerts, ``tenant`` empty): every provider, model and
  endpoint, from every tenant's traffic on the platform's endpoints and the platform's
  probes (a tenant's own endpoint or key failing is that tenant's business, not an
  operator's page);
* **each tenant with endpoints or keys of its own** (that tenant's alerts): each of those
  endpoints, from the tenant's traffic and their probes.

SLA figures are judged on the **last hour** (``EVALUATION_WINDOW``): long enough for a
sample, short enough that an alert clears within the hour after the fault does. A figure
missing its target raises ``kind="sla"`` (dedupe key ``sla:<metric>:<group>:<name>``,
severity warning or critical from the target); back within target resolves it. Anomalies
(``kind="anomaly"``, ``anomaly:<metric>:<group>:<name>``, warning): p95 latency or error
rate of the last 15 minutes beyond 2 standard deviations of the 24 hours before, judged by
``monitoring.anomaly``.

Small samples give no verdict (``MIN_SAMPLE``, and the anomaly rules' minimums): the alert
stays as it was. One that no round could judge for ``STALE_AFTER`` (its traffic moved
away, its endpoint went) is resolved, so nothing stays open, reminding, forever.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.utils import timezone

from monitoring.alerts import alert_raise, alert_resolve
from monitoring.anomaly import AnomalyRule, detect_anomaly
from monitoring.models import Alert, EndpointHealth
from monitoring.sla import (
    BUCKET,
    GROUPS,
    WINDOWS,
    Scope,
    SlaRow,
    SlaTarget,
    anomaly_series,
    scope_platform,
    scope_tenant_endpoints,
    sla_figures,
    sla_targets,
)
from tenants.models import Tenant

log = logging.getLogger(__name__)

EVALUATION_WINDOW = WINDOWS["1h"]
STALE_AFTER = EVALUATION_WINDOW
# Least sample, per figure, that may raise or resolve an SLA alert: probes (every 30 s
# by default: 120 an hour), counted attempts, successful requests.
MIN_SAMPLE: dict[str, tuple[str, int]] = {
    "availability": ("probes", 10),
    "success_rate": ("attempts", 20),
    "latency_p95_ms": ("ok_requests", 20),
}
# p95 latency: at least 20 requests now, 8 baseline buckets of 5+; a steady baseline still
# lets latency vary by 10 % (or 50 ms) per sigma.
LATENCY_RULE = AnomalyRule(
    min_count=20, min_bucket_count=5, min_buckets=8, rel_sigma=0.1, min_sigma=50.0
)
# Error rate (0..1): a clean baseline lets it reach 2 points per sigma (so 4 % is the
# least anomaly).
ERROR_RULE = AnomalyRule(min_count=20, min_bucket_count=10, min_buckets=8, min_sigma=0.02)
SLA_KINDS = ("sla", "anomaly")

_LABELS = {
    "availability": "availability",
    "success_rate": "success rate",
    "latency_p95_ms": "p95 latency",
    "error_rate": "error rate",
}


@dataclass(slots=True)
class EvaluationReport:
    judged: int = 0
    raised: int = 0
    resolved: int = 0

    def as_dict(self) -> dict[str, int]:
        return {"judged": self.judged, "raised": self.raised, "resolved": self.resolved}


def _fmt(metric: str, value: float) -> str:
    if metric.endswith("_ms"):
        return f"{value:.0f} ms"
    if metric == "error_rate":
        return f"{100 * value:.1f}%"
    return f"{value:.2f}%"


def _sla_message(row: SlaRow, metric: str, target: SlaTarget, value: float) -> str:
    sample_attr, _ = MIN_SAMPLE[metric]
    sample = getattr(row, sample_attr)
    unit = {"probes": "probes", "attempts": "attempts", "ok_requests": "requests"}[sample_attr]
    beyond = "below" if target.higher_is_better else "above"
    return (
        f"{row.group} {row.name}: {_LABELS[metric]} {_fmt(metric, value)} over the last hour "
        f"({sample} {unit}); target {_fmt(metric, target.warning)}, critical {beyond} "
        f"{_fmt(metric, target.critical)}"
    )


class _Judge:
    """One evaluation round: remembers what it judged and which alerts were open."""

    def __init__(self, now: datetime) -> None:
        self.now = now
        self.report = EvaluationReport()
        self.judged: set[str] = set()
        self.open = set(
            Alert.objects.filter(state=Alert.State.OPEN, kind__in=SLA_KINDS).values_list(
                "dedupe_key", flat=True
            )
        )
        self.targets = {t.name: t for t in EndpointHealth.objects.all()}

    def raise_(self, key: str, *, kind: str, group: str, name: str, **fields: Any) -> None:
        self.judged.add(key)
        self.report.judged += 1
        _, created = alert_raise(
            dedupe_key=key,
            kind=kind,
            subject=f"{group} {name}",
            target=self.targets.get(name) if group == "endpoint" else None,
            now=self.now,
            **fields,
        )
        self.open.add(key)
        self.report.raised += created

    def clear(self, key: str) -> None:
        self.judged.add(key)
        self.report.judged += 1
        if key in self.open and alert_resolve(dedupe_key=key, now=self.now) is not None:
            self.open.discard(key)
            self.report.resolved += 1

    def scope(self, scope: Scope, groups: Sequence[str], tenant: Tenant | None) -> None:
        targets = sla_targets()
        figures = sla_figures(scope=scope, groups=groups, window=EVALUATION_WINDOW, until=self.now)
        for group, rows in figures.items():
            for row in rows:
                for metric, target in targets.items():
                    value = getattr(row, metric)
                    sample_attr, least = MIN_SAMPLE[metric]
                    if value is None or getattr(row, sample_attr) < least:
                        continue
                    key = f"sla:{metric}:{group}:{row.name}"
                    breach = target.breach(value)
                    if breach is None:
                        self.clear(key)
                        continue
                    severity, level = breach
                    self.raise_(
                        key,
                        kind="sla",
                        group=group,
                        name=row.name,
                        severity=severity,
                        message=_sla_message(row, metric, target, value),
                        tenant=tenant,
                        metric=metric,
                        value=value,
                        threshold=level,
                    )
        minutes = int(BUCKET.total_seconds() // 60)
        series_by_group = anomaly_series(scope=scope, groups=groups, until=self.now)
        for (group, name), series in sorted(series_by_group.items()):
            for metric, values, counts, rule in (
                ("latency_p95_ms", series.latency_p95_ms, series.ok_requests, LATENCY_RULE),
                ("error_rate", series.error_rate, series.attempts, ERROR_RULE),
            ):
                verdict = detect_anomaly(values[0], counts[0], values[1:], counts[1:], rule)
                if verdict is None:
                    continue
                key = f"anomaly:{metric}:{group}:{name}"
                if not verdict.anomalous:
                    self.clear(key)
                    continue
                self.raise_(
                    key,
                    kind="anomaly",
                    group=group,
                    name=name,
                    severity=Alert.Severity.WARNING,
                    message=(
                        f"{group} {name}: {_LABELS[metric]} {_fmt(metric, verdict.value)} in "
                        f"the last {minutes} minutes, beyond its 24-hour baseline (mean "
                        f"{_fmt(metric, verdict.mean)}, anomalous above "
                        f"{_fmt(metric, verdict.threshold)})"
                    ),
                    tenant=tenant,
                    metric=metric,
                    value=verdict.value,
                    threshold=verdict.threshold,
                )

    def resolve_stale(self) -> None:
        stale = Alert.objects.filter(
            state=Alert.State.OPEN,
            kind__in=SLA_KINDS,
            last_seen_at__lt=self.now - STALE_AFTER,
        ).values_list("dedupe_key", flat=True)
        for key in stale:
            if key not in self.judged and alert_resolve(dedupe_key=key, now=self.now):
                self.report.resolved += 1


def sla_evaluate(*, now: datetime | None = None) -> EvaluationReport:
    """One round over the platform and every tenant with endpoints of its own (see the
    module docstring). Idempotent: a second run at the same moment changes nothing."""
    now = now or timezone.now()
    judge = _Judge(now)
    judge.scope(scope_platform(), GROUPS, tenant=None)
    owners = (
        EndpointHealth.objects.filter(tenant__isnull=False)
        .values_list("tenant_id", flat=True)
        .distinct()
    )
    for tenant in Tenant.objects.filter(pk__in=list(owners)).order_by("pk"):
        judge.scope(scope_tenant_endpoints(tenant.pk), ("endpoint",), tenant=tenant)
    judge.resolve_stale()
    return judge.report
