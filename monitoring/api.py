"""Monitoring API: provider endpoint health, SLA figures, health and SLA alerts.

A tenant (session member or ``can_manage`` key, viewer role) sees the platform's endpoints
and its own, figures of its own traffic (availability from the probes of those endpoints),
and its own alerts. Operators (superusers signed in, with or without a tenant named) see
everything: every endpoint, every tenant's traffic, every alert including the platform's.
Probe error texts (and flip reasons, which quote them) are shown for the caller's own
endpoints only, or to operators: a platform endpoint's upstream error is the platform's.
Bad parameters answer 400 naming the parameter (``field``).
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from django.utils import timezone
from rest_framework.pagination import PageNumberPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from aura.errors import DomainError, NotFound
from monitoring.health import health_targets_for
from monitoring.models import Alert, EndpointHealth, HealthFlip
from monitoring.sla import (
    GROUPS,
    WINDOWS,
    scope_everything,
    scope_for_tenant,
    sla_figures,
    sla_targets,
)
from routing.api import parse_instant
from tenants.auth import KeyPrincipal
from tenants.scoping import TENANT_HEADER, TenantScopedAPIView

log = logging.getLogger(__name__)

FLIPS_SHOWN = 5  # per endpoint
FLIPS_SINCE = timedelta(hours=24)
ALERT_KINDS = ("endpoint_down", "sla", "anomaly")


def _choice(request: Request, name: str, choices: tuple[str, ...], default: str | None) -> Any:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    if raw not in choices:
        raise DomainError(f"'{name}' must be one of: {', '.join(choices)}.", param=name)
    return raw


class _MonitoringView(TenantScopedAPIView):
    """Tenant-scoped, except that operators see everything (``tenant_id`` None)."""

    tenant_id: int | None

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        user = request.user
        operator = not isinstance(request.auth, KeyPrincipal) and bool(
            getattr(user, "is_superuser", False)
        )
        named = request.headers.get(TENANT_HEADER) or request.query_params.get("tenant")
        if operator and not named:
            # A superuser need not belong to any tenant to watch the platform.
            APIView.initial(self, request, *args, **kwargs)
            self.tenant_id = None
            return
        super().initial(request, *args, **kwargs)
        self.tenant_id = None if self.ctx.is_operator else self.ctx.tenant.pk

    @property
    def sees_all(self) -> bool:
        return self.tenant_id is None

    def owns(self, tenant_id: int | None) -> bool:
        return self.sees_all or (tenant_id is not None and tenant_id == self.tenant_id)


# ------------------------------------------------------------------------------ health


def _breakers() -> dict[str, float] | None:
    """Endpoint name -> open-until (unix time) of every breaker not closed; one Redis
    read. None when Redis does not answer (the figures are still worth showing)."""
    from aura.redis import sync_client
    from routing.gateway.breaker import OPEN_SET

    try:
        raw: Any = sync_client().zrange(OPEN_SET, 0, -1, withscores=True)
    except Exception:
        log.warning("circuit-breaker state unreadable for the health API")
        return None
    return {(m.decode() if isinstance(m, bytes) else str(m)): float(s) for m, s in raw}


def _breaker(name: str, open_until: dict[str, float] | None) -> dict[str, Any] | None:
    if open_until is None:
        return None
    until = open_until.get(name)
    if until is None:
        return {"state": "closed", "open_until": None}
    state = "open" if until > time.time() else "half_open"
    return {"state": state, "open_until": datetime.fromtimestamp(until, tz=UTC)}


class ProviderHealthView(_MonitoringView):
    """GET /api/v1/providers/health — every endpoint the caller may see, with its state,
    last probe, recent traffic, breaker and the flips of the last 24 hours."""

    def get(self, request: Request) -> Response:
        now = timezone.now()
        targets = list(health_targets_for(self.tenant_id).select_related("tenant"))
        flips: dict[int, list[HealthFlip]] = {}
        recent = HealthFlip.objects.filter(
            target_id__in=[t.pk for t in targets], created_at__gte=now - FLIPS_SINCE
        ).order_by("-created_at", "-id")
        for flip in recent[:1000]:
            shown = flips.setdefault(flip.target_id, [])
            if len(shown) < FLIPS_SHOWN:
                shown.append(flip)
        open_until = _breakers()
        body = [self._endpoint(t, flips.get(t.pk, []), open_until) for t in targets]
        return Response({"generated_at": now, "endpoints": body})

    def _endpoint(
        self, t: EndpointHealth, flips: list[HealthFlip], open_until: dict[str, float] | None
    ) -> dict[str, Any]:
        own = self.owns(t.tenant_id)
        passive = dict(t.passive or {})
        if passive and not own:
            # Volumes on a shared endpoint are every tenant's traffic: rates only.
            attempts, failures = passive.pop("attempts", 0), passive.pop("failures", 0)
            passive["error_rate"] = round(failures / attempts, 4) if attempts else None
        body: dict[str, Any] = {
            "name": t.name,
            "provider": t.provider.slug,
            "endpoint": {"id": t.endpoint_id, "name": t.endpoint.name} if t.endpoint else None,
            "owner": "platform" if t.tenant_id is None else "tenant",
            "status": t.status,
            "score": t.score,
            "ever_healthy": t.ever_healthy,
            "status_changed_at": t.status_changed_at,
            "last_check": None
            if t.last_checked_at is None
            else {
                "at": t.last_checked_at,
                "ok": t.last_ok_at == t.last_checked_at,
                "latency_ms": t.last_latency_ms,
                "error": (t.last_error or None) if own else None,
            },
            "last_ok_at": t.last_ok_at,
            "passive": passive,
            "breaker": _breaker(t.name, open_until),
            "recent_flips": [
                {
                    "at": f.created_at,
                    "from": f.old_status,
                    "to": f.new_status,
                    "reason": f.reason if own else None,
                }
                for f in flips
            ],
        }
        if self.sees_all:
            body["tenant"] = t.tenant.slug if t.tenant else None
        return body


# ------------------------------------------------------------------------------ SLA


class SlaView(_MonitoringView):
    """GET /api/v1/sla?window=1h|24h|7d&group=provider|model|endpoint[&until=ISO] — SLA
    figures with their targets and statuses (see monitoring.sla for each figure)."""

    def get(self, request: Request) -> Response:
        window = _choice(request, "window", tuple(WINDOWS), "1h")
        group = _choice(request, "group", GROUPS, "provider")
        until = parse_instant(request.query_params.get("until"), "until") or timezone.now()
        scope = scope_everything() if self.tenant_id is None else scope_for_tenant(self.tenant_id)
        rows = sla_figures(scope=scope, groups=[group], window=WINDOWS[window], until=until)
        return Response(
            {
                "window": window,
                "group": group,
                "since": until - WINDOWS[window],
                "until": until,
                "targets": {m: t.as_dict() for m, t in sla_targets().items()},
                "rows": [r.as_dict() for r in rows[group]],
            }
        )


# ------------------------------------------------------------------------------ alerts


def alert_body(alert: Alert, *, with_tenant: bool) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": alert.pk,
        "kind": alert.kind,
        "subject": alert.subject,
        "metric": alert.metric,
        "endpoint": alert.target.name if alert.target else None,
        "severity": alert.severity,
        "state": alert.state,
        "message": alert.message,
        "value": alert.value,
        "threshold": alert.threshold,
        "opened_at": alert.opened_at,
        "last_seen_at": alert.last_seen_at,
        "escalated_at": alert.escalated_at,
        "resolved_at": alert.resolved_at,
        "notified_at": alert.notified_at,
    }
    if with_tenant:
        body["tenant"] = alert.tenant.slug if alert.tenant else None
    return body


class _AlertsMixin(_MonitoringView):
    def alerts(self) -> Any:
        qs = Alert.objects.select_related("tenant", "target")
        if self.tenant_id is not None:
            qs = qs.filter(tenant_id=self.tenant_id)  # alert_tenant_time
        return qs.order_by("-opened_at", "-id")


class MonitoringAlertListView(_AlertsMixin):
    """GET /api/v1/monitoring/alerts?state=open|resolved&severity=warning|critical&kind=…
    — newest first, paginated (``page``, 50 a page)."""

    def get(self, request: Request) -> Response:
        state = _choice(request, "state", tuple(Alert.State.values), None)
        severity = _choice(request, "severity", tuple(Alert.Severity.values), None)
        kind = _choice(request, "kind", ALERT_KINDS, None)
        qs = self.alerts()
        if state:
            qs = qs.filter(state=state)
        if severity:
            qs = qs.filter(severity=severity)
        if kind:
            qs = qs.filter(kind=kind)
        paginator = PageNumberPagination()
        page: list[Alert] = paginator.paginate_queryset(qs, request, view=self) or []
        return paginator.get_paginated_response(
            [alert_body(a, with_tenant=self.sees_all) for a in page]
        )


class MonitoringAlertDetailView(_AlertsMixin):
    """GET /api/v1/monitoring/alerts/<id>"""

    def get(self, request: Request, alert_id: int) -> Response:
        alert = self.alerts().filter(pk=alert_id).first()
        if alert is None:
            raise NotFound("No such alert.")
        return Response(alert_body(alert, with_tenant=self.sees_all))
