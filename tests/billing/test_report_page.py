"""The weekly report page (members only), its CSV (API auth) and the billing admin."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
import time_machine
from django.contrib.auth import get_user_model
from django.test import Client
from django.utils import timezone

from billing.models import WeeklyReport
from tenants.models import Role, Tenant
from tenants.services import api_key_create, membership_add
from tests.billing.test_weekly_report import build_week
from tests.conftest import Persona, key_client

PAGE = "/reports/weekly/"
CSV_URL = "/api/v1/reports/weekly.csv"


@pytest.fixture
def week(alice: Persona, bob: Persona) -> Tenant:
    build_week(alice.tenant)
    return alice.tenant


def test_a_member_sees_the_report_of_the_week(week: Tenant, bob: Persona) -> None:
    response = bob.client.get(PAGE, {"week": "2025-03-03"})

    assert response.status_code == 200
    html = response.content.decode()
    for figure in ("$3.80", "$4.00", "$27.50", "anthropic/claude-big", "alice-app"):
        assert figure in html
    assert "<script" not in html.lower()
    assert "week=2025-02-24" in html and "week=2025-03-10" in html  # navigation


def test_an_outsider_gets_404_and_their_own_tenant_only(week: Tenant, charlie: Persona) -> None:
    assert charlie.client.get(PAGE, {"week": "2025-03-03", "tenant": "acme"}).status_code == 404
    assert (
        charlie.client.get(PAGE, {"week": "2025-03-03"}, HTTP_X_AURA_TENANT="acme").status_code
        == 404
    )
    own = charlie.client.get(PAGE, {"week": "2025-03-03"})
    assert own.status_code == 200
    assert "Globex" in own.content.decode() and "$3.80" not in own.content.decode()


def test_anonymous_visitors_are_sent_to_log_in(week: Tenant) -> None:
    response = Client().get(PAGE)
    assert response.status_code == 302
    assert response["Location"].startswith("/login/")


@pytest.mark.parametrize("bad", ["2025-03-04", "last-week"])
def test_a_week_that_is_not_a_monday_is_refused(week: Tenant, alice: Persona, bad: str) -> None:
    assert alice.client.get(PAGE, {"week": bad}).status_code == 400
    assert alice.client.get(CSV_URL, {"week": bad}).status_code == 400


def test_the_default_week_is_the_last_full_week(week: Tenant, alice: Persona) -> None:
    with time_machine.travel(datetime(2025, 3, 12, 12, tzinfo=UTC), tick=False):
        response = alice.client.get(PAGE)
    assert response.status_code == 200
    assert "$3.80" in response.content.decode()


def test_a_member_of_several_tenants_picks_one(week: Tenant, globex: Tenant) -> None:
    user = get_user_model().objects.create_user("multi", "multi@example.test", "pw")
    membership_add(tenant=week, user=user, role=Role.VIEWER)
    membership_add(tenant=globex, user=user, role=Role.VIEWER)
    client = Client()
    client.force_login(user)

    chooser = client.get(PAGE, {"week": "2025-03-03"})
    assert chooser.status_code == 400
    assert "tenant=acme" in chooser.content.decode()
    assert "tenant=globex" in chooser.content.decode()
    assert "$3.80" in client.get(PAGE, {"week": "2025-03-03", "tenant": "acme"}).content.decode()


def read_csv(response: Any) -> list[dict[str, str]]:
    assert response["Content-Type"].startswith("text/csv")
    return list(csv.DictReader(io.StringIO(response.content.decode())))


def test_the_csv_has_one_row_per_day_provider_and_model(week: Tenant, alice: Persona) -> None:
    response = alice.client.get(CSV_URL, {"week": "2025-03-03"})

    assert response.status_code == 200
    assert "aura-acme-week-2025-03-03.csv" in response["Content-Disposition"]
    rows = read_csv(response)
    assert [(r["day"], r["provider"], r["model"]) for r in rows] == [
        ("2025-03-03", "openai", "gpt-small"),
        ("2025-03-05", "anthropic", "claude-big"),
        ("2025-03-06", "openai", "gpt-small"),
        ("2025-03-09", "openai", "gpt-small"),
    ]
    monday = rows[0]
    assert monday["requests"] == "1" and monday["errors"] == "0"
    assert (monday["prompt_tokens"], monday["completion_tokens"]) == ("1000000", "500000")
    assert monday["cost_usd"] == "2"
    assert monday["baseline_cost_usd"] == "25"
    assert monday["baseline_savings_usd"] == "23"
    assert rows[2]["errors"] == "1"
    assert (rows[2]["cost_usd"], rows[2]["cache_savings_usd"]) == ("0", "0")  # not 0E-10


def test_the_csv_accepts_a_manage_key_and_refuses_others(week: Tenant, charlie: Persona) -> None:
    manage = api_key_create(tenant=week, name="exporter", can_manage=True)[1]
    gateway_only = api_key_create(tenant=week, name="app-only")[1]

    assert len(read_csv(key_client(manage).get(CSV_URL, {"week": "2025-03-03"}))) == 4
    assert key_client(gateway_only).get(CSV_URL, {"week": "2025-03-03"}).status_code == 403
    assert charlie.client.get(CSV_URL, {"week": "2025-03-03", "tenant": "acme"}).status_code == 404
    assert read_csv(charlie.client.get(CSV_URL, {"week": "2025-03-03"})) == []


# --------------------------------------------------------------------------- admin


@pytest.fixture
def admin_client_(db: Any) -> Client:
    user = get_user_model().objects.create_superuser("root", "root@example.test", "pw")
    client = Client()
    client.force_login(user)
    return client


def test_the_billing_admin_pages_open(week: Tenant, admin_client_: Client) -> None:
    for model in ("budget", "budgetalert", "dailyrollup", "usagerecord", "weeklyreport"):
        assert admin_client_.get(f"/admin/billing/{model}/").status_code == 200, model
    assert admin_client_.get("/admin/billing/usagerecord/add/").status_code == 403
    assert (
        "Send weekly report now"
        in admin_client_.get("/admin/billing/weeklyreport/").content.decode()
    )


def test_send_weekly_report_now_sends_the_last_full_week_once_unless_resent(
    week: Tenant,
    admin_client_: Client,
    mailoutbox: list[Any],
    eager_celery: None,
    django_capture_on_commit_callbacks: Any,
) -> None:
    url = "/admin/billing/weeklyreport/send-now/"
    assert admin_client_.get(url).status_code == 200
    # Wednesday: no Monday check, the last full week is 3-9 March.
    with time_machine.travel(datetime(2025, 3, 12, 12, tzinfo=UTC), tick=False):
        for resend in ("", "", "on"):
            with django_capture_on_commit_callbacks(execute=True):
                response = admin_client_.post(url, {"tenant": week.pk, "resend": resend})
            assert response.status_code == 302

    assert sorted(m.to[0] for m in mailoutbox) == [
        "alice@example.test",
        "alice@example.test",
        "ops@acme.test",
        "ops@acme.test",
    ]
    assert "$3.80" in mailoutbox[0].subject
    assert WeeklyReport.objects.get().week_start.isoformat() == "2025-03-03"


def test_send_now_refuses_a_week_that_is_not_a_monday(week: Tenant, admin_client_: Client) -> None:
    response = admin_client_.post(
        "/admin/billing/weeklyreport/send-now/", {"tenant": week.pk, "week": "2025-03-04"}
    )
    assert response.status_code == 200
    assert "Pick a Monday." in response.content.decode()


def test_the_rollup_admin_recomputes_selected_days(week: Tenant, admin_client_: Client) -> None:
    from billing.models import DailyRollup, UsageRecord

    row = DailyRollup.objects.get(tenant=week, day="2025-03-05")
    UsageRecord.objects.filter(tenant=week, model="claude-big").update(cost_usd=5)
    response = admin_client_.post(
        "/admin/billing/dailyrollup/", {"action": "recompute", "_selected_action": [row.pk]}
    )
    assert response.status_code == 302
    row.refresh_from_db()
    assert row.cost_usd == 5


def test_a_budget_edited_in_the_admin_reaches_the_gateway_at_once(
    acme: Tenant, admin_client_: Client, django_capture_on_commit_callbacks: Any
) -> None:
    from billing.models import Budget
    from routing.gateway.context import cache

    budget = Budget.objects.create(tenant=acme, period="day", limit_usd=10)
    assert [r.limit_usd for r in cache.get(acme.pk).budgets] == [10]
    form = {
        "tenant": acme.pk,
        "api_key": "",
        "period": "day",
        "limit_usd": "25",
        "mode": "block",
        "thresholds": "[50, 100]",
        "webhook_url": "",
        "enabled": "on",
    }
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client_.post(f"/admin/billing/budget/{budget.pk}/change/", form)
    assert response.status_code == 302, response.content.decode()[:2000]
    assert [r.limit_usd for r in cache.get(acme.pk).budgets] == [25]


def test_the_budget_admin_refuses_an_internal_webhook(acme: Tenant, admin_client_: Client) -> None:
    from billing.models import Budget

    form = {
        "tenant": acme.pk,
        "period": "day",
        "limit_usd": "25",
        "mode": "block",
        "thresholds": "[50, 100]",
        "webhook_url": "http://[64:ff9b::a9fe:a9fe]/latest/meta-data/",
        "enabled": "on",
    }
    response = admin_client_.post("/admin/billing/budget/add/", form)
    assert response.status_code == 200
    assert "link-local" in response.context["adminform"].form.errors["webhook_url"][0]
    assert not Budget.objects.exists()


def test_this_weeks_page_and_csv_count_todays_usage_before_any_rollup(alice: Persona) -> None:
    from billing.models import DailyRollup, UsageRecord
    from billing.rollups import local_today

    now = timezone.now()
    for i in range(3):
        UsageRecord.objects.create(
            tenant=alice.tenant,
            created_at=now - timedelta(seconds=i),
            request_id=f"live-{i}",
            provider="openai",
            model="gpt-small",
            status="ok",
            prompt_tokens=100,
            cost_usd=Decimal("0.25"),
        )
    today = local_today(alice.tenant.timezone)
    monday = (today - timedelta(days=today.weekday())).isoformat()
    assert not DailyRollup.objects.exists()

    rows = read_csv(alice.client.get(CSV_URL, {"week": monday}))
    assert sum(int(r["requests"]) for r in rows) == 3
    assert sum(Decimal(r["cost_usd"]) for r in rows) == Decimal("0.75")
    html = alice.client.get(PAGE, {"week": monday}).content.decode()
    assert "$0.75" in html
