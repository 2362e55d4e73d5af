from __future__ import annotations

import pytest

from routing.providers.anthropic import FALLBACK_MAX_TOKENS, to_anthropic
from routing.providers.base import ProviderError, ProviderTarget
from tests.providers.conftest import API_KEY, WEATHER_TOOL, Wire, collect

pytestmark = pytest.mark.anyio

PIXEL = "data:image/png;base64,iVBORw0KGgo="


def _target(**kwargs: object) -> ProviderTarget:
    return ProviderTarget(base_url="http://x", api_key=None, upstream_model="claude", **kwargs)  # type: ignore[arg-type]


async def test_system_prompts_move_to_the_system_field(anthropic_wire: Wire) -> None:
    request = {
        "messages": [
            {"role": "system", "content": "be brief"},
            {"role": "developer", "content": "be kind"},
            {"role": "user", "content": "hello"},
        ],
        "stop": "END",
    }
    result = await anthropic_wire.adapter.complete(anthropic_wire.target(), request)

    call = anthropic_wire.server.last_call
    assert call.path == "/v1/messages"
    assert call.headers["x-api-key"] == API_KEY
    assert call.headers["anthropic-version"] == "2023-06-01"
    assert call.json["system"] == "be brief\n\nbe kind"
    assert call.json["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "hello"}]}
    ]
    assert call.json["stop_sequences"] == ["END"]
    assert result.usage is not None and result.usage.prompt_tokens == 10 + 2 + 2 + 1


async def test_max_tokens_comes_from_the_request_then_the_model_then_a_fallback(
    anthropic_wire: Wire,
) -> None:
    messages = [{"role": "user", "content": "hi"}]
    adapter = anthropic_wire.adapter
    await adapter.complete(
        anthropic_wire.target(max_output=8192), {"messages": messages, "max_tokens": 50}
    )
    from_request = anthropic_wire.server.last_call.json["max_tokens"]
    await adapter.complete(anthropic_wire.target(max_output=8192), {"messages": messages})
    from_model = anthropic_wire.server.last_call.json["max_tokens"]
    await adapter.complete(
        anthropic_wire.target(), {"messages": messages, "max_completion_tokens": 7}
    )
    from_completion_tokens = anthropic_wire.server.last_call.json["max_tokens"]
    await adapter.complete(anthropic_wire.target(), {"messages": messages})
    fallback = anthropic_wire.server.last_call.json["max_tokens"]

    assert (from_request, from_model, from_completion_tokens, fallback) == (
        50,
        8192,
        7,
        FALLBACK_MAX_TOKENS,
    )


async def test_tools_and_tool_results_use_tool_use_blocks(anthropic_wire: Wire) -> None:
    messages = [
        {"role": "user", "content": "weather in Paris and Rome"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "toolu_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"query": "Paris"}'},
                },
                {
                    "id": "toolu_2",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"query": "Rome"}'},
                },
            ],
        },
        {"role": "tool", "tool_call_id": "toolu_1", "content": "sunny"},
        {"role": "tool", "tool_call_id": "toolu_2", "content": "rainy"},
    ]
    request = {"messages": messages, "tools": [WEATHER_TOOL], "tool_choice": "required"}
    result = await anthropic_wire.adapter.complete(anthropic_wire.target("fake-tools"), request)

    sent = anthropic_wire.server.last_call.json
    assert sent["tools"] == [
        {
            "name": "get_weather",
            "description": "Current weather for a city",
            "input_schema": WEATHER_TOOL["function"]["parameters"],  # type: ignore[index]
        }
    ]
    assert sent["tool_choice"] == {"type": "any"}
    assert sent["messages"][1]["content"] == [
        {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"query": "Paris"}},
        {"type": "tool_use", "id": "toolu_2", "name": "get_weather", "input": {"query": "Rome"}},
    ]
    # Consecutive tool results share one user turn, as the API requires.
    assert sent["messages"][2] == {
        "role": "user",
        "content": [
            {"type": "tool_result", "tool_use_id": "toolu_1", "content": "sunny"},
            {"type": "tool_result", "tool_use_id": "toolu_2", "content": "rainy"},
        ],
    }
    assert result.body["choices"][0]["message"]["content"] == "tool result: rainy"


def test_tool_choice_and_parallel_calls_translate() -> None:
    base = {"messages": [{"role": "user", "content": "x"}], "tools": [WEATHER_TOOL]}
    named = {"type": "function", "function": {"name": "get_weather"}}

    assert to_anthropic(_target(), {**base, "tool_choice": named})["tool_choice"] == {
        "type": "tool",
        "name": "get_weather",
    }
    assert to_anthropic(_target(), {**base, "tool_choice": "none"})["tool_choice"] == {
        "type": "none"
    }
    assert to_anthropic(_target(), {**base, "parallel_tool_calls": False})["tool_choice"] == {
        "type": "auto",
        "disable_parallel_tool_use": True,
    }


def test_images_become_image_blocks() -> None:
    content = [
        {"type": "text", "text": "what is this"},
        {"type": "image_url", "image_url": {"url": PIXEL}},
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}},
    ]
    body = to_anthropic(_target(), {"messages": [{"role": "user", "content": content}]})

    assert body["messages"][0]["content"][1:] == [
        {
            "type": "image",
            "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="},
        },
        {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.png"}},
    ]


def test_json_mode_is_asked_for_in_the_system_prompt() -> None:
    request = {
        "messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": "x"}],
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": "a", "schema": {"type": "object"}},
        },
        "temperature": 1.7,
    }
    body = to_anthropic(_target(), request)

    assert body["system"].startswith("be brief\n\n")
    assert "JSON" in body["system"] and '{"type":"object"}' in body["system"]
    assert body["temperature"] == 1.0


def test_more_than_one_choice_is_refused() -> None:
    with pytest.raises(ProviderError) as info:
        to_anthropic(_target(), {"messages": [], "n": 2})

    assert info.value.kind == "bad_request"


async def test_a_streamed_answer_carries_anthropic_usage(anthropic_wire: Wire) -> None:
    streamed = await collect(
        anthropic_wire.adapter.stream(
            anthropic_wire.target(),
            {"messages": [{"role": "user", "content": "hello there world"}]},
        )
    )

    assert streamed.chunks[0]["id"] == "chatcmpl-msg_fake1"
    assert streamed.usage == {"prompt_tokens": 13, "completion_tokens": 5, "total_tokens": 18}
    assert anthropic_wire.server.last_call.json["stream"] is True


async def test_overloaded_529_is_retryable(anthropic_wire: Wire) -> None:
    with pytest.raises(ProviderError) as info:
        await anthropic_wire.adapter.complete(
            anthropic_wire.target("fake-529"), {"messages": [{"role": "user", "content": "x"}]}
        )

    assert (info.value.kind, info.value.retryable, info.value.provider_code) == (
        "server",
        True,
        "overloaded_error",
    )


async def test_embeddings_are_not_supported(anthropic_wire: Wire) -> None:
    with pytest.raises(ProviderError) as info:
        await anthropic_wire.adapter.embed(anthropic_wire.target(), {"input": "x"})

    assert (info.value.kind, info.value.retryable) == ("bad_request", False)
    assert "does not support embeddings" in str(info.value)


def test_cache_reads_and_writes_count_as_prompt_tokens() -> None:
    from routing.providers.anthropic import usage_from_anthropic

    usage = usage_from_anthropic(
        {
            "input_tokens": 5,
            "cache_read_input_tokens": 100,
            "cache_creation_input_tokens": 20,
            "output_tokens": 3,
        }
    )

    assert usage is not None
    assert (usage.prompt_tokens, usage.cached_tokens, usage.completion_tokens) == (125, 100, 3)
