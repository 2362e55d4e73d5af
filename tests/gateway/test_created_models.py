"""Models created by `add_endpoint --create-models` are routed and billed as described."""

from __future__ import annotations

import io
from decimal import Decimal
from typing import Any

import httpx
import pytest
from django.core.management import call_command

from tests.gateway.conftest import FakeVllm

HI = [{"role": "user", "content": "hi"}]
WEATHER_TOOL = {
    "type": "function",
    "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {}}},
}


@pytest.fixture
def vllm(gw: Any, vllm_server: FakeVllm) -> FakeVllm:
    vllm_server.reset()
    call_command(
        "add_provider",
        "vllm",
        "--wire-format",
        "openai",
        "--base-url",
        vllm_server.base_url,
        "--no-api-key",
        stdout=io.StringIO(),
    )
    return vllm_server


def add_endpoint(server: FakeVllm, name: str, model: str, *extra: str) -> None:
    call_command(
        "add_endpoint",
        "vllm",
        name,
        "--base-url",
        server.base_url,
        "--model",
        model,
        "--create-models",
        *extra,
        stdout=io.StringIO(),
    )


def post(gw: Any, path: str, body: dict[str, Any]) -> httpx.Response:
    with httpx.Client(timeout=10) as client:
        return client.post(
            gw.url + path, json=body, headers={"authorization": f"Bearer {gw.plaintext}"}
        )


def test_a_created_model_is_billed_at_the_prices_it_was_given(gw: Any, vllm: FakeVllm) -> None:
    add_endpoint(vllm, "gpu1", "llama", "--input-price", "3", "--output-price", "15")

    resp = post(gw, "/v1/chat/completions", {"model": "llama", "messages": HI})

    assert resp.status_code == 200, resp.text
    (record,) = gw.usage()
    assert record.prompt_tokens > 0 and record.completion_tokens > 0
    expected = (record.prompt_tokens * 3 + record.completion_tokens * 15) / Decimal(1_000_000)
    assert record.cost_usd == expected
    assert Decimal(resp.headers["x-aura-cost-usd"]) == expected


def test_a_created_chat_model_is_not_sent_tool_calls_it_was_not_said_to_support(
    gw: Any, vllm: FakeVllm
) -> None:
    add_endpoint(vllm, "gpu1", "llama")
    body = {"model": "llama", "messages": HI, "tools": [WEATHER_TOOL]}

    refused = post(gw, "/v1/chat/completions", body)

    assert 400 <= refused.status_code < 500, refused.text
    assert vllm.calls == []
    add_endpoint(vllm, "gpu2", "llama-tools", "--capabilities", "chat,tools")
    served = post(gw, "/v1/chat/completions", {**body, "model": "llama-tools"})
    assert served.status_code == 200, served.text


def test_a_created_embeddings_model_serves_embeddings(gw: Any, vllm: FakeVllm) -> None:
    add_endpoint(vllm, "emb", "bge-m3", "--kind", "embeddings", "--input-price", "0.02")

    resp = post(gw, "/v1/embeddings", {"model": "bge-m3", "input": "hello"})

    assert resp.status_code == 200, resp.text
    assert resp.json()["data"][0]["embedding"]
    assert vllm.last_call.path == "/v1/embeddings"
    chat = post(gw, "/v1/chat/completions", {"model": "bge-m3", "messages": HI})
    assert chat.status_code >= 400
