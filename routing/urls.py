from __future__ import annotations

from django.urls import path

from routing import api
from routing.policy import api as policy_api

urlpatterns = [
    path("router/policy", policy_api.PolicyView.as_view(), name="router-policy"),
    path(
        "router/policy/export", policy_api.PolicyExportView.as_view(), name="router-policy-export"
    ),
    path(
        "router/policy/import", policy_api.PolicyImportView.as_view(), name="router-policy-import"
    ),
    path("router/weights", policy_api.WeightsView.as_view(), name="router-weights"),
    path(
        "router/weights/history",
        policy_api.WeightHistoryView.as_view(),
        name="router-weights-history",
    ),
    path("router/record", api.RecordView.as_view(), name="router-record"),
    path("router/metrics", api.MetricsView.as_view(), name="router-metrics"),
    path("router/select", api.SelectView.as_view(), name="router-select"),
    path("route", api.RouteView.as_view(), name="route"),
    path("route/batch", api.RouteBatchView.as_view(), name="route-batch"),
]
