from __future__ import annotations

from django.urls import path

from monitoring import api

urlpatterns = [
    path("providers/health", api.ProviderHealthView.as_view(), name="providers-health"),
    path("sla", api.SlaView.as_view(), name="sla"),
    path("monitoring/alerts", api.MonitoringAlertListView.as_view(), name="monitoring-alerts"),
    path(
        "monitoring/alerts/<int:alert_id>",
        api.MonitoringAlertDetailView.as_view(),
        name="monitoring-alert",
    ),
]
