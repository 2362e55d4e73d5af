"""Every page of the Django admin opens for an operator and reads like AURA's: its own title,
rows named by what they are (never "UsageRecord object (3)"), plural names spelled right,
money with the digits that matter, no link to a site page that does not exist."""

from __future__ import annotations

import base64
import os
import re
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.db.models import Model
from django.test import Client, RequestFactory
from django.urls import reverse

from billing.models import Budget, BudgetAlert, DailyRollup, UsageRecord, WeeklyReport
from routing.catalog.services import credential_create
from routing.models import (
    CatalogModel,
    Provider,
    ProviderEndpoint,
    RoutingOutcome,
    RoutingPolicy,
    WeightHistory,
)
from tenants.models import Role, Tenant
from tenants.services import api_key_create, membership_add

pytestmark = pytest.mark.django_db

T0 = datetime(2025, 5, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def operator() -> Client:
    user = get_user_model().objects.create_superuser("olga", "olga@example.test", "pw-olga")
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def one_of_each(acme: Tenant, settings: Any) -> dict[type[Model], Model]:
    """A row of every model the admin shows (the migrations add the beat schedules)."""
    settings.FIELD_ENCRYPTION_KEYS = [base64.urlsafe_b64encode(os.urandom(32)).decode()]
    user = get_user_model().objects.create_user("alice", "alice@example.test", "pw")
    membership = membership_add(tenant=acme, user=user, role=Role.ADMIN)
    key, _ = api_key_create(tenant=acme, name="alice-app")
    provider = Provider.objects.create(slug="openai", name="OpenAI", wire_format="openai")
    model = CatalogModel.objects.create(provider=provider, model_id="gpt-x")
    endpoint = ProviderEndpoint.objects.create(
        provider=provider, name="main", base_url="https://api.openai.test/v1"
    )
    credential = credential_create(provider=provider, name="main", secret="sk-test-0123456789")
    policy = RoutingPolicy.objects.create(tenant=acme, max_cost_per_request=Decimal("0.0000001"))
    history = WeightHistory.objects.create(
        tenant=acme, version=2, weights={"quality": 0.5, "cost": 0.3, "latency": 0.2}
    )
    outcome = RoutingOutcome.objects.create(
        tenant=acme, model_key="openai/gpt-x", success=True, latency_ms=120
    )
    usage = UsageRecord.objects.create(
        tenant=acme,
        created_at=T0,
        request_id="req_admin_page",
        api_key=key,
        provider="openai",
        model="gpt-x",
        status="ok",
        cost_usd=Decimal("0.0000001"),
    )
    budget = Budget.objects.create(tenant=acme, period="day", limit_usd=Decimal("0.000001"))
    alert = BudgetAlert.objects.create(
        tenant=acme,
        budget=budget,
        period_start=T0,
        threshold=50,
        spent_usd=Decimal("0.000001"),
        limit_usd=Decimal("0.000002"),
    )
    rollup = DailyRollup.objects.create(
        tenant=acme, day=date(2025, 5, 1), provider="openai", model="gpt-x", requests=1
    )
    report = WeeklyReport.objects.create(tenant=acme, week_start=date(2025, 4, 28))
    rows: list[Model] = [
        acme,
        membership,
        key,
        provider,
        model,
        endpoint,
        credential,
        policy,
        history,
        outcome,
        usage,
        budget,
        alert,
        rollup,
        report,
        user,
    ]
    return {type(row): row for row in rows}


def _admin_pages(rows: dict[type[Model], Model]) -> list[tuple[str, str]]:
    """Index, and every registered model's changelist, add (where allowed) and change page."""
    request = RequestFactory().get("/admin/")
    request.user = get_user_model().objects.get(username="olga")
    pages: list[tuple[str, str]] = [("index", reverse("admin:index"))]
    for model, model_admin in admin.site._registry.items():
        info = (model._meta.app_label, model._meta.model_name)
        pages.append(("changelist", reverse("admin:{}_{}_changelist".format(*info))))
        if model_admin.has_add_permission(request):
            pages.append(("add", reverse("admin:{}_{}_add".format(*info))))
        row = rows.get(model) or model._default_manager.first()
        if row is not None:
            change = reverse("admin:{}_{}_change".format(*info), args=[row.pk])
            pages.append(("change", change))
    return pages


def test_every_admin_page_opens_and_names_its_rows(
    operator: Client, one_of_each: dict[type[Model], Model]
) -> None:
    pages = _admin_pages(one_of_each)
    assert len(pages) > 3 * len(one_of_each)
    for kind, url in pages:
        resp = operator.get(url)
        assert resp.status_code == 200, (kind, url, resp.status_code)
        html = resp.content.decode()
        assert "object (" not in html, (url, re.findall(r"[\w ]*object \(\d+\)", html))
        assert "Django administration" not in html and "Django site admin" not in html, url
        assert "AURA administration" in html, url
        assert "View site" not in html, url  # there is no site page to go to
        assert not re.search(r"\$0\.0+(?!\d)", html.replace("$0.00<", "")), url
        assert "historys" not in html.lower(), url
        assert "Api key" not in html, url


def test_rows_are_named_by_what_they_are(one_of_each: dict[type[Model], Model]) -> None:
    usage = one_of_each[UsageRecord]
    assert str(usage) == "req_admin_page openai/gpt-x ok"
    assert str(one_of_each[RoutingPolicy]) == "policy of Acme (v1)"
    assert str(one_of_each[Budget]) == "day budget $0.000001 (whole tenant, block)"
    assert str(one_of_each[DailyRollup]) == "2025-05-01 openai/gpt-x (chat)"
    assert WeightHistory._meta.verbose_name_plural == "weight history"


def test_money_shows_the_digits_that_matter(
    operator: Client, one_of_each: dict[type[Model], Model]
) -> None:
    policy = one_of_each[RoutingPolicy]
    html = operator.get(reverse("admin:routing_routingpolicy_change", args=[policy.pk])).content
    assert b'value="0.0000001' in html  # the 1e-7 cap as stored, not 0.000000
    alerts = operator.get(reverse("admin:billing_budgetalert_changelist")).content.decode()
    assert "day budget $0.000001 (whole tenant, block)" in alerts
    assert "$0.000002" in alerts  # the alert's limit column
    usage = operator.get(reverse("admin:billing_usagerecord_changelist")).content.decode()
    assert "$0.0000001" in usage
