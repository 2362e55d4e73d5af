"""Two gateway processes (real uvicorn subprocesses, as ``make run`` starts them) on one
Postgres and one Redis behave as one gateway, seen through HTTP only: configuration made
through one is in force on the other within about a second, and breakers, budgets, rate
limits and usage records are shared.

A and B are the two processes; the tenant, its key and the catalog come from ``gw``.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from decimal import Decimal
from typing import Any

import httpx

from aura.redis import sync_client
from routing.changes import VERSION_KEY
from routing.gateway.breaker import REFRESH_INTERVAL
from routing.gateway.context import VERSION_CHECK_INTERVAL
from routing.models import ProviderEndpoint
from tenants.services import api_key_create
from tests.gateway.conftest import add_model, add_provider
from tests.gateway.processes import GatewayProcess, poll_until

HI = [{"role": "user", "content": "hi"}]
# The documented figure (README, routing configuration): a change reaches every process
# within about a second. Polled with a little slack for the polling itself.
PROPAGATION_DEADLINE = 1.5


def _chat(gp: GatewayProcess, key: str, model: str = "fake-ok", **body: Any) -> httpx.Response:
    body.setdefault("messages", HI)
    return httpx.post(
        f"{gp.url}/v1/chat/completions",
        json={"model": model, **body},
        headers={"authorization": f"Bearer {key}"},
        timeout=10,
    )


def _api(gp: GatewayProcess, method: str, path: str, key: str, **kw: Any) -> httpx.Response:
    return httpx.request(
        method,
        f"{gp.url}/api/v1{path}",
        headers={"authorization": f"Bearer {key}"},
        timeout=10,
        **kw,
    )


def _admin(gw: Any) -> str:
    return api_key_create(tenant=gw.tenant, name="admin", can_manage=True)[1]


async def _fire(requests: list[tuple[GatewayProcess, dict[str, Any]]], key: str) -> list[Any]:
    """Send every (process, body) at once; the answers in the same order."""
    limits = httpx.Limits(max_connections=len(requests), max_keepalive_connections=0)
    async with httpx.AsyncClient(timeout=30, limits=limits) as client:
        return await asyncio.gather(
            *(
                client.post(
                    f"{gp.url}/v1/chat/completions",
                    json=body,
                    headers={"authorization": f"Bearer {key}"},
                )
                for gp, body in requests
            )
        )


# --------------------------------------------------------------------------- usage


# First in the module, while both processes are fresh and number their records in step:
# that is where record ids that were not unique across processes would collide.
def test_the_usage_records_of_both_processes_add_up(gw, pair) -> None:
    a, b = pair
    add_model(gw.providers["fakeai"], "fake-ok")  # $2 in / $8 out per 1M tokens
    admin = _admin(gw)
    served = []
    for words in range(1, 5):  # different sizes, so different costs
        for gp in (a, b):
            answer = _chat(gp, gw.plaintext, messages=[{"role": "user", "content": "w " * words}])
            assert answer.status_code == 200
            served.append(answer)
    ids = {r.headers["x-aura-request-id"] for r in served}
    cost = sum(Decimal(r.headers["x-aura-cost-usd"]) for r in served)
    assert len(ids) == 8 and cost > 0

    rows = gw.usage(8)
    assert len(rows) == 8
    assert {r.request_id for r in rows} == ids
    assert sum(r.cost_usd for r in rows) == cost

    listed = _api(b, "GET", "/usage", admin, params={"limit": 1000}).json()["results"]
    assert len(listed) == 8
    assert {r["request_id"] for r in listed} == ids
    assert sum(Decimal(str(r["cost_usd"])) for r in listed) == cost
    totals = _api(a, "GET", "/spend/summary", admin).json()["totals"]
    assert totals["requests"] == 8
    assert Decimal(str(totals["cost_usd"])) == cost


# --------------------------------------------------------------------------- configuration


def test_a_policy_change_through_one_process_is_in_force_on_the_other_within_a_second(
    gw, pair
) -> None:
    a, b = pair
    add_model(gw.providers["fakeai"], "fake-ok")
    admin = _admin(gw)
    assert _chat(b, gw.plaintext).status_code == 200  # B has the tenant's policy cached now

    changed = _api(a, "PATCH", "/router/policy", admin, json={"denied_providers": ["fakeai"]})
    assert changed.status_code == 200, changed.text

    took, refused = poll_until(
        lambda: _chat(b, gw.plaintext), lambda r: r.status_code != 200, PROPAGATION_DEADLINE
    )
    print(f"policy change through A in force on B after {took:.3f} s")
    assert refused.status_code == 403, refused.text
    assert refused.json()["error"]["code"] == "model_not_allowed"


def test_a_credential_added_through_one_process_is_used_by_the_other_within_a_second(
    gw, pair
) -> None:
    a, b = pair
    # A provider the platform has no key for: routable only with the tenant's own key.
    byok = add_provider("fakebyok", "openai", gw.fakes["openai"].base_url, secret=None)
    add_model(byok, "fake-ok")
    admin = _admin(gw)
    before = _chat(b, gw.plaintext, model="fakebyok/fake-ok")
    assert before.status_code != 200, before.text  # cached on B: no credential
    assert gw.fakes["openai"].calls == []

    added = _api(
        a,
        "POST",
        "/credentials",
        admin,
        json={"provider": "fakebyok", "name": "own", "secret": "sk-tenant-own-4242"},
    )
    assert added.status_code == 201, added.text

    took, served = poll_until(
        lambda: _chat(b, gw.plaintext, model="fakebyok/fake-ok"),
        lambda r: r.status_code == 200,
        PROPAGATION_DEADLINE,
    )
    print(f"credential added through A used by B after {took:.3f} s")
    assert served.headers["x-aura-provider"] == "fakebyok"
    assert gw.fakes["openai"].last_call.headers["authorization"] == "Bearer sk-tenant-own-4242"


def test_a_change_after_redis_lost_the_config_version_still_reaches_the_other_process(
    gw, pair
) -> None:
    a, b = pair
    add_model(gw.providers["fakeai"], "fake-ok")
    admin = _admin(gw)
    sync_client().set(VERSION_KEY, 1)  # a young deployment: one change so far
    # A process checks the version at a request once its last check is a second old: let
    # B's come due, so B's next request sees version 1 (a precondition, not a timing claim).
    time.sleep(VERSION_CHECK_INTERVAL + 0.05)
    assert _chat(b, gw.plaintext).status_code == 200  # cached on B, at version 1
    sync_client().delete(VERSION_KEY)  # Redis restarted without its data

    changed = _api(a, "PATCH", "/router/policy", admin, json={"denied_providers": ["fakeai"]})
    assert changed.status_code == 200, changed.text

    took, refused = poll_until(
        lambda: _chat(b, gw.plaintext), lambda r: r.status_code != 200, PROPAGATION_DEADLINE
    )
    print(f"policy change after a Redis reset in force on B after {took:.3f} s")
    assert refused.status_code == 403, refused.text


# --------------------------------------------------------------------------- breakers


def test_a_breaker_opened_by_failures_on_one_process_steers_the_other(gw, pair) -> None:
    a, b = pair
    add_model(gw.providers["fakeai"], "fake-500")
    add_model(gw.providers["fakeclaude"], "fake-ok")
    # One request is one failure (BreakerConfig: 5 requests, half failing, open it).
    ProviderEndpoint.objects.filter(provider=gw.providers["fakeai"]).update(max_retries=0)
    gw.policy(aliases={"chain": ["fakeai/fake-500", "fakeclaude/fake-ok"]})
    # B sees the breakers (all closed) and touches nothing that fails.
    assert _chat(b, gw.plaintext, model="fakeclaude/fake-ok").status_code == 200
    b_looked_at = time.monotonic()

    for _ in range(5):
        failed_over = _chat(a, gw.plaintext, model="chain")
        assert failed_over.status_code == 200
        assert failed_over.headers["x-aura-fallbacks"] == "1"
    assert len(gw.fakes["openai"].calls) == 5

    # A process re-reads the shared breaker state at a request once its copy is
    # REFRESH_INTERVAL old. Let B's copy (from its request above) come due, so its next
    # request is its first look since A's failures: a precondition, not a timing claim.
    time.sleep(max(0.0, REFRESH_INTERVAL + 0.05 - (time.monotonic() - b_looked_at)))
    answers = [_chat(b, gw.plaintext, model="chain") for _ in range(3)]

    assert [r.status_code for r in answers] == [200] * 3
    assert {r.headers["x-aura-provider"] for r in answers} == {"fakeclaude"}
    # Not a fallback: the broken endpoint was left out of B's plans up front.
    assert {r.headers["x-aura-fallbacks"] for r in answers} == {"0"}
    assert len(gw.fakes["openai"].calls) == 5  # B never called it
    ids = {r.headers["x-aura-request-id"] for r in answers}
    rows = [r for r in gw.usage(9) if r.request_id in ids]
    assert [(r.status, r.fallbacks, r.attempts) for r in rows] == [("ok", 0, [])] * 3


# --------------------------------------------------------------------------- money and limits

# Output-only prices: max_tokens=4 cuts the fake's answer ("fake reply: a b c d e") to 4
# completion tokens, so each answer costs exactly what it reserved: 4 x $8 / 1M =
# $0.000032. A day budget of $0.00032 pays for exactly 10 of them, however they interleave.
PER_ANSWER = Decimal(4) * 8 / Decimal(1_000_000)
BUDGET = Decimal("0.000320")
AFFORDABLE = int(BUDGET / PER_ANSWER)  # 10


def test_a_budget_is_shared_exactly_by_concurrent_requests_on_both_processes(gw, pair) -> None:
    a, b = pair
    # The fake waits 0.3 s before answering: all requests hold their reservations at once.
    add_model(gw.providers["fakeai"], "fake-slow-first-byte", price_in=Decimal(0))
    created = _api(
        a, "POST", "/budgets", _admin(gw), json={"period": "day", "limit_usd": str(BUDGET)}
    )
    assert created.status_code == 201, created.text
    body = {
        "model": "fake-slow-first-byte",
        "max_tokens": 4,
        "messages": [{"role": "user", "content": "a b c d e"}],
    }

    answers = asyncio.run(_fire([(a, body), (b, body)] * 12, gw.plaintext))

    assert AFFORDABLE == 10
    assert Counter(r.status_code for r in answers) == {200: AFFORDABLE, 402: 24 - AFFORDABLE}
    assert {r.json()["error"]["code"] for r in answers if r.status_code == 402} == {
        "budget_exceeded"
    }
    assert {Decimal(r.headers["x-aura-cost-usd"]) for r in answers if r.status_code == 200} == {
        PER_ANSWER
    }
    assert len(gw.fakes["openai"].calls) == AFFORDABLE
    rows = gw.usage(24)
    assert len(rows) == 24
    assert sum(r.cost_usd for r in rows) == AFFORDABLE * PER_ANSWER <= BUDGET


def test_a_rate_limit_is_shared_by_both_processes(gw, pair) -> None:
    a, b = pair
    add_model(gw.providers["fakeai"], "fake-ok")
    # 5 per minute: the bucket refills one request every 12 s, far longer than this test.
    changed = _api(a, "PATCH", "/router/policy", _admin(gw), json={"rate_limits": {"rpm": 5}})
    assert changed.status_code == 200, changed.text
    body = {"model": "fake-ok", "messages": HI}

    answers = asyncio.run(_fire([(a, body), (b, body)] * 7, gw.plaintext))

    assert Counter(r.status_code for r in answers) == {200: 5, 429: 9}
    refused = [r for r in answers if r.status_code == 429]
    assert {r.json()["error"]["code"] for r in refused} == {"rate_limit_exceeded"}
    assert all(int(r.headers["retry-after"]) >= 1 for r in refused)
    assert len(gw.fakes["openai"].calls) == 5
    assert len(gw.usage(14)) == 14
