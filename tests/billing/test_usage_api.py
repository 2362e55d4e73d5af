"""GET /api/v1/usage: the tenant's usage records, filtered, cursor-paginated, or as CSV."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from django.test import AsyncClient

from billing import selectors
from billing.models import UsageRecord
from tenants.services import api_key_create

pytestmark = pytest.mark.django_db

USAGE = "/api/v1/usage"
T0 = datetime(2025, 5, 1, 12, 0, tzinfo=UTC)
CSV_HEADER = [
    "created_at",
    "request_id",
    "api_key_id",
    "kind",
    "provider",
    "model",
    "status",
    "http_status",
    "prompt_tokens",
    "completion_tokens",
    "cost_usd",
    "cost_estimated",
    "latency_ms",
    "ttft_ms",
    "cache_status",
    "fallbacks",
]


def _usage(tenant: Any, request_id: str, at: datetime, **fields: Any) -> UsageRecord:
    values: dict[str, Any] = {
        "provider": "openai",
        "model": "gpt-4o-mini",
        "status": "ok",
        "http_status": 200,
        "prompt_tokens": 10,
        "completion_tokens": 5,
        "cost_usd": Decimal("0.001"),
        "latency_ms": 120.5,
        **fields,
    }
    return UsageRecord.objects.create(tenant=tenant, created_at=at, request_id=request_id, **values)


@pytest.fixture
def acme_usage(alice: Any) -> dict[str, Any]:
    """Five acme records one minute apart (r1 oldest) and one globex record."""
    key, _ = api_key_create(tenant=alice.tenant, name="app")
    records = {
        "r1": _usage(alice.tenant, "r1", T0, api_key=key),
        "r2": _usage(
            alice.tenant,
            "r2",
            T0 + timedelta(minutes=1),
            provider="anthropic",
            model="claude-3-5-haiku",
            cost_usd=Decimal("0.0025"),
            ttft_ms=80.0,
        ),
        "r3": _usage(
            alice.tenant,
            "r3",
            T0 + timedelta(minutes=2),
            status="error",
            http_status=502,
            error_code="upstream_error",
            api_key=key,
        ),
        "r4": _usage(
            alice.tenant,
            "r4",
            T0 + timedelta(minutes=3),
            kind="embeddings",
            model="text-embedding-3-small",
            completion_tokens=0,
        ),
        "r5": _usage(
            alice.tenant,
            "r5",
            T0 + timedelta(minutes=4),
            api_key=key,
            cache_status="exact",
            fallbacks=1,
            cost_estimated=True,
        ),
    }
    return {"key": key, **records}


@pytest.fixture
def globex_usage(charlie: Any) -> UsageRecord:
    return _usage(charlie.tenant, "g1", T0 + timedelta(seconds=30), cost_usd=Decimal("9"))


def _ids(resp: Any) -> list[str]:
    assert resp.status_code == 200, resp.content
    return [r["request_id"] for r in resp.json()["results"]]


def _csv(resp: Any) -> list[dict[str, str]]:
    assert resp.status_code == 200, resp
    assert resp["Content-Type"].startswith("text/csv")
    text = b"".join(resp.streaming_content).decode()
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == CSV_HEADER
    return [dict(zip(rows[0], row, strict=True)) for row in rows[1:]]


def test_alice_lists_her_usage_newest_first(alice, acme_usage, globex_usage):
    resp = alice.client.get(USAGE)
    assert _ids(resp) == ["r5", "r4", "r3", "r2", "r1"]
    r2 = resp.json()["results"][3]
    assert r2["provider"] == "anthropic"
    assert r2["cost_usd"] == "0.0025000000"
    assert r2["ttft_ms"] == 80.0
    assert r2["api_key"] is None
    assert resp.json()["results"][0]["api_key"] == acme_usage["key"].pk


def test_no_prompt_or_response_text_is_ever_listed(alice, acme_usage):
    row = alice.client.get(USAGE).json()["results"][0]
    assert not {"prompt", "messages", "input", "response", "content"} & set(row)


def test_bob_reads_usage_too(bob, acme_usage):
    assert _ids(bob.client.get(USAGE)) == ["r5", "r4", "r3", "r2", "r1"]


def test_charlie_never_sees_acme_usage(charlie, acme_usage, globex_usage):
    assert _ids(charlie.client.get(USAGE)) == ["g1"]
    assert _ids(charlie.client.get(USAGE, {"api_key": acme_usage["key"].pk})) == []
    rows = _csv(charlie.client.get(USAGE, {"format": "csv"}))
    assert [r["request_id"] for r in rows] == ["g1"]


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"provider": "anthropic"}, ["r2"]),
        ({"model": "text-embedding-3-small"}, ["r4"]),
        ({"status": "error"}, ["r3"]),
        ({"kind": "embeddings"}, ["r4"]),
        ({"since": "2025-05-01T12:02:00Z"}, ["r5", "r4", "r3"]),
        ({"until": "2025-05-01T12:02:00Z"}, ["r2", "r1"]),  # until is exclusive
        ({"since": "2025-05-01T12:01:00Z", "until": "2025-05-01T12:03:00Z"}, ["r3", "r2"]),
        ({"since": "2025-05-01T14:03:00+02:00"}, ["r5", "r4"]),
        ({"since": "2025-05-01T14:03:00 02:00"}, ["r5", "r4"]),  # "+" unencoded in a URL
        ({"since": "2025-05-02"}, []),
        ({"until": "2025-05-01"}, []),
        ({"status": "ok", "provider": "openai", "kind": "chat"}, ["r5", "r1"]),
    ],
)
def test_usage_filters(alice, acme_usage, params, expected):
    assert _ids(alice.client.get(USAGE, params)) == expected


def test_the_api_key_filter_keeps_that_keys_records(alice, acme_usage):
    assert _ids(alice.client.get(USAGE, {"api_key": acme_usage["key"].pk})) == ["r5", "r3", "r1"]


def test_a_naive_since_is_read_in_the_tenants_time_zone(alice, acme_usage):
    alice.tenant.timezone = "America/New_York"
    alice.tenant.save(update_fields=["timezone"])
    # 08:03 EDT is 12:03 UTC.
    assert _ids(alice.client.get(USAGE, {"since": "2025-05-01T08:03:00"})) == ["r5", "r4"]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"since": "yesterday"}, "since"),
        ({"until": "2025-13-01"}, "until"),
        ({"since": "2025-05-02", "until": "2025-05-01"}, "since"),
        ({"api_key": "first"}, "api_key"),
        ({"status": "exploded"}, "status"),
    ],
)
def test_a_bad_filter_is_refused_naming_it(alice, params, field):
    resp = alice.client.get(USAGE, params)
    assert resp.status_code == 400
    assert field in resp.json(), resp.json()


def test_a_bad_filter_on_a_csv_request_answers_json(alice):
    resp = alice.client.get(USAGE, {"format": "csv", "since": "nope"})
    assert resp.status_code == 400
    assert resp["Content-Type"].startswith("application/json")
    assert "since" in resp.json()


def test_cursor_pagination_walks_every_record_once(alice, acme_usage, globex_usage):
    seen: list[str] = []
    resp = alice.client.get(USAGE, {"page_size": 2})
    pages = 0
    while True:
        pages += 1
        seen += _ids(resp)
        nxt = resp.json()["next"]
        if not nxt:
            break
        resp = alice.client.get(nxt)
    assert seen == ["r5", "r4", "r3", "r2", "r1"]
    assert pages == 3


def test_pagination_keeps_records_of_the_same_instant_apart(alice):
    for i in range(5):
        _usage(alice.tenant, f"same-{i}", T0)
    first = alice.client.get(USAGE, {"page_size": 3})
    second = alice.client.get(first.json()["next"])
    ids = _ids(first) + _ids(second)
    assert sorted(ids) == [f"same-{i}" for i in range(5)]
    assert second.json()["next"] is None


def test_new_records_do_not_shift_the_next_page(alice, acme_usage):
    first = alice.client.get(USAGE, {"page_size": 2})
    _usage(alice.tenant, "r6", T0 + timedelta(minutes=5))
    assert _ids(alice.client.get(first.json()["next"])) == ["r3", "r2"]


def test_the_csv_export_has_every_filtered_row_and_no_page(alice, acme_usage, globex_usage):
    rows = _csv(alice.client.get(USAGE, {"format": "csv"}))
    assert [r["request_id"] for r in rows] == ["r5", "r4", "r3", "r2", "r1"]
    r5, r2 = rows[0], rows[3]
    assert r5 == {
        "created_at": "2025-05-01T12:04:00Z",
        "request_id": "r5",
        "api_key_id": str(acme_usage["key"].pk),
        "kind": "chat",
        "provider": "openai",
        "model": "gpt-4o-mini",
        "status": "ok",
        "http_status": "200",
        "prompt_tokens": "10",
        "completion_tokens": "5",
        "cost_usd": "0.001",
        "cost_estimated": "true",
        "latency_ms": "120.5",
        "ttft_ms": "",
        "cache_status": "exact",
        "fallbacks": "1",
    }
    assert (r2["api_key_id"], r2["ttft_ms"], r2["cost_estimated"]) == ("", "80.0", "false")


def test_a_zero_cost_is_a_plain_zero_in_the_csv(alice):
    _usage(alice.tenant, "free", T0, cost_usd=Decimal(0))
    _usage(alice.tenant, "big", T0 + timedelta(minutes=1), cost_usd=Decimal("1200"))
    rows = _csv(alice.client.get(USAGE, {"format": "csv"}))
    assert [(r["request_id"], r["cost_usd"]) for r in rows] == [("big", "1200"), ("free", "0")]


def test_limit_sets_the_page_size_and_the_next_page_keeps_it(alice, acme_usage):
    first = alice.client.get(USAGE, {"limit": 2})
    assert _ids(first) == ["r5", "r4"]
    second = alice.client.get(first.json()["next"])
    assert _ids(second) == ["r3", "r2"]
    assert _ids(alice.client.get(USAGE, {"limit": 1000})) == ["r5", "r4", "r3", "r2", "r1"]


def test_limit_caps_the_csv_rows(alice, acme_usage):
    rows = _csv(alice.client.get(USAGE, {"format": "csv", "limit": 3}))
    assert [r["request_id"] for r in rows] == ["r5", "r4", "r3"]


@pytest.mark.parametrize("name", ["limit", "page_size"])
@pytest.mark.parametrize("bad", ["0", "-1", "1001", "two"])
def test_a_bad_limit_is_a_400_naming_it(alice, acme_usage, name, bad):
    resp = alice.client.get(USAGE, {name: bad})
    assert resp.status_code == 400
    assert name in resp.json()


def test_the_csv_export_applies_the_filters(alice, acme_usage):
    resp = alice.client.get(
        USAGE, {"format": "csv", "api_key": acme_usage["key"].pk, "status": "ok"}
    )
    assert [r["request_id"] for r in _csv(resp)] == ["r5", "r1"]
    assert resp["Content-Disposition"] == 'attachment; filename="acme-usage.csv"'


def test_accept_text_csv_also_gives_csv(alice, acme_usage):
    resp = alice.client.get(USAGE, {"kind": "embeddings"}, HTTP_ACCEPT="text/csv")
    assert [r["request_id"] for r in _csv(resp)] == ["r4"]


def test_an_empty_csv_still_has_its_header(alice):
    assert _csv(alice.client.get(USAGE, {"format": "csv"})) == []


def test_the_csv_is_read_in_chunks_and_stops_at_the_row_cap(alice):
    for i in range(7):
        _usage(alice.tenant, f"c{i}", T0 + timedelta(seconds=i // 2))  # pairs share instants
    qs = selectors.usage_records(tenant_ids=[alice.tenant.pk])
    chunks = list(selectors.usage_csv_chunks(qs, chunk_rows=2))
    assert [len(c) for c in chunks] == [2, 2, 2, 1]
    ids = [row[1] for chunk in chunks for row in chunk]
    assert sorted(ids) == [f"c{i}" for i in range(7)]
    capped = list(selectors.usage_csv_chunks(qs, chunk_rows=2, max_rows=5))
    assert sum(len(c) for c in capped) == 5


def test_the_csv_streams_under_asgi_too(alice, acme_usage):
    async def fetch() -> tuple[int, bool, str, bytes]:
        client = AsyncClient()
        await client.aforce_login(alice.user)
        resp = await client.get(USAGE, {"format": "csv", "status": "ok"})
        body = b"".join([part async for part in resp.streaming_content])  # type: ignore[attr-defined]
        return resp.status_code, resp.is_async, resp["Content-Type"], body  # type: ignore[attr-defined]

    status, is_async, content_type, body = async_to_sync(fetch)()
    assert status == 200
    assert is_async  # an async iterator: Django does not buffer it whole
    assert content_type.startswith("text/csv")
    rows = list(csv.reader(io.StringIO(body.decode())))
    assert [r[1] for r in rows[1:]] == ["r5", "r4", "r2", "r1"]
