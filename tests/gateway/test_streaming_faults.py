"""Streams that fail: before the first byte (fail over), mid-way (explicit error, no [DONE]),
without upstream usage (charged by local count, flagged), and the include_usage switch.

Local estimates used when the upstream reports no usage (routing.engine.classify):
- prompt of one user message "one two three" = 3 (priming) + 3 + 1 (message) + 3 = 10;
  "one two three four five six" = 13;
- completion "fake reply: one two three" = 5 words + 1 for the colon = 6.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import httpx
import openai
import pytest

from routing.gateway import execution
from routing.gateway.context import cache
from routing.models import ProviderEndpoint
from tests.gateway.conftest import add_model

HELLO = [{"role": "user", "content": "hello there world"}]
# prompt 10 + 3 = 13, completion "fake reply: hello there world" = 5
HELLO_COST = (Decimal(13) * 2 + Decimal(5) * 8) / Decimal(1_000_000)
MILLION = Decimal(1_000_000)


@pytest.fixture(autouse=True)
def no_backoff_sleep(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(execution, "backoff_delay", lambda *a, **k: 0.0)


def raw_stream(gw, body: dict[str, Any]) -> tuple[httpx.Headers, list[str]]:
    """POST a streamed chat completion; returns the headers and every SSE data payload."""
    with (
        httpx.Client(timeout=10) as client,
        client.stream(
            "POST",
            f"{gw.url}/v1/chat/completions",
            json={"stream": True, **body},
            headers={"authorization": f"Bearer {gw.plaintext}"},
        ) as resp,
    ):
        assert resp.status_code == 200
        raw = resp.read().decode()
    events = [e for e in raw.split("\n\n") if e.strip()]
    assert all(e.startswith("data: ") for e in events), events
    return resp.headers, [e.removeprefix("data: ") for e in events]


def text_of(payloads: list[str]) -> str:
    text = ""
    for p in payloads:
        if p == "[DONE]":
            continue
        for choice in json.loads(p).get("choices") or ():
            text += choice["delta"].get("content") or ""
    return text


def test_a_stream_whose_primary_fails_before_the_first_byte_fails_over(gw):
    add_model(gw.providers["fakeai"], "fake-500")
    add_model(gw.providers["fakeclaude"], "fake-ok")
    gw.policy(aliases={"chain": ["fakeai/fake-500", "fakeclaude/fake-ok"]})

    resp = gw.client().chat.completions.with_raw_response.create(
        model="chain", messages=HELLO, stream=True, stream_options={"include_usage": True}
    )
    text, usage = "", None
    for chunk in resp.parse():
        if chunk.choices:
            text += chunk.choices[0].delta.content or ""
        usage = chunk.usage or usage

    assert text == "fake reply: hello there world"
    assert resp.headers["x-aura-provider"] == "fakeclaude"
    assert resp.headers["x-aura-fallbacks"] == "1"
    assert usage is not None and (usage.prompt_tokens, usage.completion_tokens) == (13, 5)
    [row] = gw.usage(1)
    assert row.stream and row.status == "ok" and row.fallbacks == 1
    assert row.cost_usd == HELLO_COST and not row.cost_estimated
    assert [a["ok"] for a in row.attempts] == [False, False, True]


def test_a_stream_whose_first_byte_is_too_slow_fails_over(gw):
    add_model(gw.providers["fakeai"], "fake-slow-first-byte")
    add_model(gw.providers["fakeclaude"], "fake-ok")
    # The fake waits 0.3 s before its first byte; this endpoint gives up after 0.1 s.
    ProviderEndpoint.objects.filter(provider=gw.providers["fakeai"]).update(
        first_byte_timeout=0.1, max_retries=0
    )
    gw.policy(aliases={"chain": ["fakeai/fake-slow-first-byte", "fakeclaude/fake-ok"]})
    cache.clear()

    headers, payloads = raw_stream(gw, {"model": "chain", "messages": HELLO})

    assert text_of(payloads) == "fake reply: hello there world"
    assert payloads[-1] == "[DONE]"
    assert headers["x-aura-provider"] == "fakeclaude" and headers["x-aura-fallbacks"] == "1"
    [row] = gw.usage(1)
    assert row.status == "ok" and row.fallbacks == 1
    assert row.attempts[0]["model"] == "fakeai/fake-slow-first-byte"
    assert row.attempts[0]["error"] == "timeout"


def test_a_stream_cut_mid_way_ends_with_an_error_event_and_no_done(gw):
    add_model(gw.providers["fakeai"], "fake-cut-stream")
    add_model(gw.providers["fakeclaude"], "fake-ok")  # must not be used: bytes were sent
    messages = [{"role": "user", "content": "one two three four five six"}]

    headers, payloads = raw_stream(gw, {"model": "fake-cut-stream", "messages": messages})

    assert "[DONE]" not in payloads
    *chunks, last = payloads
    error = json.loads(last)["error"]
    assert error["code"] == "upstream_stream_error" and error["type"] == "server_error"
    # The fake sends half of its 12 events (role, 5 words) and drops the connection.
    delivered = text_of(chunks)
    assert delivered == "fake reply: one two three "
    assert headers["x-aura-provider"] == "fakeai"
    assert gw.fakes["anthropic"].calls == []
    [row] = gw.usage(1)
    assert row.status == "cut" and row.stream and row.cost_estimated
    assert row.request_id == headers["x-aura-request-id"]
    # Nothing reported by the upstream: prompt by local count (13), completion by local
    # count of what was delivered ("fake reply: one two three " = 5 words + colon = 6).
    assert (row.prompt_tokens, row.completion_tokens) == (13, 6)
    assert row.cost_usd == (Decimal(13) * 2 + Decimal(6) * 8) / MILLION


def test_the_sdk_raises_on_a_cut_stream_instead_of_ending_cleanly(gw):
    add_model(gw.providers["fakeai"], "fake-cut-stream")
    stream = gw.client().chat.completions.create(
        model="fake-cut-stream",
        messages=[{"role": "user", "content": "one two three four five six"}],
        stream=True,
    )
    text = ""
    with pytest.raises(openai.APIError) as info:
        for chunk in stream:
            if chunk.choices:
                text += chunk.choices[0].delta.content or ""
    assert "Upstream stream failed" in info.value.message
    assert text == "fake reply: one two three "
    [row] = gw.usage(1)
    assert row.status == "cut"


def test_a_stream_without_upstream_usage_is_charged_by_local_count_and_flagged(gw):
    add_model(gw.providers["fakeai"], "fake-no-usage")
    messages = [{"role": "user", "content": "one two three"}]

    _, payloads = raw_stream(
        gw,
        {"model": "fake-no-usage", "messages": messages, "stream_options": {"include_usage": True}},
    )

    assert text_of(payloads) == "fake reply: one two three"
    assert payloads[-1] == "[DONE]"
    [row] = gw.usage(1)
    assert row.status == "ok" and row.cost_estimated
    assert (row.prompt_tokens, row.completion_tokens) == (10, 6)
    assert row.cost_usd == (Decimal(10) * 2 + Decimal(6) * 8) / MILLION


def test_a_completion_without_upstream_usage_is_charged_by_local_count_and_flagged(gw):
    add_model(gw.providers["fakeai"], "fake-no-usage")
    resp = gw.client().chat.completions.with_raw_response.create(
        model="fake-no-usage", messages=[{"role": "user", "content": "one two three"}]
    )
    assert resp.parse().choices[0].message.content == "fake reply: one two three"
    expected = (Decimal(10) * 2 + Decimal(6) * 8) / MILLION
    assert Decimal(resp.headers["x-aura-cost-usd"]) == expected
    [row] = gw.usage(1)
    assert row.cost_estimated and (row.prompt_tokens, row.completion_tokens) == (10, 6)
    assert row.cost_usd == expected


@pytest.mark.parametrize("provider", ["fakeai", "fakeclaude", "fakegemini", "fakellama"])
def test_the_usage_chunk_is_sent_only_when_the_client_asks_for_it(gw, provider):
    add_model(gw.providers[provider], "fake-ok")
    body = {"model": f"{provider}/fake-ok", "messages": HELLO}

    _, without = raw_stream(gw, body)
    _, with_usage = raw_stream(gw, {**body, "stream_options": {"include_usage": True}})

    assert text_of(without) == text_of(with_usage) == "fake reply: hello there world"
    assert without[-1] == with_usage[-1] == "[DONE]"
    assert not any(json.loads(p).get("usage") for p in without[:-1])
    usage_chunks = [json.loads(p) for p in with_usage[:-1] if json.loads(p).get("usage")]
    assert len(usage_chunks) == 1
    assert usage_chunks[0]["usage"]["prompt_tokens"] == 13
    assert usage_chunks[0]["usage"]["completion_tokens"] == 5
    assert json.loads(with_usage[-2]) == usage_chunks[0]  # the last chunk before [DONE]
    rows = gw.usage(2)
    assert [r.cost_usd for r in rows] == [HELLO_COST, HELLO_COST]
    assert not any(r.cost_estimated for r in rows)
