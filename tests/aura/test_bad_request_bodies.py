"""Bad bodies on the management API get a 4xx in its error shape, never a 500.

Too large (413), nested too deep (400), or holding a lone UTF-16 surrogate (400 naming the
field): handled once, by the project's JSON parser and exception handler, so every
writable /api/v1 endpoint behaves the same; the sweep below sends each kind to all of them.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from django.urls import URLPattern, URLResolver, get_resolver

from tenants.models import ApiKey

pytestmark = pytest.mark.django_db

KEYS = "/api/v1/keys"
ROUTE = "/api/v1/route"
BIG_NAME = "x" * 3_000_000  # DATA_UPLOAD_MAX_MEMORY_SIZE is 2.5 MB
DEEP = "[" * 2_000 + "]" * 2_000


def _writable_api_endpoints() -> Iterator[tuple[str, str]]:
    def walk(patterns: list[Any], prefix: str) -> Iterator[tuple[str, Any]]:
        for p in patterns:
            if isinstance(p, URLResolver):
                yield from walk(p.url_patterns, prefix + str(p.pattern))
            elif isinstance(p, URLPattern):
                yield prefix + str(p.pattern), p.callback

    for route, callback in walk(get_resolver().url_patterns, "/"):
        view = getattr(callback, "cls", None)
        if not route.startswith("/api/v1/") or view is None:
            continue
        path = re.sub(r"<int:[^>]+>", "1", route)
        path = re.sub(r"<[^>]+>", "x", path)
        for method in ("post", "put", "patch"):
            if hasattr(view, method):
                yield method, path


WRITABLE = sorted(set(_writable_api_endpoints()))


def test_the_sweep_covers_the_writable_api() -> None:
    assert ("post", KEYS) in WRITABLE
    assert ("patch", "/api/v1/credentials/1") in WRITABLE
    assert ("post", "/api/v1/router/policy/import") in WRITABLE
    assert len(WRITABLE) >= 15


@pytest.mark.parametrize(
    "body",
    [
        '{"name": "' + BIG_NAME + '"}',
        DEEP,
        '{"a": ' * 300 + "1" + "}" * 300,
        '{"name": "\\ud800", "model": "\\udfff", "requests": ["\\ud800"]}',
        '{"\\ud800": 1}',
    ],
    ids=["3MB", "2000-deep", "300-deep", "lone-surrogates", "surrogate-key"],
)
@pytest.mark.parametrize(("method", "path"), WRITABLE)
def test_no_writable_api_endpoint_answers_a_bad_body_with_a_500(
    alice: Any, method: str, path: str, body: str
) -> None:
    alice.user.is_superuser = True  # the operator endpoints too
    alice.user.save()
    resp = getattr(alice.client, method)(path, body, content_type="application/json")
    assert 400 <= resp.status_code < 500, (resp.status_code, resp.content[:300])


def test_a_body_over_the_upload_limit_is_a_413(alice: Any) -> None:
    resp = alice.client.post(KEYS, {"name": BIG_NAME}, format="json")
    assert resp.status_code == 413
    assert resp.json()["code"] == "request_too_large"
    assert "bytes" in resp.json()["detail"]
    assert not ApiKey.objects.exists()


def test_a_yaml_body_over_the_upload_limit_is_a_413(alice: Any) -> None:
    text = "tenants:\n  acme:\n    aliases: {x: [" + "a" * 3_000_000 + "]}\n"
    resp = alice.client.post("/api/v1/router/policy/import", text, content_type="application/yaml")
    assert resp.status_code == 413
    assert resp.json()["code"] == "request_too_large"


@pytest.mark.parametrize("depth", [2_000, 100])
def test_a_deeply_nested_json_body_is_a_400(alice: Any, depth: int) -> None:
    body = '{"name": ' + "[" * depth + "]" * depth + "}"
    resp = alice.client.post(KEYS, body, content_type="application/json")
    assert resp.status_code == 400
    assert "nested deeper" in resp.json()["detail"]
    assert not ApiKey.objects.exists()


def test_a_lone_surrogate_as_the_model_is_a_400_naming_the_field(alice: Any) -> None:
    body = '{"model": "\\ud800", "messages": [{"role": "user", "content": "hi"}]}'
    resp = alice.client.post(ROUTE, body, content_type="application/json")
    assert resp.status_code == 400
    assert resp.json()["field"] == "model"
    assert "surrogate" in resp.json()["detail"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (
            '{"model": "auto", "messages": [{"role": "user", "content": "a\\uDC00b"}]}',
            "messages[0].content",
        ),
        ('{"model": "auto", "messages": [], "aura": {"\\ud801x": "1"}}', "aura.\\ud801x"),
        (
            '{"model": "auto", "messages": [{"role": "user", "content": "\\ude00\\ud83d"}]}',
            "messages[0].content",
        ),
    ],
)
def test_a_lone_surrogate_anywhere_is_a_400_naming_its_path(
    alice: Any, body: str, field: str
) -> None:
    resp = alice.client.post(ROUTE, body, content_type="application/json")
    assert resp.status_code == 400
    assert resp.json()["field"] == field


def test_an_escaped_surrogate_pair_is_ordinary_text(alice: Any) -> None:
    resp = alice.client.post(KEYS, '{"name": "ci \\ud83d\\ude80"}', content_type="application/json")
    assert resp.status_code == 201, resp.json()
    assert ApiKey.objects.get().name == "ci \N{ROCKET}"
