"""SLA figures (monitoring.sla.sla_figures) from usage records and probes with known numbers.

The world: provider ``alpha`` with models m1 and m2; platform endpoints Main (serves m1)
and Backup (serves everything); acme's own endpoint Alices. Acme (alice's tenant) and
globex (charlie's) send traffic; percentiles are ``percentile_cont`` (linear between ranks).
"""

from __future__ import annotations

from datetime import timedelta
from types import SimpleNamespace
from typing import Any

import pytest

from monitoring.sla import (
    WINDOWS,
    SlaRow,
    scope_everything,
    scope_for_tenant,
    scope_platform,
    scope_tenant_endpoints,
    sla_figures,
)
from tests.monitoring.world import NOW, attempt, checks, endpoint, model, provider, record, target

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(acme: Any, globex: Any) -> SimpleNamespace:
    p = provider("alpha")
    m1 = model(p, "m1")
    model(p, "m2")
    main = endpoint(p, "Main", serves=[m1])
    backup = endpoint(p, "Backup")
    own = endpoint(p, "Alices", tenant=acme)
    t_main = target(f"ep{main.pk}", p, ep=main)
    t_backup = target(f"ep{backup.pk}", p, ep=backup)
    t_own = target(f"ep{own.pk}", p, ep=own, tenant=acme)
    checks(t_main, 9, 1)
    checks(t_main, 0, 1, at=NOW - timedelta(hours=2))  # in the 24 h window only
    checks(t_backup, 10, 0)
    checks(t_own, 2, 2)
    m, b, o = f"ep{main.pk}", f"ep{backup.pk}", f"ep{own.pk}"

    # acme, in the last hour
    for ms in (100, 200, 300, 400, 500):
        record(acme, ep=main, latency_ms=ms, completion_tokens=10)
    record(  # Main failed, Backup answered (the gateway suffixes keys of shared models)
        acme,
        ep=backup,
        latency_ms=1000,
        attempts=[
            attempt("alpha/m1@Main", m, ok=False, error="server"),
            attempt("alpha/m1@Backup", b),
        ],
    )
    record(  # the request's own fault: not the upstream's
        acme,
        model="m1@Main",
        status="error",
        attempts=[attempt("alpha/m1@Main", m, ok=False, error="bad_request")],
    )
    record(  # a stream the upstream cut after its first byte
        acme,
        model="m2",
        ep=backup,
        status="cut",
        error_code="connection",
        stream=True,
        ttft_ms=80,
        attempts=[attempt("alpha/m2", b)],
    )
    for ttft, ms in ((50, 1000), (100, 2000), (150, 3000)):
        record(
            acme,
            model="m2",
            ep=backup,
            stream=True,
            ttft_ms=ttft,
            latency_ms=ms,
            completion_tokens=30,
        )
    record(acme, ep=main, cache_status="exact", latency_ms=1)  # a cache hit: not upstream
    record(acme, ep=own, kind="health_check", latency_ms=1)  # a billed probe: not traffic
    record(  # refused before any call: breaker open, budget
        acme,
        status="error",
        attempts=[
            attempt("alpha/m1@Main", None, ok=False, error="circuit_open"),
            attempt("alpha/m1@Backup", None, ok=False, error="budget"),
        ],
    )
    record(acme, ep=own, latency_ms=700)
    record(acme, ep=main, latency_ms=9999, at=NOW - timedelta(hours=3))  # 24 h window only

    # globex
    record(globex, ep=main, latency_ms=5000)
    record(globex, ep=main, latency_ms=5000)
    record(
        globex,
        ep=backup,
        latency_ms=6000,
        attempts=[
            attempt("alpha/m1@Main", m, ok=False, error="server"),
            attempt("alpha/m1@Backup", b),
        ],
    )
    return SimpleNamespace(main=m, backup=b, own=o, acme=acme, globex=globex)


def _rows(scope: Any, group: str, window: str = "1h") -> dict[str, SlaRow]:
    rows = sla_figures(scope=scope, groups=[group], window=WINDOWS[window], until=NOW)[group]
    return {r.name: r for r in rows}


def test_a_tenants_provider_figures_count_its_own_traffic_and_the_probes_it_may_see(world):
    (row,) = _rows(scope_for_tenant(world.acme.pk), "provider").values()
    assert row.name == "alpha"
    # Probes of Main (9/10), Backup (10/10) and acme's own endpoint (2/4).
    assert (row.availability, row.probes) == (87.5, 24)
    # 12 attempts count (bad_request, circuit_open, budget do not); the cut stream failed.
    assert (row.attempts, row.failed_attempts, row.success_rate) == (12, 2, 83.333)
    assert (row.requests, row.errors, row.ok_requests) == (13, 3, 10)
    # 100 200 300 400 500 700 1000 1000 2000 3000
    assert (row.latency_p50_ms, row.latency_p95_ms, row.latency_p99_ms) == (600.0, 2550.0, 2910.0)
    assert (row.ttft_p50_ms, row.ttft_p95_ms, row.streams) == (100.0, 145.0, 3)
    assert row.requests_per_minute == round(13 / 60, 4)
    assert row.output_tokens_per_second == round(140 / 3600, 4)
    assert row.statuses == {
        "availability": "critical",
        "success_rate": "critical",
        "latency_p95_ms": "ok",
    }
    assert row.status == "critical"


def test_endpoint_figures_follow_the_attempts_and_the_answering_endpoint(world):
    rows = _rows(scope_for_tenant(world.acme.pk), "endpoint")
    assert set(rows) == {world.main, world.backup, world.own}
    main, backup, own = rows[world.main], rows[world.backup], rows[world.own]
    assert (main.availability, main.attempts, main.failed_attempts) == (90.0, 6, 1)
    assert (main.requests, main.errors) == (6, 1)  # the bad request was sent to Main
    assert (main.latency_p50_ms, main.latency_p95_ms, main.latency_p99_ms) == (300.0, 480.0, 496.0)
    assert main.statuses == {
        "availability": "critical",
        "success_rate": "critical",
        "latency_p95_ms": "ok",
    }
    assert (backup.availability, backup.attempts, backup.success_rate) == (100.0, 5, 80.0)
    assert (backup.requests, backup.errors) == (5, 1)
    assert (backup.latency_p50_ms, backup.latency_p95_ms, backup.latency_p99_ms) == (
        1500.0,
        2850.0,
        2970.0,
    )
    assert (backup.statuses["availability"], backup.statuses["success_rate"]) == ("ok", "critical")
    assert (own.availability, own.success_rate, own.latency_p50_ms) == (50.0, 100.0, 700.0)


def test_model_figures_strip_the_endpoint_suffix_and_pool_serving_endpoints_probes(world):
    rows = _rows(scope_for_tenant(world.acme.pk), "model")
    m1, m2 = rows["alpha/m1"], rows["alpha/m2"]
    # m1: Main, Backup and Alices (no served models listed: all of them); m2: not Main.
    assert (m1.availability, m1.probes) == (87.5, 24)
    assert (m2.availability, m2.probes) == (85.714, 14)
    assert (m1.attempts, m1.success_rate, m1.requests, m1.errors) == (8, 87.5, 9, 2)
    assert (m2.attempts, m2.success_rate, m2.requests, m2.errors) == (4, 75.0, 4, 1)
    assert m2.ttft_p50_ms == 100.0
    assert not any("@" in name for name in rows)


def test_operators_see_every_tenants_traffic(world):
    (row,) = _rows(scope_everything(), "provider").values()
    assert (row.attempts, row.failed_attempts) == (16, 3)
    assert row.requests == 16
    assert row.availability == 87.5


def test_another_tenant_sees_neither_acmes_traffic_nor_its_endpoint(world):
    rows = _rows(scope_for_tenant(world.globex.pk), "endpoint")
    assert set(rows) == {world.main, world.backup}
    assert rows[world.main].attempts == 3  # two served, one failed over
    assert rows[world.main].latency_p50_ms == 5000.0
    (alpha,) = _rows(scope_for_tenant(world.globex.pk), "provider").values()
    assert (alpha.availability, alpha.probes) == (95.0, 20)  # not acme's endpoint's probes
    assert (alpha.requests, alpha.attempts, alpha.success_rate) == (3, 4, 75.0)


def test_the_platform_scope_leaves_tenants_own_endpoints_out(world):
    rows = _rows(scope_platform(), "endpoint")
    assert world.own not in rows
    (alpha,) = _rows(scope_platform(), "provider").values()
    assert (alpha.availability, alpha.probes) == (95.0, 20)
    assert alpha.attempts == 15  # everything but the request to acme's own endpoint


def test_a_tenants_endpoint_scope_is_its_own_endpoints_only(world):
    rows = _rows(scope_tenant_endpoints(world.acme.pk), "endpoint")
    assert set(rows) == {world.own}


def test_the_24h_window_reaches_further_back(world):
    (row,) = _rows(scope_for_tenant(world.acme.pk), "provider", "24h").values()
    assert (row.probes, row.availability) == (25, 84.0)
    assert row.requests == 14
    assert row.requests_per_minute == round(14 / 1440, 4)
    main = _rows(scope_for_tenant(world.acme.pk), "endpoint", "24h")[world.main]
    # 100 200 300 400 500 9999: rank 4.95 is 500 + 0.95 * 9499
    assert main.latency_p99_ms == 9524.05


def test_no_probes_or_no_traffic_is_no_figure_not_a_made_up_one(acme):
    p = provider("beta")
    model(p, "x")
    target("beta-default", p)
    record(acme, provider="beta", model="x", latency_ms=100)
    (row,) = _rows(scope_for_tenant(acme.pk), "provider").values()
    assert (row.availability, row.probes, row.statuses["availability"]) == (None, 0, None)
    assert row.success_rate == 100.0
    quiet = provider("gamma")
    t = target("gamma-default", quiet)
    checks(t, 3, 0)
    rows = _rows(scope_for_tenant(acme.pk), "provider")
    assert rows["gamma"].availability == 100.0
    assert rows["gamma"].success_rate is None and rows["gamma"].latency_p95_ms is None
    assert rows["gamma"].statuses["success_rate"] is None


def test_a_tenants_own_key_on_a_shared_endpoint_gets_its_own_figures(acme, globex):
    p = provider("alpha")
    model(p, "m1")
    shared = endpoint(p, "Shared")
    target(f"ep{shared.pk}", p, ep=shared)
    target(f"ep{shared.pk}:t{acme.pk}", p, ep=shared, tenant=acme)
    record(acme, ep=shared, latency_ms=100)
    record(globex, ep=shared, latency_ms=300)
    rows = _rows(scope_everything(), "endpoint")
    assert rows[f"ep{shared.pk}:t{acme.pk}"].latency_p50_ms == 100.0
    assert rows[f"ep{shared.pk}"].latency_p50_ms == 300.0
