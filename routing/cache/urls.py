from __future__ import annotations

from django.urls import path

from routing.cache import api

urlpatterns = [
    path("cache", api.CachePurgeView.as_view(), name="cache"),
    path("cache/stats", api.CacheStatsView.as_view(), name="cache-stats"),
    path("cache/lookup", api.CacheLookupView.as_view(), name="cache-lookup"),
]
