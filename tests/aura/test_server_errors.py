"""An unhandled exception gives the client a request id to quote, never a traceback."""

from __future__ import annotations

import logging

import pytest
from django.test import Client

from tests.aura.urls_boom import SECRET_DETAIL

pytestmark = pytest.mark.urls("tests.aura.urls_boom")


@pytest.fixture
def client() -> Client:
    return Client(raise_request_exception=False)


def _assert_no_internals(text: str) -> None:
    assert "Traceback" not in text
    assert SECRET_DETAIL not in text
    assert "RuntimeError" not in text


@pytest.mark.parametrize("path", ["/api/boom", "/api/drf-boom"])
def test_an_api_crash_is_a_json_500_with_the_request_id(client, path):
    resp = client.get(path)
    assert resp.status_code == 500
    assert resp["Content-Type"] == "application/json"
    body = resp.json()
    assert body["detail"] == "Internal server error."
    assert body["request_id"] == resp["x-aura-request-id"]
    assert body["request_id"].startswith("req_")
    _assert_no_internals(resp.content.decode())


def test_a_gateway_crash_is_a_500_in_openai_error_shape(client):
    resp = client.get("/v1/boom")
    assert resp.status_code == 500
    error = resp.json()["error"]
    assert error["type"] == "server_error"
    assert error["code"] == "internal_error"
    assert resp["x-aura-request-id"] in error["message"]
    _assert_no_internals(resp.content.decode())


def test_a_page_crash_is_a_plain_text_500_with_the_request_id(client):
    resp = client.get("/boom")
    assert resp.status_code == 500
    assert resp["Content-Type"].startswith("text/plain")
    assert resp["x-aura-request-id"] in resp.content.decode()
    _assert_no_internals(resp.content.decode())


@pytest.mark.parametrize(
    ("path", "logger"), [("/api/boom", "django.request"), ("/api/drf-boom", "aura.errors")]
)
def test_a_crash_is_logged_with_its_request_id_and_traceback(client, caplog, path, logger):
    with caplog.at_level(logging.ERROR):
        resp = client.get(path)
    rid = resp["x-aura-request-id"]
    records = [r for r in caplog.records if r.name == logger and r.levelno == logging.ERROR]
    assert records, caplog.text
    record = records[-1]
    assert record.request_id == rid
    assert record.exc_info is not None
    assert SECRET_DETAIL in str(record.exc_info[1])


def test_a_domain_error_is_a_400_naming_the_field(client):
    resp = client.get("/api/domain-error")
    assert resp.status_code == 400
    assert resp.json() == {
        "detail": "budget must be positive",
        "code": "invalid_request",
        "field": "budget",
        "limit": 0,
    }


def test_a_domain_not_found_is_a_404_with_its_code(client):
    resp = client.get("/api/domain-error?kind=missing")
    assert resp.status_code == 404
    assert resp.json() == {"detail": "No such route plan.", "code": "not_found"}
