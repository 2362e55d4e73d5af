from __future__ import annotations

import json

import pytest

from routing.providers.base import ProviderError
from routing.providers.gemini import from_gemini, gemini_error, to_gemini
from tests.fakes.scenarios import fake_embedding
from tests.providers.conftest import API_KEY, WEATHER_TOOL, Wire, collect

pytestmark = pytest.mark.anyio

PIXEL = "data:image/png;base64,iVBORw0KGgo="


async def test_it_calls_generate_content_with_the_key_header(gemini_wire: Wire) -> None:
    request = {
        "messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}],
        "stop": ["END"],
        "max_tokens": 40,
        "temperature": 0.3,
        "top_p": 0.9,
    }
    await gemini_wire.adapter.complete(gemini_wire.target("gemini-2.5-flash"), request)

    call = gemini_wire.server.last_call
    assert call.path == "/v1beta/models/gemini-2.5-flash:generateContent"
    assert call.headers["x-goog-api-key"] == API_KEY
    assert "key" not in call.query  # never in the URL, where it would end up in logs
    assert call.json["systemInstruction"] == {"parts": [{"text": "be brief"}]}
    assert call.json["contents"] == [{"role": "user", "parts": [{"text": "hi"}]}]
    assert call.json["generationConfig"] == {
        "stopSequences": ["END"],
        "maxOutputTokens": 40,
        "temperature": 0.3,
        "topP": 0.9,
    }


async def test_streams_ask_for_sse(gemini_wire: Wire) -> None:
    streamed = await collect(
        gemini_wire.adapter.stream(
            gemini_wire.target(), {"messages": [{"role": "user", "content": "a b"}]}
        )
    )

    call = gemini_wire.server.last_call
    assert call.path == "/v1beta/models/fake-ok:streamGenerateContent"
    assert call.query == {"alt": "sse"}
    assert streamed.text == "fake reply: a b"
    assert streamed.chunks[0]["id"] == "chatcmpl-fake-response-1"


async def test_a_base_url_with_a_version_is_used_as_is(gemini_wire: Wire) -> None:
    target = gemini_wire.target()
    versioned = type(target)(
        base_url=gemini_wire.server.base_url + "/v1beta",
        api_key=API_KEY,
        upstream_model="models/fake-ok",
    )
    await gemini_wire.adapter.complete(versioned, {"messages": [{"role": "user", "content": "x"}]})

    assert gemini_wire.server.last_call.path == "/v1beta/models/fake-ok:generateContent"


async def test_tool_calls_and_results_use_function_parts(gemini_wire: Wire) -> None:
    messages = [
        {"role": "user", "content": "weather in Paris"},
        {
            "role": "assistant",
            "content": "checking",
            "tool_calls": [
                {
                    "id": "call_9",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"query": "Paris"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_9", "content": '{"temp": 21}'},
    ]
    request = {"messages": messages, "tools": [WEATHER_TOOL], "tool_choice": "required"}
    result = await gemini_wire.adapter.complete(gemini_wire.target("fake-tools"), request)

    sent = gemini_wire.server.last_call.json
    assert sent["tools"] == [
        {
            "functionDeclarations": [
                {
                    "name": "get_weather",
                    "description": "Current weather for a city",
                    "parametersJsonSchema": WEATHER_TOOL["function"]["parameters"],  # type: ignore[index]
                }
            ]
        }
    ]
    assert sent["toolConfig"] == {"functionCallingConfig": {"mode": "ANY"}}
    assert [c["role"] for c in sent["contents"]] == ["user", "model", "user"]
    assert sent["contents"][1]["parts"] == [
        {"text": "checking"},
        {"functionCall": {"name": "get_weather", "args": {"query": "Paris"}}},
    ]
    # The response is keyed by function name, which OpenAI only gives via the call id.
    assert sent["contents"][2]["parts"] == [
        {"functionResponse": {"name": "get_weather", "response": {"temp": 21}}}
    ]
    assert result.body["choices"][0]["message"]["content"] == 'tool result: {"temp": 21}'


def test_a_named_tool_choice_restricts_the_allowed_functions() -> None:
    request = {
        "messages": [{"role": "user", "content": "x"}],
        "tools": [WEATHER_TOOL],
        "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
    }

    assert to_gemini(request)["toolConfig"] == {
        "functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["get_weather"]}
    }


async def test_json_mode_sets_the_response_mime_type(gemini_wire: Wire) -> None:
    schema = {"type": "object", "properties": {"answer": {"type": "string"}}}
    request = {
        "messages": [{"role": "user", "content": "x"}],
        "response_format": {"type": "json_schema", "json_schema": {"name": "a", "schema": schema}},
    }
    result = await gemini_wire.adapter.complete(gemini_wire.target("fake-json"), request)

    config = gemini_wire.server.last_call.json["generationConfig"]
    assert config == {"responseMimeType": "application/json", "responseJsonSchema": schema}
    assert json.loads(result.body["choices"][0]["message"]["content"]) == {"answer": "x"}


def test_images_become_inline_data_or_file_data() -> None:
    content = [
        {"type": "text", "text": "what is this"},
        {"type": "image_url", "image_url": {"url": PIXEL}},
        {"type": "image_url", "image_url": {"url": "gs://bucket/cat.png"}},
    ]
    parts = to_gemini({"messages": [{"role": "user", "content": content}]})["contents"][0]["parts"]

    assert parts[1] == {"inlineData": {"mimeType": "image/png", "data": "iVBORw0KGgo="}}
    assert parts[2]["fileData"]["fileUri"] == "gs://bucket/cat.png"


def test_safety_and_length_finish_reasons_map_to_openai() -> None:
    blocked = from_gemini({"promptFeedback": {"blockReason": "SAFETY"}}, "m")
    filtered = from_gemini(
        {"candidates": [{"content": {"parts": [{"text": "x"}]}, "finishReason": "SAFETY"}]}, "m"
    )
    long = from_gemini(
        {"candidates": [{"content": {"parts": [{"text": "x"}]}, "finishReason": "MAX_TOKENS"}]}, "m"
    )

    assert blocked.body["choices"][0]["finish_reason"] == "content_filter"
    assert filtered.body["choices"][0]["finish_reason"] == "content_filter"
    assert long.body["choices"][0]["finish_reason"] == "length"


def test_thinking_tokens_count_as_completion_tokens() -> None:
    usage = {
        "promptTokenCount": 4,
        "candidatesTokenCount": 2,
        "thoughtsTokenCount": 30,
        "cachedContentTokenCount": 1,
    }
    result = from_gemini(
        {"candidates": [{"content": {"parts": [{"text": "x"}]}}], "usageMetadata": usage}, "m"
    )

    assert result.usage is not None
    assert (
        result.usage.prompt_tokens,
        result.usage.completion_tokens,
        result.usage.cached_tokens,
    ) == (4, 32, 1)


def test_the_retry_delay_in_error_details_is_honoured() -> None:
    body = {
        "error": {
            "code": 429,
            "status": "RESOURCE_EXHAUSTED",
            "message": "quota",
            "details": [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "13s"}],
        }
    }
    error = gemini_error(429, {}, json.dumps(body).encode(), None)

    assert (error.kind, error.retryable, error.retry_after) == ("rate_limit", True, 13.0)


async def test_a_bad_key_is_an_auth_error_despite_the_400(gemini_wire: Wire) -> None:
    with pytest.raises(ProviderError) as info:
        await gemini_wire.adapter.complete(
            gemini_wire.target("fake-401"), {"messages": [{"role": "user", "content": "x"}]}
        )

    assert (info.value.kind, info.value.status, info.value.retryable) == ("auth", 400, False)


async def test_embeddings_use_batch_embed_contents(gemini_wire: Wire) -> None:
    request = {"input": ["hello world", "foo"], "dimensions": 4}
    result = await gemini_wire.adapter.embed(gemini_wire.target("text-embedding-004"), request)

    call = gemini_wire.server.last_call
    assert call.path == "/v1beta/models/text-embedding-004:batchEmbedContents"
    assert call.json["requests"][0] == {
        "model": "models/text-embedding-004",
        "content": {"parts": [{"text": "hello world"}]},
        "outputDimensionality": 4,
    }
    assert result["object"] == "list"
    assert [d["embedding"] for d in result["data"]] == [
        fake_embedding("hello world", 4),
        fake_embedding("foo", 4),
    ]
    # Gemini reports no embedding usage; 0 tells billing to estimate.
    assert result["usage"] == {"prompt_tokens": 0, "total_tokens": 0}
