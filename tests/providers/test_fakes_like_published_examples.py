"""The fakes answer with the fields and types of the providers' published examples
(tests/providers/fixtures, sources in its README) and, for Gemini and Ollama, with only
documented fields: a structural comparison, so a fake cannot drift from the real thing
together with the adapter it serves."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.fakes.server import FakeUpstream
from tests.providers.published import (
    fixture,
    fixture_bytes,
    gemini,
    ollama,
    ollama_event,
    shape_diff,
    sse_events,
)

MESSAGES = [{"role": "user", "content": "hello world"}]
WEATHER = {"type": "function", "function": {"name": "get_weather", "parameters": {}}}


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=10) as client:
        yield client


def _post(server: FakeUpstream, path: str, body: Any, http: httpx.Client, **headers: str) -> Any:
    server.reset()
    return http.post(server.root_url + path, json=body, headers=headers or {"x": "y"})


def test_openai_fake_answers_like_the_published_examples(
    fake_servers: dict[str, FakeUpstream], http: httpx.Client
) -> None:
    server = fake_servers["openai"]
    auth = {"authorization": "Bearer k"}
    chat = _post(server, "/v1/chat/completions", {"model": "m", "messages": MESSAGES}, http, **auth)
    missing, differ = shape_diff(fixture("openai/chat_response.json"), chat.json())
    assert differ == []
    # Set only for web search, predicted outputs and service tiers, which the fakes lack.
    assert missing == [
        ".choices[0].message.annotations",
        ".usage.completion_tokens_details.accepted_prediction_tokens",
        ".usage.completion_tokens_details.rejected_prediction_tokens",
        ".service_tier",
    ]
    body: dict[str, Any] = {"model": "fake-tools", "messages": MESSAGES, "tools": [WEATHER]}
    tools = _post(server, "/v1/chat/completions", body, http, **auth)
    missing, differ = shape_diff(fixture("openai/tools_response.json"), tools.json())
    assert differ == [] and [m for m in missing if "prediction" not in m] == []

    body = {
        "model": "m",
        "messages": MESSAGES,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    ours = [
        json.loads(d)
        for _e, d in sse_events(_post(server, "/v1/chat/completions", body, http, **auth).content)[
            :-1
        ]
    ]
    published = [
        json.loads(d) for _e, d in sse_events(fixture_bytes("openai/stream_response.sse"))[:-1]
    ]
    # first chunk, a content chunk, the finish chunk, the usage chunk
    for theirs, mine in zip(published, [ours[0], ours[1], ours[-2], ours[-1]], strict=True):
        assert shape_diff(theirs, mine) == ([], [])
    error = _post(server, "/v1/chat/completions", {"model": "m"}, http)
    assert shape_diff(fixture("openai/error_401.json"), error.json()) == ([], [])
    models = http.get(server.root_url + "/v1/models", headers=auth)
    assert shape_diff(fixture("openai/models_response.json"), models.json()) == ([], [])
    body = {"model": "e", "input": "x"}
    embeddings = _post(server, "/v1/embeddings", body, http, **auth)
    assert shape_diff(fixture("openai/embeddings_response.json"), embeddings.json()) == ([], [])


def test_azure_fake_answers_like_the_published_examples(
    fake_servers: dict[str, FakeUpstream], http: httpx.Client
) -> None:
    server = fake_servers["azure"]
    example = fixture("azure/chat_completions.json")
    path = "/openai/deployments/d/chat/completions?api-version=2024-10-21"
    chat = _post(server, path, example["parameters"]["body"], http, **{"api-key": "k"})
    assert shape_diff(example["responses"]["200"]["body"], chat.json()) == ([], [])
    example = fixture("azure/embeddings.json")
    path = "/openai/deployments/d/embeddings?api-version=2024-10-21"
    vectors = _post(server, path, example["parameters"]["body"], http, **{"api-key": "k"})
    assert shape_diff(example["responses"]["200"]["body"], vectors.json()) == ([], [])
    error = _post(
        server,
        "/openai/deployments/fake-429/chat/completions?api-version=1",
        {},
        http,
        **{"api-key": "k"},
    )
    assert shape_diff(fixture("azure/error_429.json"), error.json()) == ([], [])


ANTHROPIC_HEADERS = {"x-api-key": "k", "anthropic-version": "2023-06-01"}


def _by_type(raw: bytes) -> dict[str, list[Any]]:
    events: dict[str, list[Any]] = {}
    for _name, data in sse_events(raw):
        event = json.loads(data)
        events.setdefault(event["type"], []).append(event)
    return events


def test_anthropic_fake_answers_like_the_published_examples(
    fake_servers: dict[str, FakeUpstream], http: httpx.Client
) -> None:
    server = fake_servers["anthropic"]
    body = {"model": "m", "max_tokens": 100, "messages": MESSAGES}
    message = _post(server, "/v1/messages", body, http, **ANTHROPIC_HEADERS)
    # citations: only for requests with documents; none of the fakes' requests has one.
    assert shape_diff(fixture("anthropic/messages_response.json"), message.json()) == (
        [".content[0].citations"],
        [],
    )
    body = {**body, "model": "fake-tools", "tools": [{"name": "get_weather", "input_schema": {}}]}
    tools = _post(server, "/v1/messages", body, http, **ANTHROPIC_HEADERS)
    published = fixture("anthropic/tools_response.json")
    assert shape_diff(published["content"][1], tools.json()["content"][0]) == ([], [])

    for name, request in [
        ("stream_response", {"model": "m", "max_tokens": 100, "messages": MESSAGES}),
        ("tools_stream_response", body),
    ]:
        ours = _by_type(
            _post(
                server, "/v1/messages", {**request, "stream": True}, http, **ANTHROPIC_HEADERS
            ).content
        )
        theirs = _by_type(fixture_bytes(f"anthropic/{name}.sse"))
        assert sorted(ours) == sorted(theirs), "the same event types"
        for kind, events in theirs.items():
            for event in ours[kind]:
                # Ours: one block per answer; the published tool stream starts with text.
                match = [e for e in events if shape_diff(e, event) == ([], [])]
                assert match, (kind, event, events)
    error = _post(
        server, "/v1/messages", {"model": "fake-404", "max_tokens": 1}, http, **ANTHROPIC_HEADERS
    )
    assert shape_diff(fixture("anthropic/error_404.json"), error.json()) == ([], [])
    streamed = _post(
        server,
        "/v1/messages",
        {**body, "model": "fake-stream-error", "stream": True},
        http,
        **ANTHROPIC_HEADERS,
    )
    published_error = json.loads(
        sse_events(fixture_bytes("anthropic/error_stream_event.sse"))[0][1]
    )
    assert shape_diff(published_error, json.loads(sse_events(streamed.content)[-1][1])) == ([], [])


GEMINI_KEY = {"x-goog-api-key": "k"}


def test_gemini_fake_answers_fit_the_documented_fields_and_the_examples(
    fake_servers: dict[str, FakeUpstream], http: httpx.Client
) -> None:
    server = fake_servers["gemini"]
    contents = {"contents": [{"role": "user", "parts": [{"text": "hello world"}]}]}
    tools = {**contents, "tools": [{"functionDeclarations": [{"name": "find_theaters"}]}]}
    for model, body, example in [
        ("fake-ok", contents, "usage_response"),
        ("fake-tools", tools, "function_call_response"),
    ]:
        answer = _post(
            server, f"/v1beta/models/{model}:generateContent", body, http, **GEMINI_KEY
        ).json()
        assert gemini(answer, "GenerateContentResponse") == []
        missing, differ = shape_diff(fixture(f"gemini/{example}.json"), answer)
        assert differ == []
        # Optional: safety ratings and prompt feedback (in the older published answers),
        # thinking tokens (thinking models only), the per-modality token breakdown.
        optional = ("safetyRatings", "promptFeedback", "thoughtsTokenCount", "TokensDetails")
        assert [m for m in missing if not any(o in m for o in optional)] == []
        for stream_body in (body,):
            raw = _post(
                server,
                f"/v1beta/models/{model}:streamGenerateContent?alt=sse",
                stream_body,
                http,
                **GEMINI_KEY,
            ).content
            for _e, data in sse_events(raw):
                event = json.loads(data)
                assert gemini(event, "GenerateContentResponse") == []
                # Every published answer has at least one part per candidate.
                assert all(c["content"]["parts"] for c in event["candidates"]), event
    error = _post(server, "/v1beta/models/fake-401:generateContent", contents, http, **GEMINI_KEY)
    assert gemini(error.json(), "Error") == []
    assert shape_diff(fixture("gemini/error_400_api_key.json"), error.json()) == ([], [])
    embed = {"requests": [{"model": "models/e", "content": {"parts": [{"text": "x"}]}}]}
    vectors = _post(server, "/v1beta/models/e:batchEmbedContents", embed, http, **GEMINI_KEY)
    assert gemini(vectors.json(), "BatchEmbedContentsResponse") == []
    models = http.get(server.root_url + "/v1beta/models", headers=GEMINI_KEY)
    assert gemini(models.json(), "ListModelsResponse") == []


def test_ollama_fake_answers_fit_the_documented_fields_and_the_examples(
    fake_servers: dict[str, FakeUpstream], http: httpx.Client
) -> None:
    server = fake_servers["ollama"]
    chat = {"model": "m", "messages": MESSAGES, "stream": False}
    answer = _post(server, "/api/chat", chat, http).json()
    assert ollama(answer, "ChatResponse") == []
    assert shape_diff(fixture("ollama/chat_response.json"), answer) == ([], [])
    tools = {**chat, "model": "fake-tools", "tools": [WEATHER]}
    answer = _post(server, "/api/chat", tools, http).json()
    assert ollama(answer, "ChatResponse") == []
    assert shape_diff(fixture("ollama/tools_response.json"), answer) == ([], [])
    published = [
        json.loads(line) for line in fixture_bytes("ollama/stream_response.ndjson").splitlines()
    ]
    for body in ({**chat, "stream": True}, {**tools, "stream": True}):
        lines = _post(server, "/api/chat", body, http).content.splitlines()
        events = [json.loads(line) for line in lines]
        assert [e for event in events for e in ollama_event(event)] == []
        assert shape_diff(published[-1], events[-1]) == ([], [])
        for event in events[:-1]:
            assert shape_diff(published[0], event)[1] == []
    error = _post(server, "/api/chat", {**chat, "model": "fake-500"}, http)
    assert shape_diff(fixture("ollama/error.json"), error.json()) == ([], [])
    vectors = _post(server, "/api/embed", {"model": "e", "input": "x"}, http)
    assert ollama(vectors.json(), "EmbedResponse") == []
    assert shape_diff(fixture("ollama/embed_response.json"), vectors.json()) == ([], [])
    models = http.get(server.root_url + "/api/tags")
    assert ollama(models.json(), "ListResponse") == []
