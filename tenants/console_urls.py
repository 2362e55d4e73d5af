"""The tenant console at ``/`` (server-rendered pages; the admin stays at ``/admin/``)."""

from __future__ import annotations

from django.urls import path

from tenants import views

# The overview (``/``, console-overview) is monitoring's page, wired in aura/urls.py.
urlpatterns = [
    path("login/", views.SignInView.as_view(), name="console-sign-in"),
    path("logout/", views.SignOutView.as_view(), name="console-sign-out"),
    path("password-reset/", views.PasswordResetView.as_view(), name="console-password-reset"),
    path(
        "password-reset/sent/",
        views.PasswordResetSentView.as_view(),
        name="console-password-reset-sent",
    ),
    path(
        "password-reset/<uidb64>/<token>/",
        views.PasswordResetConfirmView.as_view(),
        name="console-password-reset-confirm",
    ),
    path(
        "password-reset/done/",
        views.PasswordResetCompleteView.as_view(),
        name="console-password-reset-complete",
    ),
    path("switch-tenant/", views.switch_tenant, name="console-switch-tenant"),
    path("keys/", views.keys_page, name="console-keys"),
    path("keys/<int:key_id>/revoke/", views.key_revoke, name="console-key-revoke"),
    path("members/", views.members_page, name="console-members"),
    *(
        path(
            f"members/<int:membership_id>/{action}/",
            views.member_action,
            {"action": action},
            name=f"console-member-{action}",
        )
        for action in ("role", "remove")
    ),
]
