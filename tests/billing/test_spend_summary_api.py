"""GET /api/v1/spend/summary: totals and breakdowns from daily rollups for the days they
completely cover, and from live usage records for the days after them (today)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.utils import timezone

from billing.models import DailyRollup, UsageRecord
from billing.rollups import rollups_refresh
from tenants.services import api_key_create

pytestmark = pytest.mark.django_db

SUMMARY = "/api/v1/spend/summary"


def _rollup(tenant: Any, day: date, **fields: Any) -> DailyRollup:
    values: dict[str, Any] = {"provider": "openai", "model": "gpt-4o-mini", **fields}
    for money in ("cost_usd", "cache_savings_usd"):
        if money in values:
            values[money] = Decimal(values[money])
    return DailyRollup.objects.create(tenant=tenant, day=day, **values)


@pytest.fixture
def may(alice: Any, charlie: Any) -> dict[str, Any]:
    app, _ = api_key_create(tenant=alice.tenant, name="app")
    batch, _ = api_key_create(tenant=alice.tenant, name="batch")
    t = alice.tenant
    _rollup(
        t,
        date(2025, 5, 1),
        api_key=app,
        requests=10,
        errors=1,
        prompt_tokens=1000,
        completion_tokens=500,
        cost_usd="1.50",
        cache_hits=2,
        cache_savings_usd="0.30",
    )
    _rollup(
        t,
        date(2025, 5, 1),
        provider="anthropic",
        model="claude-3-5-haiku",
        requests=4,
        prompt_tokens=400,
        completion_tokens=200,
        cost_usd="0.80",
    )
    _rollup(
        t,
        date(2025, 5, 2),
        api_key=app,
        requests=6,
        errors=2,
        prompt_tokens=600,
        completion_tokens=300,
        cost_usd="0.90",
        cache_hits=1,
        cache_savings_usd="0.10",
    )
    _rollup(
        t,
        date(2025, 5, 2),
        api_key=batch,
        model="text-embedding-3-small",
        kind="embeddings",
        requests=20,
        prompt_tokens=5000,
        cost_usd="0.10",
    )
    _rollup(t, date(2025, 4, 30), api_key=app, requests=100, cost_usd="50")  # April
    _rollup(charlie.tenant, date(2025, 5, 1), requests=7, cost_usd="9.99")
    return {"app": app, "batch": batch}


def _totals(**kw: Any) -> dict[str, Any]:
    base = {
        "cost_usd": "0.000000",
        "requests": 0,
        "errors": 0,
        "prompt_tokens": 0,
        "completion_tokens": 0,
        "total_tokens": 0,
        "cache_hits": 0,
        "cache_savings_usd": "0.000000",
    }
    return {**base, **kw}


def test_alice_sees_may_totals_and_breakdowns(alice, may):
    resp = alice.client.get(SUMMARY, {"since": "2025-05-01", "until": "2025-05-31"})
    assert resp.status_code == 200, resp.json()
    body = resp.json()
    assert (body["since"], body["until"], body["tenant"]) == ("2025-05-01", "2025-05-31", "acme")
    # 1.50 + 0.80 + 0.90 + 0.10; 10 + 4 + 6 + 20 requests; 1000 + 400 + 600 + 5000 prompt
    assert body["totals"] == _totals(
        cost_usd="3.300000",
        requests=40,
        errors=3,
        prompt_tokens=7000,
        completion_tokens=1000,
        total_tokens=8000,
        cache_hits=3,
        cache_savings_usd="0.400000",
    )
    assert [(d["day"], d["cost_usd"], d["requests"]) for d in body["by_day"]] == [
        ("2025-05-01", "2.300000", 14),
        ("2025-05-02", "1.000000", 26),
    ]
    assert [(p["provider"], p["cost_usd"], p["requests"]) for p in body["by_provider"]] == [
        ("openai", "2.500000", 36),
        ("anthropic", "0.800000", 4),
    ]
    assert [(m["provider"], m["model"], m["cost_usd"]) for m in body["by_model"]] == [
        ("openai", "gpt-4o-mini", "2.400000"),
        ("anthropic", "claude-3-5-haiku", "0.800000"),
        ("openai", "text-embedding-3-small", "0.100000"),
    ]
    keys = [(k["api_key"], k["name"], k["cost_usd"], k["requests"]) for k in body["by_api_key"]]
    assert keys == [
        (may["app"].pk, "app", "2.400000", 16),
        (None, None, "0.800000", 4),
        (may["batch"].pk, "batch", "0.100000", 20),
    ]
    assert body["other_api_keys"] == 0


def test_the_range_is_inclusive_of_both_days(alice, may):
    body = alice.client.get(SUMMARY, {"since": "2025-04-30", "until": "2025-05-01"}).json()
    assert body["totals"]["cost_usd"] == "52.300000"  # 50 + 1.50 + 0.80
    assert [d["day"] for d in body["by_day"]] == ["2025-04-30", "2025-05-01"]


def test_the_default_is_the_current_month(alice, may, time_machine):
    time_machine.move_to(datetime(2025, 5, 20, 9, 0, tzinfo=UTC), tick=False)
    body = alice.client.get(SUMMARY).json()
    assert (body["since"], body["until"]) == ("2025-05-01", "2025-05-31")
    assert body["totals"]["cost_usd"] == "3.300000"


def test_the_default_month_is_the_tenants_local_month(alice, may, time_machine):
    alice.tenant.timezone = "America/New_York"
    alice.tenant.save(update_fields=["timezone"])
    # 2025-06-01 02:00 UTC is still 31 May, 22:00 EDT.
    time_machine.move_to(datetime(2025, 6, 1, 2, 0, tzinfo=UTC), tick=False)
    body = alice.client.get(SUMMARY).json()
    assert (body["since"], body["until"]) == ("2025-05-01", "2025-05-31")
    assert body["timezone"] == "America/New_York"
    assert body["totals"]["requests"] == 40


def test_an_empty_period_has_zero_totals(alice, may):
    body = alice.client.get(SUMMARY, {"since": "2024-01-01", "until": "2024-01-31"}).json()
    assert body["totals"] == _totals()
    assert body["by_day"] == body["by_provider"] == body["by_model"] == body["by_api_key"] == []


def test_only_the_top_ten_keys_are_listed(alice):
    for i in range(12):
        key, _ = api_key_create(tenant=alice.tenant, name=f"key-{i:02d}")
        _rollup(alice.tenant, date(2025, 5, 3), api_key=key, requests=1, cost_usd=str(i + 1))
    body = alice.client.get(SUMMARY, {"since": "2025-05-01", "until": "2025-05-31"}).json()
    assert [k["name"] for k in body["by_api_key"]] == [f"key-{i:02d}" for i in range(11, 1, -1)]
    assert body["by_api_key"][0]["cost_usd"] == "12.000000"
    assert body["other_api_keys"] == 2
    assert body["totals"]["cost_usd"] == "78.000000"  # 1 + 2 + ... + 12


def test_a_rolled_up_day_is_read_from_its_rollup_not_again_from_usage(alice, may):
    # The rollups of May 1 and 2 were refreshed after those days ended: a record of May 1
    # the rollup does not (yet) include is not added on top of it.
    UsageRecord.objects.create(
        tenant=alice.tenant,
        created_at=datetime(2025, 5, 1, 12, 0, tzinfo=UTC),
        request_id="not-rolled-up",
        provider="openai",
        model="gpt-4o-mini",
        status="ok",
        cost_usd=Decimal("1000"),
    )
    body = alice.client.get(SUMMARY, {"since": "2025-05-01", "until": "2025-05-31"}).json()
    assert body["totals"]["cost_usd"] == "3.300000"


def _record_now(tenant: Any, request_id: str, at: datetime, **fields: Any) -> UsageRecord:
    values: dict[str, Any] = {
        "provider": "openai",
        "model": "gpt-4o-mini",
        "status": "ok",
        "prompt_tokens": 10,
        "completion_tokens": 5,
        "cost_usd": Decimal("0.0001"),
        **fields,
    }
    return UsageRecord.objects.create(tenant=tenant, created_at=at, request_id=request_id, **values)


def test_usage_of_today_counts_before_the_rollup_runs_and_once_after(alice, charlie):
    now = timezone.now()
    today = now.date()  # acme is in UTC
    for i in range(160):
        _record_now(alice.tenant, f"now-{i}", now - timedelta(seconds=i), status="ok")
    _record_now(alice.tenant, "err", now, status="error", cost_usd=Decimal(0))
    for i in range(3):  # two days ago, and another tenant's today
        _record_now(alice.tenant, f"old-{i}", now - timedelta(days=2), cost_usd=Decimal("1"))
    _record_now(charlie.tenant, "globex", now, cost_usd=Decimal("50"))
    params = {"since": (today - timedelta(days=3)).isoformat(), "until": today.isoformat()}

    before = alice.client.get(SUMMARY, params).json()
    assert before["totals"]["requests"] == 164
    assert before["totals"]["errors"] == 1
    assert before["totals"]["cost_usd"] == "3.016000"  # 160 x 0.0001 + 3 x 1
    assert before["totals"]["prompt_tokens"] == 1640

    rollups_refresh(days=[today - timedelta(days=d) for d in range(4)])
    after = alice.client.get(SUMMARY, params).json()
    assert after == before
    assert sum(d["requests"] for d in after["by_day"]) == 164


def test_a_day_is_read_from_rollups_once_they_were_refreshed_after_it_ended(alice):
    day = date(2025, 5, 1)
    _record_now(alice.tenant, "r1", datetime(2025, 5, 1, 12, tzinfo=UTC))
    rollups_refresh(days=[day], tenant_ids=[alice.tenant.pk])
    params = {"since": "2025-05-01", "until": "2025-05-01"}
    assert alice.client.get(SUMMARY, params).json()["totals"]["requests"] == 1
    # A refresh before the day had settled (e.g. during the day) does not make it final:
    # the day stays live and a later record counts at once.
    end = datetime(2025, 5, 2, tzinfo=UTC)
    DailyRollup.objects.filter(tenant=alice.tenant).update(updated_at=end + timedelta(minutes=5))
    _record_now(alice.tenant, "r2", datetime(2025, 5, 1, 23, 59, tzinfo=UTC))
    assert alice.client.get(SUMMARY, params).json()["totals"]["requests"] == 2
    DailyRollup.objects.filter(tenant=alice.tenant).update(updated_at=end + timedelta(minutes=11))
    assert alice.client.get(SUMMARY, params).json()["totals"]["requests"] == 1


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"since": "May"}, "since"),
        ({"until": "2025-02-30"}, "until"),
        ({"since": "2025-05-02", "until": "2025-05-01"}, "since"),
    ],
)
def test_bad_dates_are_refused_naming_the_field(alice, params, field):
    resp = alice.client.get(SUMMARY, params)
    assert resp.status_code == 400
    assert field in resp.json()


def test_bob_reads_the_summary(bob, may):
    body = bob.client.get(SUMMARY, {"since": "2025-05-01", "until": "2025-05-31"}).json()
    assert body["totals"]["requests"] == 40


def test_charlie_sees_only_globex_spend(charlie, may):
    body = charlie.client.get(SUMMARY, {"since": "2025-05-01", "until": "2025-05-31"}).json()
    assert body["tenant"] == "globex"
    assert body["totals"]["cost_usd"] == "9.990000"
    assert body["totals"]["requests"] == 7
    assert [k["api_key"] for k in body["by_api_key"]] == [None]
    assert "by_tenant" not in body
