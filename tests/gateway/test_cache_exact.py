"""The exact response cache through the real gateway: hits answer without a provider call,
record what they saved, replay as JSON or SSE, and never cross a partition."""

from __future__ import annotations

import time
from decimal import Decimal
from typing import Any

import openai
import pytest

from aura.redis import sync_client
from billing.models import UsageRecord
from routing.cache import exact
from tenants.services import api_key_create, tenant_create
from tests.gateway.conftest import add_model

HELLO = [{"role": "user", "content": "hello cache world"}]


def _caching(gw: Any, **cache: Any) -> None:
    gw.policy(cache={"mode": "exact", **cache})


def _stored(tenant_id: int, n: int, timeout: float = 5.0) -> int:
    """Entries of the tenant once ``n`` are there (stores run after the response)."""
    deadline = time.monotonic() + timeout
    while True:
        count = int(sync_client().zcard(exact.index_key(tenant_id)))
        if count >= n or time.monotonic() > deadline:
            return count
        time.sleep(0.02)


def _ask(client: openai.OpenAI, **kw: Any) -> Any:
    kw.setdefault("model", "fake-ok")
    kw.setdefault("messages", HELLO)
    return client.chat.completions.with_raw_response.create(**kw)


def test_a_repeated_request_is_answered_from_the_cache_and_records_its_savings(gw):
    add_model(gw.providers["fakeai"], "fake-ok")
    _caching(gw)
    first = _ask(gw.client())
    assert first.headers["x-aura-cache"] == "miss"
    assert _stored(gw.tenant.pk, 1) == 1
    second = _ask(gw.client())
    assert second.headers["x-aura-cache"] == "exact"
    assert second.headers["x-aura-cost-usd"] == "0"
    assert second.headers["x-aura-provider"] == "fakeai"
    assert second.headers["x-aura-model"] == "fake-ok"
    a, b = first.parse(), second.parse()
    assert b.choices[0].message.content == a.choices[0].message.content
    assert b.id != a.id
    assert len(gw.fakes["openai"].calls) == 1  # the hit called nobody
    rows = gw.usage(expected=2)
    assert [r.cache_status for r in rows] == ["miss", "exact"]
    # 13 prompt + 5 completion tokens at $2 / $8 per 1M: what the hit would have cost.
    cost = (Decimal(13) * 2 + Decimal(5) * 8) / Decimal(1_000_000)
    assert (rows[0].cost_usd, rows[0].cache_savings_usd) == (cost, 0)
    assert (rows[1].cost_usd, rows[1].cache_savings_usd) == (0, cost)
    assert (rows[1].prompt_tokens, rows[1].completion_tokens) == (13, 5)
    assert (rows[1].provider, rows[1].model, rows[1].status) == ("fakeai", "fake-ok", "ok")


def test_a_cached_answer_replays_as_a_well_formed_stream_with_usage(gw):
    add_model(gw.providers["fakeai"], "fake-ok")
    _caching(gw)
    plain = _ask(gw.client()).parse()
    assert _stored(gw.tenant.pk, 1) == 1
    raw = gw.client().chat.completions.with_raw_response.create(
        model="fake-ok", messages=HELLO, stream=True, stream_options={"include_usage": True}
    )
    assert raw.headers["x-aura-cache"] == "exact"
    chunks = list(raw.parse())
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == plain.choices[0].message.content
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices]
    assert finishes[-1] == "stop" and finishes.count("stop") == 1
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 5
    assert len({c.id for c in chunks}) == 1
    assert len(gw.fakes["openai"].calls) == 1


def test_a_streamed_answer_is_stored_and_served_to_a_plain_request(gw):
    add_model(gw.providers["fakeai"], "fake-ok")
    _caching(gw)
    streamed = gw.client().chat.completions.create(
        model="fake-ok", messages=HELLO, stream=True, stream_options={"include_usage": True}
    )
    text = "".join(c.choices[0].delta.content or "" for c in streamed if c.choices)
    assert _stored(gw.tenant.pk, 1) == 1
    hit = _ask(gw.client())
    assert hit.headers["x-aura-cache"] == "exact"
    assert hit.parse().choices[0].message.content == text
    assert hit.parse().usage.completion_tokens == 5


# Each variant differs from the base request in one thing that changes the answer.
VARIANTS: list[tuple[str, dict[str, Any]]] = [
    ("model", {"model": "fake-ok-2"}),
    ("system prompt", {"messages": [{"role": "system", "content": "Be terse."}, *HELLO]}),
    (
        "earlier turns",
        {
            "messages": [
                {"role": "user", "content": "hi"},
                {"role": "assistant", "content": "hello"},
                *HELLO,
            ]
        },
    ),
    ("last turn", {"messages": [{"role": "user", "content": "hello cache worlds"}]}),
    ("temperature", {"temperature": 0.3}),
    ("top_p", {"top_p": 0.5}),
    ("max_tokens", {"max_tokens": 500}),
    ("seed", {"seed": 7}),
    ("stop", {"stop": ["x"]}),
    ("presence_penalty", {"presence_penalty": 0.5}),
    ("response_format", {"response_format": {"type": "json_object"}}),
    (
        "tools",
        {
            "tools": [
                {
                    "type": "function",
                    "function": {"name": "f", "parameters": {"type": "object", "properties": {}}},
                }
            ]
        },
    ),
]


def test_no_answer_crosses_a_partition(gw):
    add_model(gw.providers["fakeai"], "fake-ok")
    add_model(gw.providers["fakeai"], "fake-ok-2")
    _caching(gw)
    _ask(gw.client())
    assert _stored(gw.tenant.pk, 1) == 1
    for name, change in VARIANTS:
        resp = _ask(gw.client(), **change)
        assert resp.headers["x-aura-cache"] == "miss", name
    # Another tenant, with the same policy, asking the very same thing: a miss.
    other = tenant_create(name="Globex", slug="globex")
    from routing.models import RoutingPolicy

    RoutingPolicy.objects.create(tenant=other, cache={"mode": "exact"})
    _, plaintext = api_key_create(tenant=other, name="app")
    client = openai.OpenAI(base_url=f"{gw.url}/v1", api_key=plaintext, max_retries=0)
    assert _ask(client).headers["x-aura-cache"] == "miss"
    # Fields that do not change the answer share it.
    assert _ask(gw.client(), user="someone-else").headers["x-aura-cache"] == "exact"
    statuses = [r.cache_status for r in gw.usage(expected=len(VARIANTS) + 2)]
    assert statuses == ["miss"] * (len(VARIANTS) + 1) + ["exact"]
    assert not UsageRecord.objects.exclude(tenant=gw.tenant).exclude(cache_status="miss").exists()


def test_cache_control_skips_the_lookup_or_the_write(gw):
    add_model(gw.providers["fakeai"], "fake-ok")
    _caching(gw)
    _ask(gw.client(), extra_headers={"Cache-Control": "no-store"})
    time.sleep(0.2)
    assert _stored(gw.tenant.pk, 1, timeout=0.2) == 0
    _ask(gw.client())
    assert _stored(gw.tenant.pk, 1) == 1
    skipped = _ask(gw.client(), extra_headers={"Cache-Control": "no-cache"})
    assert skipped.headers["x-aura-cache"] == "miss"
    assert len(gw.fakes["openai"].calls) == 3
    assert _ask(gw.client()).headers["x-aura-cache"] == "exact"


def test_the_ttl_comes_from_the_policy_and_a_client_may_shorten_it(gw):
    add_model(gw.providers["fakeai"], "fake-ok")
    _caching(gw, ttl_seconds=600)
    _ask(gw.client())
    _ask(
        gw.client(),
        messages=[{"role": "user", "content": "short lived"}],
        extra_headers={"x-aura-cache-ttl": "30"},
    )
    assert _stored(gw.tenant.pk, 2) == 2
    redis = sync_client()
    ttls = sorted(redis.ttl(k) for k in redis.zrange(exact.index_key(gw.tenant.pk), 0, -1))
    assert 0 < ttls[0] <= 30 and 30 < ttls[1] <= 600


def test_off_by_default_and_errors_or_cut_answers_are_never_stored(gw):
    add_model(gw.providers["fakeai"], "fake-ok")
    _ask(gw.client())
    _ask(gw.client())
    assert len(gw.fakes["openai"].calls) == 2  # no policy: no cache
    _caching(gw)
    # Cut at max_tokens (finish_reason "length"): not an answer to serve again.
    cut = _ask(gw.client(), max_tokens=2).parse()
    assert cut.choices[0].finish_reason == "length"
    gw.fakes["openai"].set_script(["fake-500"] * 3)
    with pytest.raises(openai.APIError):
        gw.client().chat.completions.create(
            model="fake-ok", messages=[{"role": "user", "content": "fails"}]
        )
    time.sleep(0.2)
    assert _stored(gw.tenant.pk, 1, timeout=0.2) == 0


def test_a_tenant_caps_its_entries_oldest_out_first(gw, settings):
    settings.CACHE_MAX_ENTRIES_PER_TENANT = 2
    add_model(gw.providers["fakeai"], "fake-ok")
    _caching(gw)
    for text in ("one", "two", "three"):
        _ask(gw.client(), messages=[{"role": "user", "content": text}])
        _stored(gw.tenant.pk, 1)
        time.sleep(0.05)
    assert _stored(gw.tenant.pk, 3, timeout=0.5) == 2
    again = _ask(gw.client(), messages=[{"role": "user", "content": "one"}])
    assert again.headers["x-aura-cache"] == "miss"
    assert (
        _ask(gw.client(), messages=[{"role": "user", "content": "three"}]).headers["x-aura-cache"]
        == "exact"
    )


def test_a_hit_spends_nothing_from_the_budget(gw):
    from billing.models import Budget
    from tests.billing.counters import counter, recorded_spend, settled

    add_model(gw.providers["fakeai"], "fake-ok")
    _caching(gw)
    budget = Budget.objects.create(tenant=gw.tenant, period="day", limit_usd=1, mode="block")
    gw.policy()  # the budget reaches the gateway's context
    _ask(gw.client())
    cost = (Decimal(13) * 2 + Decimal(5) * 8) / Decimal(1_000_000)
    assert settled(budget, cost).spent == cost
    assert _stored(gw.tenant.pk, 1) == 1
    for _ in range(3):
        assert _ask(gw.client()).headers["x-aura-cache"] == "exact"
    gw.usage(expected=4)
    after = counter(budget)
    assert (after.spent, after.reserved, after.live_reservations) == (cost, 0, 0)
    assert recorded_spend(budget) == cost
