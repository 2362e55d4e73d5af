"""Every response carries x-aura-request-id; a caller's own well-formed id is reused."""

from __future__ import annotations

import logging
import re

import pytest
from django.test import Client

from aura.middleware import RequestIdLogFilter, request_id_var

pytestmark = pytest.mark.urls("tests.aura.urls_boom")

MINTED = re.compile(r"^req_[0-9a-f]{32}$")


def test_every_response_has_a_fresh_request_id():
    client = Client()
    first = client.get("/healthz")["x-aura-request-id"]
    second = client.get("/healthz")["x-aura-request-id"]
    assert MINTED.match(first)
    assert MINTED.match(second)
    assert first != second


def test_errors_carry_the_request_id_too():
    resp = Client().get("/api/v1/no-such-thing")
    assert resp.status_code == 404
    assert MINTED.match(resp["x-aura-request-id"])


def test_the_view_sees_the_same_id_as_the_response_header():
    resp = Client().get("/echo-request-id")
    assert resp.json()["request_id"] == resp["x-aura-request-id"]


@pytest.mark.parametrize("incoming", ["trace-1234.abcd_EF", "a" * 64, "01HZX3J9K2M4N5P6Q7R8S9T0"])
def test_a_well_formed_incoming_request_id_is_reused(incoming):
    resp = Client().get("/echo-request-id", HTTP_X_REQUEST_ID=incoming)
    assert resp["x-aura-request-id"] == incoming
    assert resp.json()["request_id"] == incoming


@pytest.mark.parametrize(
    "incoming",
    [
        "short",
        "a" * 65,
        "has space in it",
        "inject\r\nSet-Cookie: x=1",
        "<script>alert(1)</script>",
        "",
    ],
)
def test_a_malformed_incoming_request_id_is_replaced(incoming):
    resp = Client().get("/echo-request-id", HTTP_X_REQUEST_ID=incoming)
    assert MINTED.match(resp["x-aura-request-id"])


def test_the_request_id_does_not_leak_past_the_request():
    Client().get("/healthz", HTTP_X_REQUEST_ID="leaky-request-id")
    assert request_id_var.get() == "-"


def test_log_lines_outside_a_request_get_a_placeholder_id():
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "hello", None, None)
    assert RequestIdLogFilter().filter(record)
    assert record.request_id == "-"


async def _async_view_call(client):
    return await client.get("/echo-request-id", headers={"X-Request-Id": "async-trace-0001"})


def test_the_async_stack_reuses_a_well_formed_id_too():
    from asgiref.sync import async_to_sync
    from django.test import AsyncClient

    resp = async_to_sync(_async_view_call)(AsyncClient())
    assert resp["x-aura-request-id"] == "async-trace-0001"
    assert resp.json()["request_id"] == "async-trace-0001"
