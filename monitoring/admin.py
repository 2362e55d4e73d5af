"""Monitoring admin: endpoint health (with "probe now"), probe results and flips (read-only),
alerts (filtered by state, severity, kind; "resolve"). Rows are written by the probe round
and the detectors, never by hand."""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from aura.admin_columns import usd_column
from billing.admin import ReadOnlyAdmin
from monitoring.alerts import alert_resolve
from monitoring.health import health_round
from monitoring.models import Alert, EndpointHealth, HealthCheck, HealthFlip


@admin.register(EndpointHealth)
class EndpointHealthAdmin(ReadOnlyAdmin):
    list_display = (
        "name",
        "provider",
        "tenant",
        "status",
        "score",
        "ever_healthy",
        "active",
        "last_checked_at",
        "last_latency_ms",
    )
    list_filter = ("status", "active", "ever_healthy", "provider")
    list_select_related = ("provider", "tenant")
    search_fields = ("name", "endpoint__name", "tenant__slug")
    actions = ["probe_now"]

    @admin.action(description="Probe every endpoint now")
    def probe_now(self, request: HttpRequest, queryset: QuerySet[EndpointHealth]) -> None:
        # A whole round, not only the selection: states move with hysteresis per round,
        # and the board every gateway routes by is published whole.
        report = health_round(force=True)
        flips = ", ".join(f"{name}: {old} → {new}" for name, old, new in report.flips)
        self.message_user(
            request,
            f"Probed {report.probed} of {report.targets} endpoints, {report.failed} failed."
            + (f" Changed: {flips}." if flips else ""),
            messages.WARNING if report.failed else messages.SUCCESS,
        )


@admin.register(HealthCheck)
class HealthCheckAdmin(ReadOnlyAdmin):
    list_display = (
        "target",
        "checked_at",
        "mode",
        "ok",
        "latency_ms",
        "http_status",
        "error_kind",
    )
    list_filter = ("ok", "mode", "error_kind", "target")
    list_select_related = ("target",)
    date_hierarchy = "checked_at"
    cost = usd_column("cost_usd", "cost")
    exclude = ("cost_usd",)
    readonly_fields = ("cost",)


@admin.register(HealthFlip)
class HealthFlipAdmin(ReadOnlyAdmin):
    list_display = ("target", "created_at", "old_status", "new_status", "reason", "processed_at")
    list_filter = ("new_status", "old_status")
    list_select_related = ("target",)
    search_fields = ("target__name", "reason")
    date_hierarchy = "created_at"


@admin.register(Alert)
class AlertAdmin(ReadOnlyAdmin):
    list_display = (
        "subject",
        "kind",
        "metric",
        "severity",
        "state",
        "tenant",
        "opened_at",
        "last_seen_at",
        "resolved_at",
    )
    list_filter = ("state", "severity", "kind")
    list_select_related = ("tenant",)
    search_fields = ("subject", "dedupe_key", "message", "tenant__slug")
    date_hierarchy = "opened_at"
    actions = ["resolve"]

    @admin.action(description="Resolve the selected alerts")
    def resolve(self, request: HttpRequest, queryset: QuerySet[Alert]) -> None:
        done = 0
        for key in queryset.filter(state=Alert.State.OPEN).values_list("dedupe_key", flat=True):
            done += alert_resolve(dedupe_key=key) is not None
        # A detector that still sees the condition opens a new alert on its next round.
        self.message_user(request, f"Resolved {done} alert(s).", messages.SUCCESS)
