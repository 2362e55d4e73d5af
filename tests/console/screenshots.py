"""``make screenshots``: a PNG of every console page, as a tenant admin, as a viewer and as an
operator,
in ``SCREENSHOTS_DIR`` (default var/screenshots), for people to look at.

Run by pytest (it needs the live server, the test database and the browser fixtures) but
not collected with the suite: the file name does not start with ``test_``.
"""

from __future__ import annotations

import os
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth import get_user_model

from billing.models import Budget
from tests.console.test_console_browser import traffic

OUT = Path(os.environ.get("SCREENSHOTS_DIR", "var/screenshots"))
ADMIN_PAGES = [
    ("overview", "/"),
    ("policy", "/policy/"),
    ("keys", "/keys/"),
    ("budgets", "/budgets/"),
    ("members", "/members/"),
    ("requests", "/requests/?window=7d"),
    ("weekly-report", "/reports/weekly/"),
    ("api-docs", "/api/docs/"),
]
OPERATOR_PAGES = [("admin-index", "/admin/"), ("admin-tenants", "/admin/tenants/tenant/")]


@pytest.mark.django_db(transaction=True)
def test_screenshots(live_server: Any, page: Any, signed_in: Any, alice: Any) -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    traffic(alice.tenant)
    Budget.objects.create(tenant=alice.tenant, period="month", limit_usd=Decimal(10))
    Budget.objects.create(tenant=alice.tenant, period="day", limit_usd=Decimal("0.6"))
    from routing.models import CatalogModel, Provider

    for slug, model, price in (("openai", "gpt-small", 0.5), ("anthropic", "claude-big", 8.0)):
        provider = Provider.objects.create(slug=slug, name=slug, wire_format=slug)
        CatalogModel.objects.create(
            provider=provider, model_id=model, quality={"chat": 0.8}, capabilities=["chat"],
            input_price_per_mtok=price, output_price_per_mtok=price,
        )  # fmt: skip
    page.set_viewport_size({"width": 1360, "height": 900})
    for name, url in [("sign-in", "/login/")]:
        page.goto(live_server.url + url)
        page.screenshot(path=str(OUT / f"public-{name}.png"), full_page=True)
    signed_in("alice")
    for name, url in ADMIN_PAGES:
        page.goto(live_server.url + url)
        page.wait_for_load_state("networkidle")
        page.screenshot(path=str(OUT / f"admin-{name}.png"), full_page=True)
    page.goto(live_server.url + "/keys/")
    page.fill("#id_name", "checkout-service")
    page.click("button:has-text('Create key')")
    page.screenshot(path=str(OUT / "admin-keys-created.png"), full_page=True)
    # The same pages as a viewer: read-only, no forms.
    page.context.clear_cookies()
    from tenants.models import Role
    from tenants.services import membership_add

    viewer = get_user_model().objects.create_user("vic", "vic@example.test", "pw-vic")
    membership_add(tenant=alice.tenant, user=viewer, role=Role.VIEWER)
    signed_in("vic")
    for name, url in ADMIN_PAGES:
        page.goto(live_server.url + url)
        page.wait_for_load_state("networkidle")
        page.screenshot(path=str(OUT / f"viewer-{name}.png"), full_page=True)
    page.context.clear_cookies()
    get_user_model().objects.create_superuser("root", "root@example.test", "pw-root")
    page.goto(live_server.url + "/admin/login/")
    page.fill("#id_username", "root")
    page.fill("#id_password", "pw-root")
    page.click("input[type=submit]")
    for name, url in OPERATOR_PAGES:
        page.goto(live_server.url + url)
        page.screenshot(path=str(OUT / f"operator-{name}.png"), full_page=True)
    print(f"screenshots in {OUT.resolve()}: {sorted(p.name for p in OUT.glob('*.png'))}")
