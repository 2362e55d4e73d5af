"""``manage.py rebuild_budget_counters``: after losing Redis, the counters it rebuilds from
the usage records are the ones the gateway kept live (Postgres holds every cent)."""

from __future__ import annotations

from decimal import Decimal
from io import StringIO

import httpx
from django.core.management import call_command

from aura.redis import sync_client
from billing.budgets import counter_key, period_bounds, rules_from_rows
from billing.models import Budget
from routing.gateway.context import cache
from tenants.services import api_key_create
from tests.billing.counters import counter, recorded_spend, settled
from tests.gateway.conftest import add_model
from tests.gateway.http import http

PER_REQUEST = Decimal(4) * 8 / Decimal(1_000_000)  # max_tokens=4 at $8 out, $0 in


def post(gw, key: str, model: str = "fake-ok", **body) -> httpx.Response:
    return http().post(
        f"{gw.url}/v1/chat/completions",
        json={
            "model": model,
            "max_tokens": 4,
            "messages": [{"role": "user", "content": "a b c d e"}],
            **body,
        },
        headers={"Authorization": f"Bearer {key}"},
    )


def test_rebuild_budget_counters_restores_what_the_live_counters_held(gw):
    for model in ("fake-ok", "fake-cut-stream"):
        add_model(gw.providers["fakeai"], model, price_in=Decimal(0), price_out=Decimal(8))
    tenant_day = Budget.objects.create(tenant=gw.tenant, period="day", limit_usd=1)
    key_month = Budget.objects.create(tenant=gw.tenant, period="month", limit_usd=1, api_key=gw.key)
    cache.clear()
    _, other = api_key_create(tenant=gw.tenant, name="other")

    assert post(gw, gw.plaintext).status_code == 200
    assert post(gw, gw.plaintext).status_code == 200
    assert post(gw, other).status_code == 200
    # A stream cut mid-way is charged what it delivered (an estimate, but the same one in
    # the counter and in the record).
    assert post(gw, gw.plaintext, "fake-cut-stream", stream=True).status_code == 200
    rows = gw.usage(4)
    assert [r.status for r in rows] == ["ok", "ok", "ok", "cut"]
    cut = rows[3].cost_usd
    assert cut > 0 and rows[3].cost_estimated

    live_tenant = settled(tenant_day, PER_REQUEST * 3 + cut).spent
    live_key = settled(key_month, PER_REQUEST * 2 + cut).spent
    assert live_tenant == PER_REQUEST * 3 + cut == recorded_spend(tenant_day)
    assert live_key == PER_REQUEST * 2 + cut == recorded_spend(key_month)

    sync_client().flushdb()  # Redis lost
    assert counter(tenant_day).spent == counter(key_month).spent == 0
    out = StringIO()
    call_command("rebuild_budget_counters", stdout=out)
    assert out.getvalue().strip() == "rebuilt 2 budget counter(s) from usage records"
    assert counter(tenant_day).spent == live_tenant
    assert counter(key_month).spent == live_key

    # Unlike the periodic reconcile, the command also lowers a counter that is ahead of the
    # records (e.g. restored from a stale Redis snapshot).
    rule = rules_from_rows([tenant_day])[0]
    start, _ = period_bounds("day", rows[0].created_at, gw.tenant.timezone)
    sync_client().hset(counter_key(rule, start), "spent", 10**9)
    call_command("rebuild_budget_counters", stdout=StringIO())
    assert counter(tenant_day).spent == live_tenant
