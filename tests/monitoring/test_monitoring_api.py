"""Monitoring API: /api/v1/providers/health, /api/v1/sla, /api/v1/monitoring/alerts.

Tenants see the platform's endpoints and their own, figures of their own traffic and their
own alerts; operators see everything; charlie (globex) never sees anything of acme's.
"""

from __future__ import annotations

import time
from datetime import timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from rest_framework.test import APIClient

from aura.redis import sync_client
from monitoring.models import Alert, HealthFlip
from routing.gateway.breaker import OPEN_SET
from tests.conftest import key_client
from tests.monitoring.world import (
    NOW,
    attempt,
    checks,
    endpoint,
    model,
    provider,
    record,
    target,
)

pytestmark = pytest.mark.django_db

HEALTH = "/api/v1/providers/health"
SLA = "/api/v1/sla"
ALERTS = "/api/v1/monitoring/alerts"


@pytest.fixture(autouse=True)
def _frozen(time_machine: Any) -> None:
    time_machine.move_to(NOW, tick=False)


@pytest.fixture
def operator(db: Any) -> APIClient:
    user = get_user_model().objects.create_superuser("olga", "olga@example.test", "pw-olga")
    client = APIClient()
    client.force_login(user)
    return client


@pytest.fixture
def world(alice: Any, charlie: Any) -> SimpleNamespace:
    acme, globex = alice.tenant, charlie.tenant
    p = provider("alpha")
    model(p, "m1")
    main = endpoint(p, "Main")
    own = endpoint(p, "Acme private", tenant=acme)
    theirs = endpoint(p, "Globex private", tenant=globex)
    failing: dict[str, Any] = {
        "status": "degraded",
        "score": 0.4,
        "ever_healthy": True,
        "last_checked_at": NOW - timedelta(seconds=20),
        "last_ok_at": NOW - timedelta(minutes=5),
        "last_latency_ms": 35.5,
        "last_error": "HTTP 500: upstream says boom",
        "passive": {"attempts": 40, "failures": 10, "p95_ms": 900.0, "breaker_open": False},
    }
    t_main = target(f"ep{main.pk}", p, ep=main, **failing)
    t_own = target(f"ep{own.pk}", p, ep=own, tenant=acme, **failing)
    t_theirs = target(f"ep{theirs.pk}", p, ep=theirs, tenant=globex, **failing)
    for t in (t_main, t_own, t_theirs):
        HealthFlip.objects.create(
            target=t,
            created_at=NOW - timedelta(minutes=1),
            old_status="healthy",
            new_status="degraded",
            reason="1 failed probe(s); HTTP 500: upstream says boom",
        )
    checks(t_main, 9, 1)
    checks(t_own, 5, 5)
    checks(t_theirs, 0, 4)
    for ms in (100, 200, 300):
        record(acme, ep=main, latency_ms=ms)
    record(acme, ep=own, latency_ms=700)
    record(globex, ep=main, latency_ms=5000)
    record(
        globex,
        ep=theirs,
        status="error",
        attempts=[attempt("alpha/m1@Globex private", f"ep{theirs.pk}", ok=False, error="server")],
    )
    return SimpleNamespace(
        main=t_main.name, own=t_own.name, theirs=t_theirs.name, acme=acme, globex=globex
    )


# ------------------------------------------------------------------------------ health


def _by_name(resp: Any) -> dict[str, dict[str, Any]]:
    assert resp.status_code == 200, resp.content
    return {e["name"]: e for e in resp.json()["endpoints"]}


def test_alice_sees_the_platforms_endpoints_and_her_own(alice, world):
    eps = _by_name(alice.client.get(HEALTH))
    assert set(eps) == {world.main, world.own}
    own, main = eps[world.own], eps[world.main]
    assert (own["owner"], main["owner"]) == ("tenant", "platform")
    assert own["endpoint"]["name"] == "Acme private"
    assert (own["status"], own["score"], own["ever_healthy"]) == ("degraded", 0.4, True)
    assert own["last_check"]["latency_ms"] == 35.5
    assert own["last_check"]["ok"] is False
    # Her own endpoint's error text, flips and traffic in full...
    assert own["last_check"]["error"] == "HTTP 500: upstream says boom"
    assert own["recent_flips"][0]["reason"].startswith("1 failed probe")
    assert own["passive"] == {
        "attempts": 40,
        "failures": 10,
        "p95_ms": 900.0,
        "breaker_open": False,
    }
    # ... the platform's: state, rates, no upstream text, no volumes of other tenants.
    assert main["last_check"]["error"] is None
    assert main["recent_flips"] == [
        {"at": main["recent_flips"][0]["at"], "from": "healthy", "to": "degraded", "reason": None}
    ]
    assert main["passive"] == {"error_rate": 0.25, "p95_ms": 900.0, "breaker_open": False}
    assert "tenant" not in main


def test_charlie_sees_nothing_of_acmes_endpoints(charlie, world):
    resp = charlie.client.get(HEALTH)
    assert set(_by_name(resp)) == {world.main, world.theirs}
    assert "acme" not in resp.content.decode().lower()


def test_operators_see_every_endpoint_with_its_owner_and_errors(operator, world):
    eps = _by_name(operator.get(HEALTH))
    assert set(eps) == {world.main, world.own, world.theirs}
    assert (eps[world.own]["tenant"], eps[world.main]["tenant"]) == ("acme", None)
    assert eps[world.main]["last_check"]["error"] == "HTTP 500: upstream says boom"
    assert eps[world.main]["passive"]["attempts"] == 40


def test_the_breaker_state_is_shown(alice, world):
    redis = sync_client()
    redis.zadd(OPEN_SET, {world.main: time.time() + 60, world.own: time.time() - 1})
    try:
        eps = _by_name(alice.client.get(HEALTH))
    finally:
        redis.zrem(OPEN_SET, world.main, world.own)
    assert eps[world.main]["breaker"]["state"] == "open"
    assert eps[world.own]["breaker"] == {
        "state": "half_open",
        "open_until": eps[world.own]["breaker"]["open_until"],
    }
    assert _by_name(alice.client.get(HEALTH))[world.main]["breaker"]["state"] == "closed"


def test_a_manage_key_reads_its_tenants_health(alice_manage_key, world):
    _, plaintext = alice_manage_key
    assert set(_by_name(key_client(plaintext).get(HEALTH))) == {world.main, world.own}


def test_anonymous_callers_are_refused(client, world):
    assert client.get(HEALTH).status_code in (401, 403)
    assert client.get(SLA).status_code in (401, 403)
    assert client.get(ALERTS).status_code in (401, 403)


# ------------------------------------------------------------------------------ SLA


def _sla(client: Any, **params: str) -> dict[str, Any]:
    resp = client.get(SLA, {"until": NOW.isoformat(), **params})
    assert resp.status_code == 200, resp.content
    return resp.json()


def test_alice_reads_sla_figures_of_her_traffic_with_targets(alice, world):
    body = _sla(alice.client, window="1h", group="endpoint")
    assert (body["window"], body["group"]) == ("1h", "endpoint")
    assert body["since"] == "2025-06-02T11:00:00Z" and body["until"] == "2025-06-02T12:00:00Z"
    assert body["targets"]["availability"] == {
        "warning": 99.0,
        "critical": 95.0,
        "direction": "min",
    }
    assert body["targets"]["latency_p95_ms"]["direction"] == "max"
    rows = {r["name"]: r for r in body["rows"]}
    assert set(rows) == {world.main, world.own}
    main = rows[world.main]
    assert main["latency_ms"] == {"p50": 200.0, "p95": 290.0, "p99": 298.0}
    assert (main["requests"], main["availability"], main["success_rate"]) == (3, 90.0, 100.0)
    assert main["statuses"] == {
        "availability": "critical",
        "success_rate": "ok",
        "latency_p95_ms": "ok",
    }
    assert main["status"] == "critical"
    assert rows[world.own]["availability"] == 50.0


def test_the_default_is_the_last_hour_by_provider(alice, world):
    body = alice.client.get(SLA).json()
    assert (body["window"], body["group"]) == ("1h", "provider")
    (row,) = body["rows"]
    assert (row["name"], row["requests"]) == ("alpha", 4)


def test_charlie_sees_his_traffic_and_never_acmes(charlie, world):
    rows = {r["name"]: r for r in _sla(charlie.client, group="endpoint")["rows"]}
    assert set(rows) == {world.main, world.theirs}
    assert rows[world.main]["requests"] == 1
    assert rows[world.main]["latency_ms"]["p50"] == 5000.0
    (alpha,) = _sla(charlie.client)["rows"]
    assert alpha["requests"] == 2  # not acme's four
    assert alpha["availability"] == round(9 / 14 * 100, 3)  # Main and globex's own


def test_operators_read_platform_wide_figures(operator, world):
    (alpha,) = _sla(operator)["rows"]
    assert alpha["requests"] == 6
    assert alpha["probes"] == 24


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"window": "2h"}, "window"),
        ({"group": "tenant"}, "group"),
        ({"until": "yesterday-ish"}, "until"),
    ],
)
def test_bad_parameters_are_refused_naming_them(alice, params, field):
    resp = alice.client.get(SLA, params)
    assert resp.status_code == 400
    assert resp.json()["field"] == field
    assert resp.json()["code"] == "invalid_request"


# ------------------------------------------------------------------------------ alerts


def _alert(key: str, tenant: Any = None, **fields: Any) -> Alert:
    values = {
        "kind": "sla",
        "subject": key,
        "metric": "success_rate",
        "severity": "warning",
        "message": f"{key} is bad",
        "opened_at": NOW,
        "last_seen_at": NOW,
        **fields,
    }
    return Alert.objects.create(dedupe_key=key, tenant=tenant, **values)


@pytest.fixture
def alerts(world: SimpleNamespace) -> SimpleNamespace:
    return SimpleNamespace(
        platform=_alert("sla:success_rate:provider:alpha"),
        acme_open=_alert(
            f"sla:availability:endpoint:{world.own}",
            world.acme,
            metric="availability",
            severity="critical",
            opened_at=NOW + timedelta(minutes=2),
        ),
        acme_resolved=_alert(
            f"endpoint_down:{world.own}",
            world.acme,
            kind="endpoint_down",
            state="resolved",
            resolved_at=NOW + timedelta(minutes=1),
            opened_at=NOW + timedelta(minutes=1),
        ),
        globex=_alert(f"anomaly:error_rate:endpoint:{world.theirs}", world.globex, kind="anomaly"),
    )


def _ids(resp: Any) -> list[int]:
    assert resp.status_code == 200, resp.content
    return [a["id"] for a in resp.json()["results"]]


def test_alice_lists_her_tenants_alerts_newest_first(alice, alerts):
    resp = alice.client.get(ALERTS)
    assert _ids(resp) == [alerts.acme_open.pk, alerts.acme_resolved.pk]
    first = resp.json()["results"][0]
    assert first["severity"] == "critical" and first["state"] == "open"
    assert first["metric"] == "availability"
    assert "tenant" not in first
    assert resp.json()["count"] == 2


def test_alerts_filter_by_state_severity_and_kind(alice, alerts):
    assert _ids(alice.client.get(ALERTS, {"state": "open"})) == [alerts.acme_open.pk]
    assert _ids(alice.client.get(ALERTS, {"state": "resolved"})) == [alerts.acme_resolved.pk]
    assert _ids(alice.client.get(ALERTS, {"severity": "warning"})) == [alerts.acme_resolved.pk]
    assert _ids(alice.client.get(ALERTS, {"kind": "endpoint_down"})) == [alerts.acme_resolved.pk]


@pytest.mark.parametrize("param", ["state", "severity", "kind"])
def test_a_bad_alert_filter_is_refused_naming_it(alice, param):
    resp = alice.client.get(ALERTS, {param: "loud"})
    assert resp.status_code == 400 and resp.json()["field"] == param


def test_charlie_never_sees_acmes_alerts(charlie, alerts):
    resp = charlie.client.get(ALERTS)
    assert _ids(resp) == [alerts.globex.pk]
    assert "acme" not in resp.content.decode().lower()
    detail = charlie.client.get(f"{ALERTS}/{alerts.acme_open.pk}")
    assert detail.status_code == 404
    assert charlie.client.get(f"{ALERTS}/{alerts.platform.pk}").status_code == 404


def test_alice_reads_one_alert(alice, alerts):
    resp = alice.client.get(f"{ALERTS}/{alerts.acme_open.pk}")
    assert resp.status_code == 200
    assert resp.json()["message"] == alerts.acme_open.message


def test_operators_see_every_alert_including_the_platforms(operator, alerts):
    resp = operator.get(ALERTS)
    assert set(_ids(resp)) == {
        alerts.platform.pk,
        alerts.acme_open.pk,
        alerts.acme_resolved.pk,
        alerts.globex.pk,
    }
    tenants = {a["id"]: a["tenant"] for a in resp.json()["results"]}
    assert (tenants[alerts.platform.pk], tenants[alerts.globex.pk]) == (None, "globex")
    assert operator.get(f"{ALERTS}/{alerts.platform.pk}").status_code == 200


def test_an_operator_acting_inside_a_tenant_still_sees_everything(operator, alerts):
    resp = operator.get(ALERTS, HTTP_X_AURA_TENANT="globex")
    assert len(_ids(resp)) == 4
    assert len(_by_name(operator.get(HEALTH, HTTP_X_AURA_TENANT="globex"))) == 3
