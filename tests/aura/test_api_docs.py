"""The OpenAPI 3 schema of /api/v1 and its docs pages, served from local assets."""

from __future__ import annotations

import re

import pytest
import yaml
from django.test import Client

pytestmark = pytest.mark.django_db


def test_the_schema_describes_the_management_and_routing_api() -> None:
    resp = Client().get("/api/v1/schema")
    assert resp.status_code == 200
    schema = yaml.safe_load(resp.content)
    assert schema["openapi"].startswith("3.")
    paths = set(schema["paths"])
    for path in ("/api/v1/route", "/api/v1/router/optimize", "/api/v1/keys", "/api/v1/budgets"):
        assert path in paths, path
    assert not any(p.startswith("/v1/") or p.startswith("/admin") for p in paths)


@pytest.mark.parametrize("url", ["/api/docs/", "/api/redoc/"])
def test_the_docs_pages_load_nothing_from_the_internet(url: str) -> None:
    resp = Client().get(url)
    assert resp.status_code == 200
    html = resp.content.decode()
    sources = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert sources and all(not s.startswith(("http://", "https://", "//")) for s in sources), (
        sources
    )
    assert "drf_spectacular_sidecar" in html
