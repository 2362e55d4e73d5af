"""Circuit breakers driven through the live gateway, with an injected breaker clock.

BreakerConfig defaults: window 30 s, min_requests 5, failure_rate 0.5, cooldown 30 s,
consecutive 10.
The failing endpoint gets max_retries=0 so that one request is exactly one failure.
"""

from __future__ import annotations

import pytest

from aura.redis import sync_client
from routing.gateway.breaker import OPEN_SET, BreakerConfig, Breakers, breakers
from routing.gateway.context import cache
from routing.models import ProviderEndpoint
from tests.gateway.conftest import add_model

HELLO = [{"role": "user", "content": "hello there world"}]


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    c = Clock(1_000_000.0)
    monkeypatch.setattr(breakers, "clock", c)
    monkeypatch.setattr(breakers, "config", BreakerConfig())
    return c


@pytest.fixture
def chain(gw) -> str:
    """fakeai/fake-500 (always 500s, no retries) first, fakeclaude/fake-ok as its fallback.

    Returns the breaker name of fakeai's endpoint.
    """
    add_model(gw.providers["fakeai"], "fake-500")
    add_model(gw.providers["fakeclaude"], "fake-ok")
    ProviderEndpoint.objects.filter(provider=gw.providers["fakeai"]).update(max_retries=0)
    gw.policy(aliases={"chain": ["fakeai/fake-500", "fakeclaude/fake-ok"]})
    cache.clear()
    ep = ProviderEndpoint.objects.get(provider=gw.providers["fakeai"])
    return f"ep{ep.pk}"


def ask(gw) -> dict[str, str]:
    resp = gw.client().chat.completions.with_raw_response.create(model="chain", messages=HELLO)
    assert resp.parse().choices[0].message.content == "fake reply: hello there world"
    return dict(resp.headers)


def open_breaker(gw, endpoint: str) -> None:
    for _ in range(5):
        assert ask(gw)["x-aura-provider"] == "fakeclaude"
    assert breakers.state_sync(sync_client(), endpoint)["state"] == "open"


def test_the_breaker_opens_after_min_requests_failures_and_the_endpoint_is_skipped(
    gw, clock, chain
):
    for _ in range(4):
        assert ask(gw)["x-aura-fallbacks"] == "1"
    assert breakers.state_sync(sync_client(), chain)["state"] == "closed"

    assert ask(gw)["x-aura-fallbacks"] == "1"  # the 5th failure opens it
    assert breakers.state_sync(sync_client(), chain) == {
        "state": "open",
        "open_until": clock.now + 30,
    }
    assert len(gw.fakes["openai"].calls) == 5

    for _ in range(3):
        headers = ask(gw)
        # Excluded up front: the fallback is the plan's first step, not a fallback.
        assert headers["x-aura-provider"] == "fakeclaude"
        assert headers["x-aura-fallbacks"] == "0"
    assert len(gw.fakes["openai"].calls) == 5  # never called while open
    rows = gw.usage(8)
    assert [r.fallbacks for r in rows] == [1] * 5 + [0] * 3
    assert all(r.status == "ok" and r.provider == "fakeclaude" for r in rows)


def test_after_the_cooldown_one_probe_goes_through_and_its_success_closes_the_breaker(
    gw, clock, chain
):
    open_breaker(gw, chain)
    clock.advance(29)
    assert ask(gw)["x-aura-provider"] == "fakeclaude"
    assert len(gw.fakes["openai"].calls) == 5

    clock.advance(2)  # cooldown over: half-open
    gw.fakes["openai"].set_script(["fake-ok"])
    headers = ask(gw)

    assert headers["x-aura-provider"] == "fakeai" and headers["x-aura-fallbacks"] == "0"
    assert len(gw.fakes["openai"].calls) == 6
    assert breakers.state_sync(sync_client(), chain)["state"] == "closed"
    assert sync_client().zscore(OPEN_SET, chain) is None
    assert chain not in breakers.open_endpoints() and not breakers.is_half_open(chain)
    gw.usage(7)


def test_a_failed_probe_reopens_the_breaker_and_the_next_cooldown_admits_a_new_probe(
    gw, clock, chain
):
    open_breaker(gw, chain)
    clock.advance(31)

    assert ask(gw)["x-aura-fallbacks"] == "1"  # the probe failed, fakeclaude answered
    assert len(gw.fakes["openai"].calls) == 6
    assert breakers.state_sync(sync_client(), chain) == {
        "state": "open",
        "open_until": clock.now + 30,
    }
    assert ask(gw)["x-aura-fallbacks"] == "0"
    assert len(gw.fakes["openai"].calls) == 6

    clock.advance(31)
    gw.fakes["openai"].set_script(["fake-ok"])
    assert ask(gw)["x-aura-provider"] == "fakeai"
    assert breakers.state_sync(sync_client(), chain)["state"] == "closed"
    gw.usage(8)


def test_a_half_open_endpoint_admits_only_one_probe_at_a_time(gw, clock, chain):
    open_breaker(gw, chain)
    clock.advance(31)
    # Another worker holds the probe right now.
    sync_client().set(f"aura:cb:{chain}:probe", "1", ex=30)

    headers = ask(gw)

    assert headers["x-aura-provider"] == "fakeclaude" and headers["x-aura-fallbacks"] == "1"
    assert len(gw.fakes["openai"].calls) == 5
    row = gw.usage(6)[-1]
    assert row.attempts[0]["model"] == "fakeai/fake-500"
    assert row.attempts[0]["error"] == "circuit_open"


def test_another_process_sees_the_open_breaker_through_redis(gw, clock, chain):
    other = Breakers(clock=clock)  # what a second worker process holds
    other.refresh_sync(sync_client())
    assert other.open_endpoints() == frozenset()

    open_breaker(gw, chain)

    assert other.open_endpoints() == frozenset()  # its snapshot is stale until it refreshes
    other.refresh_sync(sync_client())
    assert other.open_endpoints() == frozenset({chain})
    clock.advance(31)
    assert other.open_endpoints() == frozenset() and other.is_half_open(chain)
    gw.usage(5)


def test_a_breaker_opened_by_another_process_is_honoured_after_the_refresh_interval(
    gw, clock, chain
):
    assert ask(gw)["x-aura-fallbacks"] == "1"  # warm: snapshot read, fakeai called once
    # Another worker saw the failures and opened the breaker in Redis.
    sync_client().zadd(OPEN_SET, {chain: clock.now + 30})

    clock.advance(1)  # REFRESH_INTERVAL
    headers = ask(gw)

    assert headers["x-aura-provider"] == "fakeclaude" and headers["x-aura-fallbacks"] == "0"
    assert len(gw.fakes["openai"].calls) == 1
    gw.usage(2)


def test_an_operator_lists_and_closes_an_open_breaker_from_the_command_line(gw, clock, chain):
    from io import StringIO

    from django.core.management import call_command

    open_breaker(gw, chain)
    out = StringIO()
    call_command("breakers", stdout=out)
    assert chain in out.getvalue() and "open" in out.getvalue()
    call_command("breakers", reset=chain, stdout=StringIO())
    assert breakers.state_sync(sync_client(), chain)["state"] == "closed"


def test_failures_with_a_tenants_own_key_open_only_that_tenants_breaker(gw, clock, chain):
    from routing.catalog.services import credential_create

    credential_create(
        provider=gw.providers["fakeai"],
        name="acme-own",
        secret="sk-acme-own-0000000000",
        tenant=gw.tenant,
    )
    cache.clear()
    for _ in range(5):
        assert ask(gw)["x-aura-provider"] == "fakeclaude"
    own = f"{chain}:t{gw.tenant.pk}"
    assert breakers.state_sync(sync_client(), own)["state"] == "open"
    # The shared endpoint stays closed for everyone using the platform key.
    assert breakers.state_sync(sync_client(), chain)["state"] == "closed"
    assert sync_client().zscore(OPEN_SET, chain) is None


def test_a_run_of_failures_opens_the_breaker_despite_the_windows_earlier_successes(gw, clock):
    # An endpoint dying under traffic: 20 successes this window, then it fails every call.
    add_model(gw.providers["fakeai"], "gpt-x")
    add_model(gw.providers["fakeclaude"], "fake-ok")
    ProviderEndpoint.objects.filter(provider=gw.providers["fakeai"]).update(max_retries=0)
    gw.policy(aliases={"pair": ["fakeai/gpt-x", "fakeclaude/fake-ok"]})
    ep = f"ep{ProviderEndpoint.objects.get(provider=gw.providers['fakeai']).pk}"

    def served() -> str:
        resp = gw.client().chat.completions.with_raw_response.create(model="pair", messages=HELLO)
        return resp.headers["x-aura-provider"]

    for _ in range(20):
        assert served() == "fakeai"
    clock.advance(1.5)  # the next request flushes the batched successes to Redis
    assert served() == "fakeai"
    clock.advance(0.1)
    gw.fakes["openai"].set_default("fake-500")
    for _ in range(9):
        assert served() == "fakeclaude"
    # 9 failures of 30 outcomes: far below the 50 % rate, and not yet 10 in a row.
    assert breakers.state_sync(sync_client(), ep)["state"] == "closed"
    assert served() == "fakeclaude"
    assert breakers.state_sync(sync_client(), ep)["state"] == "open"
    calls = len(gw.fakes["openai"].calls)
    assert served() == "fakeclaude"
    assert len(gw.fakes["openai"].calls) == calls  # skipped while open
    gw.usage(32)


def test_a_success_after_the_failures_began_ends_the_run(gw, clock):
    add_model(gw.providers["fakeai"], "gpt-x")
    add_model(gw.providers["fakeclaude"], "fake-ok")
    ProviderEndpoint.objects.filter(provider=gw.providers["fakeai"]).update(max_retries=0)
    gw.policy(aliases={"pair": ["fakeai/gpt-x", "fakeclaude/fake-ok"]})
    ep = f"ep{ProviderEndpoint.objects.get(provider=gw.providers['fakeai']).pk}"
    for _ in range(20):
        gw.client().chat.completions.create(model="pair", messages=HELLO)
    clock.advance(1.5)
    gw.fakes["openai"].set_script(["fake-ok"] + ["fake-500"] * 6 + ["fake-ok"] + ["fake-500"] * 6)
    for _ in range(14):
        clock.advance(0.01)
        gw.client().chat.completions.create(model="pair", messages=HELLO)
    clock.advance(1.5)  # flush the success in the middle of the failures
    gw.client().chat.completions.create(model="pair", messages=HELLO)
    # 12 failures, but never 10 in a row: a success came after the first run began.
    assert breakers.state_sync(sync_client(), ep)["state"] == "closed"
    gw.usage(35)
