"""Budgets through the real gateway: reservation under concurrency, modes, settlement."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import httpx
import pytest

from aura.redis import sync_client
from billing.budgets import BudgetRule, counter_key
from billing.models import Budget, BudgetAlert
from billing.periods import period_bounds
from routing.gateway.context import cache
from tests.gateway.conftest import add_model

# Output-only pricing so every answer costs exactly its worst case: max_tokens=4 cuts the
# fake's answer ("fake reply: a b c d e") to 4 words -> 4 completion tokens at $8/1M.
PER_REQUEST = Decimal(4) * 8 / Decimal(1_000_000)
BODY = {
    "model": "fake-ok",
    "max_tokens": 4,
    "messages": [{"role": "user", "content": "a b c d e"}],
}


def _budget(gw, **fields) -> Budget:
    budget = Budget.objects.create(tenant=gw.tenant, **fields)
    cache.clear()
    return budget


def _counter(gw, budget: Budget) -> dict[str, int]:
    rule = BudgetRule(budget.id, None, budget.period, budget.limit_usd, budget.mode, (50,))
    from django.utils import timezone

    start, _ = period_bounds(budget.period, timezone.now(), gw.tenant.timezone)
    key = counter_key(rule, start)
    raw = sync_client().hgetall(key)
    return {
        "spent": int(raw.get(b"spent", 0)),
        "reserved": int(raw.get(b"reserved", 0)),
        "live_reservations": sync_client().zcard(key + ":z"),
    }


async def _fire(url: str, key: str, n: int) -> list[httpx.Response]:
    limits = httpx.Limits(max_connections=n, max_keepalive_connections=n)
    async with httpx.AsyncClient(timeout=30, limits=limits) as client:
        return await asyncio.gather(
            *(
                client.post(
                    f"{url}/v1/chat/completions",
                    json=BODY,
                    headers={"Authorization": f"Bearer {key}"},
                )
                for _ in range(n)
            )
        )


def test_200_concurrent_requests_never_overshoot_a_budget_that_fits_50(gw):
    add_model(gw.providers["fakeai"], "fake-ok", price_in=Decimal(0), price_out=Decimal(8))
    budget = _budget(gw, period="day", limit_usd=PER_REQUEST * 50, mode="block")
    responses = asyncio.run(_fire(gw.url, gw.plaintext, 200))
    ok = [r for r in responses if r.status_code == 200]
    refused = [r for r in responses if r.status_code != 200]
    assert len(ok) == 50
    assert {r.status_code for r in refused} == {402}
    assert all(r.json()["error"]["code"] == "budget_exceeded" for r in refused)
    assert "daily budget" in refused[0].json()["error"]["message"]
    assert "is $0.0016;" in refused[0].json()["error"]["message"]  # the digits that matter
    records = gw.usage(200)
    rows = [r for r in records if r.status == "ok"]
    assert len(rows) == 50
    # Every refusal is recorded too, with its status and code, and costs nothing.
    refusals = [r for r in records if r.status != "ok"]
    assert len(refusals) == 150
    assert {(r.status, r.http_status, r.error_code) for r in refusals} == {
        ("error", 402, "budget_exceeded")
    }
    assert sum(r.cost_usd for r in refusals) == 0
    spent = sum(r.cost_usd for r in rows)
    assert spent <= budget.limit_usd
    assert spent == PER_REQUEST * 50
    # Settlement happens just after each response; give the last ones a moment.
    import time

    deadline = time.monotonic() + 5
    while _counter(gw, budget)["reserved"] and time.monotonic() < deadline:
        time.sleep(0.05)
    counter = _counter(gw, budget)
    assert counter["reserved"] == 0 and counter["live_reservations"] == 0
    assert Decimal(counter["spent"]) / Decimal(1_000_000_000) == spent


def test_a_per_request_cap_refuses_a_request_whose_worst_case_exceeds_it(gw):
    add_model(gw.providers["fakeai"], "fake-ok", price_in=Decimal(0), price_out=Decimal(8))
    _budget(gw, period="request", limit_usd=PER_REQUEST / 2, mode="block")
    resp = httpx.post(
        f"{gw.url}/v1/chat/completions",
        json=BODY,
        headers={"Authorization": f"Bearer {gw.plaintext}"},
    )
    assert resp.status_code == 402
    assert "per-request budget" in resp.json()["error"]["message"]
    assert gw.fakes["openai"].calls == []


def test_a_downgrade_budget_routes_to_a_cheaper_model_that_fits_and_says_so(gw):
    add_model(
        gw.providers["fakeai"], "fake-ok", quality=0.95, price_in=Decimal(0), price_out=Decimal(80)
    )
    add_model(
        gw.providers["fakeclaude"],
        "fake-ok",
        quality=0.5,
        price_in=Decimal(0),
        price_out=Decimal(8),
    )
    gw.policy(objective="maximize_quality")
    _budget(gw, period="day", limit_usd=PER_REQUEST * 3, mode="downgrade")
    resp = httpx.post(
        f"{gw.url}/v1/chat/completions",
        json={**BODY, "model": "auto"},
        headers={"Authorization": f"Bearer {gw.plaintext}"},
    )
    assert resp.status_code == 200, resp.text
    assert resp.headers["x-aura-provider"] == "fakeclaude"
    assert resp.headers["x-aura-budget"].startswith("downgraded")


def test_an_alert_only_budget_never_blocks_and_records_the_threshold_crossing(gw):
    add_model(gw.providers["fakeai"], "fake-ok", price_in=Decimal(0), price_out=Decimal(8))
    budget = _budget(
        gw, period="month", limit_usd=PER_REQUEST * 2, mode="alert_only", thresholds=[50, 100]
    )
    for _ in range(3):
        resp = httpx.post(
            f"{gw.url}/v1/chat/completions",
            json=BODY,
            headers={"Authorization": f"Bearer {gw.plaintext}"},
        )
        assert resp.status_code == 200
    import time

    deadline = time.monotonic() + 5
    while BudgetAlert.objects.filter(budget=budget).count() < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert sorted(
        BudgetAlert.objects.filter(budget=budget).values_list("threshold", flat=True)
    ) == [
        50,
        100,
    ]


def test_block_budgets_fail_closed_when_redis_is_unreachable(gw, monkeypatch):
    import redis.asyncio as aioredis

    add_model(gw.providers["fakeai"], "fake-ok", price_in=Decimal(0), price_out=Decimal(8))
    _budget(gw, period="day", limit_usd=Decimal(1), mode="block")
    dead = aioredis.Redis(unix_socket_path="/nonexistent/redis.sock", socket_connect_timeout=0.2)
    monkeypatch.setattr("routing.gateway.guard.async_client", lambda: dead)
    resp = httpx.post(
        f"{gw.url}/v1/chat/completions",
        json=BODY,
        headers={"Authorization": f"Bearer {gw.plaintext}"},
    )
    assert resp.status_code == 503
    assert resp.json()["error"]["code"] == "budget_unavailable"


def test_counters_are_rebuilt_from_postgres_after_redis_loss(gw):
    from billing.budgets import budget_counters_rebuild

    add_model(gw.providers["fakeai"], "fake-ok", price_in=Decimal(0), price_out=Decimal(8))
    budget = _budget(gw, period="week", limit_usd=Decimal(1), mode="block")
    for _ in range(3):
        httpx.post(
            f"{gw.url}/v1/chat/completions",
            json=BODY,
            headers={"Authorization": f"Bearer {gw.plaintext}"},
        )
    gw.usage(3)
    sync_client().flushdb()
    assert _counter(gw, budget)["spent"] == 0
    assert budget_counters_rebuild(tenant_ids=[gw.tenant.pk]) == 1
    assert Decimal(_counter(gw, budget)["spent"]) / Decimal(1_000_000_000) == PER_REQUEST * 3


@pytest.mark.parametrize("provider", ["fakeai", "fakeclaude", "fakegemini", "fakellama"])
def test_a_streamed_call_costs_the_same_as_the_same_call_without_streaming(gw, provider):
    add_model(gw.providers[provider], "fake-ok")
    client = gw.client()
    messages = [{"role": "user", "content": "price me the same"}]
    client.chat.completions.create(model="fake-ok", messages=messages, max_tokens=50)
    for _ in client.chat.completions.create(
        model="fake-ok", messages=messages, max_tokens=50, stream=True
    ):
        pass
    plain, streamed = gw.usage(2)
    assert not streamed.cost_estimated and streamed.stream and not plain.stream
    assert (streamed.prompt_tokens, streamed.completion_tokens) == (
        plain.prompt_tokens,
        plain.completion_tokens,
    )
    # Hand-computed from the fakes' rules: prompt = 10 + 4 words, answer "fake reply: price
    # me the same" = 6 words; $2 / $8 per 1M tokens.
    assert (plain.prompt_tokens, plain.completion_tokens) == (14, 6)
    assert streamed.cost_usd == plain.cost_usd == Decimal(14 * 2 + 6 * 8) / Decimal(1_000_000)


def test_the_periodic_reconcile_raises_a_lost_counter_but_never_lowers_one(gw):
    from billing.tasks import reconcile_budget_counters

    add_model(gw.providers["fakeai"], "fake-ok", price_in=Decimal(0), price_out=Decimal(8))
    budget = _budget(gw, period="month", limit_usd=Decimal(1), mode="block")
    httpx.post(
        f"{gw.url}/v1/chat/completions",
        json=BODY,
        headers={"Authorization": f"Bearer {gw.plaintext}"},
    )
    gw.usage(1)
    sync_client().flushdb()
    assert reconcile_budget_counters() == 1
    assert _counter(gw, budget)["spent"] == PER_REQUEST * 1_000_000_000
    from billing.models import JobClaim

    JobClaim.objects.all().delete()
    rule_key = None
    for key in sync_client().scan_iter("aura:bud:*"):
        if not key.endswith((b":z", b":a")):
            rule_key = key
    sync_client().hset(rule_key, "spent", 10**9)  # Redis ahead of Postgres: kept
    assert reconcile_budget_counters() == 1
    assert _counter(gw, budget)["spent"] == 10**9


def test_a_downgraded_stream_is_served_by_the_cheaper_model(gw):
    add_model(
        gw.providers["fakeai"], "fake-ok", quality=0.95, price_in=Decimal(0), price_out=Decimal(80)
    )
    add_model(
        gw.providers["fakeclaude"],
        "fake-ok",
        quality=0.5,
        price_in=Decimal(0),
        price_out=Decimal(8),
    )
    # No fallbacks: the cheaper model is not in the first plan at all, only in the re-plan.
    gw.policy(objective="maximize_quality", fallback_depth=0)
    _budget(gw, period="day", limit_usd=PER_REQUEST * 3, mode="downgrade")
    with httpx.stream(
        "POST",
        f"{gw.url}/v1/chat/completions",
        json={**BODY, "model": "auto", "stream": True},
        headers={"Authorization": f"Bearer {gw.plaintext}"},
    ) as resp:
        assert resp.status_code == 200
        assert resp.headers["x-aura-provider"] == "fakeclaude"
        assert resp.headers["x-aura-budget"].startswith("downgraded")
        text = resp.read().decode()
    assert text.rstrip().endswith("data: [DONE]")
    row = gw.usage(1)[0]
    assert row.provider == "fakeclaude" and row.cost_usd == PER_REQUEST


def test_a_fallback_that_does_not_fit_the_budget_is_skipped_for_one_that_does(gw):
    # Primary fails (500); the next fallback is too expensive for what is left; the cheap
    # one after it serves. A block budget refuses only when the first step does not fit.
    add_model(gw.providers["fakeai"], "fake-500", quality=0.99, price_in=Decimal(0))
    add_model(
        gw.providers["fakegemini"],
        "fake-ok",
        quality=0.9,
        price_in=Decimal(0),
        price_out=Decimal(800),
    )
    add_model(
        gw.providers["fakeclaude"],
        "fake-ok",
        quality=0.5,
        price_in=Decimal(0),
        price_out=Decimal(8),
    )
    from routing.models import ProviderEndpoint

    ProviderEndpoint.objects.filter(provider=gw.providers["fakeai"]).update(max_retries=0)
    gw.policy(objective="maximize_quality", fallback_depth=2)
    _budget(gw, period="day", limit_usd=Decimal("0.01"), mode="block")
    resp = httpx.post(
        f"{gw.url}/v1/chat/completions",
        json={**BODY, "model": "auto", "max_tokens": 1000},
        headers={"Authorization": f"Bearer {gw.plaintext}"},
    )
    assert resp.status_code == 200, resp.text
    assert resp.headers["x-aura-provider"] == "fakeclaude"
    row = gw.usage(1)[0]
    kinds = [a.get("error") for a in row.attempts]
    assert kinds[:2] == ["server", "budget"]
