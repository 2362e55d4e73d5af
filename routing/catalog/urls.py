from __future__ import annotations

from django.urls import path

from routing.catalog import api as byok_api

urlpatterns = [
    path("providers", byok_api.ProviderListView.as_view(), name="byok-providers"),
    path("credentials", byok_api.CredentialListCreateView.as_view(), name="byok-credentials"),
    path(
        "credentials/<int:credential_id>",
        byok_api.CredentialDetailView.as_view(),
        name="byok-credential",
    ),
    path("endpoints", byok_api.EndpointListCreateView.as_view(), name="byok-endpoints"),
    path(
        "endpoints/<int:endpoint_id>", byok_api.EndpointDetailView.as_view(), name="byok-endpoint"
    ),
]
