"""Liveness and readiness probes (plain JSON, no auth, no session), and the console's
overview page."""

from __future__ import annotations

import time
from collections.abc import Callable

from django.db import DEFAULT_DB_ALIAS, connections
from django.db.migrations.executor import MigrationExecutor
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache

from aura.celery import app as celery_app
from monitoring.probes import redis_ping
from tenants.console import Console, console_page

_migrations_ok = False  # once applied they stay applied for this process's code


def healthz(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


def _check_database() -> None:
    with connections[DEFAULT_DB_ALIAS].cursor() as cur:
        cur.execute("SELECT 1")


def _check_migrations() -> None:
    global _migrations_ok
    if _migrations_ok:
        return
    executor = MigrationExecutor(connections[DEFAULT_DB_ALIAS])
    pending = executor.migration_plan(executor.loader.graph.leaf_nodes())
    if pending:
        names = ", ".join(f"{m.app_label}.{m.name}" for m, _ in pending[:5])
        raise RuntimeError(f"{len(pending)} unapplied migration(s): {names}")
    _migrations_ok = True


def _check_broker() -> None:
    with celery_app.connection_for_write() as conn:
        # interval_start=0: retry once at once; the default 2 s pause would outlast a
        # typical 1 s probe timeout, hiding the 503 body that names the broker.
        conn.ensure_connection(max_retries=1, interval_start=0, timeout=2)


CHECKS: dict[str, Callable[[], None]] = {
    "database": _check_database,
    "migrations": _check_migrations,
    "redis": redis_ping,
    "broker": _check_broker,
}


@never_cache
def readyz(request: HttpRequest) -> JsonResponse:
    results: dict[str, dict[str, object]] = {}
    ok = True
    for name, check in CHECKS.items():
        started = time.perf_counter()
        try:
            check()
        except Exception as exc:  # a probe reports, it does not crash
            ok = False
            results[name] = {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:300]}
        else:
            results[name] = {"ok": True, "ms": round((time.perf_counter() - started) * 1000, 2)}
    down = [name for name, r in results.items() if not r["ok"]]
    body = {"status": "ok" if ok else "unavailable", "down": down, "checks": results}
    return JsonResponse(body, status=200 if ok else 503)


# --------------------------------------------------------------------------- console


@console_page()
def overview_page(request: HttpRequest) -> HttpResponse:
    """GET / — the tenant's overview: spend against budgets, traffic, latency, cache and
    savings, charts, the month-end forecast, and provider health over the last day."""
    from datetime import timedelta

    from django.utils import timezone

    from billing.overview import overview_data
    from monitoring.sla import scope_for_tenant, sla_figures

    console: Console = request.console  # type: ignore[attr-defined]
    data = overview_data(console.tenant)
    health = sla_figures(
        scope=scope_for_tenant(console.tenant.pk),
        groups=["provider"],
        window=timedelta(days=1),
        until=timezone.now(),
    )["provider"]
    return render(
        request,
        "console/overview.html",
        {"console": console, "nav": "overview", "data": data, "health": health},
    )
