from __future__ import annotations

from django.urls import path

from routing.learning import api

urlpatterns = [
    path("router/feedback", api.FeedbackView.as_view(), name="router-feedback"),
    path("router/outcomes/import", api.ImportView.as_view(), name="router-outcomes-import"),
    path(
        "router/outcomes/import/<int:import_id>",
        api.ImportStatusView.as_view(),
        name="router-outcomes-import-status",
    ),
    path("router/optimize", api.OptimizeView.as_view(), name="router-optimize"),
    path("router/optimizations", api.OptimizationListView.as_view(), name="router-optimizations"),
    path(
        "router/optimizations/<int:optimization_id>",
        api.OptimizationView.as_view(),
        name="router-optimization",
    ),
    path(
        "router/optimizations/<int:optimization_id>/apply",
        api.OptimizationApplyView.as_view(),
        name="router-optimization-apply",
    ),
    path(
        "router/optimizations/<int:optimization_id>/revert",
        api.OptimizationRevertView.as_view(),
        name="router-optimization-revert",
    ),
]
