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
