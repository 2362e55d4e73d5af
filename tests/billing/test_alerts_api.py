"""GET /api/v1/alerts: the tenant's budget threshold alerts, newest first."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from billing.models import Budget, BudgetAlert

pytestmark = pytest.mark.django_db

ALERTS = "/api/v1/alerts"
PERIOD = datetime(2025, 5, 1, tzinfo=UTC)


def _budget(tenant: Any, period: str = "month", limit: str = "100") -> Budget:
    return Budget.objects.create(tenant=tenant, period=period, limit_usd=Decimal(limit))


def _alert(budget: Budget, threshold: int, spent: str, **fields: Any) -> BudgetAlert:
    return BudgetAlert.objects.create(
        tenant_id=budget.tenant_id,
        budget=budget,
        period_start=PERIOD,
        threshold=threshold,
        spent_usd=Decimal(spent),
        limit_usd=budget.limit_usd,
        **fields,
    )


@pytest.fixture
def acme_alerts(alice: Any, time_machine: Any) -> dict[str, Any]:
    month = _budget(alice.tenant)
    day = _budget(alice.tenant, "day", "10")
    time_machine.move_to(datetime(2025, 5, 10, 8, 0, tzinfo=UTC), tick=False)
    first = _alert(month, 50, "51.20", emailed_at=datetime(2025, 5, 10, 8, 1, tzinfo=UTC))
    time_machine.shift(timedelta(hours=1))
    second = _alert(month, 75, "75.00")
    time_machine.shift(timedelta(hours=1))
    third = _alert(day, 100, "10.40", webhook_status="200")
    return {"month": month, "day": day, "alerts": [first, second, third]}


def test_alice_lists_alerts_newest_first(alice, acme_alerts):
    resp = alice.client.get(ALERTS)
    assert resp.status_code == 200
    body = resp.json()
    assert body["count"] == 3
    assert [a["threshold"] for a in body["results"]] == [100, 75, 50]
    newest, _, oldest = body["results"]
    assert newest["budget"] == {
        "id": acme_alerts["day"].pk,
        "api_key": None,
        "period": "day",
        "limit_usd": "10.000000",
        "mode": "block",
    }
    assert newest["spent_usd"] == "10.400000"
    assert newest["limit_usd"] == "10.000000"
    assert newest["webhook_status"] == "200"
    assert newest["emailed_at"] is None
    assert oldest["period_start"] == "2025-05-01T00:00:00Z"
    assert oldest["created_at"] == "2025-05-10T08:00:00Z"
    assert oldest["emailed_at"] == "2025-05-10T08:01:00Z"


def test_alerts_filter_by_budget(alice, acme_alerts):
    resp = alice.client.get(ALERTS, {"budget": acme_alerts["month"].pk})
    assert [a["threshold"] for a in resp.json()["results"]] == [75, 50]


def test_a_bad_budget_filter_is_refused_naming_it(alice):
    resp = alice.client.get(ALERTS, {"budget": "month"})
    assert resp.status_code == 400
    assert "budget" in resp.json()


def test_alerts_are_paginated(alice, acme_alerts):
    month = acme_alerts["month"]
    for threshold in range(1, 60):
        BudgetAlert.objects.create(
            tenant=alice.tenant,
            budget=month,
            period_start=PERIOD - timedelta(days=31),
            threshold=threshold,
            spent_usd=Decimal(threshold),
            limit_usd=Decimal(100),
        )
    first = alice.client.get(ALERTS).json()
    assert first["count"] == 62
    assert len(first["results"]) == 50
    second = alice.client.get(first["next"]).json()
    assert len(second["results"]) == 12
    ids = {a["id"] for a in first["results"]} | {a["id"] for a in second["results"]}
    assert len(ids) == 62


def test_bob_reads_alerts(bob, acme_alerts):
    assert bob.client.get(ALERTS).json()["count"] == 3


def test_charlie_never_sees_acme_alerts(charlie, acme_alerts):
    globex_budget = _budget(charlie.tenant)
    _alert(globex_budget, 90, "91")
    body = charlie.client.get(ALERTS).json()
    assert body["count"] == 1
    assert body["results"][0]["budget"]["id"] == globex_budget.pk
    assert charlie.client.get(ALERTS, {"budget": acme_alerts["month"].pk}).json()["count"] == 0
