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
]
