from __future__ import annotations

from django.urls import path

from tenants import api

urlpatterns = [
    path("tenant", api.TenantView.as_view(), name="tenant"),
    path("tenant/preferences", api.PreferencesView.as_view(), name="tenant-preferences"),
    path("keys", api.ApiKeyListCreateView.as_view(), name="api-keys"),
    path("keys/<int:key_id>", api.ApiKeyDetailView.as_view(), name="api-key"),
    path("keys/<int:key_id>/revoke", api.ApiKeyRevokeView.as_view(), name="api-key-revoke"),
]
