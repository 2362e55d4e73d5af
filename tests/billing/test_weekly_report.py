"""Weekly cost report: figures from rollups, a real SMTP delivery, once per week.

The scenario (tenant acme in Europe/Paris, UTC+1 in March 2025), week Mon 3 - Sun 9 March:

  Mon 10:00  alice-app  openai/gpt-small     1,000,000 in  500,000 out  $2.00
  Wed 15:00  batch      anthropic/claude-big   100,000 in   10,000 out  $1.30
  Thu 09:00  batch      openai/gpt-small     error, no tokens           $0.00
  Sun 23:30  alice-app  openai/gpt-small       500,000 in        0 out  $0.50
  Mon 10 March 00:30 (next week, 23:30 UTC on Sunday)                   $3.00
  Tue 25 February (the week before)                                     $4.00

Week: $3.80 (week before $4.00: -5.0 %), 4 requests, 1 error, 1,600,000 + 510,000 tokens.
Premium baseline: anthropic/claude-big ($10 in / $30 out per Mtok; openai/gpt-huge has a
better quality but the policy denies it): $25.00 + $1.30 + $5.00 = $31.30, so the savings
are $31.30 - $3.80 = $27.50.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.contrib.auth import get_user_model

from billing.models import Budget, UsageRecord, WeeklyReport
from billing.reports import (
    due_weekly_reports,
    premium_baseline_model,
    weekly_report_data,
    weekly_report_send,
)
from billing.rollups import rollups_refresh
from billing.tasks import send_due_weekly_reports
from routing.models import CatalogModel, Provider, RoutingPolicy
from tenants.models import Role, Tenant
from tenants.services import api_key_create, membership_add
from tests.billing.smtp import SmtpSink
from tests.conftest import Persona

WEEK = date(2025, 3, 3)
SEND_AT = datetime(2025, 3, 10, 7, 0, tzinfo=UTC)  # Monday 08:00 in Paris


def paris(day: int, hour: int, minute: int = 0, month: int = 3) -> datetime:
    return datetime(2025, month, day, hour, minute, tzinfo=ZoneInfo("Europe/Paris"))


def build_catalog() -> None:
    openai = Provider.objects.create(slug="openai", name="OpenAI", wire_format="openai")
    anthropic = Provider.objects.create(slug="anthropic", name="Anthropic", wire_format="anthropic")
    CatalogModel.objects.create(
        provider=openai,
        model_id="gpt-small",
        input_price_per_mtok=Decimal(1),
        output_price_per_mtok=Decimal(2),
        quality={"chat": 0.6, "code": 0.5},
    )
    CatalogModel.objects.create(
        provider=anthropic,
        model_id="claude-big",
        input_price_per_mtok=Decimal(10),
        output_price_per_mtok=Decimal(30),
        quality={"chat": 0.9, "code": 0.9},
    )
    CatalogModel.objects.create(
        provider=openai,
        model_id="gpt-huge",
        input_price_per_mtok=Decimal(50),
        output_price_per_mtok=Decimal(100),
        quality={"chat": 0.95},
    )
    CatalogModel.objects.create(
        provider=openai,
        model_id="gpt-disabled",
        input_price_per_mtok=Decimal(1),
        output_price_per_mtok=Decimal(1),
        quality={"chat": 1.0},
        enabled=False,
    )


def build_week(tenant: Tenant) -> None:
    """The scenario of the module docstring, rolled up."""
    tenant.timezone = "Europe/Paris"
    tenant.save(update_fields=["timezone"])
    Tenant.objects.filter(pk=tenant.pk).update(created_at=datetime(2025, 1, 1, tzinfo=UTC))
    build_catalog()
    RoutingPolicy.objects.create(tenant=tenant, denied_models=["openai/gpt-huge"])
    app = api_key_create(tenant=tenant, name="alice-app")[0]
    batch = api_key_create(tenant=tenant, name="batch")[0]

    def rec(at: datetime, key: Any, provider: str, model: str, **f: Any) -> None:
        UsageRecord.objects.create(
            tenant=tenant,
            created_at=at,
            request_id=f"r{UsageRecord.objects.count()}",
            api_key=key,
            provider=provider,
            model=model,
            status=f.pop("status", "ok"),
            **f,
        )

    small, big = ("openai", "gpt-small"), ("anthropic", "claude-big")
    m = 1_000_000
    rec(paris(3, 10), app, *small, prompt_tokens=m, completion_tokens=m // 2, cost_usd=2)
    rec(
        paris(5, 15),
        batch,
        *big,
        prompt_tokens=m // 10,
        completion_tokens=10_000,
        cost_usd=Decimal("1.30"),
    )
    rec(paris(6, 9), batch, *small, status="error", http_status=500)
    rec(paris(9, 23, 30), app, *small, prompt_tokens=m // 2, cost_usd=Decimal("0.50"))
    rec(paris(10, 0, 30), app, *small, prompt_tokens=m, cost_usd=3)
    rec(paris(25, 12, month=2), app, *small, prompt_tokens=m, cost_usd=4)
    days = [WEEK + timedelta(days=i) for i in range(-7, 8)]
    rollups_refresh(days=days, tenant_ids=[tenant.pk])


@pytest.fixture
def scenario(alice: Persona, bob: Persona) -> Tenant:
    """alice: admin; bob: member (never emailed); dave: admin who opted out."""
    tenant = alice.tenant
    dave = get_user_model().objects.create_user("dave", "dave@example.test", "pw")
    membership = membership_add(tenant=tenant, user=dave, role=Role.ADMIN)
    membership.weekly_report_opt_out = True
    membership.save(update_fields=["weekly_report_opt_out"])
    build_week(tenant)
    return tenant


def test_the_data_has_the_hand_computed_figures(scenario: Tenant) -> None:
    data = weekly_report_data(scenario, WEEK, now=SEND_AT)
    t = data["totals"]
    assert t["cost_usd"] == Decimal("3.80")
    assert t["previous_cost_usd"] == Decimal("4.00")
    assert t["change_pct"] == Decimal("-5.0")
    assert (t["requests"], t["errors"]) == (4, 1)
    assert (t["prompt_tokens"], t["completion_tokens"]) == (1_600_000, 510_000)
    assert data["baseline"]["model"] == "anthropic/claude-big"
    assert t["baseline_cost_usd"] == Decimal("31.30")
    assert t["baseline_savings_usd"] == Decimal("27.50")
    assert t["cache_savings_usd"] == 0
    assert [(d["day"].day, d["cost_usd"]) for d in data["by_day"]] == [
        (3, Decimal("2.00")),
        (4, 0),
        (5, Decimal("1.30")),
        (6, 0),
        (7, 0),
        (8, 0),
        (9, Decimal("0.50")),
    ]
    assert [(p["provider"], p["cost_usd"]) for p in data["by_provider"]] == [
        ("openai", Decimal("2.50")),
        ("anthropic", Decimal("1.30")),
    ]
    assert [(k["name"], k["cost_usd"], k["requests"]) for k in data["top_keys"]] == [
        ("alice-app", Decimal("2.50"), 2),
        ("batch", Decimal("1.30"), 2),
    ]


def test_budget_status_shows_this_periods_spend(scenario: Tenant) -> None:
    Budget.objects.create(tenant=scenario, period="month", limit_usd=Decimal(10))
    Budget.objects.create(tenant=scenario, period="day", limit_usd=Decimal(5), enabled=False)

    [budget] = weekly_report_data(scenario, WEEK, now=SEND_AT)["budgets"]

    # March in Paris, up to Monday 10 March 08:00: 2.00 + 1.30 + 0.50 + 3.00.
    assert budget["spent_usd"] == Decimal("6.80")
    assert budget["percent_used"] == Decimal("68.0")
    assert budget["resets_at"] == "2025-04-01 00:00"


def test_the_baseline_respects_the_policy_and_the_catalog(acme: Tenant) -> None:
    build_catalog()
    assert premium_baseline_model(acme).key == "openai/gpt-huge"  # type: ignore[union-attr]
    RoutingPolicy.objects.create(tenant=acme, allowed_providers=["anthropic"])
    assert premium_baseline_model(acme).key == "anthropic/claude-big"  # type: ignore[union-attr]
    RoutingPolicy.objects.filter(tenant=acme).update(
        allowed_providers=None, denied_providers=["openai", "anthropic"]
    )
    assert premium_baseline_model(acme) is None


def test_the_report_reaches_admins_and_contacts_by_smtp(scenario: Tenant, smtp: SmtpSink) -> None:
    report = weekly_report_send(scenario, WEEK, now=SEND_AT)

    assert report is not None and report.sent_at == SEND_AT
    assert smtp.recipients == ["alice@example.test", "ops@acme.test"]  # not bob, not dave
    assert sorted(report.recipients) == ["alice@example.test", "ops@acme.test"]
    assert report.totals["cost_usd"] == "3.8"
    msg = smtp.to("alice@example.test")[0]
    assert msg.message.get_content_type() == "multipart/alternative"
    assert msg.subject == "AURA weekly report for Acme, week of Mar 3, 2025: $3.80 spent"
    for body in (msg.text, msg.html):
        for figure in ("$3.80", "$4.00", "-5.0%", "$31.30", "$27.50", "$2.50", "$1.30"):
            assert figure in body, figure
        for name in ("anthropic/claude-big", "gpt-small", "alice-app", "batch"):
            assert name in body
    assert "1600000 prompt" in msg.text and "510000 completion" in msg.text
    assert "4 (1 errors, 25.0%)" in msg.text


def test_the_html_is_self_contained(scenario: Tenant, smtp: SmtpSink) -> None:
    weekly_report_send(scenario, WEEK, now=SEND_AT)
    html = smtp.messages[0].html.lower()
    assert "<script" not in html
    assert "javascript:" not in html
    assert not re.search(r"\son[a-z]+\s*=", html)  # no event handlers
    assert not re.search(r"<img[^>]+src=[\"']?https?:", html)
    assert "<style" not in html and "<link" not in html and "class=" not in html
    # The day chart is bars sized inline: Monday ($2.00) is the longest, Sunday a quarter.
    assert "width:100%" in html and "width:25%" in html


def test_sending_the_same_week_twice_sends_once(scenario: Tenant, smtp: SmtpSink) -> None:
    first = weekly_report_send(scenario, WEEK, now=SEND_AT)
    second = weekly_report_send(scenario, WEEK, now=SEND_AT + timedelta(hours=1))

    assert first is not None and second is None
    assert len(smtp.messages) == 2
    assert WeeklyReport.objects.get().sent_at == SEND_AT


def test_resend_sends_again_and_records_it(scenario: Tenant, smtp: SmtpSink) -> None:
    weekly_report_send(scenario, WEEK, now=SEND_AT)
    later = SEND_AT + timedelta(days=1)
    again = weekly_report_send(scenario, WEEK, resend=True, now=later)

    assert again is not None and again.sent_at == later
    assert len(smtp.messages) == 4
    assert WeeklyReport.objects.count() == 1


def test_an_smtp_failure_releases_the_claim(
    scenario: Tenant, smtp: SmtpSink, settings: Any
) -> None:
    settings.EMAIL_PORT = 9  # discard: nothing listens on loopback
    with pytest.raises(OSError):
        weekly_report_send(scenario, WEEK, now=SEND_AT)
    assert WeeklyReport.objects.get().sent_at is None

    settings.EMAIL_PORT = smtp.port
    assert weekly_report_send(scenario, WEEK, now=SEND_AT) is not None
    assert len(smtp.messages) == 2


def test_the_sent_report_includes_late_usage(scenario: Tenant, smtp: SmtpSink) -> None:
    UsageRecord.objects.create(
        tenant=scenario,
        created_at=paris(8, 12),
        request_id="late",
        provider="openai",
        model="gpt-small",
        status="ok",
        cost_usd=Decimal("1.00"),
    )
    weekly_report_send(scenario, WEEK, now=SEND_AT)
    assert "$4.80" in smtp.messages[0].text


# --------------------------------------------------------------------------- due reports


@pytest.fixture
def tokyo(globex: Tenant) -> Tenant:
    globex.timezone = "Asia/Tokyo"
    globex.save(update_fields=["timezone"])
    Tenant.objects.filter(pk=globex.pk).update(created_at=datetime(2025, 1, 1, tzinfo=UTC))
    UsageRecord.objects.create(
        tenant=globex,
        created_at=datetime(2025, 3, 4, tzinfo=UTC),
        request_id="g",
        provider="openai",
        model="m",
        status="ok",
    )
    rollups_refresh(days=[date(2025, 3, 4)], tenant_ids=[globex.pk])
    return globex


def due_at(moment: datetime) -> list[tuple[str, date]]:
    with time_machine.travel(moment, tick=False):
        return [(t.slug, week) for t, week in due_weekly_reports()]


def test_reports_are_due_from_monday_8am_tenant_local(scenario: Tenant, tokyo: Tenant) -> None:
    WeeklyReport.objects.create(
        tenant=scenario, week_start=WEEK - timedelta(days=7), sent_at=SEND_AT
    )
    # Monday 08:00 in Tokyo is Sunday 23:00 UTC; in Paris it is Monday 07:00 UTC.
    assert due_at(datetime(2025, 3, 9, 22, 59, tzinfo=UTC)) == []
    assert due_at(datetime(2025, 3, 9, 23, 0, tzinfo=UTC)) == [("globex", WEEK)]
    assert due_at(datetime(2025, 3, 10, 6, 59, tzinfo=UTC)) == [("globex", WEEK)]
    assert due_at(SEND_AT) == [("acme", WEEK), ("globex", WEEK)]


def test_a_report_missed_on_monday_is_still_sent_that_week(scenario: Tenant) -> None:
    # Beat was down all Monday: on Thursday the week just ended is still due, not older ones.
    assert due_at(SEND_AT + timedelta(days=3)) == [("acme", WEEK)]
    WeeklyReport.objects.create(tenant=scenario, week_start=WEEK, sent_at=SEND_AT)
    assert due_at(SEND_AT + timedelta(days=3)) == []


def test_sent_suspended_new_and_idle_tenants_are_not_due(
    scenario: Tenant, tokyo: Tenant, charlie: Persona
) -> None:
    WeeklyReport.objects.create(tenant=tokyo, week_start=WEEK, sent_at=SEND_AT)
    assert due_at(SEND_AT) == [("acme", WEEK)]
    Tenant.objects.filter(pk=scenario.pk).update(status=Tenant.Status.SUSPENDED)
    assert due_at(SEND_AT) == []
    Tenant.objects.filter(pk=scenario.pk).update(
        status=Tenant.Status.ACTIVE, created_at=datetime(2025, 3, 10, 0, 0, tzinfo=UTC)
    )
    assert due_at(SEND_AT) == []  # created after the week ended (Paris midnight = 23:00 UTC)
    fresh = Tenant.objects.create(name="Idle", slug="idle")
    Tenant.objects.filter(pk=fresh.pk).update(created_at=datetime(2025, 1, 1, tzinfo=UTC))
    assert due_at(SEND_AT) == []  # no usage in the week or the one before


def test_the_hourly_task_sends_each_due_report_once(
    scenario: Tenant,
    smtp: SmtpSink,
    eager_celery: None,
    django_capture_on_commit_callbacks: Any,
) -> None:
    with time_machine.travel(SEND_AT + timedelta(minutes=5), tick=False):
        with django_capture_on_commit_callbacks(execute=True):
            assert send_due_weekly_reports() == 1
        with django_capture_on_commit_callbacks(execute=True):
            assert send_due_weekly_reports() == 0  # an hour later, or a double-fired beat

    assert smtp.recipients == ["alice@example.test", "ops@acme.test"]
    assert WeeklyReport.objects.get(tenant=scenario).week_start == WEEK


def test_the_report_says_what_the_weight_optimizer_changed(
    scenario: Tenant, smtp: SmtpSink
) -> None:
    from routing.learning.models import WeightOptimization

    def run(at: datetime, status: str, **extra: Any) -> None:
        row = WeightOptimization.objects.create(
            tenant=scenario,
            trigger="schedule",
            scheduled_for=at.date(),
            method="outcome",
            goal="balanced",
            status=status,
            message=f"{status} message",
            window_start=at - timedelta(days=7),
            window_end=at,
            objective_before="maximize_quality",
            weights_before={"quality": 0.8, "cost": 0.1, "latency": 0.1},
            policy_version_before=3,
            **extra,
        )
        WeightOptimization.objects.filter(pk=row.pk).update(created_at=at)

    run(
        paris(9, 2),
        "applied",
        weights_after={"quality": 0.6, "cost": 0.4, "latency": 0.0},
        figures={
            "before": {"cases": 120, "quality": 0.91, "cost_usd": 0.004},
            "after": {"cases": 120, "quality": 0.9, "cost_usd": 0.0015},
        },
    )
    run(paris(2, 2), "unchanged")  # the week before: not in this report
    weekly_report_send(scenario, WEEK, now=SEND_AT)
    msg = smtp.to("alice@example.test")[0]
    for body in (msg.text, msg.html):
        assert "Sun 2025-03-09 02:00" in body
        assert "applied message" in body and "unchanged message" not in body
        assert "quality 0.8 / cost 0.1 / latency 0.1" in body
        assert "quality 0.6 / cost 0.4 / latency 0" in body
        assert "120 held-out prompts" in body and "0.910" in body and "$0.0015" in body
