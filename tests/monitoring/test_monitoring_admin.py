"""Monitoring admin: health, probes, flips and alerts open for an operator; alerts filter by
state, severity and kind and resolve; "probe now" runs a forced round."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse

from monitoring import admin as monitoring_admin
from monitoring.health import RoundReport
from monitoring.models import Alert, HealthFlip
from tests.monitoring.world import NOW, checks, endpoint, provider, target

pytestmark = pytest.mark.django_db


@pytest.fixture
def operator() -> Client:
    user = get_user_model().objects.create_superuser("olga", "olga@example.test", "pw-olga")
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def rows(acme: Any) -> dict[str, Any]:
    p = provider("alpha")
    ep = endpoint(p, "Main")
    t = target(f"ep{ep.pk}", p, ep=ep, status="down", score=0.0, last_checked_at=NOW)
    checks(t, 1, 1)
    flip = HealthFlip.objects.create(
        target=t, created_at=NOW, old_status="healthy", new_status="down", reason="3 failed"
    )
    common = {"kind": "sla", "subject": "provider alpha", "opened_at": NOW, "last_seen_at": NOW}
    open_ = Alert.objects.create(
        dedupe_key="sla:success_rate:provider:alpha",
        severity="critical",
        message="alpha success rate 80%",
        **common,
    )
    gone = Alert.objects.create(
        dedupe_key="sla:availability:provider:alpha",
        severity="warning",
        state="resolved",
        message="alpha availability 98%",
        resolved_at=NOW + timedelta(minutes=5),
        **common,
    )
    return {"target": t, "flip": flip, "open": open_, "resolved": gone}


def test_every_monitoring_admin_page_opens(operator, rows):
    for model in ("endpointhealth", "healthcheck", "healthflip", "alert"):
        changelist = operator.get(reverse(f"admin:monitoring_{model}_changelist"))
        assert changelist.status_code == 200, model
        assert "object (" not in changelist.content.decode()
    for model, row in (("endpointhealth", rows["target"]), ("alert", rows["open"])):
        page = operator.get(reverse(f"admin:monitoring_{model}_change", args=[row.pk]))
        assert page.status_code == 200, model
    check = rows["target"].checks.first()
    assert (
        operator.get(reverse("admin:monitoring_healthcheck_change", args=[check.pk])).status_code
        == 200
    )


def test_alerts_filter_by_state(operator, rows):
    url = reverse("admin:monitoring_alert_changelist")
    html = operator.get(url, {"state__exact": "open"}).content.decode()
    assert f'value="{rows["open"].pk}"' in html
    assert f'value="{rows["resolved"].pk}"' not in html


def test_the_resolve_action_resolves_open_alerts(operator, rows):
    url = reverse("admin:monitoring_alert_changelist")
    resp = operator.post(
        url,
        {"action": "resolve", "_selected_action": [rows["open"].pk, rows["resolved"].pk]},
        follow=True,
    )
    assert "Resolved 1 alert(s)." in resp.content.decode()
    rows["open"].refresh_from_db()
    assert rows["open"].state == "resolved" and rows["open"].resolved_at is not None


def test_probe_now_runs_a_forced_round(operator, rows, monkeypatch):
    calls: list[dict[str, Any]] = []

    def fake_round(**kwargs: Any) -> RoundReport:
        calls.append(kwargs)
        return RoundReport(targets=2, probed=2, failed=1, flips=[("ep1", "healthy", "down")])

    monkeypatch.setattr(monitoring_admin, "health_round", fake_round)
    resp = operator.post(
        reverse("admin:monitoring_endpointhealth_changelist"),
        {"action": "probe_now", "_selected_action": [rows["target"].pk]},
        follow=True,
    )
    assert calls == [{"force": True}]
    assert (
        "Probed 2 of 2 endpoints, 1 failed. Changed: ep1: healthy → down." in resp.content.decode()
    )


def test_health_rows_cannot_be_edited_by_hand(operator, rows):
    assert operator.get(reverse("admin:monitoring_endpointhealth_add")).status_code == 403
    url = reverse("admin:monitoring_endpointhealth_change", args=[rows["target"].pk])
    operator.post(url, {"status": "healthy", "score": "1"})
    rows["target"].refresh_from_db()
    assert rows["target"].status == "down"
