"""The semantic cache through the real gateway: a paraphrase is answered from the cache,
a near-duplicate that changes the answer is not, and nothing crosses a tenant."""

from __future__ import annotations

import time
from typing import Any

import openai

from routing.cache.models import CacheEntry
from routing.models import RoutingPolicy
from tenants.services import api_key_create, tenant_create
from tests.gateway.conftest import add_model


def _entries(tenant: Any, n: int, timeout: float = 5.0) -> int:
    deadline = time.monotonic() + timeout
    while True:
        count = CacheEntry.objects.filter(tenant=tenant).count()
        if count >= n or time.monotonic() > deadline:
            return count
        time.sleep(0.02)


def _ask(client: openai.OpenAI, text: str) -> Any:
    return client.chat.completions.with_raw_response.create(
        model="fake-ok", messages=[{"role": "user", "content": text}]
    )


def test_a_paraphrase_is_a_semantic_hit_and_a_changed_number_is_not(gw):
    add_model(gw.providers["fakeai"], "fake-ok")
    gw.policy(cache={"mode": "semantic"})
    first = _ask(gw.client(), "How do I reverse a list in Python?")
    assert first.headers["x-aura-cache"] == "miss"
    assert _entries(gw.tenant, 1) == 1
    entry = CacheEntry.objects.get(tenant=gw.tenant)
    assert (entry.provider, entry.embedder) == ("fakeai", "wordllama")
    hit = _ask(gw.client(), "How can I reverse a list in Python?")
    assert hit.headers["x-aura-cache"] == "semantic"
    assert 0.75 <= float(hit.headers["x-aura-cache-similarity"]) < 1
    assert hit.headers["x-aura-cost-usd"] == "0"
    assert hit.parse().choices[0].message.content == first.parse().choices[0].message.content
    assert len(gw.fakes["openai"].calls) == 1
    # The same question about another language needs another answer.
    other = _ask(gw.client(), "How do I reverse a list in Rust?")
    assert other.headers["x-aura-cache"] == "miss"
    _ask(gw.client(), "Convert 100 USD to EUR")
    assert _entries(gw.tenant, 3) == 3
    assert _ask(gw.client(), "Convert 250 USD to EUR").headers["x-aura-cache"] == "miss"
    assert _ask(gw.client(), "Convert 100 EUR to USD").headers["x-aura-cache"] == "miss"
    rows = gw.usage(expected=6)
    assert [r.cache_status for r in rows] == ["miss", "semantic", "miss", "miss", "miss", "miss"]
    assert rows[1].cache_savings_usd == rows[0].cost_usd > 0
    assert CacheEntry.objects.get(pk=entry.pk).hits == 1


def test_no_semantic_answer_crosses_a_tenant(gw):
    add_model(gw.providers["fakeai"], "fake-ok")
    gw.policy(cache={"mode": "semantic"})
    _ask(gw.client(), "What is the capital of France?")
    assert _entries(gw.tenant, 1) == 1
    other = tenant_create(name="Globex", slug="globex")
    RoutingPolicy.objects.create(tenant=other, cache={"mode": "semantic"})
    _, plaintext = api_key_create(tenant=other, name="app")
    client = openai.OpenAI(base_url=f"{gw.url}/v1", api_key=plaintext, max_retries=0)
    # Its first paraphrase finds nothing (the only entry is acme's), its second finds its own.
    assert _ask(client, "what's the capital of France?").headers["x-aura-cache"] == "miss"
    assert _entries(other, 1) == 1
    assert _ask(client, "What is the capital of France?").headers["x-aura-cache"] == "semantic"
    assert CacheEntry.objects.filter(tenant=gw.tenant).get().hits == 0
