"""Tool calls, JSON mode, embeddings and the model list, through the official SDK and every
wire format the fakes speak (fakeai=openai, fakeclaude=anthropic, fakegemini=gemini,
fakellama=ollama).

Fake token rules: prompt = 10 + words of every message text (tool definitions, calls and
results not counted; text an adapter adds, like Anthropic's JSON instruction, is);
completion = words of the answer, a tool call costs exactly 7. $2 in / $8 out per 1M.
"""

from __future__ import annotations

import json
from decimal import Decimal

import openai
import pytest

from tests.fakes.scenarios import fake_embedding
from tests.gateway.conftest import add_model, add_provider

PROVIDERS = ["fakeai", "fakeclaude", "fakegemini", "fakellama"]
MILLION = Decimal(1_000_000)
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Weather for a city",
            "parameters": {
                "type": "object",
                "properties": {"query": {"type": "string"}},
                "required": ["query"],
            },
        },
    }
]
ASK = [{"role": "user", "content": "weather in paris"}]
# prompt 10 + 3 words = 13; a tool call = 7 completion tokens
TOOL_CALL_COST = (Decimal(13) * 2 + Decimal(7) * 8) / MILLION


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_tool_call_comes_back_in_openais_shape(gw, provider):
    add_model(gw.providers[provider], "fake-tools")

    resp = gw.client().chat.completions.with_raw_response.create(
        model=f"{provider}/fake-tools", messages=ASK, tools=TOOLS
    )

    choice = resp.parse().choices[0]
    assert choice.finish_reason == "tool_calls"
    [call] = choice.message.tool_calls
    assert call.type == "function" and call.id
    assert call.function.name == "get_weather"
    assert isinstance(call.function.arguments, str)
    assert json.loads(call.function.arguments) == {"query": "weather in paris"}
    assert Decimal(resp.headers["x-aura-cost-usd"]) == TOOL_CALL_COST
    [row] = gw.usage(1)
    assert (row.prompt_tokens, row.completion_tokens, row.cost_usd) == (13, 7, TOOL_CALL_COST)
    assert row.provider == provider and not row.cost_estimated


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_streamed_tool_call_reassembles_into_json_string_arguments(gw, provider):
    add_model(gw.providers[provider], "fake-tools")

    stream = gw.client().chat.completions.create(
        model=f"{provider}/fake-tools",
        messages=ASK,
        tools=TOOLS,
        stream=True,
        stream_options={"include_usage": True},
    )
    calls: dict[int, dict[str, str]] = {}
    finish, usage = None, None
    for chunk in stream:
        usage = chunk.usage or usage
        for choice in chunk.choices:
            finish = choice.finish_reason or finish
            for delta in choice.delta.tool_calls or ():
                call = calls.setdefault(delta.index, {"id": "", "name": "", "arguments": ""})
                call["id"] = delta.id or call["id"]
                if delta.function is not None:
                    call["name"] += delta.function.name or ""
                    call["arguments"] += delta.function.arguments or ""

    assert finish == "tool_calls"
    assert list(calls) == [0]
    assert calls[0]["id"] and calls[0]["name"] == "get_weather"
    assert json.loads(calls[0]["arguments"]) == {"query": "weather in paris"}
    assert usage is not None and (usage.prompt_tokens, usage.completion_tokens) == (13, 7)
    [row] = gw.usage(1)
    assert row.stream and row.cost_usd == TOOL_CALL_COST and not row.cost_estimated


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_tool_result_is_passed_back_to_the_model(gw, provider):
    add_model(gw.providers[provider], "fake-tools")
    messages = [
        *ASK,
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"query": "paris"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "sunny and warm"},
    ]

    completion = gw.client().chat.completions.create(
        model=f"{provider}/fake-tools", messages=messages, tools=TOOLS
    )

    assert completion.choices[0].message.content == "tool result: sunny and warm"
    # prompt 10 + 3 (the user's words; tool calls and results are not counted); 5 words out
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (13, 5)
    gw.usage(1)


# Anthropic has no JSON mode: its adapter adds a 10-word system instruction, which counts.
JSON_PROMPT_TOKENS = {"fakeai": 13, "fakeclaude": 23, "fakegemini": 13, "fakellama": 13}


@pytest.mark.parametrize("provider", PROVIDERS)
def test_json_mode_returns_a_json_object(gw, provider):
    add_model(gw.providers[provider], "fake-json")

    completion = gw.client().chat.completions.create(
        model=f"{provider}/fake-json",
        messages=[{"role": "user", "content": "one two three"}],
        response_format={"type": "json_object"},
    )

    assert json.loads(completion.choices[0].message.content) == {"answer": "one two three"}
    prompt = JSON_PROMPT_TOKENS[provider]
    # '{"answer": "one two three"}' is 4 whitespace-separated words
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (prompt, 4)
    [row] = gw.usage(1)
    assert row.cost_usd == (Decimal(prompt) * 2 + Decimal(4) * 8) / MILLION


def test_json_mode_is_only_routed_to_models_that_support_it(gw):
    add_model(gw.providers["fakeai"], "fake-ok", caps=["chat", "streaming"])
    add_model(gw.providers["fakeclaude"], "fake-json")

    resp = gw.client().chat.completions.with_raw_response.create(
        model="auto",
        messages=[{"role": "user", "content": "one two three"}],
        response_format={"type": "json_object"},
    )

    assert resp.headers["x-aura-provider"] == "fakeclaude"
    assert gw.fakes["openai"].calls == []
    with pytest.raises(openai.BadRequestError) as info:
        gw.client().chat.completions.create(
            model="fakeai/fake-ok",
            messages=[{"role": "user", "content": "one two three"}],
            response_format={"type": "json_object"},
        )
    assert info.value.body["code"] == "unsupported_request"
    gw.usage(1)


def test_embeddings_through_the_sdk_record_usage_and_cost(gw):
    add_model(gw.providers["fakeai"], "fake-embed", kind="embeddings", caps=["embeddings"])
    add_model(gw.providers["fakeai"], "fake-ok")

    resp = gw.client().embeddings.with_raw_response.create(
        model="fake-embed", input=["alpha beta", "gamma delta epsilon"], encoding_format="float"
    )

    result = resp.parse()
    assert [d.index for d in result.data] == [0, 1]
    assert result.data[0].embedding == pytest.approx(fake_embedding("alpha beta"))
    assert result.data[1].embedding == pytest.approx(fake_embedding("gamma delta epsilon"))
    assert result.usage.prompt_tokens == 5
    expected = Decimal(5) * 2 / MILLION
    assert Decimal(resp.headers["x-aura-cost-usd"]) == expected
    assert resp.headers["x-aura-provider"] == "fakeai"
    [row] = gw.usage(1)
    assert row.kind == "embeddings" and row.status == "ok"
    assert (row.prompt_tokens, row.completion_tokens, row.cost_usd) == (5, 0, expected)
    assert not row.cost_estimated


def test_embeddings_with_the_sdks_default_base64_encoding_decode_to_the_same_vector(gw):
    add_model(gw.providers["fakeai"], "fake-embed", kind="embeddings", caps=["embeddings"])

    result = gw.client().embeddings.create(model="fake-embed", input="alpha beta")

    assert result.data[0].embedding == pytest.approx(fake_embedding("alpha beta"), abs=1e-6)
    gw.usage(1)


def test_embeddings_from_a_provider_that_reports_no_usage_are_estimated(gw):
    add_model(gw.providers["fakegemini"], "fake-embed", kind="embeddings", caps=["embeddings"])

    result = gw.client().embeddings.create(
        model="fake-embed", input=["alpha beta", "gamma delta epsilon"], encoding_format="float"
    )

    assert result.data[1].embedding == pytest.approx(fake_embedding("gamma delta epsilon"))
    [row] = gw.usage(1)
    # Local count: "alpha beta" 2 + "gamma delta epsilon" 3
    assert row.kind == "embeddings" and row.cost_estimated and row.prompt_tokens == 5
    assert row.cost_usd == Decimal(5) * 2 / MILLION


def test_a_chat_model_is_not_used_for_embeddings_nor_an_embeddings_model_for_chat(gw):
    add_model(gw.providers["fakeai"], "fake-embed", kind="embeddings", caps=["embeddings"])
    add_model(gw.providers["fakeai"], "fake-ok")

    with pytest.raises(openai.BadRequestError):
        gw.client().embeddings.create(model="fake-ok", input="alpha")
    with pytest.raises(openai.BadRequestError):
        gw.client().chat.completions.create(
            model="fake-embed", messages=[{"role": "user", "content": "hi"}]
        )
    assert gw.fakes["openai"].calls == []


@pytest.fixture
def catalog(gw) -> None:
    add_model(gw.providers["fakeai"], "fake-ok")
    add_model(gw.providers["fakeclaude"], "claude-ok")
    add_model(gw.providers["fakellama"], "llama-ok")
    nokey = add_provider("nokey", "openai", gw.fakes["openai"].base_url, secret=None)
    add_model(nokey, "nokey-model")


def model_ids(gw) -> list[str]:
    return [m.id for m in gw.client().models.list()]


def test_the_model_list_shows_auto_aliases_and_usable_models_only(gw, catalog):
    gw.policy(aliases={"chain": ["fakeai/fake-ok", "fakeclaude/claude-ok"]})

    ids = model_ids(gw)

    assert ids == ["auto", "chain", "claude-ok", "fake-ok", "llama-ok"]
    assert "nokey-model" not in ids  # its provider has no credential
    assert gw.client().models.retrieve("fake-ok").owned_by == "fakeai"
    with pytest.raises(openai.NotFoundError):
        gw.client().models.retrieve("nokey-model")


def test_the_model_list_hides_what_the_policy_denies(gw, catalog):
    gw.policy(denied_providers=["fakeclaude"])
    assert model_ids(gw) == ["auto", "fake-ok", "llama-ok"]

    gw.policy(denied_providers=[], allowed_models=["fake-ok"])
    assert model_ids(gw) == ["auto", "fake-ok"]

    gw.policy(allowed_models=None, denied_models=["fakeai/fake-ok"], local_only=False)
    assert model_ids(gw) == ["auto", "claude-ok", "llama-ok"]

    gw.policy(denied_models=[], local_only=True)
    assert model_ids(gw) == ["auto", "llama-ok"]


def test_a_model_id_served_by_two_providers_is_listed_by_key(gw):
    add_model(gw.providers["fakeai"], "fake-ok")
    add_model(gw.providers["fakeclaude"], "fake-ok")

    assert model_ids(gw) == ["auto", "fakeai/fake-ok", "fakeclaude/fake-ok"]
    for model_id in model_ids(gw)[1:]:
        completion = gw.client().chat.completions.create(
            model=model_id, messages=[{"role": "user", "content": "hi"}]
        )
        assert completion.choices[0].message.content == "fake reply: hi"
    gw.usage(2)
