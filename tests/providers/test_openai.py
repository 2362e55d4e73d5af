from __future__ import annotations

import pytest

from routing.providers.base import ProviderError
from tests.providers.conftest import API_KEY, WEATHER_TOOL, Wire, collect

pytestmark = pytest.mark.anyio

MESSAGES = [{"role": "user", "content": "hello there world"}]


async def test_the_body_passes_through_with_only_the_model_replaced(openai_wire: Wire) -> None:
    request = {
        "model": "client-choice",
        "messages": MESSAGES,
        "temperature": 0.2,
        "logit_bias": {"50256": -100},
        "tools": [WEATHER_TOOL],
        "tool_choice": "auto",
        "response_format": {"type": "json_object"},
    }
    await openai_wire.adapter.complete(openai_wire.target("fake-ok"), request)

    call = openai_wire.server.last_call
    assert call.path == "/v1/chat/completions"
    assert call.headers["authorization"] == f"Bearer {API_KEY}"
    assert call.json == {**request, "model": "fake-ok"}
    assert request["model"] == "client-choice"  # the caller's dict is not mutated


async def test_a_stream_always_asks_for_usage(openai_wire: Wire) -> None:
    request = {"messages": MESSAGES, "stream": True, "stream_options": {"include_usage": False}}
    streamed = await collect(openai_wire.adapter.stream(openai_wire.target(), request))

    assert openai_wire.server.last_call.json["stream"] is True
    assert openai_wire.server.last_call.json["stream_options"] == {"include_usage": True}
    assert streamed.usage is not None and streamed.usage["prompt_tokens"] == 13
    assert streamed.chunks[-1]["choices"] == []


async def test_a_non_stream_call_never_sends_stream_flags(openai_wire: Wire) -> None:
    request = {"messages": MESSAGES, "stream": True, "stream_options": {"include_usage": True}}
    result = await openai_wire.adapter.complete(openai_wire.target(), request)

    assert "stream" not in openai_wire.server.last_call.json
    assert "stream_options" not in openai_wire.server.last_call.json
    assert result.body["choices"][0]["message"]["content"] == "fake reply: hello there world"


async def test_the_echoed_api_key_is_redacted_from_auth_errors(openai_wire: Wire) -> None:
    with pytest.raises(ProviderError) as info:
        await openai_wire.adapter.complete(openai_wire.target("fake-401"), {"messages": MESSAGES})

    assert API_KEY not in str(info.value)
    assert "***" in str(info.value)
    assert info.value.provider_code == "invalid_api_key"


async def test_embeddings_pass_through_with_usage(openai_wire: Wire) -> None:
    request = {"model": "x", "input": ["hello world", "foo"], "dimensions": 4}
    result = await openai_wire.adapter.embed(openai_wire.target("fake-embed"), request)

    assert openai_wire.server.last_call.json["model"] == "fake-embed"
    assert [len(d["embedding"]) for d in result["data"]] == [4, 4]
    assert result["usage"] == {"prompt_tokens": 3, "total_tokens": 3}


async def test_embedding_errors_are_classified(openai_wire: Wire) -> None:
    with pytest.raises(ProviderError) as info:
        await openai_wire.adapter.embed(openai_wire.target("fake-429"), {"input": "hi"})

    assert (info.value.kind, info.value.retry_after) == ("rate_limit", 1.0)
