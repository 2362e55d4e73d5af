"""The adapter contract, checked for every wire format against its fake over loopback.

Token numbers follow the fakes' documented rules: prompt = 10 + words of all message texts,
completion = words of the answer ("fake reply: " + last user words), a tool call = 7.
"""

from __future__ import annotations

import json

import pytest

from routing.providers.base import ProviderError, ProviderTarget, Timeouts
from tests.providers.conftest import API_KEY, WEATHER_TOOL, Wire, collect

pytestmark = pytest.mark.anyio

MESSAGES = [
    {"role": "system", "content": "be brief"},
    {"role": "user", "content": "hello there world"},
]
# 10 + "be brief" (2) + "hello there world" (3)
PROMPT_TOKENS = 15
ANSWER = "fake reply: hello there world"


async def test_it_returns_an_openai_completion_with_exact_usage(wire: Wire) -> None:
    result = await wire.adapter.complete(wire.target(), {"model": "x", "messages": MESSAGES})

    choice = result.body["choices"][0]
    assert result.body["object"] == "chat.completion"
    assert (choice["message"]["role"], choice["message"]["content"]) == ("assistant", ANSWER)
    assert "tool_calls" not in choice["message"]
    assert choice["finish_reason"] == "stop"
    assert result.usage is not None
    assert (result.usage.prompt_tokens, result.usage.completion_tokens) == (PROMPT_TOKENS, 5)
    assert result.usage.total_tokens == PROMPT_TOKENS + 5
    assert result.body["usage"]["total_tokens"] == PROMPT_TOKENS + 5


async def test_a_stream_adds_up_to_the_same_text_and_usage(wire: Wire) -> None:
    request = {"model": "x", "messages": MESSAGES, "stream": True}
    streamed = await collect(wire.adapter.stream(wire.target(), request))
    whole = await wire.adapter.complete(wire.target(), {"model": "x", "messages": MESSAGES})

    assert streamed.text == whole.body["choices"][0]["message"]["content"] == ANSWER
    assert streamed.role == "assistant"
    assert streamed.finish_reason == "stop"
    assert streamed.usage == whole.body["usage"]
    assert streamed.chunks[-1]["usage"]["completion_tokens"] == 5
    assert len({c["id"] for c in streamed.chunks}) == 1
    assert len({c["created"] for c in streamed.chunks}) == 1


async def test_the_upstream_model_replaces_the_client_model(wire: Wire) -> None:
    await wire.adapter.complete(wire.target("fake-ok"), {"model": "auto", "messages": MESSAGES})

    call = wire.server.last_call
    assert "auto" not in json.dumps(call.json) + call.path
    assert "fake-ok" in json.dumps(call.json) + call.path


async def test_stop_sequences_cut_the_answer(wire: Wire) -> None:
    request = {"model": "x", "messages": MESSAGES, "stop": ["world"]}
    result = await wire.adapter.complete(wire.target(), request)

    assert result.body["choices"][0]["message"]["content"] == "fake reply: hello there "
    assert result.body["choices"][0]["finish_reason"] == "stop"
    assert result.usage is not None and result.usage.completion_tokens == 4


async def test_max_tokens_cuts_the_answer_with_finish_reason_length(wire: Wire) -> None:
    request = {"model": "x", "messages": MESSAGES, "max_tokens": 2}
    result = await wire.adapter.complete(wire.target(), request)
    streamed = await collect(wire.adapter.stream(wire.target(), {**request, "stream": True}))

    assert result.body["choices"][0]["message"]["content"] == "fake reply:"
    assert result.body["choices"][0]["finish_reason"] == "length"
    assert streamed.finish_reason == "length"
    assert streamed.text == "fake reply:"


async def test_json_mode_yields_a_json_object(wire: Wire) -> None:
    request = {"model": "x", "messages": MESSAGES, "response_format": {"type": "json_object"}}
    result = await wire.adapter.complete(wire.target("fake-json"), request)

    assert json.loads(result.body["choices"][0]["message"]["content"]) == {
        "answer": "hello there world"
    }


async def test_a_tool_call_comes_back_as_openai_tool_calls(wire: Wire) -> None:
    request = {"model": "x", "messages": MESSAGES, "tools": [WEATHER_TOOL]}
    result = await wire.adapter.complete(wire.target("fake-tools"), request)

    choice = result.body["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    (call,) = choice["message"]["tool_calls"]
    assert call["type"] == "function"
    assert call["id"]
    assert call["function"]["name"] == "get_weather"
    assert json.loads(call["function"]["arguments"]) == {"query": "hello there world"}
    assert result.usage is not None and result.usage.completion_tokens == 7


async def test_a_streamed_tool_call_arrives_as_tool_call_deltas(wire: Wire) -> None:
    request = {"model": "x", "messages": MESSAGES, "tools": [WEATHER_TOOL], "stream": True}
    streamed = await collect(wire.adapter.stream(wire.target("fake-tools"), request))

    assert streamed.finish_reason == "tool_calls"
    assert list(streamed.tool_calls) == [0]
    call = streamed.tool_calls[0]
    assert call["name"] == "get_weather" and call["id"]
    assert json.loads(call["arguments"]) == {"query": "hello there world"}
    assert streamed.usage is not None and streamed.usage["completion_tokens"] == 7


async def test_a_tool_result_round_trips(wire: Wire) -> None:
    tools_target = wire.target("fake-tools")
    first = await wire.adapter.complete(
        tools_target, {"model": "x", "messages": MESSAGES, "tools": [WEATHER_TOOL]}
    )
    assistant = first.body["choices"][0]["message"]
    call_id = assistant["tool_calls"][0]["id"]
    follow_up = [
        *MESSAGES,
        assistant,
        {"role": "tool", "tool_call_id": call_id, "content": "sunny and 21C"},
    ]
    second = await wire.adapter.complete(
        tools_target, {"model": "x", "messages": follow_up, "tools": [WEATHER_TOOL]}
    )

    assert second.body["choices"][0]["message"]["content"] == "tool result: sunny and 21C"
    assert second.body["choices"][0]["finish_reason"] == "stop"
    # Tool calls and results are not counted, so the prompt is the same size as before.
    assert second.usage is not None and second.usage.prompt_tokens == PROMPT_TOKENS


async def test_missing_usage_is_reported_as_none(wire: Wire) -> None:
    result = await wire.adapter.complete(wire.target("fake-no-usage"), {"messages": MESSAGES})
    streamed = await collect(
        wire.adapter.stream(wire.target("fake-no-usage"), {"messages": MESSAGES, "stream": True})
    )

    assert result.usage is None
    assert "usage" not in result.body
    assert result.body["choices"][0]["message"]["content"] == ANSWER
    assert streamed.usage is None
    assert streamed.text == ANSWER


@pytest.mark.parametrize(
    ("scenario", "kind", "retryable", "status"),
    [
        ("fake-429", "rate_limit", True, 429),
        ("fake-500", "server", True, 500),
        ("fake-503", "server", True, 503),
        ("fake-529", "server", True, 529),
        ("fake-400", "bad_request", False, 400),
        ("fake-401", "auth", False, None),  # Gemini says 400 for a bad key
        ("fake-403", "auth", False, 403),
        ("fake-404", "not_found", False, 404),
        ("fake-context-length", "context_length", False, 400),
    ],
)
async def test_http_errors_are_classified(
    wire: Wire, scenario: str, kind: str, retryable: bool, status: int | None
) -> None:
    with pytest.raises(ProviderError) as info:
        await wire.adapter.complete(wire.target(scenario), {"messages": MESSAGES})

    error = info.value
    assert (error.kind, error.retryable) == (kind, retryable)
    if status is not None:
        assert error.status == status
    assert API_KEY not in str(error)
    if kind == "rate_limit":
        assert error.retry_after == 1.0


async def test_stream_http_errors_raise_before_the_first_chunk(wire: Wire) -> None:
    chunks = []
    with pytest.raises(ProviderError) as info:
        async for chunk in wire.adapter.stream(wire.target("fake-429"), {"messages": MESSAGES}):
            chunks.append(chunk)

    assert chunks == []
    assert info.value.kind == "rate_limit"
    assert info.value.retry_after == 1.0


async def test_a_scripted_503_then_ok_fails_then_succeeds(wire: Wire) -> None:
    wire.server.set_script(["fake-503", "fake-ok"])

    with pytest.raises(ProviderError) as info:
        await wire.adapter.complete(wire.target("any-model"), {"messages": MESSAGES})
    result = await wire.adapter.complete(wire.target("any-model"), {"messages": MESSAGES})

    assert info.value.kind == "server"
    assert result.body["choices"][0]["message"]["content"] == ANSWER
    assert [c.scenario for c in wire.server.calls] == ["fake-503", "fake-ok"]


async def test_a_hung_upstream_times_out_on_first_byte(wire: Wire) -> None:
    target = wire.target("fake-timeout", timeouts=Timeouts(connect=1, first_byte=0.3, total=5))

    with pytest.raises(ProviderError) as info:
        await wire.adapter.complete(target, {"messages": MESSAGES})

    assert (info.value.kind, info.value.retryable) == ("timeout", True)
    # The first-byte (read) timeout fired, not the connect or the total one.
    assert "(ReadTimeout)" in info.value.message


async def test_a_slow_first_byte_times_out_a_stream_but_passes_with_a_longer_limit(
    wire: Wire,
) -> None:
    wire.server.slow_first_byte = 0.4
    tight = wire.target("fake-slow-first-byte", timeouts=Timeouts(first_byte=0.1, total=5))
    loose = wire.target("fake-slow-first-byte", timeouts=Timeouts(first_byte=3, total=5))

    with pytest.raises(ProviderError) as info:
        await collect(wire.adapter.stream(tight, {"messages": MESSAGES}))
    streamed = await collect(wire.adapter.stream(loose, {"messages": MESSAGES}))

    assert info.value.kind == "timeout"
    assert streamed.text == ANSWER


async def test_the_total_deadline_bounds_the_whole_exchange(wire: Wire) -> None:
    wire.server.slow_first_byte = 0.5
    target = wire.target("fake-slow-first-byte", timeouts=Timeouts(first_byte=5, total=0.2))

    with pytest.raises(ProviderError) as info:
        await wire.adapter.complete(target, {"messages": MESSAGES})

    assert info.value.kind == "timeout"


async def test_a_stream_cut_mid_body_raises_after_partial_content(wire: Wire) -> None:
    seen: list[str] = []
    with pytest.raises(ProviderError) as info:
        async for chunk in wire.adapter.stream(
            wire.target("fake-cut-stream"), {"messages": MESSAGES}
        ):
            seen.extend(c["delta"].get("content") or "" for c in chunk["choices"])

    assert info.value.kind == "connection"
    assert info.value.retryable
    assert "".join(seen) != ANSWER


async def test_a_stream_without_its_terminal_event_is_a_cut_stream(wire: Wire) -> None:
    with pytest.raises(ProviderError) as info:
        await collect(
            wire.adapter.stream(wire.target("fake-truncated-stream"), {"messages": MESSAGES})
        )

    assert info.value.kind == "connection"
    assert "cut" in info.value.message


async def test_a_body_cut_mid_response_is_a_connection_error(wire: Wire) -> None:
    with pytest.raises(ProviderError) as info:
        await wire.adapter.complete(wire.target("fake-cut-stream"), {"messages": MESSAGES})

    assert info.value.kind == "connection"


async def test_a_garbled_body_is_malformed(wire: Wire) -> None:
    with pytest.raises(ProviderError) as info:
        await wire.adapter.complete(wire.target("fake-malformed"), {"messages": MESSAGES})

    assert info.value.kind == "malformed"


async def test_a_garbled_stream_event_is_malformed(wire: Wire) -> None:
    with pytest.raises(ProviderError) as info:
        await collect(wire.adapter.stream(wire.target("fake-malformed"), {"messages": MESSAGES}))

    assert info.value.kind == "malformed"


async def test_an_error_event_inside_a_stream_raises(wire: Wire) -> None:
    with pytest.raises(ProviderError) as info:
        await collect(wire.adapter.stream(wire.target("fake-stream-error"), {"messages": MESSAGES}))

    assert info.value.kind == "server"
    assert info.value.retryable


async def test_a_refused_connection_is_a_retryable_connection_error(wire: Wire) -> None:
    target = ProviderTarget(
        base_url="http://127.0.0.1:9",
        api_key=API_KEY,
        upstream_model="m",
        timeouts=Timeouts(1, 1, 2),
    )

    with pytest.raises(ProviderError) as info:
        await wire.adapter.complete(target, {"messages": MESSAGES})

    assert (info.value.kind, info.value.retryable) == ("connection", True)


async def test_health_passes_and_fails_with_the_upstream(wire: Wire) -> None:
    await wire.adapter.health(wire.target())
    wire.server.set_script(["fake-503"])

    with pytest.raises(ProviderError) as info:
        await wire.adapter.health(wire.target())

    assert info.value.kind == "server"


async def test_the_connection_is_reused_across_requests(wire: Wire) -> None:
    for _ in range(3):
        await wire.adapter.complete(wire.target(), {"messages": MESSAGES})
    await collect(wire.adapter.stream(wire.target(), {"messages": MESSAGES}))
    await wire.adapter.complete(wire.target(), {"messages": MESSAGES})

    # One keep-alive connection served all five requests.
    assert len(wire.server.calls) == 5
    assert len({c.connection for c in wire.server.calls}) == 1


async def test_a_consumer_that_stops_early_can_close_the_stream(wire: Wire) -> None:
    stream = wire.adapter.stream(wire.target(), {"messages": MESSAGES})
    first = await stream.__anext__()
    await stream.aclose()  # type: ignore[attr-defined]
    result = await wire.adapter.complete(wire.target(), {"messages": MESSAGES})

    assert first["choices"][0]["delta"]["role"] == "assistant"
    assert result.body["choices"][0]["message"]["content"] == ANSWER
