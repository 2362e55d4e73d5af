"""Real requests through the live gateway move the right counters, with the right labels,
as the next scrape of /metrics shows.

Fake token rules (tests/fakes/scenarios.py): prompt = 10 + words of every message text,
completion = words of "fake reply: <last user words>". Prices: $2 in / $8 out per 1M.
Every provider endpoint of ``gw`` has max_retries=1 (two attempts per plan step).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from decimal import Decimal

import httpx
import openai
import pytest

from aura.redis import sync_client
from billing.models import Budget
from monitoring import metrics
from routing.cache import exact
from routing.gateway import execution
from routing.gateway.context import cache
from tests.gateway.conftest import add_model
from tests.monitoring.conftest import Scrape, delta, scrape

HELLO = [{"role": "user", "content": "hello there world"}]
# prompt 10 + 3 = 13, completion "fake reply: hello there world" = 5
HELLO_COST = float((Decimal(13) * 2 + Decimal(5) * 8) / Decimal(1_000_000))


@pytest.fixture(autouse=True)
def no_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(execution, "backoff_delay", lambda *a, **k: 0.0)


def post(gw, model: str = "fake-ok", **body) -> httpx.Response:
    return httpx.post(
        f"{gw.url}/v1/chat/completions",
        json={"model": model, "messages": HELLO, **body},
        headers={"Authorization": f"Bearer {gw.plaintext}"},
        timeout=30,
    )


def test_a_served_request_counts_the_request_its_latency_cost_decision_and_upstream_call(gw):
    add_model(gw.providers["fakeai"], "fake-ok")
    before = scrape(gw.url)

    gw.client().chat.completions.create(model="fake-ok", messages=HELLO)

    after = scrape(gw.url)
    served = {"provider": "fakeai", "model": "fake-ok"}
    assert (
        delta(before, after, "aura_requests_total", kind="chat", status="ok", code="200", **served)
        == 1
    )
    assert delta(before, after, "aura_request_duration_seconds_count", status="ok", **served) == 1
    assert delta(before, after, "aura_request_duration_seconds_sum", **served) > 0
    assert delta(before, after, "aura_cost_usd_total", **served) == pytest.approx(HELLO_COST)
    assert (
        delta(before, after, "aura_router_decisions_total", provider="fakeai", reason="primary")
        == 1
    )
    assert delta(before, after, "aura_router_decision_seconds_count") == 1
    assert (
        delta(before, after, "aura_provider_request_duration_seconds_count", provider="fakeai") == 1
    )
    assert delta(before, after, "aura_provider_errors_total") == 0
    # This tenant does not cache: no lookup, so no miss either.
    assert delta(before, after, "aura_cache_requests_total") == 0


def test_an_embeddings_request_is_counted_under_its_kind(gw):
    add_model(gw.providers["fakeai"], "fake-embed", kind="embeddings", caps=["embeddings"])
    before = scrape(gw.url)

    gw.client().embeddings.create(model="fake-embed", input="one two")

    after = scrape(gw.url)
    assert delta(before, after, "aura_requests_total", kind="embeddings", model="fake-embed") == 1
    assert delta(before, after, "aura_requests_total", kind="chat") == 0


def test_a_fallback_counts_each_failed_upstream_call_by_kind_and_the_decision_as_fallback(gw):
    add_model(gw.providers["fakeai"], "fake-500")
    add_model(gw.providers["fakeclaude"], "fake-ok")
    gw.policy(aliases={"chain": ["fakeai/fake-500", "fakeclaude/fake-ok"]})
    before = scrape(gw.url)

    resp = post(gw, "chain")

    assert resp.status_code == 200 and resp.headers["x-aura-fallbacks"] == "1"
    after = scrape(gw.url)
    # 5xx is retried once on the same model before falling back: two failed calls.
    assert delta(before, after, "aura_provider_errors_total", provider="fakeai", kind="server") == 2
    assert (
        delta(before, after, "aura_provider_request_duration_seconds_count", provider="fakeai") == 2
    )
    assert (
        delta(before, after, "aura_provider_request_duration_seconds_count", provider="fakeclaude")
        == 1
    )
    assert (
        delta(
            before, after, "aura_router_decisions_total", provider="fakeclaude", reason="fallback"
        )
        == 1
    )
    assert delta(before, after, "aura_router_decisions_total", reason="primary") == 0
    assert delta(before, after, "aura_requests_total", provider="fakeclaude", status="ok") == 1


@pytest.mark.parametrize(
    ("scenario", "kind"), [("fake-503", "server"), ("fake-malformed", "malformed")]
)
def test_a_request_every_provider_failed_is_an_error_with_its_upstream_errors_by_kind(
    gw, scenario, kind
):
    add_model(gw.providers["fakeai"], scenario)
    before = scrape(gw.url)

    resp = post(gw, scenario)

    assert resp.status_code == 502
    after = scrape(gw.url)
    failed = {"provider": "fakeai", "model": scenario, "status": "error"}
    assert delta(before, after, "aura_requests_total", code="502", **failed) == 1
    assert delta(before, after, "aura_request_duration_seconds_count", **failed) == 1
    assert delta(before, after, "aura_provider_errors_total", provider="fakeai", kind=kind) == 2
    assert (
        delta(before, after, "aura_router_decisions_total", provider="fakeai", reason="failed") == 1
    )
    assert delta(before, after, "aura_cost_usd_total") == 0


def test_a_stream_cut_after_its_first_byte_counts_an_upstream_error(gw):
    add_model(gw.providers["fakeai"], "fake-cut-stream")
    before = scrape(gw.url)
    stream = gw.client().chat.completions.create(
        model="fake-cut-stream", messages=HELLO, stream=True
    )

    with pytest.raises(openai.APIError):
        for _ in stream:
            pass

    gw.usage(1)  # the stream's record is written as it ends
    after = scrape(gw.url)
    assert delta(before, after, "aura_requests_total", provider="fakeai", status="cut") == 1
    cut = delta(before, after, "aura_provider_errors_total", provider="fakeai")
    assert cut == 1


def test_a_cache_hit_counts_as_a_hit_with_what_it_saved_and_costs_nothing(gw):
    add_model(gw.providers["fakeai"], "fake-ok")
    gw.policy(cache={"mode": "exact"})
    before = scrape(gw.url)

    assert post(gw).headers["x-aura-cache"] == "miss"
    deadline = time.monotonic() + 5  # the answer is stored after it was sent
    while not sync_client().zcard(exact.index_key(gw.tenant.pk)) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert post(gw).headers["x-aura-cache"] == "exact"

    after = scrape(gw.url)
    assert delta(before, after, "aura_cache_requests_total", result="miss") == 1
    assert delta(before, after, "aura_cache_requests_total", result="exact") == 1
    assert delta(before, after, "aura_cache_savings_usd_total") == pytest.approx(HELLO_COST)
    assert delta(before, after, "aura_cost_usd_total") == pytest.approx(HELLO_COST)  # the miss
    assert (
        delta(before, after, "aura_router_decisions_total", provider="fakeai", reason="cache_exact")
        == 1
    )
    assert delta(before, after, "aura_provider_request_duration_seconds_count") == 1
    assert 0 < after.value("aura_cache_hit_rate") <= 1


def test_a_budget_refusal_is_counted_as_refused_and_calls_nobody(gw):
    add_model(gw.providers["fakeai"], "fake-ok")
    Budget.objects.create(
        tenant=gw.tenant, period="request", limit_usd=Decimal("0.000001"), mode="block"
    )
    cache.clear()
    before = scrape(gw.url)

    assert post(gw, max_tokens=4).status_code == 402

    after = scrape(gw.url)
    assert delta(before, after, "aura_budget_refusals_total") == 1
    refused = {"provider": "none", "model": "none", "status": "error", "code": "402"}
    assert delta(before, after, "aura_requests_total", **refused) == 1
    assert (
        delta(
            before, after, "aura_router_decisions_total", provider="none", reason="refused:budget"
        )
        == 1
    )
    assert delta(before, after, "aura_rate_limit_refusals_total") == 0
    assert delta(before, after, "aura_provider_request_duration_seconds_count") == 0


def test_a_rate_limit_refusal_is_counted(gw):
    add_model(gw.providers["fakeai"], "fake-ok")
    gw.policy(rate_limits={"rpm": 1})
    before = scrape(gw.url)

    assert [post(gw).status_code for _ in range(2)] == [200, 429]

    after = scrape(gw.url)
    assert delta(before, after, "aura_rate_limit_refusals_total") == 1
    assert delta(before, after, "aura_router_decisions_total", reason="refused:rate_limit") == 1
    assert delta(before, after, "aura_requests_total", code="429") == 1
    assert delta(before, after, "aura_budget_refusals_total") == 0


def test_model_names_a_client_makes_up_never_become_label_values(gw):
    add_model(gw.providers["fakeai"], "fake-ok")
    before = scrape(gw.url)

    assert post(gw, "made-up-model-4f1c").status_code == 404

    after = scrape(gw.url)
    assert "made-up-model-4f1c" not in after.text
    assert delta(before, after, "aura_router_decisions_total", reason="refused:not_found") == 1


def test_a_request_load_shedding_refused_is_no_upstream_error(client):
    """Shed requests (every endpoint of the plan full) have attempts that called nobody."""

    @dataclass
    class Shed:
        provider: str = "fakeai"
        ok: bool = False
        kind: str = "overloaded"
        latency_ms: float = 0.0

    record = {
        "tenant_id": 1,
        "kind": "chat",
        "provider": "fakeai",
        "model": "fake-ok",
        "status": "error",
        "http_status": 503,
        "error_code": "queue_full",
        "cost_usd": Decimal(0),
        "latency_ms": 2.0,
        "cache_status": "miss",
        "cache_savings_usd": Decimal(0),
        "fallbacks": 0,
    }
    before = Scrape(client.get("/metrics").content.decode())

    metrics.request_observed(record, [Shed()], cache_consulted=False, decision_seconds=None)

    after = Scrape(client.get("/metrics").content.decode())
    assert delta(before, after, "aura_router_decisions_total", reason="refused:overloaded") == 1
    assert delta(before, after, "aura_requests_total", code="503", provider="fakeai") == 1
    assert delta(before, after, "aura_provider_errors_total") == 0
    assert delta(before, after, "aura_provider_request_duration_seconds_count") == 0
