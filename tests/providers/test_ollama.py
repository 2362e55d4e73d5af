from __future__ import annotations

import json

import pytest

from routing.providers.base import ProviderError, ProviderTarget
from routing.providers.ollama import to_ollama
from tests.fakes.scenarios import fake_embedding
from tests.providers.conftest import WEATHER_TOOL, Wire, collect

pytestmark = pytest.mark.anyio

PIXEL = "data:image/png;base64,iVBORw0KGgo="
TARGET = ProviderTarget(base_url="http://x", api_key=None, upstream_model="llama3.2")


async def test_options_stops_and_json_format_are_translated(ollama_wire: Wire) -> None:
    request = {
        "messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}],
        "stop": "END",
        "max_tokens": 30,
        "temperature": 0.1,
        "seed": 7,
        "response_format": {"type": "json_object"},
    }
    await ollama_wire.adapter.complete(ollama_wire.target("llama3.2"), request)

    call = ollama_wire.server.last_call
    assert call.path == "/api/chat"
    assert call.json["model"] == "llama3.2"
    assert call.json["stream"] is False  # Ollama streams by default
    assert call.json["messages"] == [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "hi"},
    ]
    assert call.json["options"] == {
        "num_predict": 30,
        "stop": ["END"],
        "temperature": 0.1,
        "seed": 7,
    }
    assert call.json["format"] == "json"


async def test_a_stream_is_ndjson_and_reports_eval_counts(ollama_wire: Wire) -> None:
    request = {"messages": [{"role": "user", "content": "hello there world"}]}
    streamed = await collect(ollama_wire.adapter.stream(ollama_wire.target(), request))

    assert ollama_wire.server.last_call.json["stream"] is True
    assert streamed.text == "fake reply: hello there world"
    assert streamed.usage == {"prompt_tokens": 13, "completion_tokens": 5, "total_tokens": 18}


def test_tool_history_and_images_are_translated() -> None:
    request = {
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "look"},
                    {"type": "image_url", "image_url": {"url": PIXEL}},
                ],
            },
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "c1",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"query": "Oslo"}'},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "c1", "content": "cold"},
        ],
        "tools": [WEATHER_TOOL],
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": "a", "schema": {"type": "object"}},
        },
    }
    body = to_ollama(TARGET, request, stream=False)

    assert body["messages"][0] == {"role": "user", "content": "look", "images": ["iVBORw0KGgo="]}
    assert body["messages"][1]["tool_calls"] == [
        {"function": {"name": "get_weather", "arguments": {"query": "Oslo"}}}
    ]
    assert body["messages"][2] == {"role": "tool", "content": "cold", "tool_name": "get_weather"}
    assert body["tools"] == [WEATHER_TOOL]
    assert body["format"] == {"type": "object"}


def test_remote_image_urls_are_refused() -> None:
    content = [{"type": "image_url", "image_url": {"url": "https://example.com/a.png"}}]

    with pytest.raises(ProviderError) as info:
        to_ollama(TARGET, {"messages": [{"role": "user", "content": content}]}, stream=False)

    assert info.value.kind == "bad_request"


async def test_tool_call_arguments_come_back_as_json_strings(ollama_wire: Wire) -> None:
    request = {
        "messages": [{"role": "user", "content": "weather in Oslo"}],
        "tools": [WEATHER_TOOL],
    }
    result = await ollama_wire.adapter.complete(ollama_wire.target("fake-tools"), request)

    call = result.body["choices"][0]["message"]["tool_calls"][0]
    assert isinstance(call["function"]["arguments"], str)
    assert json.loads(call["function"]["arguments"]) == {"query": "weather in Oslo"}
    assert call["id"].startswith("call_")


async def test_embeddings_use_api_embed(ollama_wire: Wire) -> None:
    result = await ollama_wire.adapter.embed(
        ollama_wire.target("nomic-embed-text"), {"input": ["hello world", "foo"]}
    )

    call = ollama_wire.server.last_call
    assert call.path == "/api/embed"
    assert call.json == {"model": "nomic-embed-text", "input": ["hello world", "foo"]}
    assert result["data"][1] == {
        "object": "embedding",
        "index": 1,
        "embedding": fake_embedding("foo"),
    }
    assert result["usage"] == {"prompt_tokens": 3, "total_tokens": 3}


async def test_a_missing_model_is_not_found(ollama_wire: Wire) -> None:
    with pytest.raises(ProviderError) as info:
        await ollama_wire.adapter.complete(ollama_wire.target("fake-404"), {"messages": []})

    assert (info.value.kind, info.value.retryable) == ("not_found", False)
    assert "not found" in info.value.message
