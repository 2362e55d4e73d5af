"""Every answer the OpenAI, Azure and Anthropic fakes give, in every mode the tests use,
parsed strictly with the official SDKs' types: a field the SDK does not know, a missing
required field or a wrong type fails (tests/providers/published.py)."""

from __future__ import annotations

import json
from typing import Any, Literal

import httpx
import pytest
from anthropic.types import (
    ErrorResponse,
    Message,
    ModelInfo,
    RawContentBlockDeltaEvent,
    RawContentBlockStartEvent,
    RawContentBlockStopEvent,
    RawMessageDeltaEvent,
    RawMessageStartEvent,
    RawMessageStopEvent,
)
from openai.types import CreateEmbeddingResponse, Model
from openai.types.chat import ChatCompletion, ChatCompletionChunk
from openai.types.shared import ErrorObject

from tests.fakes.scenarios import ERROR_STATUS
from tests.fakes.server import FakeUpstream
from tests.providers.published import Strict, fixture, sdk_problems, shape_problems, sse_events


class OpenAIError(Strict):
    error: ErrorObject


class OpenAIModelList(Strict):
    object: Literal["list"]
    data: list[Model]


class AnthropicModelPage(Strict):
    data: list[ModelInfo]
    has_more: bool
    first_id: str | None
    last_id: str | None


class AnthropicPing(Strict):
    # The SDK drops pings before they reach a model, so it has no type for them; the
    # streaming guide documents the event as exactly {"type": "ping"}.
    type: Literal["ping"]


ANTHROPIC_EVENTS: dict[str, Any] = {
    "message_start": RawMessageStartEvent,
    "content_block_start": RawContentBlockStartEvent,
    "content_block_delta": RawContentBlockDeltaEvent,
    "content_block_stop": RawContentBlockStopEvent,
    "message_delta": RawMessageDeltaEvent,
    "message_stop": RawMessageStopEvent,
    "ping": AnthropicPing,
    "error": ErrorResponse,
}

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather",
        "parameters": {"type": "object", "properties": {"query": {"type": "string"}}},
    },
}
# Every answering mode the suite drives the fakes in: (scenario, extra request fields).
OPENAI_MODES: list[tuple[str, dict[str, Any]]] = [
    ("fake-ok", {}),
    ("fake-ok", {"stop": ["world"]}),
    ("fake-ok", {"max_tokens": 2}),
    ("fake-json", {"response_format": {"type": "json_object"}}),
    ("fake-tools", {"tools": [WEATHER]}),
    ("fake-no-usage", {}),
    ("fake-overbill", {"max_tokens": 1}),
]
TOOL_RESULT = [
    {"role": "user", "content": "weather in Paris"},
    {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": "call_1",
                "type": "function",
                "function": {"name": "get_weather", "arguments": '{"query": "Paris"}'},
            }
        ],
    },
    {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
]
MESSAGES = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hello world"}]
AZURE = "/openai/deployments/{model}/{op}?api-version=2024-10-21"


@pytest.fixture
def http() -> Any:
    with httpx.Client(timeout=10) as client:
        yield client


def _server(fake_servers: dict[str, FakeUpstream], kind: str) -> FakeUpstream:
    server = fake_servers[kind]
    server.reset()
    return server


def _openai_url(server: FakeUpstream, wire: str, op: str, model: str) -> str:
    if wire == "azure":
        return server.root_url + AZURE.format(model=model, op=op)
    return f"{server.root_url}/v1/{op}"


def _openai_headers(wire: str) -> dict[str, str]:
    return {"api-key": "k"} if wire == "azure" else {"authorization": "Bearer k"}


def _openai_stream_problems(raw: bytes) -> list[str]:
    events = sse_events(raw)
    assert events and events[-1][1] == "[DONE]", "an OpenAI stream ends with data: [DONE]"
    problems = []
    for i, (_name, data) in enumerate(events[:-1]):
        problems += [f"chunk {i}: {p}" for p in sdk_problems(ChatCompletionChunk, json.loads(data))]
    return problems


@pytest.mark.parametrize("wire", ["openai", "azure"])
@pytest.mark.parametrize(("scenario", "extra"), OPENAI_MODES, ids=lambda v: str(v)[:20])
def test_openai_fake_completions_and_streams_are_valid_sdk_objects(
    fake_servers: dict[str, FakeUpstream], http: httpx.Client, wire: str, scenario: str, extra: Any
) -> None:
    server = _server(fake_servers, wire)
    url = _openai_url(server, wire, "chat/completions", scenario)
    body = {"model": scenario, "messages": MESSAGES, **extra}
    whole = http.post(url, json=body, headers=_openai_headers(wire))
    assert whole.status_code == 200
    assert sdk_problems(ChatCompletion, whole.json()) == []
    assert ("usage" in whole.json()) == (scenario != "fake-no-usage")
    for options in ({}, {"stream_options": {"include_usage": True}}):
        streamed = http.post(
            url, json={**body, "stream": True, **options}, headers=_openai_headers(wire)
        )
        assert streamed.status_code == 200
        assert _openai_stream_problems(streamed.content) == []


@pytest.mark.parametrize("wire", ["openai", "azure"])
def test_openai_fake_tool_results_answers_are_valid_sdk_objects(
    fake_servers: dict[str, FakeUpstream], http: httpx.Client, wire: str
) -> None:
    server = _server(fake_servers, wire)
    url = _openai_url(server, wire, "chat/completions", "fake-tools")
    body = {"model": "fake-tools", "messages": TOOL_RESULT, "tools": [WEATHER]}
    assert (
        sdk_problems(
            ChatCompletion, http.post(url, json=body, headers=_openai_headers(wire)).json()
        )
        == []
    )
    streamed = http.post(url, json={**body, "stream": True}, headers=_openai_headers(wire))
    assert _openai_stream_problems(streamed.content) == []


@pytest.mark.parametrize("scenario", sorted(ERROR_STATUS))
def test_openai_fake_errors_are_valid_sdk_error_objects(
    fake_servers: dict[str, FakeUpstream], http: httpx.Client, scenario: str
) -> None:
    server = _server(fake_servers, "openai")
    resp = http.post(
        f"{server.root_url}/v1/chat/completions",
        json={"model": scenario, "messages": MESSAGES},
        headers={"authorization": "Bearer k"},
    )
    assert resp.status_code == ERROR_STATUS[scenario]
    assert sdk_problems(OpenAIError, resp.json()) == []
    unauthenticated = http.post(f"{server.root_url}/v1/chat/completions", json={"model": "x"})
    assert unauthenticated.status_code == 401
    assert sdk_problems(OpenAIError, unauthenticated.json()) == []


AZURE_ERROR_CHILDREN = {("errorResponse", "error"): "error"}


@pytest.mark.parametrize("scenario", sorted(ERROR_STATUS))
def test_azure_fake_errors_follow_the_azure_error_schema(
    fake_servers: dict[str, FakeUpstream], http: httpx.Client, scenario: str
) -> None:
    server = _server(fake_servers, "azure")
    schema = fixture("azure/schema.json")
    url = server.root_url + AZURE.format(model=scenario, op="chat/completions")
    answers = [
        http.post(url, json={"messages": MESSAGES}, headers={"api-key": "k"}),
        http.post(url, json={"messages": MESSAGES}),  # no api-key
        http.post(url.split("?")[0], json={"messages": MESSAGES}, headers={"api-key": "k"}),
    ]
    assert [a.status_code for a in answers] == [ERROR_STATUS[scenario], 401, 404]
    for answer in answers:
        assert shape_problems(answer.json(), schema, "errorResponse", AZURE_ERROR_CHILDREN) == []


def test_openai_fake_stream_error_event_is_an_sdk_error_object(
    fake_servers: dict[str, FakeUpstream], http: httpx.Client
) -> None:
    server = _server(fake_servers, "openai")
    resp = http.post(
        f"{server.root_url}/v1/chat/completions",
        json={"model": "fake-stream-error", "messages": MESSAGES, "stream": True},
        headers={"authorization": "Bearer k"},
    )
    *chunks, (_name, last) = sse_events(resp.content)
    assert [p for _n, d in chunks for p in sdk_problems(ChatCompletionChunk, json.loads(d))] == []
    assert sdk_problems(OpenAIError, json.loads(last)) == []


@pytest.mark.parametrize("wire", ["openai", "azure"])
def test_openai_fake_embeddings_and_models_are_valid_sdk_objects(
    fake_servers: dict[str, FakeUpstream], http: httpx.Client, wire: str
) -> None:
    server = _server(fake_servers, wire)
    headers = _openai_headers(wire)
    for inputs in ("one text", ["a b", "c"]):
        body = {"model": "emb", "input": inputs, "dimensions": 4}
        resp = http.post(_openai_url(server, wire, "embeddings", "emb"), json=body, headers=headers)
        assert sdk_problems(CreateEmbeddingResponse, resp.json()) == []
    models_url = (
        f"{server.root_url}/openai/models?api-version=2024-10-21"
        if wire == "azure"
        else f"{server.root_url}/v1/models"
    )
    assert sdk_problems(OpenAIModelList, http.get(models_url, headers=headers).json()) == []


@pytest.mark.parametrize(
    ("scenario", "body"),
    [
        ("fake-malformed", {}),
        ("fake-truncated-stream", {}),
        ("fake-malformed", {"stream": True}),
    ],
)
def test_openai_fake_faults_are_not_valid_objects(
    fake_servers: dict[str, FakeUpstream], http: httpx.Client, scenario: str, body: Any
) -> None:
    # These scenarios exist to be broken; a fault that parsed would test nothing.
    server = _server(fake_servers, "openai")
    resp = http.post(
        f"{server.root_url}/v1/chat/completions",
        json={"model": scenario, "messages": MESSAGES, **body},
        headers={"authorization": "Bearer k"},
    )
    if body.get("stream"):
        events = sse_events(resp.content)
        assert events[-1][1] != "[DONE]"
        with pytest.raises(ValueError):
            json.loads(events[-1][1])
    else:
        with pytest.raises(ValueError):
            json.loads(resp.content)


# --- Anthropic ----------------------------------------------------------------------------

ANTHROPIC_HEADERS = {"x-api-key": "k", "anthropic-version": "2023-06-01"}
ANTHROPIC_TOOL = {
    "name": "get_weather",
    "description": "Current weather",
    "input_schema": {"type": "object", "properties": {"query": {"type": "string"}}},
}
ANTHROPIC_MODES: list[tuple[str, dict[str, Any]]] = [
    ("fake-ok", {}),
    ("fake-ok", {"stop_sequences": ["world"]}),
    ("fake-ok", {"max_tokens": 2}),
    ("fake-json", {}),
    ("fake-tools", {"tools": [ANTHROPIC_TOOL]}),
    (
        "fake-tools",
        {
            "tools": [ANTHROPIC_TOOL],
            "messages": [
                {"role": "user", "content": "weather"},
                {
                    "role": "assistant",
                    "content": [
                        {"type": "tool_use", "id": "t1", "name": "get_weather", "input": {}}
                    ],
                },
                {
                    "role": "user",
                    "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "sunny"}],
                },
            ],
        },
    ),
    ("fake-overbill", {"max_tokens": 1}),
]


def anthropic_stream_problems(raw: bytes, *, complete: bool = True) -> list[str]:
    """Every event checked with the SDK type for its `type`; the SSE event name must be that
    type, and a complete stream starts with message_start and ends with message_stop."""
    events = sse_events(raw)
    problems = []
    for i, (name, data) in enumerate(events):
        event = json.loads(data)
        if name != event.get("type"):
            problems.append(f"event {i}: named {name!r} but typed {event.get('type')!r}")
        model = ANTHROPIC_EVENTS.get(str(event.get("type")))
        if model is None:
            problems.append(f"event {i}: unknown type {event.get('type')!r}")
            continue
        problems += [f"event {i} ({name}).{p}" for p in sdk_problems(model, event)]
    if complete:
        kinds = [name for name, _data in events]
        if kinds[:1] != ["message_start"] or kinds[-1:] != ["message_stop"]:
            problems.append(f"stream runs {kinds[:1]} .. {kinds[-1:]}")
    return problems


def _anthropic_post(server: FakeUpstream, http: httpx.Client, scenario: str, extra: Any) -> Any:
    body = {"model": scenario, "max_tokens": 100, "messages": MESSAGES[1:], **extra}
    return http.post(f"{server.root_url}/v1/messages", json=body, headers=ANTHROPIC_HEADERS)


@pytest.mark.parametrize(("scenario", "extra"), ANTHROPIC_MODES, ids=lambda v: str(v)[:20])
def test_anthropic_fake_messages_and_streams_are_valid_sdk_objects(
    fake_servers: dict[str, FakeUpstream], http: httpx.Client, scenario: str, extra: Any
) -> None:
    server = _server(fake_servers, "anthropic")
    assert sdk_problems(Message, _anthropic_post(server, http, scenario, extra).json()) == []
    streamed = _anthropic_post(server, http, scenario, {**extra, "stream": True})
    assert anthropic_stream_problems(streamed.content) == []


def test_anthropic_fake_without_usage_lacks_exactly_the_usage(
    fake_servers: dict[str, FakeUpstream], http: httpx.Client
) -> None:
    # "fake-no-usage" drops usage on purpose; nothing else may be wrong.
    server = _server(fake_servers, "anthropic")
    whole = _anthropic_post(server, http, "fake-no-usage", {})
    assert sdk_problems(Message, whole.json()) == ["usage: Field required"]
    streamed = _anthropic_post(server, http, "fake-no-usage", {"stream": True})
    assert anthropic_stream_problems(streamed.content) == [
        "event 0 (message_start).message.usage: Field required",
        f"event {len(sse_events(streamed.content)) - 2} (message_delta).usage: Field required",
    ]


@pytest.mark.parametrize("scenario", sorted(set(ERROR_STATUS) - {"fake-500-nul", "fake-500-echo"}))
def test_anthropic_fake_errors_are_valid_sdk_error_responses(
    fake_servers: dict[str, FakeUpstream], http: httpx.Client, scenario: str
) -> None:
    server = _server(fake_servers, "anthropic")
    answers = [
        _anthropic_post(server, http, scenario, {}),
        http.post(f"{server.root_url}/v1/messages", json={"model": "x", "max_tokens": 1}),
        http.post(f"{server.root_url}/v1/messages", json={"model": "x"}, headers=ANTHROPIC_HEADERS),
    ]
    assert [a.status_code for a in answers] == [ERROR_STATUS[scenario], 401, 400]
    for answer in answers:
        assert sdk_problems(ErrorResponse, answer.json()) == []


def test_anthropic_fake_stream_error_and_models_are_valid_sdk_objects(
    fake_servers: dict[str, FakeUpstream], http: httpx.Client
) -> None:
    server = _server(fake_servers, "anthropic")
    streamed = _anthropic_post(server, http, "fake-stream-error", {"stream": True})
    assert sse_events(streamed.content)[-1][0] == "error"
    assert anthropic_stream_problems(streamed.content, complete=False) == []
    models = http.get(f"{server.root_url}/v1/models", headers=ANTHROPIC_HEADERS)
    assert sdk_problems(AnthropicModelPage, models.json()) == []
