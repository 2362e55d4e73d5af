from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from aura.http import aclose_client
from routing.providers import get_adapter
from routing.providers.base import Adapter, ProviderTarget, Timeouts
from tests.fakes.anthropic import FakeAnthropic
from tests.fakes.azure import FakeAzureOpenAI
from tests.fakes.gemini import FakeGemini
from tests.fakes.ollama import FakeOllama
from tests.fakes.openai import FakeOpenAI
from tests.fakes.server import FakeUpstream

API_KEY = "sk-test-secret-key-0123456789"
FAST = Timeouts(connect=2.0, first_byte=5.0, total=10.0)
# The fake speaking each adapter's wire format, by the adapter registry's kind.
FAKES: dict[str, type[FakeUpstream]] = {
    "openai": FakeOpenAI,
    "azure": FakeAzureOpenAI,
    "anthropic": FakeAnthropic,
    "gemini": FakeGemini,
    "ollama": FakeOllama,
}


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def fake_servers() -> Iterator[dict[str, FakeUpstream]]:
    servers = {kind: cls().start() for kind, cls in FAKES.items()}
    yield servers
    for server in servers.values():
        server.stop()


@dataclass
class Wire:
    """One adapter paired with a fake server speaking its format."""

    kind: str
    adapter: Adapter
    server: FakeUpstream

    def target(self, model: str = "fake-ok", **kwargs: Any) -> ProviderTarget:
        kwargs.setdefault("timeouts", FAST)
        kwargs.setdefault("api_key", API_KEY)
        return ProviderTarget(base_url=self.server.base_url, upstream_model=model, **kwargs)


def _wire(kind: str, servers: dict[str, FakeUpstream]) -> Wire:
    server = servers[kind]
    server.reset()
    return Wire(kind, get_adapter(kind), server)


@pytest.fixture
async def _fresh_client() -> AsyncIterator[None]:
    # Every test runs on its own loop; close that loop's pooled connections with it.
    yield
    await aclose_client()


@pytest.fixture(params=sorted(FAKES))
def wire(
    request: pytest.FixtureRequest, fake_servers: dict[str, FakeUpstream], _fresh_client: None
) -> Wire:
    return _wire(request.param, fake_servers)


@pytest.fixture
def openai_wire(fake_servers: dict[str, FakeUpstream], _fresh_client: None) -> Wire:
    return _wire("openai", fake_servers)


@pytest.fixture
def azure_wire(fake_servers: dict[str, FakeUpstream], _fresh_client: None) -> Wire:
    return _wire("azure", fake_servers)


@pytest.fixture
def anthropic_wire(fake_servers: dict[str, FakeUpstream], _fresh_client: None) -> Wire:
    return _wire("anthropic", fake_servers)


@pytest.fixture
def gemini_wire(fake_servers: dict[str, FakeUpstream], _fresh_client: None) -> Wire:
    return _wire("gemini", fake_servers)


@pytest.fixture
def ollama_wire(fake_servers: dict[str, FakeUpstream], _fresh_client: None) -> Wire:
    return _wire("ollama", fake_servers)


@dataclass
class Reassembled:
    text: str = ""
    role: str | None = None
    finish_reason: str | None = None
    usage: dict[str, Any] | None = None
    tool_calls: dict[int, dict[str, Any]] = field(default_factory=dict)
    chunks: list[dict[str, Any]] = field(default_factory=list)


async def collect(stream: AsyncIterator[dict[str, Any]]) -> Reassembled:
    """Rebuild a streamed answer the way an OpenAI client would."""
    out = Reassembled()
    async for chunk in stream:
        out.chunks.append(chunk)
        assert chunk["object"] == "chat.completion.chunk"
        if chunk.get("usage"):
            out.usage = chunk["usage"]
        for choice in chunk["choices"]:
            delta = choice["delta"]
            out.role = delta.get("role") or out.role
            out.text += delta.get("content") or ""
            for call in delta.get("tool_calls") or []:
                slot = out.tool_calls.setdefault(call["index"], {"arguments": ""})
                if call.get("id"):
                    slot["id"] = call["id"]
                function = call.get("function") or {}
                if function.get("name"):
                    slot["name"] = function["name"]
                slot["arguments"] += function.get("arguments") or ""
            if choice.get("finish_reason"):
                out.finish_reason = choice["finish_reason"]
    return out


WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city",
        "parameters": {
            "type": "object",
            "properties": {"query": {"type": "string"}},
            "required": ["query"],
        },
    },
}
