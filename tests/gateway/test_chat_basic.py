from __future__ import annotations

from decimal import Decimal

import openai
import pytest

from tests.gateway.conftest import add_model


def test_it_answers_a_chat_completion_through_the_official_sdk(gw):
    add_model(gw.providers["fakeai"], "fake-ok")
    resp = gw.client().chat.completions.with_raw_response.create(
        model="fake-ok", messages=[{"role": "user", "content": "hello there world"}]
    )
    completion = resp.parse()
    assert completion.choices[0].message.content == "fake reply: hello there world"
    assert resp.headers["x-aura-provider"] == "fakeai"
    assert resp.headers["x-aura-model"] == "fake-ok"
    assert resp.headers["x-aura-fallbacks"] == "0"
    assert resp.headers["x-aura-cache"] == "miss"
    assert resp.headers["x-aura-request-id"].startswith("req_")
    assert float(resp.headers["x-aura-overhead-ms"]) >= 0
    # prompt = 10 + 3 words; completion = 5 words; $2 / $8 per 1M tokens
    expected = (Decimal(13) * 2 + Decimal(5) * 8) / Decimal(1_000_000)
    assert Decimal(resp.headers["x-aura-cost-usd"]) == expected
    rows = gw.usage()
    assert len(rows) == 1
    row = rows[0]
    assert (row.prompt_tokens, row.completion_tokens, row.cost_usd) == (13, 5, expected)
    assert row.status == "ok" and row.api_key_id == gw.key.pk and not row.cost_estimated


def test_a_bad_key_gets_openais_401_error_object(gw):
    add_model(gw.providers["fakeai"], "fake-ok")
    client = openai.OpenAI(base_url=f"{gw.url}/v1", api_key="aura-nope.nope", max_retries=0)
    with pytest.raises(openai.AuthenticationError) as info:
        client.chat.completions.create(
            model="fake-ok", messages=[{"role": "user", "content": "hi"}]
        )
    assert info.value.status_code == 401
    assert info.value.body["code"] == "invalid_api_key"


def test_an_unknown_model_is_a_404_naming_the_model(gw):
    add_model(gw.providers["fakeai"], "fake-ok")
    with pytest.raises(openai.NotFoundError) as info:
        gw.client().chat.completions.create(
            model="nope-9", messages=[{"role": "user", "content": "hi"}]
        )
    assert "nope-9" in info.value.message


def test_it_streams_and_records_the_same_cost_as_without_streaming(gw):
    add_model(gw.providers["fakeai"], "fake-ok")
    stream = gw.client().chat.completions.create(
        model="fake-ok",
        messages=[{"role": "user", "content": "one two three"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    text, usage = "", None
    for chunk in stream:
        if chunk.choices:
            text += chunk.choices[0].delta.content or ""
        if chunk.usage:
            usage = chunk.usage
    assert text == "fake reply: one two three"
    assert usage is not None and usage.completion_tokens == 5
    rows = gw.usage()
    assert rows[0].stream and rows[0].status == "ok"
    assert rows[0].cost_usd == (Decimal(13) * 2 + Decimal(5) * 8) / Decimal(1_000_000)


def test_gateway_traffic_shows_in_the_router_metrics(gw):
    import httpx

    from tenants.services import api_key_create

    add_model(gw.providers["fakeai"], "fake-ok")
    gw.client().chat.completions.create(
        model="fake-ok", messages=[{"role": "user", "content": "count me"}]
    )
    gw.usage(1)
    _, manage = api_key_create(tenant=gw.tenant, name="ops", can_manage=True)
    resp = httpx.get(
        f"{gw.url}/api/v1/router/metrics", headers={"Authorization": f"Bearer {manage}"}
    )
    assert resp.status_code == 200, resp.text
    rows = {m["model"]: m for m in resp.json()["models"]}
    assert rows["fakeai/fake-ok"]["requests"] == 1
    assert rows["fakeai/fake-ok"]["success_rate"] == 1.0


def test_routing_hints_in_metadata_are_not_forwarded_to_the_provider(gw):
    add_model(gw.providers["fakeai"], "fake-ok")
    gw.client().chat.completions.create(
        model="fake-ok",
        messages=[{"role": "user", "content": "hi"}],
        metadata={"aura_objective": "minimize_cost", "trace": "t-1"},
    )
    sent = gw.fakes["openai"].last_call.json
    assert sent["metadata"] == {"trace": "t-1"}


def test_the_overhead_header_excludes_the_time_spent_waiting_on_the_provider(gw):
    add_model(gw.providers["fakeai"], "fake-slow-first-byte")
    resp = gw.client().chat.completions.with_raw_response.create(
        model="fake-slow-first-byte", messages=[{"role": "user", "content": "hi"}]
    )
    # The fake waits 0.3 s before answering: that wait is not AURA's overhead. (Arithmetic,
    # not speed: what the client waited minus the overhead covers the provider's 0.3 s.)
    overhead = float(resp.headers["x-aura-overhead-ms"])
    waited_ms = resp.http_response.elapsed.total_seconds() * 1000
    assert 0 <= overhead and waited_ms - overhead >= 300
    row = gw.usage(1)[0]
    assert row.latency_ms - row.overhead_ms >= 300
