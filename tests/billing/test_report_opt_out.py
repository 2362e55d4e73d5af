"""Admins stop the weekly report themselves: a signed link in the email, or the API."""

from __future__ import annotations

import pytest
from django.test import Client

from billing.reports import weekly_report_opt_out_links, weekly_report_recipients
from tenants.models import Membership

pytestmark = pytest.mark.django_db


def test_the_emailed_link_asks_first_and_stops_the_report_on_confirm(alice):
    link = weekly_report_opt_out_links(alice.tenant)["alice@example.test"]
    path = link.split("://", 1)[1].split("/", 1)[1]
    client = Client()
    page = client.get(f"/{path}")
    assert page.status_code == 200 and b"Stop sending it to me" in page.content
    assert "alice@example.test" in weekly_report_recipients(alice.tenant)  # GET changed nothing
    done = client.post(f"/{path}")
    assert done.status_code == 200 and b"no longer receives" in done.content
    assert "alice@example.test" not in weekly_report_recipients(alice.tenant)


def test_a_tampered_link_is_refused(alice):
    link = weekly_report_opt_out_links(alice.tenant)["alice@example.test"]
    path = link.split("://", 1)[1].split("/", 1)[1]
    resp = Client().post(f"/{path[:-3]}x/")
    assert resp.status_code == 400
    assert not Membership.objects.get(user=alice.user).weekly_report_opt_out


def test_an_admin_opts_out_and_back_in_through_the_api(alice):
    assert alice.client.get("/api/v1/tenant/preferences").json() == {"weekly_report_opt_out": False}
    resp = alice.client.patch(
        "/api/v1/tenant/preferences", {"weekly_report_opt_out": True}, format="json"
    )
    assert resp.json() == {"weekly_report_opt_out": True}
    assert "alice@example.test" not in weekly_report_recipients(alice.tenant)
    bad = alice.client.patch(
        "/api/v1/tenant/preferences", {"weekly_report_opt_out": "yes"}, format="json"
    )
    assert bad.status_code == 400 and "weekly_report_opt_out" in bad.json()


def test_preferences_are_only_the_callers_own(alice, bob):
    bob.client.patch("/api/v1/tenant/preferences", {"weekly_report_opt_out": True}, format="json")
    assert not Membership.objects.get(user=alice.user).weekly_report_opt_out
