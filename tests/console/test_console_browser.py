"""The tenant console in a real browser (Debian's chromium through pytest-playwright).

alice is an admin of Acme, vic a viewer of Acme, charlie an admin of Globex.
"""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from billing.models import Budget, UsageRecord
from tenants.models import ApiKey, Role
from tenants.services import api_key_create, membership_add

pytestmark = pytest.mark.django_db(transaction=True)


def traffic(tenant: Any) -> None:
    """Requests over the last days, the last one a minute ago (not rolled up: live)."""
    key = api_key_create(tenant=tenant, name="app")[0]
    now = timezone.now()
    for i, (ago, cost, model) in enumerate(
        [
            (timedelta(minutes=1), "0.40", "gpt-small"),
            (timedelta(hours=2), "0.10", "gpt-small"),
            (timedelta(days=1, hours=1), "1.25", "claude-big"),
            (timedelta(days=3), "0.75", "gpt-small"),
        ]
    ):
        UsageRecord.objects.create(
            tenant=tenant,
            created_at=now - ago,
            request_id=f"req-{i}",
            api_key=key,
            provider="openai" if model == "gpt-small" else "anthropic",
            model=model,
            status="ok",
            prompt_tokens=1000,
            completion_tokens=200,
            cost_usd=Decimal(cost),
            latency_ms=300 + 100 * i,
        )


def test_a_signed_out_visitor_is_sent_to_sign_in_and_lands_on_the_overview(
    live_server: Any, page: Any, alice: Any
) -> None:
    page.goto(f"{live_server.url}/keys/")
    assert page.url.startswith(f"{live_server.url}/login/?next=/keys/")
    page.fill("#id_username", "alice")
    page.fill("#id_password", "wrong")
    page.click("button[type=submit]")
    assert "did not match" in page.text_content(".msg.error")
    page.fill("#id_username", "alice")
    page.fill("#id_password", "pw-alice")
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_server.url}/keys/")
    assert page.text_content("h1") == "API keys"
    assert "admin" in page.text_content(".role")


def test_the_overview_shows_current_spend_and_charts_with_data(
    live_server: Any, signed_in: Any, alice: Any
) -> None:
    traffic(alice.tenant)
    Budget.objects.create(tenant=alice.tenant, period="month", limit_usd=Decimal(10))
    page = signed_in("alice")
    # Today's spend includes the request of a minute ago (no rollup has run).
    today = page.text_content("[data-figure=spend-today] .value")
    assert today in ("$0.50", "$0.40")  # both today unless "2 hours ago" was yesterday
    month = page.text_content("[data-figure=spend-month]")
    assert "of the $10.00 monthly budget" in month
    assert page.locator("svg[data-chart=spend-per-day] rect.bar").count() == 30
    heights = page.eval_on_selector_all(
        "svg[data-chart=spend-per-day] rect.bar", "bars => bars.map(b => b.getBBox().height)"
    )
    assert sum(1 for h in heights if h > 0) >= 2  # today and earlier days have spend
    assert max(heights) > 100  # the largest day fills the chart
    hourly = page.locator("svg[data-chart=requests-per-hour] rect.bar")
    assert hourly.count() == 24
    assert "gpt-small" in page.text_content("main") and "claude-big" in page.text_content("main")
    assert "Month-end forecast" in page.text_content("[data-figure=forecast]")


def test_an_admin_creates_a_key_sees_it_once_and_revokes_it(
    live_server: Any, signed_in: Any, alice: Any
) -> None:
    page = signed_in("alice")
    page.click("text=API keys")
    page.fill("#id_name", "checkout-service")
    page.click("button:has-text('Create key')")
    secret = page.text_content("#new-key").strip()
    assert re.fullmatch(r"aura-\w+\.[\w-]+", secret), secret
    key = ApiKey.objects.get(tenant=alice.tenant, name="checkout-service")
    assert secret.startswith(f"aura-{key.prefix}") or key.prefix in secret
    # Shown once: a reload of the list does not show it again.
    page.goto(f"{live_server.url}/keys/")
    assert page.locator("#new-key").count() == 0
    assert secret not in page.content()
    row = page.locator(f"tr[data-key='{key.prefix}']")
    assert row.locator(".pill").text_content() == "active"
    page.once("dialog", lambda dialog: dialog.accept())
    row.locator("button:has-text('Revoke')").click()
    page.wait_for_selector(".msg.success")
    assert "is revoked" in page.text_content(".msg.success")
    assert page.locator(f"tr[data-key='{key.prefix}'] .pill").text_content() == "revoked"
    key.refresh_from_db()
    assert key.revoked_at is not None


def test_a_viewer_sees_no_forms_and_cannot_post(
    live_server: Any, signed_in: Any, acme: Any
) -> None:
    viewer = get_user_model().objects.create_user("vic", "vic@example.test", "pw-vic")
    membership_add(tenant=acme, user=viewer, role=Role.VIEWER)
    key = api_key_create(tenant=acme, name="app")[0]
    page = signed_in("vic")
    page.click("text=API keys")
    assert page.locator("#id_name").count() == 0
    assert page.locator("button:has-text('Revoke')").count() == 0
    assert "viewer" in page.text_content(".role")
    # A forged post (valid session and CSRF token) is refused for the role, not the token.
    token = next(c["value"] for c in page.context.cookies() if c["name"] == "csrftoken")
    resp = page.request.post(
        f"{live_server.url}/keys/{key.pk}/revoke/",
        headers={"X-CSRFToken": token, "Referer": f"{live_server.url}/keys/"},
    )
    assert resp.status == 403
    assert "needs the <strong>Admin</strong> role" in resp.text()
    key.refresh_from_db()
    assert key.revoked_at is None


def test_a_user_of_two_tenants_switches_between_them(
    live_server: Any, signed_in: Any, alice: Any, globex: Any
) -> None:
    membership_add(tenant=globex, user=alice.user, role=Role.VIEWER)
    page = signed_in("alice")
    assert page.locator("#tenant-select").input_value() == "acme"
    page.select_option("#tenant-select", "globex")
    page.wait_for_selector(".msg")
    assert "Now showing Globex" in page.text_content(".msg")
    assert page.text_content(".role") == "viewer"


def test_an_admin_creates_a_budget_and_sees_its_spend(
    live_server: Any, signed_in: Any, alice: Any
) -> None:
    traffic(alice.tenant)
    page = signed_in("alice")
    page.click("text=Budgets & alerts")
    page.fill("#b-limit", "-3")
    page.click("button:has-text('Add budget')")
    assert "greater than 0" in page.text_content(".errorlist")
    assert not Budget.objects.filter(tenant=alice.tenant).exists()
    page.select_option("#b-period", "day")
    page.fill("#b-limit", "2")
    page.fill("#b-thresholds", "50, 80")
    page.click("button:has-text('Add budget')")
    page.wait_for_selector(".msg.success")
    budget = Budget.objects.get(tenant=alice.tenant)
    assert (budget.period, budget.limit_usd, budget.thresholds) == ("day", Decimal(2), [50, 80])
    row = page.locator(f"tr[data-budget='{budget.pk}']")
    # Today's live spend against it ($0.40 or $0.50 depending on the hour).
    assert re.search(r"\$0\.[45]0 of \$2\.00", row.text_content())
    row.locator("button:has-text('Turn off')").click()
    page.wait_for_selector(".msg.success")
    budget.refresh_from_db()
    assert budget.enabled is False
    # The same budget twice is refused, naming the clash.
    page.select_option("#b-period", "day")
    page.fill("#b-limit", "5")
    page.click("button:has-text('Add budget')")
    assert "already is a day budget" in page.text_content("main")


def _route(page: Any, live_server: Any, text: str = "Say hello") -> dict[str, Any]:
    """POST /api/v1/route with the browser's session (and its CSRF token)."""
    token = next(c["value"] for c in page.context.cookies() if c["name"] == "csrftoken")
    resp = page.request.post(
        f"{live_server.url}/api/v1/route",
        data={"model": "auto", "messages": [{"role": "user", "content": text}]},
        headers={"X-CSRFToken": token, "Referer": f"{live_server.url}/policy/"},
    )
    assert resp.status == 200, resp.text()
    body: dict[str, Any] = resp.json()
    return body


def test_editing_the_policy_changes_where_requests_go(
    live_server: Any, signed_in: Any, alice: Any
) -> None:
    from routing.gateway import context
    from routing.models import CatalogModel, Provider, RoutingPolicy

    for slug, model, quality, price in (("alpha", "small", 0.6, 0.1), ("beta", "big", 0.9, 5.0)):
        p = Provider.objects.create(
            slug=slug, name=slug, wire_format="ollama", default_base_url="http://127.0.0.1:9"
        )
        CatalogModel.objects.create(
            provider=p, model_id=model, quality={"chat": quality}, capabilities=["chat"],
            input_price_per_mtok=price, output_price_per_mtok=price, tier="balanced",
        )  # fmt: skip
    context.cache.clear()
    page = signed_in("alice")
    page.click("text=Routing policy")
    page.select_option("#p-objective", "maximize_quality")
    page.click("button:has-text('Save policy')")
    page.wait_for_selector(".msg.success")
    assert _route(page, live_server)["model"] == "beta/big"

    # Sliders: all weight on cost makes the objective custom and the cheap model wins.
    page.fill("#w-cost", "1")  # fires input: quality and latency follow to 0
    assert page.input_value("#p-objective") == "custom"
    assert page.text_content("#w-quality-out") == "0.00"
    page.click("button:has-text('Save policy')")
    page.wait_for_selector(".msg.success")
    policy = RoutingPolicy.objects.get(tenant=alice.tenant)
    assert policy.objective == "custom" and policy.weights == {
        "quality": 0.0, "cost": 1.0, "latency": 0.0,
    }  # fmt: skip
    context.cache.clear()  # the live server's process: as other processes do within a second
    assert _route(page, live_server)["model"] == "alpha/small"

    # Deny a provider with the picker: routing follows.
    page.check("input[name=denied_providers][value=alpha]")
    page.click("button:has-text('Save policy')")
    page.wait_for_selector(".msg.success")
    context.cache.clear()
    body = _route(page, live_server)
    assert body["model"] == "beta/big"
    assert {e["model"]: e["reason"] for e in body["excluded"]}["alpha/small"] == "provider_denied"

    # A bad value names the field and saves nothing.
    version = RoutingPolicy.objects.get(tenant=alice.tenant).version
    page.fill("#p-min-quality", "1.5")
    page.click("button:has-text('Save policy')")
    assert "min_quality must be a number between 0 and 1" in page.text_content("[data-errors]")
    assert RoutingPolicy.objects.get(tenant=alice.tenant).version == version


def test_the_request_log_filters_and_explains_a_fallback(
    live_server: Any, signed_in: Any, alice: Any
) -> None:
    traffic(alice.tenant)
    UsageRecord.objects.create(
        tenant=alice.tenant, created_at=timezone.now(), request_id="req-fallback",
        provider="anthropic", model="claude-big", status="ok", fallbacks=1,
        prompt_tokens=10, completion_tokens=5, cost_usd=Decimal("0.01"), latency_ms=900,
        attempts=[
            {"model": "openai/gpt-small", "provider": "openai", "ok": False, "error": "rate_limited",
             "status": 429, "message": "slow down", "latency_ms": 120.0},
            {"model": "anthropic/claude-big", "provider": "anthropic", "ok": True, "latency_ms": 760.0},
        ],
    )  # fmt: skip
    page = signed_in("alice")
    page.click("text=Requests")
    assert page.locator("tr[data-request]").count() == 3  # 25 h and 3 days ago: outside 24 h
    page.select_option("#f-window", "7d")
    page.fill("#f-model", "claude")
    page.click("button:has-text('Filter')")
    assert page.locator("tr[data-request]").count() == 2
    page.click("tr[data-request='req-fallback'] a")
    assert "req-fallback" in page.text_content("h1")
    first = page.text_content("tr[data-attempt='1']")
    assert "openai/gpt-small" in first and "rate_limited" in first and "429" in first
    assert "anthropic/claude-big" in page.text_content("tr[data-attempt='2']")
