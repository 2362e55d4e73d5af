"""The providers' published examples (tests/providers/fixtures, sources in its README)
through the adapters: each adapter must build requests shaped like the example requests
(and valid for the SDKs' request types) and turn the example responses and streams, served
byte for byte over loopback, into the right OpenAI answer. The examples themselves must
pass the strict checks, which shows the checks accept what the real APIs send."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from anthropic.types import Message, message_create_params
from openai.types import CreateEmbeddingResponse
from openai.types.chat import ChatCompletion, ChatCompletionChunk, completion_create_params

from aura.http import aclose_client
from routing.providers import get_adapter
from routing.providers.base import ProviderError, ProviderTarget
from tests.fakes.server import FakeUpstream
from tests.providers.conftest import FAST, collect
from tests.providers.published import (
    Replay,
    fixture,
    fixture_bytes,
    gemini,
    ollama,
    ollama_event,
    sdk_problems,
    shape_diff,
    shape_problems,
    sse_events,
)

pytestmark = pytest.mark.anyio

OPENAI_PARAMS = completion_create_params.CompletionCreateParamsNonStreaming
ANTHROPIC_PARAMS = message_create_params.MessageCreateParamsNonStreaming
SSE, NDJSON = "text/event-stream", "application/x-ndjson"


@pytest.fixture(scope="module")
def replay() -> Iterator[Replay]:
    server = Replay()
    server.start()
    yield server
    server.stop()


@pytest.fixture
async def upstream(replay: Replay) -> Any:
    replay.reset()
    yield replay
    await aclose_client()


def target(server: FakeUpstream, model: str = "m", **kwargs: Any) -> ProviderTarget:
    return ProviderTarget(
        base_url=server.root_url, api_key="k", upstream_model=model, timeouts=FAST, **kwargs
    )


def keys_missing(example: Any, ours: Any) -> list[str]:
    return shape_diff(example, ours)[0]


# --- the published examples themselves pass the strict checks ----------------------------


def test_the_published_openai_and_azure_examples_are_valid_sdk_objects() -> None:
    # Proves the strict validator accepts what the real API sends.
    for name in ("chat_response", "tools_response"):
        assert sdk_problems(ChatCompletion, fixture(f"openai/{name}.json")) == []
    for _event, data in sse_events(fixture_bytes("openai/stream_response.sse"))[:-1]:
        assert sdk_problems(ChatCompletionChunk, json.loads(data)) == []
    assert sdk_problems(CreateEmbeddingResponse, fixture("openai/embeddings_response.json")) == []
    for name in ("chat_request", "tools_request"):
        assert sdk_problems(OPENAI_PARAMS, fixture(f"openai/{name}.json")) == []
    assert sdk_problems(Message, fixture("anthropic/messages_response.json")) == []
    assert sdk_problems(ANTHROPIC_PARAMS, fixture("anthropic/messages_request.json")) == []
    azure = fixture("azure/chat_completions.json")["responses"]["200"]["body"]
    # Azure's example leaves out `object` and `model`; everything it has is OpenAI's.
    assert sdk_problems(ChatCompletion, azure) == [
        "model: Field required",
        "object: Field required",
    ]


def test_the_strict_checks_reject_an_extra_a_missing_and_a_mistyped_field() -> None:
    published = fixture("openai/chat_response.json")
    choice = published["choices"][0]
    extra = {**published, "choices": [{**choice, "message": {**choice["message"], "x": 1}}]}
    assert sdk_problems(ChatCompletion, extra) == [
        ".choices[0].message.x: not a field of ChatCompletionMessage"
    ]
    missing = {k: v for k, v in published.items() if k != "created"}
    assert sdk_problems(ChatCompletion, missing) == ["created: Field required"]
    assert sdk_problems(ChatCompletion, {**published, "created": "1741569952"}) != []
    request = {**fixture("anthropic/messages_request.json"), "max_token": 1}
    assert sdk_problems(ANTHROPIC_PARAMS, request) == [".max_token: not a field"]
    schema = {"T": {"a": "integer"}}
    assert shape_problems({"a": 1, "b": 2}, schema, "T", {}) == [".b: not a documented field of T"]
    assert shape_problems({"a": "1"}, schema, "T", {}) == [".a: string, documented as integer"]
    assert shape_diff({"a": 1, "b": [{"c": "x"}]}, {"b": [{"c": 1}]}) == (
        [".a"],
        [".b[0].c: integer, published string"],
    )


def test_the_published_gemini_and_ollama_examples_fit_their_documented_fields() -> None:
    # Proves the field lists transcribed from the API references cover the examples.
    for name in ("function_call", "function_response", "usage"):
        assert gemini(fixture(f"gemini/{name}_response.json"), "GenerateContentResponse") == []
    for _event, data in sse_events(fixture_bytes("gemini/stream_response.sse")):
        assert gemini(json.loads(data), "GenerateContentResponse") == []
    for name in ("generate_content", "stream", "function_response"):
        assert gemini(fixture(f"gemini/{name}_request.json"), "GenerateContentRequest") == []
    assert gemini(fixture("gemini/error_400_api_key.json"), "Error") == []
    for name in ("chat", "tools"):
        assert ollama(fixture(f"ollama/{name}_response.json"), "ChatResponse") == []
    for name in ("chat", "stream", "tools", "tool_result"):
        assert ollama(fixture(f"ollama/{name}_request.json"), "ChatRequest") == []
    for line in fixture_bytes("ollama/stream_response.ndjson").splitlines():
        assert ollama_event(json.loads(line)) == []
    assert ollama(fixture("ollama/embed_response.json"), "EmbedResponse") == []
    assert ollama(fixture("ollama/tags_response.json"), "ListResponse") == []
    assert ollama(fixture("ollama/error.json"), "ErrorResponse") == []


# --- adapters: requests like the examples, example answers parsed right ---------------------


async def test_openai_adapter_on_the_published_chat_tools_and_stream(upstream: Replay) -> None:
    adapter = get_adapter("openai")
    request = fixture("openai/chat_request.json")
    upstream.play(fixture_bytes("openai/chat_response.json"))
    result = await adapter.complete(target(upstream, "VAR_chat_model_id"), request)
    sent = upstream.last_call.json
    assert sdk_problems(OPENAI_PARAMS, sent) == [] and keys_missing(request, sent) == []
    assert result.body == fixture("openai/chat_response.json")
    assert result.usage is not None
    assert (result.usage.prompt_tokens, result.usage.completion_tokens) == (19, 10)

    tools = fixture("openai/tools_request.json")
    upstream.play(fixture_bytes("openai/tools_response.json"))
    result = await adapter.complete(target(upstream, "gpt-4.1"), tools)
    assert upstream.last_call.json == tools
    assert result.body["choices"][0]["finish_reason"] == "tool_calls"

    upstream.play(fixture_bytes("openai/stream_response.sse"), SSE)
    streamed = await collect(
        adapter.stream(target(upstream), fixture("openai/stream_request.json"))
    )
    assert upstream.last_call.json["stream_options"] == {"include_usage": True}
    assert (streamed.text, streamed.finish_reason, streamed.role) == ("Hello", "stop", "assistant")
    assert streamed.usage == {"prompt_tokens": 9, "completion_tokens": 12, "total_tokens": 21}

    upstream.play(fixture_bytes("openai/error_401.json"), status=401)
    with pytest.raises(ProviderError) as err:
        await adapter.complete(target(upstream), request)
    assert (err.value.kind, err.value.provider_code) == ("auth", "invalid_api_key")


async def test_openai_adapter_on_the_published_embeddings(upstream: Replay) -> None:
    request = fixture("openai/embeddings_request.json")
    upstream.play(fixture_bytes("openai/embeddings_response.json"))
    result = await get_adapter("openai").embed(target(upstream, "text-embedding-ada-002"), request)
    assert upstream.last_call.json == request
    assert sdk_problems(CreateEmbeddingResponse, result) == []


async def test_azure_adapter_on_the_published_examples(upstream: Replay) -> None:
    adapter = get_adapter("azure")
    example = fixture("azure/chat_completions.json")
    upstream.play(json.dumps(example["responses"]["200"]["body"]).encode())
    result = await adapter.complete(
        target(upstream, "<deployment-id>", api_version="2024-10-21"),
        {"model": "gpt-4o", **example["parameters"]["body"]},
    )
    call = upstream.last_call
    assert (call.path, call.query) == (
        "/openai/deployments/<deployment-id>/chat/completions",
        {"api-version": "2024-10-21"},
    )
    assert call.json == example["parameters"]["body"]
    assert result.usage is not None and result.usage.completion_tokens == 557

    embeddings = fixture("azure/embeddings.json")
    upstream.play(json.dumps(embeddings["responses"]["200"]["body"]).encode())
    vectors = await adapter.embed(target(upstream, "d"), embeddings["parameters"]["body"])
    assert upstream.last_call.json == embeddings["parameters"]["body"]
    assert len(vectors["data"][0]["embedding"]) == 8

    upstream.play(fixture_bytes("azure/error_429.json"), status=429)
    with pytest.raises(ProviderError) as err:
        await adapter.complete(target(upstream, "d"), {"messages": []})
    assert (err.value.kind, err.value.provider_code) == ("rate_limit", "429")


WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Get the current weather in a given location",
        "parameters": fixture("anthropic/tools_stream_request.json")["tools"][0]["input_schema"],
    },
}


async def test_anthropic_adapter_builds_requests_like_the_published_ones(
    upstream: Replay,
) -> None:
    adapter = get_adapter("anthropic")
    example = fixture("anthropic/messages_request.json")
    upstream.play(fixture_bytes("anthropic/messages_response.json"))
    await adapter.complete(
        target(upstream, example["model"]),
        {"model": "x", "max_tokens": 1024, "messages": example["messages"]},
    )
    sent = upstream.last_call.json
    assert sdk_problems(ANTHROPIC_PARAMS, sent) == [] and keys_missing(example, sent) == []

    example = fixture("anthropic/tools_stream_request.json")
    upstream.play(fixture_bytes("anthropic/tools_stream_response.sse"), SSE)
    request = {
        "model": "x",
        "max_tokens": 1024,
        "messages": example["messages"],
        "tools": [WEATHER_TOOL],
        "tool_choice": "required",
    }
    await collect(adapter.stream(target(upstream, example["model"]), request))
    sent = upstream.last_call.json
    assert sdk_problems(message_create_params.MessageCreateParamsStreaming, sent) == []
    assert sent["tools"] == example["tools"] and sent["tool_choice"] == example["tool_choice"]
    assert keys_missing(example, sent) == []


async def test_anthropic_adapter_parses_the_published_answers(upstream: Replay) -> None:
    adapter = get_adapter("anthropic")
    request = {"model": "x", "messages": [{"role": "user", "content": "Hello, world"}]}
    upstream.play(fixture_bytes("anthropic/messages_response.json"))
    result = await adapter.complete(target(upstream), request)
    message = result.body["choices"][0]
    assert message["message"]["content"] == "Hi! My name is Claude."
    assert message["finish_reason"] == "stop"
    assert result.usage is not None
    assert (result.usage.prompt_tokens, result.usage.completion_tokens) == (2095, 503)
    assert sdk_problems(ChatCompletion, result.body) == []

    upstream.play(fixture_bytes("anthropic/tools_response.json"))
    result = await adapter.complete(target(upstream), request)
    choice = result.body["choices"][0]
    assert choice["finish_reason"] == "tool_calls" and result.usage is None
    call = choice["message"]["tool_calls"][0]
    assert (call["id"], call["function"]["name"]) == (
        "toolu_01A09q90qw90lq917835lq9",
        "get_weather",
    )
    assert json.loads(call["function"]["arguments"]) == {
        "location": "San Francisco, CA",
        "unit": "celsius",
    }

    upstream.play(fixture_bytes("anthropic/error_404.json"), status=404)
    with pytest.raises(ProviderError) as err:
        await adapter.complete(target(upstream), request)
    assert (err.value.kind, err.value.provider_code) == ("not_found", "not_found_error")


async def test_anthropic_adapter_turns_the_published_streams_into_openai_chunks(
    upstream: Replay,
) -> None:
    adapter = get_adapter("anthropic")
    request = {"model": "x", "messages": [{"role": "user", "content": "Hello"}], "stream": True}
    upstream.play(fixture_bytes("anthropic/stream_response.sse"), SSE)
    basic = await collect(adapter.stream(target(upstream), request))
    assert (basic.text, basic.finish_reason) == ("Hello!", "stop")
    assert basic.usage == {"prompt_tokens": 25, "completion_tokens": 15, "total_tokens": 40}

    upstream.play(fixture_bytes("anthropic/tools_stream_response.sse"), SSE)
    tools = await collect(adapter.stream(target(upstream), request))
    assert tools.text == "Okay, let's check the weather for San Francisco, CA:"
    assert tools.finish_reason == "tool_calls"
    assert tools.tool_calls[0]["id"] == "toolu_01T1x1fJ34qAmk2tNTrN7Up6"
    assert json.loads(tools.tool_calls[0]["arguments"]) == {
        "location": "San Francisco, CA",
        "unit": "fahrenheit",
    }
    assert tools.usage is not None and tools.usage["completion_tokens"] == 89

    upstream.play(fixture_bytes("anthropic/thinking_stream_response.sse"), SSE)
    thinking = await collect(adapter.stream(target(upstream), request))
    # Thinking is not answer text; this published stream reports no usage at all.
    assert (thinking.text, thinking.usage) == ("27 * 453 = 12,231", None)
    for chunk in basic.chunks + tools.chunks + thinking.chunks:
        assert sdk_problems(ChatCompletionChunk, chunk) == []

    upstream.play(fixture_bytes("anthropic/error_stream_event.sse"), SSE)
    with pytest.raises(ProviderError) as err:
        await collect(adapter.stream(target(upstream), request))
    assert (err.value.kind, err.value.retryable) == ("server", True)


async def test_gemini_adapter_on_the_published_examples(upstream: Replay) -> None:
    adapter = get_adapter("gemini")
    example = fixture("gemini/generate_content_request.json")
    upstream.play(fixture_bytes("gemini/usage_response.json"))
    text = example["contents"][0]["parts"][0]["text"]
    result = await adapter.complete(
        target(upstream, "gemini-2.5-flash"),
        {"model": "x", "messages": [{"role": "user", "content": text}]},
    )
    sent = upstream.last_call.json
    assert gemini(sent, "GenerateContentRequest") == [] and keys_missing(example, sent) == []
    assert upstream.last_call.path == "/v1beta/models/gemini-2.5-flash:generateContent"
    assert result.usage is not None
    # Thinking tokens are billed as output.
    assert (result.usage.prompt_tokens, result.usage.completion_tokens) == (8, 29)
    assert result.body["model"] == "gemini-2.5-flash"
    assert sdk_problems(ChatCompletion, result.body) == []

    upstream.play(fixture_bytes("gemini/function_call_response.json"))
    published = fixture("gemini/function_response_request.json")
    declaration = published["tools"][0]["functionDeclarations"][1]
    tool = {"type": "function", "function": {"name": declaration["name"], "parameters": {}}}
    question = {"role": "user", "content": published["contents"][0]["parts"][0]["text"]}
    result = await adapter.complete(target(upstream), {"messages": [question], "tools": [tool]})
    choice = result.body["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    call = choice["message"]["tool_calls"][0]
    assert call["function"]["name"] == "find_theaters"
    assert json.loads(call["function"]["arguments"]) == {
        "movie": "Barbie",
        "location": "Mountain View, CA",
    }

    upstream.play(fixture_bytes("gemini/function_response_response.json"))
    turns = [
        question,
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": call["id"], "content": json.dumps({"movie": "Barbie"})},
    ]
    result = await adapter.complete(target(upstream), {"messages": turns, "tools": [tool]})
    sent = upstream.last_call.json
    assert gemini(sent, "GenerateContentRequest") == []
    # Same turns as the published request, function call and response included.
    assert keys_missing(published["contents"], sent["contents"]) == []
    assert result.body["choices"][0]["message"]["content"].startswith("OK. I found two")

    upstream.play(fixture_bytes("gemini/error_400_api_key.json"), status=400)
    with pytest.raises(ProviderError) as err:
        await adapter.complete(target(upstream), {"messages": [question]})
    assert (err.value.kind, err.value.provider_code) == ("auth", "INVALID_ARGUMENT")


async def test_gemini_adapter_on_the_published_stream(upstream: Replay) -> None:
    example = fixture("gemini/stream_request.json")
    upstream.play(fixture_bytes("gemini/stream_response.sse"), SSE)
    text = example["contents"][0]["parts"][0]["text"]
    request = {"messages": [{"role": "user", "content": text}], "stream": True}
    streamed = await collect(get_adapter("gemini").stream(target(upstream), request))
    assert upstream.last_call.query == {"alt": "sse"}
    assert keys_missing(example, upstream.last_call.json) == []
    expected = "".join(
        json.loads(d)["candidates"][0]["content"]["parts"][0]["text"]
        for _e, d in sse_events(fixture_bytes("gemini/stream_response.sse"))
    )
    assert (streamed.text, streamed.finish_reason, streamed.usage) == (expected, "stop", None)


async def test_ollama_adapter_on_the_published_examples(upstream: Replay) -> None:
    adapter = get_adapter("ollama")
    example = fixture("ollama/chat_request.json")
    upstream.play(fixture_bytes("ollama/chat_response.json"))
    result = await adapter.complete(target(upstream, "gemma4"), example)
    sent = upstream.last_call.json
    assert ollama(sent, "ChatRequest") == [] and sent == example
    assert result.body["choices"][0]["message"]["content"] == "Hello! How can I help you today?"
    assert result.usage is not None
    assert (result.usage.prompt_tokens, result.usage.completion_tokens) == (11, 18)

    example = fixture("ollama/tools_request.json")
    upstream.play(fixture_bytes("ollama/tools_response.json"))
    result = await adapter.complete(target(upstream, "llama3.2"), example)
    assert upstream.last_call.json == example
    choice = result.body["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    call = choice["message"]["tool_calls"][0]
    assert json.loads(call["function"]["arguments"]) == {
        "format": "celsius",
        "location": "Paris, FR",
    }

    example = fixture("ollama/tool_result_request.json")
    upstream.play(fixture_bytes("ollama/chat_response.json"))
    turns = [
        example["messages"][0],
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "c1",
                    "type": "function",
                    "function": {"name": "get_temperature", "arguments": '{"city": "New York"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "c1", "content": "22°C"},
    ]
    await adapter.complete(target(upstream, "qwen3"), {"messages": turns})
    sent = upstream.last_call.json
    assert ollama(sent, "ChatRequest") == []
    assert sent["messages"][2] == example["messages"][2]
    # The docs' example call also carries "type" and a "function.index"; Ollama's schema
    # (ToolCall) has neither, and the tool result is matched by tool_name.
    assert keys_missing(example["messages"], sent["messages"]) == [
        "[1].tool_calls[0].type",
        "[1].tool_calls[0].function.index",
    ]

    upstream.play(fixture_bytes("ollama/error.json"), status=500)
    with pytest.raises(ProviderError) as err:
        await adapter.complete(target(upstream), example)
    assert err.value.kind == "server" and "failed to generate" in err.value.message


async def test_ollama_adapter_on_the_published_streams(upstream: Replay) -> None:
    adapter = get_adapter("ollama")
    example = fixture("ollama/stream_request.json")
    upstream.play(fixture_bytes("ollama/stream_response.ndjson"), NDJSON)
    streamed = await collect(adapter.stream(target(upstream, "llama3.2"), example))
    assert upstream.last_call.json == {**example, "stream": True}
    assert (streamed.text, streamed.finish_reason) == ("The", "stop")
    assert streamed.usage == {"prompt_tokens": 26, "completion_tokens": 282, "total_tokens": 308}

    upstream.play(fixture_bytes("ollama/stream_error.ndjson"), NDJSON)
    with pytest.raises(ProviderError) as err:
        await collect(adapter.stream(target(upstream), example))
    assert err.value.kind == "server" and "error was encountered" in err.value.message


async def test_ollama_adapter_on_the_published_embeddings(upstream: Replay) -> None:
    example = fixture("ollama/embed_request.json")
    upstream.play(fixture_bytes("ollama/embed_response.json"))
    result = await get_adapter("ollama").embed(target(upstream, "embeddinggemma"), example)
    assert upstream.last_call.json == {**example, "input": [example["input"]]}
    assert result["usage"]["prompt_tokens"] == 8
    assert sdk_problems(CreateEmbeddingResponse, result) == []
