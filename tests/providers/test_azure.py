from __future__ import annotations

import pytest

from routing.providers.azure import DEFAULT_API_VERSION
from tests.fakes.scenarios import fake_embedding
from tests.providers.conftest import API_KEY, Wire, collect

pytestmark = pytest.mark.anyio

MESSAGES = [{"role": "user", "content": "hello there world"}]


async def test_it_calls_the_deployment_url_with_the_api_key_header(azure_wire: Wire) -> None:
    await azure_wire.adapter.complete(azure_wire.target("my-gpt4o"), {"messages": MESSAGES})

    call = azure_wire.server.last_call
    assert call.path == "/openai/deployments/my-gpt4o/chat/completions"
    assert call.query == {"api-version": DEFAULT_API_VERSION}
    assert call.headers["api-key"] == API_KEY
    assert "authorization" not in call.headers
    assert "model" not in call.json


async def test_the_api_version_can_be_overridden(azure_wire: Wire) -> None:
    target = azure_wire.target("fake-ok", api_version="2025-01-01-preview")
    streamed = await collect(azure_wire.adapter.stream(target, {"messages": MESSAGES}))

    assert azure_wire.server.last_call.query == {"api-version": "2025-01-01-preview"}
    assert azure_wire.server.last_call.json["stream_options"] == {"include_usage": True}
    assert streamed.usage is not None


async def test_embeddings_use_the_deployment_url(azure_wire: Wire) -> None:
    result = await azure_wire.adapter.embed(azure_wire.target("emb"), {"input": "hello world"})

    assert azure_wire.server.last_call.path == "/openai/deployments/emb/embeddings"
    assert result["data"][0]["embedding"] == fake_embedding("hello world")
    assert result["usage"]["prompt_tokens"] == 2
