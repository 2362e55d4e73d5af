"""Every kind of answer the gateway gives, parsed strictly with the official `openai` SDK's
types: completions and streams from each wire format (plain, tools, JSON mode, with and
without the usage chunk), embeddings, the model list, errors and the error event that ends
a cut stream. A field the SDK does not declare, a missing required one or a wrong type fails
(tests/providers/published.py); the SDK itself would accept all of them silently."""

from __future__ import annotations

import json
from typing import Any, Literal

import httpx
import pytest
from openai.types import CreateEmbeddingResponse, Model
from openai.types.chat import ChatCompletion, ChatCompletionChunk
from openai.types.shared import ErrorObject

from tests.gateway.conftest import add_model
from tests.providers.published import Strict, sdk_problems

PROVIDERS = ["fakeai", "fakeclaude", "fakegemini", "fakellama"]
HELLO = [{"role": "user", "content": "hello there world"}]
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "parameters": {"type": "object", "properties": {"query": {"type": "string"}}},
        },
    }
]


class ErrorBody(Strict):
    error: ErrorObject


class ModelList(Strict):
    object: Literal["list"]
    data: list[Model]


def post(gw: Any, path: str, body: dict[str, Any], key: str | None = None) -> httpx.Response:
    headers = {"authorization": f"Bearer {key or gw.plaintext}"}
    return httpx.post(f"{gw.url}{path}", json=body, headers=headers, timeout=10)


def stream_payloads(gw: Any, body: dict[str, Any]) -> list[str]:
    resp = post(gw, "/v1/chat/completions", {**body, "stream": True})
    assert resp.status_code == 200
    events = [e for e in resp.text.split("\n\n") if e.strip()]
    assert all(e.startswith("data: ") for e in events), events
    return [e.removeprefix("data: ") for e in events]


def chunk_problems(payloads: list[str]) -> list[str]:
    return [
        f"chunk {i}: {p}"
        for i, data in enumerate(payloads)
        for p in sdk_problems(ChatCompletionChunk, json.loads(data))
    ]


@pytest.mark.parametrize("provider", PROVIDERS)
def test_completions_and_streams_of_every_wire_format_are_strict_sdk_objects(gw, provider):
    for model in ("fake-ok", "fake-tools", "fake-json"):
        add_model(gw.providers[provider], model)
    for model, extra in [
        ("fake-ok", {}),
        ("fake-tools", {"tools": TOOLS}),
        ("fake-json", {"response_format": {"type": "json_object"}}),
    ]:
        body = {"model": f"{provider}/{model}", "messages": HELLO, **extra}
        whole = post(gw, "/v1/chat/completions", body)
        assert whole.status_code == 200
        assert sdk_problems(ChatCompletion, whole.json()) == []
        prompt_tokens = whole.json()["usage"]["prompt_tokens"]
        for options in ({}, {"stream_options": {"include_usage": True}}):
            payloads = stream_payloads(gw, {**body, **options})
            assert payloads[-1] == "[DONE]"
            assert chunk_problems(payloads[:-1]) == []
        # The usage chunk: no choices, OpenAI's usage object.
        assert json.loads(payloads[-2])["choices"] == []
        assert json.loads(payloads[-2])["usage"]["prompt_tokens"] == prompt_tokens


def test_embeddings_and_the_model_list_are_strict_sdk_objects(gw):
    add_model(gw.providers["fakeai"], "fake-embed", kind="embeddings", caps=["embeddings"])
    add_model(gw.providers["fakegemini"], "fake-ok")

    for inputs in ("alpha beta", ["alpha", "beta gamma"]):
        resp = post(gw, "/v1/embeddings", {"model": "fake-embed", "input": inputs})
        assert resp.status_code == 200
        assert sdk_problems(CreateEmbeddingResponse, resp.json()) == []
    models = httpx.get(
        f"{gw.url}/v1/models", headers={"authorization": f"Bearer {gw.plaintext}"}, timeout=10
    )
    assert models.status_code == 200
    assert [m["id"] for m in models.json()["data"]] == ["auto", "fake-embed", "fake-ok"]
    # The one field beyond OpenAI's Model: the gateway's own `aura` routing metadata on
    # catalog entries (not on "auto" and aliases). Anything else would be a mistake.
    assert sdk_problems(ModelList, models.json()) == [
        ".data[1].aura: not a field of Model",
        ".data[2].aura: not a field of Model",
    ]


def test_errors_are_strict_sdk_error_objects(gw):
    add_model(gw.providers["fakeai"], "fake-400")
    cases = [
        ({"model": "fake-ok"}, None, 400),  # no messages
        ({"model": "no-such-model", "messages": HELLO}, None, 404),
        ({"model": "fake-ok", "messages": HELLO}, "aura-nope.wrongwrongwrongwrong", 401),
        ({"model": "fake-400", "messages": HELLO}, None, 400),  # the upstream refused it
    ]
    for body, key, status in cases:
        resp = post(gw, "/v1/chat/completions", body, key)
        assert resp.status_code == status, resp.text
        assert sdk_problems(ErrorBody, resp.json()) == []


def test_the_error_event_ending_a_cut_stream_is_a_strict_sdk_error_object(gw):
    add_model(gw.providers["fakeai"], "fake-cut-stream")

    payloads = stream_payloads(gw, {"model": "fake-cut-stream", "messages": HELLO})

    *chunks, last = payloads
    assert chunk_problems(chunks) == []
    assert sdk_problems(ErrorBody, json.loads(last)) == []


@pytest.mark.parametrize("provider", PROVIDERS)
def test_answers_replayed_from_the_cache_parse_strictly(gw, provider):
    from tests.gateway.test_cache_exact import _stored

    add_model(gw.providers[provider], "fake-ok")
    gw.policy(cache={"mode": "exact"})
    body = {"model": "fake-ok", "messages": HELLO}
    first = post(gw, "/v1/chat/completions", body)
    assert _stored(gw.tenant.pk, 1) == 1
    hit = post(gw, "/v1/chat/completions", body)
    assert hit.headers["x-aura-cache"] == "exact"
    assert sdk_problems(ChatCompletion, hit.json()) == []
    assert hit.json()["choices"] == first.json()["choices"]
    for options in ({}, {"stream_options": {"include_usage": True}}):
        payloads = stream_payloads(gw, {**body, **options})
        assert payloads[-1] == "[DONE]"
        assert chunk_problems(payloads[:-1]) == []
        assert bool(json.loads(payloads[-2]).get("usage")) == bool(options)
