"""SLA and anomaly alerts (monitoring.sla_alerts.sla_evaluate): raised per breached figure
with the target's severity, refreshed, escalated by alerts_escalate, resolved when back
within target or when nothing could judge them for an hour."""

from __future__ import annotations

from datetime import timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from django.contrib.auth import get_user_model

from monitoring import tasks
from monitoring.alerts import alerts_escalate
from monitoring.models import Alert
from monitoring.sla_alerts import sla_evaluate
from tests.monitoring.world import NOW, checks, endpoint, failures, model, oks, provider, target

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(acme: Any) -> SimpleNamespace:
    p = provider("alpha")
    model(p, "m1")
    main = endpoint(p, "Main")
    own = endpoint(p, "Alices", tenant=acme)
    return SimpleNamespace(
        p=p,
        main=main,
        own=own,
        t_main=target(f"ep{main.pk}", p, ep=main),
        t_own=target(f"ep{own.pk}", p, ep=own, tenant=acme),
        acme=acme,
    )


def _open() -> dict[str, Alert]:
    return {a.dedupe_key: a for a in Alert.objects.filter(state=Alert.State.OPEN)}


def test_a_success_rate_below_target_raises_platform_alerts_per_group(world):
    oks(world.acme, 18, ep=world.main)
    failures(world.acme, 2, ep=world.main)
    report = sla_evaluate(now=NOW)
    main = f"ep{world.main.pk}"
    alerts = _open()
    assert set(alerts) == {
        "sla:success_rate:provider:alpha",
        "sla:success_rate:model:alpha/m1",
        f"sla:success_rate:endpoint:{main}",
    }
    a = alerts[f"sla:success_rate:endpoint:{main}"]
    assert (a.kind, a.metric, a.severity, a.tenant_id) == ("sla", "success_rate", "warning", None)
    assert (a.value, a.threshold, a.target_id) == (90.0, 95.0, world.t_main.pk)
    assert a.subject == f"endpoint {main}"
    assert "success rate 90.00% over the last hour (20 attempts)" in a.message
    assert report.raised == 3


def test_below_the_critical_level_the_alert_is_critical(world):
    oks(world.acme, 15, ep=world.main)
    failures(world.acme, 5, ep=world.main)
    sla_evaluate(now=NOW)
    a = _open()["sla:success_rate:provider:alpha"]
    assert (a.severity, a.value, a.threshold) == ("critical", 75.0, 85.0)


def test_a_small_sample_raises_nothing(world):
    oks(world.acme, 5, ep=world.main)
    failures(world.acme, 14, ep=world.main)  # 19 attempts: one short
    sla_evaluate(now=NOW)
    assert not Alert.objects.exists()


def test_the_alert_resolves_when_the_figure_is_back_within_target(world):
    oks(world.acme, 18, ep=world.main)
    failures(world.acme, 2, ep=world.main)
    sla_evaluate(now=NOW)
    later = NOW + timedelta(minutes=90)
    oks(world.acme, 20, ep=world.main, at=later - timedelta(minutes=5))
    report = sla_evaluate(now=later)
    assert not _open()
    resolved = Alert.objects.get(dedupe_key="sla:success_rate:provider:alpha")
    assert (resolved.state, resolved.resolved_at) == ("resolved", later)
    assert report.resolved == 3


def test_evaluating_twice_changes_nothing(world):
    oks(world.acme, 18, ep=world.main)
    failures(world.acme, 2, ep=world.main)
    sla_evaluate(now=NOW)
    again = sla_evaluate(now=NOW)
    assert again.raised == 0 and again.resolved == 0
    assert Alert.objects.count() == 3


def test_a_persisting_warning_is_escalated(world):
    oks(world.acme, 18, ep=world.main)
    failures(world.acme, 2, ep=world.main)
    sla_evaluate(now=NOW)
    later = NOW + timedelta(minutes=31)  # ALERT_ESCALATE_AFTER_MINUTES is 30
    sla_evaluate(now=later)  # still breached: seen again
    assert alerts_escalate(now=later) == 3
    a = Alert.objects.get(dedupe_key="sla:success_rate:provider:alpha")
    assert (a.severity, a.escalated_at, a.last_seen_at) == ("critical", later, later)


def test_an_alert_nothing_can_judge_for_an_hour_is_resolved(world):
    oks(world.acme, 18, ep=world.main)
    failures(world.acme, 2, ep=world.main)
    sla_evaluate(now=NOW)
    sla_evaluate(now=NOW + timedelta(minutes=50))  # the traffic is still in the window
    assert len(_open()) == 3
    sla_evaluate(now=NOW + timedelta(minutes=70))  # out of the window, seen 70 min ago
    assert len(_open()) == 3  # no verdict, but seen only 20 minutes ago
    sla_evaluate(now=NOW + timedelta(minutes=111))
    assert not _open()


def test_probes_failing_raise_availability_alerts(world):
    checks(world.t_main, 8, 2)
    sla_evaluate(now=NOW)
    alerts = _open()
    a = alerts["sla:availability:provider:alpha"]
    assert (a.severity, a.value, a.threshold) == ("critical", 80.0, 95.0)
    assert f"sla:availability:endpoint:ep{world.main.pk}" in alerts
    assert "sla:availability:model:alpha/m1" in alerts


def test_slow_requests_raise_a_latency_alert(world):
    oks(world.acme, 20, ep=world.main, latency_ms=6000)
    sla_evaluate(now=NOW)
    a = _open()["sla:latency_p95_ms:provider:alpha"]
    assert (a.severity, a.value, a.threshold) == ("warning", 6000.0, 5000.0)
    assert "p95 latency 6000 ms" in a.message


def test_a_tenants_own_endpoint_alerts_its_tenant_not_the_operators(world, globex):
    failures(world.acme, 20, ep=world.own)
    checks(world.t_own, 0, 10)
    sla_evaluate(now=NOW)
    alerts = _open()
    own = f"ep{world.own.pk}"
    assert set(alerts) == {
        f"sla:success_rate:endpoint:{own}",
        f"sla:availability:endpoint:{own}",
    }
    assert {a.tenant_id for a in alerts.values()} == {world.acme.pk}
    assert {a.severity for a in alerts.values()} == {"critical"}


def _baseline(world: SimpleNamespace, latency_ms: float, buckets: range = range(1, 11)) -> None:
    for b in buckets:
        at = NOW - timedelta(minutes=15 * b + 5)
        oks(world.acme, 10, ep=world.main, latency_ms=latency_ms, at=at)


def test_a_latency_jump_beyond_the_baseline_is_an_anomaly_until_it_settles(world):
    _baseline(world, 100)
    oks(world.acme, 20, ep=world.main, latency_ms=1000)
    sla_evaluate(now=NOW)
    alerts = _open()
    a = alerts["anomaly:latency_p95_ms:provider:alpha"]
    assert (a.kind, a.severity, a.value, a.threshold) == ("anomaly", "warning", 1000.0, 200.0)
    assert "beyond its 24-hour baseline" in a.message
    assert f"anomaly:latency_p95_ms:endpoint:ep{world.main.pk}" in alerts
    assert not any(k.startswith("sla:") for k in alerts)  # 1 s is within the SLA
    later = NOW + timedelta(minutes=15)
    oks(world.acme, 20, ep=world.main, latency_ms=100, at=later - timedelta(minutes=5))
    sla_evaluate(now=later)
    assert "anomaly:latency_p95_ms:provider:alpha" not in _open()


def test_an_error_rate_jump_is_an_anomaly(world):
    for b in range(1, 11):
        oks(world.acme, 20, ep=world.main, at=NOW - timedelta(minutes=15 * b + 5))
    oks(world.acme, 19, ep=world.main)
    failures(world.acme, 1, ep=world.main)  # 5 % of 20: beyond the 4 % floor
    sla_evaluate(now=NOW)
    a = _open()["anomaly:error_rate:provider:alpha"]
    assert (a.value, a.threshold) == (0.05, 0.04)
    assert not any(k.startswith("sla:success_rate") for k in _open())  # 79 of 80 over the hour


def test_no_baseline_means_no_anomaly_verdict(world):
    oks(world.acme, 20, ep=world.main, latency_ms=1000)
    sla_evaluate(now=NOW)
    assert not any(k.startswith("anomaly:") for k in _open())


def test_the_evaluate_sla_task_evaluates_before_it_notifies(world, time_machine, mailoutbox):
    time_machine.move_to(NOW, tick=False)
    get_user_model().objects.create_superuser("olga", "olga@example.test", "pw-olga")
    oks(world.acme, 15, ep=world.main)
    failures(world.acme, 5, ep=world.main)
    result = tasks.evaluate_sla()
    assert result["raised"] == 3
    assert result["notified"] == 3
    assert all(a.notified_severity == "critical" for a in Alert.objects.all())
    assert [m.to for m in mailoutbox] == [["olga@example.test"]] * 3
