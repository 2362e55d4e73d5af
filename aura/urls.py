from __future__ import annotations

from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

from monitoring import views as monitoring_views
from monitoring.scrape import metrics_view

handler404 = "aura.errors.not_found"
handler500 = "aura.errors.server_error"

admin.site.site_header = admin.site.site_title = "AURA administration"
admin.site.index_title = "Operations"
# No public site page exists to go "View site" to (the console is the admin and the API).
admin.site.site_url = None

urlpatterns = [
    path("healthz", monitoring_views.healthz, name="healthz"),
    path("readyz", monitoring_views.readyz, name="readyz"),
    path("metrics", metrics_view, name="metrics"),
    path("admin/", admin.site.urls),
    path("api/v1/schema", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("api/redoc/", SpectacularRedocView.as_view(url_name="api-schema"), name="api-redoc"),
    path("api/v1/", include("tenants.urls")),
    path("api/v1/", include("routing.urls")),
    path("api/v1/", include("routing.catalog.urls")),
    path("api/v1/", include("routing.cache.urls")),
    path("api/v1/", include("routing.learning.urls")),
    path("", include("billing.report_urls")),
    path("", monitoring_views.overview_page, name="console-overview"),
    path("", include("tenants.console_urls")),
    path("", include("routing.console_urls")),
    path("api/v1/", include("billing.urls")),
    path("api/v1/", include("monitoring.urls")),
]
