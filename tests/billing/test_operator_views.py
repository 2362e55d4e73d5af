"""Operators (superusers) see every tenant: /api/v1/operator/usage and
/api/v1/operator/spend/summary. Nobody else may."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone
from rest_framework.test import APIClient

from billing.models import DailyRollup, UsageRecord
from tenants.services import api_key_create
from tests.conftest import key_client

pytestmark = pytest.mark.django_db

OP_USAGE = "/api/v1/operator/usage"
OP_SUMMARY = "/api/v1/operator/spend/summary"
T0 = datetime(2025, 5, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def operator(db: Any) -> APIClient:
    user = get_user_model().objects.create_superuser("olga", "olga@example.test", "pw-olga")
    client = APIClient()
    client.force_login(user)
    return client


def _usage(tenant: Any, request_id: str, minutes: int, **fields: Any) -> UsageRecord:
    values: dict[str, Any] = {"provider": "openai", "model": "gpt-4o-mini", "status": "ok"}
    return UsageRecord.objects.create(
        tenant=tenant,
        created_at=T0 + timedelta(minutes=minutes),
        request_id=request_id,
        **{**values, **fields},
    )


@pytest.fixture
def traffic(alice: Any, charlie: Any) -> None:
    _usage(alice.tenant, "a1", 0, cost_usd=Decimal("0.5"))
    _usage(charlie.tenant, "g1", 1, provider="anthropic", model="claude-3-5-haiku")
    _usage(alice.tenant, "a2", 2, status="error")
    _usage(charlie.tenant, "g2", 3)


@pytest.fixture
def rollups(alice: Any, charlie: Any) -> dict[str, Any]:
    key, _ = api_key_create(tenant=charlie.tenant, name="globex-app")
    day = date(2025, 5, 1)
    DailyRollup.objects.create(
        tenant=alice.tenant,
        day=day,
        provider="openai",
        model="gpt-4o-mini",
        requests=10,
        errors=1,
        cost_usd=Decimal("2.00"),
    )
    DailyRollup.objects.create(
        tenant=charlie.tenant,
        day=day,
        api_key=key,
        provider="anthropic",
        model="claude-3-5-haiku",
        requests=5,
        cost_usd=Decimal("3.50"),
    )
    DailyRollup.objects.create(
        tenant=charlie.tenant,
        day=date(2025, 5, 2),
        provider="openai",
        model="gpt-4o-mini",
        requests=1,
        cost_usd=Decimal("0.25"),
    )
    return {"key": key}


def _ids(resp: Any) -> list[tuple[str, str]]:
    assert resp.status_code == 200, resp.content
    return [(r["tenant"], r["request_id"]) for r in resp.json()["results"]]


def test_an_operator_sees_every_tenants_usage(operator, traffic):
    assert _ids(operator.get(OP_USAGE)) == [
        ("globex", "g2"),
        ("acme", "a2"),
        ("globex", "g1"),
        ("acme", "a1"),
    ]


def test_an_operator_filters_usage_by_tenant_and_the_usual_filters(operator, traffic):
    assert _ids(operator.get(OP_USAGE, {"tenant": "acme"})) == [("acme", "a2"), ("acme", "a1")]
    assert _ids(operator.get(OP_USAGE, {"provider": "anthropic"})) == [("globex", "g1")]
    assert _ids(operator.get(OP_USAGE, {"tenant": "acme", "status": "ok"})) == [("acme", "a1")]
    since = (T0 + timedelta(minutes=2)).isoformat()
    assert _ids(operator.get(OP_USAGE, {"since": since})) == [("globex", "g2"), ("acme", "a2")]


def test_an_unknown_tenant_or_bad_filter_is_refused_naming_it(operator):
    resp = operator.get(OP_USAGE, {"tenant": "nope"})
    assert resp.status_code == 400
    assert "tenant" in resp.json()
    resp = operator.get(OP_USAGE, {"until": "later"})
    assert resp.status_code == 400
    assert "until" in resp.json()


def test_operator_usage_is_cursor_paginated(operator, traffic):
    first = operator.get(OP_USAGE, {"page_size": 3})
    second = operator.get(first.json()["next"])
    assert _ids(first) + _ids(second) == [
        ("globex", "g2"),
        ("acme", "a2"),
        ("globex", "g1"),
        ("acme", "a1"),
    ]


def test_an_operator_exports_every_tenants_usage_as_csv(operator, traffic):
    resp = operator.get(OP_USAGE, {"format": "csv", "status": "ok"})
    assert resp.status_code == 200
    rows = list(csv.DictReader(io.StringIO(b"".join(resp.streaming_content).decode())))
    assert [(r["tenant"], r["request_id"]) for r in rows] == [
        ("globex", "g2"),
        ("globex", "g1"),
        ("acme", "a1"),
    ]
    assert rows[2]["cost_usd"] == "0.5"


def test_an_operator_sees_spend_of_all_tenants_with_a_per_tenant_breakdown(operator, rollups):
    resp = operator.get(OP_SUMMARY, {"since": "2025-05-01", "until": "2025-05-31"})
    assert resp.status_code == 200, resp.json()
    body = resp.json()
    assert body["tenant"] is None
    assert body["totals"]["cost_usd"] == "5.750000"  # 2.00 + 3.50 + 0.25
    assert body["totals"]["requests"] == 16
    assert [(t["tenant"], t["cost_usd"], t["requests"]) for t in body["by_tenant"]] == [
        ("globex", "3.750000", 6),
        ("acme", "2.000000", 10),
    ]
    assert [(k["tenant"], k["name"], k["cost_usd"]) for k in body["by_api_key"]] == [
        ("globex", "globex-app", "3.500000"),
        (None, None, "2.250000"),  # rows without a key, across tenants
    ]


def test_an_operator_narrows_the_summary_to_one_tenant(operator, rollups):
    body = operator.get(
        OP_SUMMARY, {"tenant": "acme", "since": "2025-05-01", "until": "2025-05-31"}
    ).json()
    assert body["tenant"] == "acme"
    assert body["totals"]["cost_usd"] == "2.000000"
    assert [t["tenant"] for t in body["by_tenant"]] == ["acme"]


def test_the_operator_summary_defaults_to_the_current_utc_month(operator, rollups, time_machine):
    time_machine.move_to(datetime(2025, 5, 31, 23, 0, tzinfo=UTC), tick=False)
    body = operator.get(OP_SUMMARY).json()
    assert (body["since"], body["until"], body["timezone"]) == ("2025-05-01", "2025-05-31", "UTC")
    assert body["totals"]["requests"] == 16


def test_the_operator_summary_counts_every_tenants_usage_of_today(operator, alice, charlie):
    now = timezone.now()
    for tenant, n in ((alice.tenant, 2), (charlie.tenant, 3)):
        for i in range(n):
            UsageRecord.objects.create(
                tenant=tenant,
                created_at=now,
                request_id=f"{tenant.slug}-{i}",
                provider="openai",
                model="gpt-4o-mini",
                status="ok",
                cost_usd=Decimal("0.5"),
            )
    today = now.date().isoformat()
    body = operator.get(OP_SUMMARY, {"since": today, "until": today}).json()
    assert body["totals"]["requests"] == 5
    assert [(t["tenant"], t["requests"]) for t in body["by_tenant"]] == [("globex", 3), ("acme", 2)]


def test_tenant_admins_and_members_get_403_on_operator_views(alice, bob, charlie, traffic):
    for persona in (alice, bob, charlie):
        assert persona.client.get(OP_USAGE).status_code == 403
        assert persona.client.get(OP_SUMMARY).status_code == 403
        assert persona.client.get(OP_USAGE, {"format": "csv"}).status_code == 403


def test_api_keys_get_403_on_operator_views_even_with_manage_rights(alice_manage_key, traffic):
    client = key_client(alice_manage_key[1])
    assert client.get(OP_USAGE).status_code == 403
    assert client.get(OP_SUMMARY).status_code == 403


def test_anonymous_callers_are_refused(traffic):
    assert APIClient().get(OP_USAGE).status_code in (401, 403)
    assert APIClient().get(OP_SUMMARY).status_code in (401, 403)


def test_an_operator_acting_in_a_tenant_sees_only_that_tenant(operator, traffic):
    resp = operator.get("/api/v1/usage", HTTP_X_AURA_TENANT="globex")
    assert resp.status_code == 200
    assert [r["request_id"] for r in resp.json()["results"]] == ["g2", "g1"]
