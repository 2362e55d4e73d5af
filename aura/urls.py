from __future__ import annotations

from django.contrib import admin
from django.urls import include, path

from monitoring import views as monitoring_views

handler404 = "aura.errors.not_found"
handler500 = "aura.errors.server_error"

urlpatterns = [
    path("healthz", monitoring_views.healthz, name="healthz"),
    path("readyz", monitoring_views.readyz, name="readyz"),
    path("admin/", admin.site.urls),
    path("api/v1/", include("tenants.urls")),
    path("api/v1/", include("routing.urls")),
    path("api/v1/", include("routing.byok_urls")),
    path("", include("billing.report_urls")),
    path("api/v1/", include("billing.urls")),
]
