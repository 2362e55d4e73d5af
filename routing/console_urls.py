"""Routing's console pages (under ``/``; see tenants/console_urls.py for the rest)."""

from __future__ import annotations

from django.urls import path

from routing import views

urlpatterns = [
    path("policy/", views.policy_page, name="console-policy"),
    *(
        path(
            f"policy/optimizations/<int:optimization_id>/{action}/",
            views.optimization_action,
            {"action": action},
            name=f"console-optimization-{action}",
        )
        for action in ("apply", "revert")
    ),
]
