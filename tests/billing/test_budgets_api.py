"""GET/POST /api/v1/budgets, GET/PATCH/DELETE /api/v1/budgets/<id>, their current period
in the tenant's time zone, and budgets arriving through the routing policy."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
import yaml

from billing.models import Budget, UsageRecord
from routing import changes
from routing.models import RoutingPolicy
from tenants.services import api_key_create
from tests.conftest import fake_dns, key_client

pytestmark = pytest.mark.django_db

BUDGETS = "/api/v1/budgets"


def _detail(budget_id: int) -> str:
    return f"{BUDGETS}/{budget_id}"


def _usage(tenant: Any, at: datetime, cost: str, api_key: Any = None) -> UsageRecord:
    return UsageRecord.objects.create(
        tenant=tenant,
        created_at=at,
        request_id=f"req-{at.timestamp()}-{cost}",
        api_key=api_key,
        provider="openai",
        model="gpt-4o-mini",
        status="ok",
        cost_usd=Decimal(cost),
    )


def _create(persona: Any, **body: Any) -> Any:
    return persona.client.post(BUDGETS, {"period": "day", "limit_usd": "10", **body}, format="json")


# --------------------------------------------------------------------------- create / read


def test_alice_creates_a_tenant_budget_with_the_default_thresholds(alice):
    resp = _create(alice, period="month", limit_usd="250.5")
    assert resp.status_code == 201, resp.json()
    body = resp.json()
    assert body["api_key"] is None
    assert body["period"] == "month"
    assert body["limit_usd"] == "250.500000"
    assert body["mode"] == "block"
    assert body["thresholds"] == [50, 75, 90, 100]
    assert body["webhook_url"] == ""
    assert body["enabled"] is True
    assert body["current_period"]["spent_usd"] == "0.000000"
    budget = Budget.objects.get(pk=body["id"])
    assert budget.tenant == alice.tenant
    assert budget.thresholds == [50, 75, 90, 100]


def test_the_current_period_sums_the_tenants_spend_since_the_period_started(alice, time_machine):
    time_machine.move_to(datetime(2025, 6, 18, 12, 0, tzinfo=UTC), tick=False)
    key, _ = api_key_create(tenant=alice.tenant, name="app")
    _usage(alice.tenant, datetime(2025, 6, 18, 0, 0, tzinfo=UTC), "1.25")
    _usage(alice.tenant, datetime(2025, 6, 18, 11, 59, tzinfo=UTC), "0.50", api_key=key)
    _usage(alice.tenant, datetime(2025, 6, 17, 23, 59, tzinfo=UTC), "100")  # yesterday
    resp = _create(alice, period="day")
    period = resp.json()["current_period"]
    assert period["start"] == "2025-06-18T00:00:00+00:00"
    assert period["end"] == "2025-06-19T00:00:00+00:00"
    assert period["resets_at"] == period["end"]
    assert period["spent_usd"] == "1.750000"  # 1.25 + 0.50


def test_a_key_budget_counts_only_that_keys_spend(alice, time_machine):
    time_machine.move_to(datetime(2025, 6, 18, 12, 0, tzinfo=UTC), tick=False)
    key, _ = api_key_create(tenant=alice.tenant, name="app")
    other, _ = api_key_create(tenant=alice.tenant, name="batch")
    _usage(alice.tenant, datetime(2025, 6, 18, 1, 0, tzinfo=UTC), "2.00", api_key=key)
    _usage(alice.tenant, datetime(2025, 6, 18, 2, 0, tzinfo=UTC), "3.00", api_key=other)
    _usage(alice.tenant, datetime(2025, 6, 18, 3, 0, tzinfo=UTC), "4.00")
    resp = _create(alice, api_key=key.pk, period="day", limit_usd="5")
    assert resp.status_code == 201, resp.json()
    assert resp.json()["api_key"] == key.pk
    assert resp.json()["api_key_name"] == "app"
    assert resp.json()["current_period"]["spent_usd"] == "2.000000"


def test_the_list_shows_every_budget_with_its_spend(alice, time_machine):
    time_machine.move_to(datetime(2025, 6, 18, 12, 0, tzinfo=UTC), tick=False)  # a Wednesday
    _usage(alice.tenant, datetime(2025, 6, 16, 9, 0, tzinfo=UTC), "7.00")  # Monday
    _usage(alice.tenant, datetime(2025, 6, 18, 9, 0, tzinfo=UTC), "1.00")  # today
    assert _create(alice, period="day").status_code == 201
    assert _create(alice, period="week", limit_usd="50").status_code == 201
    assert _create(alice, period="request", limit_usd="0.05").status_code == 201
    resp = alice.client.get(BUDGETS)
    assert resp.status_code == 200
    by_period = {b["period"]: b for b in resp.json()["results"]}
    assert resp.json()["count"] == 3
    assert by_period["day"]["current_period"]["spent_usd"] == "1.000000"
    assert by_period["week"]["current_period"]["spent_usd"] == "8.000000"
    assert by_period["week"]["current_period"]["start"] == "2025-06-16T00:00:00+00:00"
    assert by_period["request"]["current_period"] is None


def test_the_list_costs_the_same_queries_for_one_budget_or_many(alice):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    key, _ = api_key_create(tenant=alice.tenant, name="app")
    _create(alice, period="day", api_key=key.pk)
    with CaptureQueriesContext(connection) as one:
        alice.client.get(BUDGETS)
    for period in ("hour", "week", "month"):
        _create(alice, period=period, api_key=key.pk)
    with CaptureQueriesContext(connection) as four:
        assert alice.client.get(BUDGETS).json()["count"] == 4
    # Spend of every listed budget comes from one aggregate query, key names from a join.
    assert len(four) == len(one)


def test_alice_reads_one_budget(alice):
    budget_id = _create(alice, thresholds=[80, 20]).json()["id"]
    resp = alice.client.get(_detail(budget_id))
    assert resp.status_code == 200
    assert resp.json()["id"] == budget_id
    assert resp.json()["thresholds"] == [20, 80]


def test_a_manage_key_may_create_budgets(alice, alice_manage_key):
    client = key_client(alice_manage_key[1])
    resp = client.post(BUDGETS, {"period": "hour", "limit_usd": "1"}, format="json")
    assert resp.status_code == 201, resp.json()
    budget = Budget.objects.get(pk=resp.json()["id"])
    assert (budget.tenant_id, budget.period, budget.limit_usd) == (alice.tenant.pk, "hour", 1)


# --------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"limit_usd": "0"}, "limit_usd"),
        ({"limit_usd": "-1"}, "limit_usd"),
        ({"limit_usd": "abc"}, "limit_usd"),
        ({"limit_usd": "0.0000001"}, "limit_usd"),
        ({"period": "year"}, "period"),
        ({"mode": "panic"}, "mode"),
        ({"thresholds": [0, 50]}, "thresholds"),
        ({"thresholds": [50, 101]}, "thresholds"),
        ({"thresholds": [50, 50]}, "thresholds"),
        ({"thresholds": []}, "thresholds"),
        ({"thresholds": "50"}, "thresholds"),
        ({"webhook_url": "ftp://hooks.example.test/x"}, "webhook_url"),
        ({"webhook_url": "not a url"}, "webhook_url"),
        ({"webhook_url": "http://127.0.0.1:8080/hook"}, "webhook_url"),
        ({"webhook_url": "http://10.0.0.7/hook"}, "webhook_url"),
        ({"webhook_url": "http://[::1]/hook"}, "webhook_url"),
        ({"webhook_url": "http://localhost/hook"}, "webhook_url"),
        ({"webhook_url": "http://[::127.0.0.1]/"}, "webhook_url"),
        ({"webhook_url": "http://[64:ff9b::127.0.0.1]/"}, "webhook_url"),
        ({"webhook_url": "http://[64:ff9b::a9fe:a9fe]/"}, "webhook_url"),
        ({"webhook_url": "http://[2002:7f00:1::]/"}, "webhook_url"),
        ({"webhook_url": "http://224.0.0.1/"}, "webhook_url"),
        ({"webhook_url": "http://nowhere.invalid/hook"}, "webhook_url"),
        ({"webhook_url": "https://user:password@93.184.216.34/hook"}, "webhook_url"),
        ({"api_key": 999999}, "api_key"),
        ({"api_key": "abc"}, "api_key"),
    ],
)
def test_an_invalid_budget_is_refused_naming_the_field(alice, change, field, monkeypatch):
    fake_dns(monkeypatch, {})  # no name resolves
    resp = _create(alice, **change)
    assert resp.status_code == 400
    assert field in resp.json(), resp.json()
    assert not Budget.objects.exists()


def test_a_missing_period_or_limit_is_refused(alice):
    resp = alice.client.post(BUDGETS, {}, format="json")
    assert resp.status_code == 400
    assert set(resp.json()) == {"period", "limit_usd"}


def test_a_key_of_another_tenant_is_refused_naming_api_key(alice, charlie):
    globex_key, _ = api_key_create(tenant=charlie.tenant, name="globex-app")
    resp = _create(alice, api_key=globex_key.pk)
    assert resp.status_code == 400
    assert "api_key" in resp.json()
    assert not Budget.objects.exists()


def test_an_http_or_https_webhook_is_accepted(alice, monkeypatch):
    fake_dns(monkeypatch, {"hooks.example.test": ["93.184.216.34"]})
    resp = _create(alice, webhook_url="https://hooks.example.test/aura", mode="alert_only")
    assert resp.status_code == 201, resp.json()
    assert resp.json()["webhook_url"] == "https://hooks.example.test/aura"
    assert resp.json()["mode"] == "alert_only"


def test_a_webhook_name_resolving_to_an_internal_address_is_refused(alice, monkeypatch):
    fake_dns(monkeypatch, {"hooks.example.test": ["93.184.216.34", "10.0.0.7"]})
    resp = _create(alice, webhook_url="https://hooks.example.test/aura")
    assert resp.status_code == 400
    assert "10.0.0.7" in resp.json()["webhook_url"][0]
    assert "private" in resp.json()["webhook_url"][0]


def test_a_webhook_change_is_checked_like_a_new_one(alice):
    budget_id = _create(alice).json()["id"]
    resp = alice.client.patch(
        _detail(budget_id), {"webhook_url": "http://[::ffff:127.0.0.1]/"}, format="json"
    )
    assert resp.status_code == 400
    assert "webhook_url" in resp.json()
    assert Budget.objects.get(pk=budget_id).webhook_url == ""


def test_an_internal_webhook_is_accepted_when_an_operator_allows_private_urls(alice):
    RoutingPolicy.objects.create(tenant=alice.tenant, allow_private_base_urls=True)
    resp = _create(alice, webhook_url="http://10.0.0.7/hook")
    assert resp.status_code == 201, resp.json()
    assert Budget.objects.get(pk=resp.json()["id"]).webhook_url == "http://10.0.0.7/hook"


def test_a_second_budget_for_the_same_scope_and_period_is_refused(alice):
    key, _ = api_key_create(tenant=alice.tenant, name="app")
    assert _create(alice, period="day").status_code == 201
    assert _create(alice, period="day", api_key=key.pk).status_code == 201  # other scope
    assert _create(alice, period="week").status_code == 201  # other period
    again = _create(alice, period="day", limit_usd="99")
    assert again.status_code == 400
    assert "period" in again.json()
    key_again = _create(alice, period="day", api_key=key.pk)
    assert key_again.status_code == 400
    assert "period" in key_again.json()
    assert Budget.objects.count() == 3


def test_the_same_period_in_another_tenant_is_no_duplicate(alice, charlie):
    assert _create(alice, period="day").status_code == 201
    assert _create(charlie, period="day").status_code == 201


# --------------------------------------------------------------------------- update / delete


def test_alice_patches_a_budget(alice):
    budget_id = _create(alice).json()["id"]
    resp = alice.client.patch(
        _detail(budget_id),
        {"limit_usd": "12.5", "mode": "downgrade", "thresholds": [90], "enabled": False},
        format="json",
    )
    assert resp.status_code == 200, resp.json()
    body = resp.json()
    assert (body["limit_usd"], body["mode"], body["thresholds"], body["enabled"]) == (
        "12.500000",
        "downgrade",
        [90],
        False,
    )
    assert body["period"] == "day"  # untouched
    budget = Budget.objects.get(pk=budget_id)
    assert budget.limit_usd == Decimal("12.5")
    assert budget.enabled is False


def test_a_patch_that_clashes_with_another_budget_changes_nothing(alice):
    _create(alice, period="day")
    week_id = _create(alice, period="week", limit_usd="70").json()["id"]
    resp = alice.client.patch(_detail(week_id), {"period": "day", "limit_usd": "1"}, format="json")
    assert resp.status_code == 400
    assert "period" in resp.json()
    week = Budget.objects.get(pk=week_id)
    assert (week.period, week.limit_usd) == ("week", Decimal("70"))


def test_an_invalid_patch_changes_nothing(alice):
    budget_id = _create(alice).json()["id"]
    resp = alice.client.patch(
        _detail(budget_id), {"limit_usd": "20", "thresholds": [200]}, format="json"
    )
    assert resp.status_code == 400
    assert "thresholds" in resp.json()
    assert Budget.objects.get(pk=budget_id).limit_usd == Decimal("10")


def test_alice_moves_a_budget_onto_one_key_and_back(alice):
    key, _ = api_key_create(tenant=alice.tenant, name="app")
    budget_id = _create(alice).json()["id"]
    resp = alice.client.patch(_detail(budget_id), {"api_key": key.pk}, format="json")
    assert resp.status_code == 200
    assert Budget.objects.get(pk=budget_id).api_key == key
    resp = alice.client.patch(_detail(budget_id), {"api_key": None}, format="json")
    assert resp.status_code == 200
    assert Budget.objects.get(pk=budget_id).api_key is None


def test_alice_deletes_a_budget(alice):
    budget_id = _create(alice).json()["id"]
    resp = alice.client.delete(_detail(budget_id))
    assert resp.status_code == 204
    assert not Budget.objects.filter(pk=budget_id).exists()
    assert alice.client.get(_detail(budget_id)).status_code == 404


def test_every_budget_write_publishes_a_config_change(alice, django_capture_on_commit_callbacks):
    def publishes(callbacks: list[Any]) -> bool:
        return changes._publish_change in callbacks

    with django_capture_on_commit_callbacks() as created:
        budget_id = _create(alice).json()["id"]
    with django_capture_on_commit_callbacks() as patched:
        alice.client.patch(_detail(budget_id), {"limit_usd": "3"}, format="json")
    with django_capture_on_commit_callbacks() as deleted:
        alice.client.delete(_detail(budget_id))
    with django_capture_on_commit_callbacks() as refused:
        _create(alice, limit_usd="0")
    assert publishes(created) and publishes(patched) and publishes(deleted)
    assert not publishes(refused)


# --------------------------------------------------------------------------- who may


def test_bob_reads_budgets_but_may_not_write_them(alice, bob):
    budget_id = _create(alice).json()["id"]
    assert bob.client.get(BUDGETS).json()["count"] == 1
    assert bob.client.get(_detail(budget_id)).status_code == 200
    assert _create(bob, period="week").status_code == 403
    assert (
        bob.client.patch(_detail(budget_id), {"limit_usd": "1"}, format="json").status_code == 403
    )
    assert bob.client.delete(_detail(budget_id)).status_code == 403
    assert Budget.objects.get(pk=budget_id).limit_usd == Decimal("10")


def test_charlie_gets_404_for_every_acme_budget(alice, charlie):
    budget_id = _create(alice).json()["id"]
    assert charlie.client.get(_detail(budget_id)).status_code == 404
    resp = charlie.client.patch(_detail(budget_id), {"limit_usd": "1"}, format="json")
    assert resp.status_code == 404
    assert charlie.client.delete(_detail(budget_id)).status_code == 404
    assert charlie.client.get(BUDGETS).json()["count"] == 0
    assert Budget.objects.get(pk=budget_id).limit_usd == Decimal("10")


def test_an_anonymous_caller_is_refused(alice):
    from rest_framework.test import APIClient

    assert APIClient().get(BUDGETS).status_code in (401, 403)


# --------------------------------------------------------------------------- time zones


@pytest.fixture
def new_york(alice: Any) -> Any:
    alice.tenant.timezone = "America/New_York"
    alice.tenant.save(update_fields=["timezone"])
    return alice


def test_a_day_budget_starts_at_local_midnight_in_new_york(new_york, time_machine):
    # 2025-03-10 15:00 UTC is 11:00 EDT (UTC-4; DST began on 9 March).
    time_machine.move_to(datetime(2025, 3, 10, 15, 0, tzinfo=UTC), tick=False)
    _usage(new_york.tenant, datetime(2025, 3, 10, 3, 59, tzinfo=UTC), "5.00")  # 23:59 on the 9th
    _usage(new_york.tenant, datetime(2025, 3, 10, 4, 0, tzinfo=UTC), "0.25")  # 00:00 local
    _usage(new_york.tenant, datetime(2025, 3, 10, 14, 0, tzinfo=UTC), "0.50")
    period = _create(new_york, period="day").json()["current_period"]
    assert period["start"] == "2025-03-10T00:00:00-04:00"
    assert period["end"] == "2025-03-11T00:00:00-04:00"
    assert period["spent_usd"] == "0.750000"


def test_a_utc_evening_is_still_the_same_local_day_in_new_york(new_york, time_machine):
    # 2025-01-16 02:00 UTC is 21:00 EST on the 15th: the local day began 2025-01-15 05:00 UTC.
    time_machine.move_to(datetime(2025, 1, 16, 2, 0, tzinfo=UTC), tick=False)
    _usage(new_york.tenant, datetime(2025, 1, 15, 5, 0, tzinfo=UTC), "2.00")
    _usage(new_york.tenant, datetime(2025, 1, 15, 4, 59, tzinfo=UTC), "9.00")
    period = _create(new_york, period="day").json()["current_period"]
    assert period["start"] == "2025-01-15T00:00:00-05:00"
    assert period["spent_usd"] == "2.000000"


def test_a_week_budget_runs_from_monday_midnight_across_the_dst_change(new_york, time_machine):
    # Saturday 8 March 2025; the week ends Monday 10 March, after clocks went forward.
    time_machine.move_to(datetime(2025, 3, 8, 12, 0, tzinfo=UTC), tick=False)
    _usage(new_york.tenant, datetime(2025, 3, 3, 5, 0, tzinfo=UTC), "1.00")  # Mon 00:00 EST
    _usage(new_york.tenant, datetime(2025, 3, 3, 4, 59, tzinfo=UTC), "8.00")  # Sunday before
    period = _create(new_york, period="week", limit_usd="100").json()["current_period"]
    assert period["start"] == "2025-03-03T00:00:00-05:00"
    assert period["end"] == "2025-03-10T00:00:00-04:00"
    assert period["spent_usd"] == "1.000000"


def test_a_month_budget_runs_from_the_first_in_local_time(new_york, time_machine):
    # 2025-04-01 03:30 UTC is still 31 March, 23:30 EDT.
    time_machine.move_to(datetime(2025, 4, 1, 3, 30, tzinfo=UTC), tick=False)
    _usage(new_york.tenant, datetime(2025, 3, 1, 5, 0, tzinfo=UTC), "3.00")  # 1 March 00:00 EST
    _usage(new_york.tenant, datetime(2025, 4, 1, 3, 0, tzinfo=UTC), "0.40")
    _usage(new_york.tenant, datetime(2025, 3, 1, 4, 59, tzinfo=UTC), "50")  # still February
    period = _create(new_york, period="month", limit_usd="100").json()["current_period"]
    assert period["start"] == "2025-03-01T00:00:00-05:00"
    assert period["end"] == "2025-04-01T00:00:00-04:00"
    assert period["spent_usd"] == "3.400000"


def test_an_hour_budget_follows_a_half_hour_offset(alice, time_machine):
    alice.tenant.timezone = "Asia/Kolkata"  # UTC+05:30
    alice.tenant.save(update_fields=["timezone"])
    time_machine.move_to(datetime(2025, 3, 10, 10, 45, tzinfo=UTC), tick=False)  # 16:15 IST
    _usage(alice.tenant, datetime(2025, 3, 10, 10, 30, tzinfo=UTC), "0.10")
    _usage(alice.tenant, datetime(2025, 3, 10, 10, 29, tzinfo=UTC), "1.00")
    period = _create(alice, period="hour", limit_usd="1").json()["current_period"]
    assert period["start"] == "2025-03-10T16:00:00+05:30"
    assert period["end"] == "2025-03-10T17:00:00+05:30"
    assert period["spent_usd"] == "0.100000"


# --------------------------------------------------------------------------- policy


IMPORT = "/api/v1/router/policy/import"
POLICY = "/api/v1/router/policy"
EXPORT = "/api/v1/router/policy/export"


def _import(persona: Any, text: str) -> Any:
    return persona.client.post(IMPORT, text, content_type="application/yaml")


def test_a_policy_import_with_budgets_creates_budget_rows(alice):
    resp = _import(
        alice,
        "tenants:\n  acme:\n    objective: minimize_cost\n"
        "    budgets: {per_request: 0.05, per_day: 50.0, per_month: 900}\n",
    )
    assert resp.status_code == 200, resp.json()
    rows = {b.period: b for b in Budget.objects.filter(tenant=alice.tenant)}
    assert set(rows) == {"request", "day", "month"}
    assert rows["request"].limit_usd == Decimal("0.05")
    assert rows["day"].limit_usd == Decimal("50")
    assert all(b.api_key_id is None and b.mode == "block" for b in rows.values())
    assert all(b.thresholds == [50, 75, 90, 100] for b in rows.values())
    listed = alice.client.get(BUDGETS).json()
    assert listed["count"] == 3


def test_a_reimport_changes_limits_keeps_modes_and_drops_left_out_budgets(alice):
    key, _ = api_key_create(tenant=alice.tenant, name="app")
    _import(alice, "tenants:\n  acme:\n    budgets: {per_day: 50, per_week: 200}\n")
    day = Budget.objects.get(tenant=alice.tenant, period="day")
    alice.client.patch(_detail(day.pk), {"mode": "alert_only"}, format="json")
    _create(alice, period="week", api_key=key.pk)  # key budgets are not the policy's
    resp = _import(alice, "tenants:\n  acme:\n    budgets: {per_day: 75}\n")
    assert resp.status_code == 200
    day.refresh_from_db()
    assert (day.limit_usd, day.mode) == (Decimal("75"), "alert_only")
    assert not Budget.objects.filter(tenant=alice.tenant, period="week", api_key=None).exists()
    assert Budget.objects.filter(tenant=alice.tenant, period="week", api_key=key).exists()


def test_a_policy_patch_of_budgets_updates_the_rows(alice):
    resp = alice.client.patch(POLICY, {"budgets": {"per_hour": 2.5}}, format="json")
    assert resp.status_code == 200, resp.json()
    assert Budget.objects.get(tenant=alice.tenant).limit_usd == Decimal("2.5")
    resp = alice.client.patch(POLICY, {"objective": "minimize_cost"}, format="json")
    assert Budget.objects.filter(tenant=alice.tenant).count() == 1  # budgets not touched


def test_a_dry_run_import_creates_no_budget(alice):
    resp = alice.client.post(
        f"{IMPORT}?dry_run=1",
        "tenants:\n  acme:\n    budgets: {per_day: 50}\n",
        content_type="application/yaml",
    )
    assert resp.status_code == 200
    assert not Budget.objects.exists()


def test_tenant_budgets_made_through_the_api_appear_in_the_policy_export(alice):
    key, _ = api_key_create(tenant=alice.tenant, name="app")
    _create(alice, period="day", limit_usd="40")
    _create(alice, period="month", limit_usd="500")
    _create(alice, period="hour", limit_usd="3", api_key=key.pk)
    week_id = _create(alice, period="week", limit_usd="100", enabled=False).json()["id"]
    doc = yaml.safe_load(alice.client.get(EXPORT).content)
    assert doc["tenants"]["acme"]["budgets"] == {"per_day": 40.0, "per_month": 500.0}
    alice.client.patch(_detail(week_id), {"enabled": True}, format="json")
    shown = alice.client.get(POLICY).json()["budgets"]
    assert shown == {"per_day": 40.0, "per_week": 100.0, "per_month": 500.0}
    alice.client.delete(_detail(week_id))
    assert alice.client.get(POLICY).json()["budgets"] == {"per_day": 40.0, "per_month": 500.0}


def test_a_budget_write_leaves_the_routing_policy_version_alone(alice):
    version = alice.client.get(POLICY).json()["version"]
    budget_id = _create(alice, period="day", limit_usd="40").json()["id"]
    alice.client.patch(_detail(budget_id), {"limit_usd": "45"}, format="json")
    alice.client.delete(_detail(budget_id))
    _create(alice, period="month", limit_usd="500")
    assert RoutingPolicy.objects.get(tenant=alice.tenant).version == version


@pytest.mark.parametrize("how", ["put", "import"])
def test_a_policy_replaced_without_budgets_keeps_them(alice, how):
    _create(alice, period="day", limit_usd="40", mode="alert_only")
    if how == "put":
        resp = alice.client.put(POLICY, {"objective": "minimize_cost"}, format="json")
    else:
        resp = _import(alice, "tenants:\n  acme:\n    objective: minimize_cost\n")
    assert resp.status_code == 200, resp.json()
    body = resp.json() if how == "put" else resp.json()["policy"]
    assert body["budgets"] == {"per_day": 40.0}
    day = Budget.objects.get(tenant=alice.tenant)
    assert (day.limit_usd, day.mode, day.enabled) == (Decimal("40"), "alert_only", True)


def test_an_export_reimported_gives_the_same_budgets(alice):
    _create(alice, period="day", limit_usd="12.345678")
    text = alice.client.get(EXPORT).content.decode()
    Budget.objects.all().delete()
    assert _import(alice, text).status_code == 200
    assert Budget.objects.get(tenant=alice.tenant, period="day").limit_usd == Decimal("12.345678")


def test_a_policy_import_never_touches_another_tenants_budgets(alice, charlie):
    _create(charlie, period="day", limit_usd="5")
    _import(alice, "tenants:\n  acme:\n    budgets: {}\n")
    assert Budget.objects.filter(tenant=charlie.tenant).count() == 1
