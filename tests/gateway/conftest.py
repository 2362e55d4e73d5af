"""A live gateway (uvicorn on loopback, in a thread) in front of fake upstreams.

Every test gets a fresh catalog pointing at the fakes, a tenant ("acme") with an API key,
and empty Redis/process caches. The official `openai` SDK is the client.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import openai
import pytest
import uvicorn

from aura.redis import sync_client
from billing.models import UsageRecord
from monitoring.state import board
from routing.catalog.services import credential_create
from routing.gateway.breaker import breakers, stats
from routing.gateway.context import cache
from routing.gateway.guard import overruns
from routing.models import CatalogModel, Provider, ProviderEndpoint, RoutingPolicy
from tenants.auth import api_key_cache_forget, resolver
from tenants.models import ApiKey, Tenant
from tenants.services import api_key_create, tenant_create
from tests.fakes.openai import FakeOpenAI
from tests.fakes.server import Exchange

if TYPE_CHECKING:
    from tests.gateway.processes import GatewayProcess

CHAT_CAPS = ["chat", "tools", "json", "streaming", "vision"]
# Prices per 1M tokens, chosen so hand-computed costs are exact decimals.
PRICES = {"in": Decimal("2.000000"), "out": Decimal("8.000000")}


class LiveServer:
    def __init__(self) -> None:
        from aura.asgi import application

        # IPPROTO_TCP explicitly: asyncio only sets TCP_NODELAY on accepted sockets whose
        # proto is TCP, and without it every response's body waits ~40 ms for the client's
        # delayed ACK of the headers.
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        config = uvicorn.Config(
            application,
            lifespan="on",
            log_level="warning",
            loop="asyncio",
            http="h11",
            timeout_graceful_shutdown=2,
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True
        )
        self.thread.start()
        deadline = time.monotonic() + 15
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("live gateway did not start")
            time.sleep(0.02)

    def drain(self) -> None:
        """Let the server finish what requests left behind (settlements, usage records)
        before the test's tables are flushed: a late write would deadlock the TRUNCATE."""
        from billing.usage import writer
        from routing.gateway.app import drain

        loop = writer._loop
        if loop is not None and loop.is_running():
            asyncio.run_coroutine_threadsafe(drain(), loop).result(timeout=15)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        from django.db import connections

        self.server.should_exit = True
        self.thread.join(timeout=10)
        # The server thread borrowed pooled connections; return them so the test database
        # can be dropped.
        for conn in connections.all():
            close_pool = getattr(conn, "close_pool", None)
            if close_pool is not None:
                close_pool()


@dataclass
class Env:
    url: str
    tenant: Tenant
    key: ApiKey
    plaintext: str
    fakes: dict[str, Any]
    providers: dict[str, Provider]

    def client(self, **kw: Any) -> openai.OpenAI:
        return openai.OpenAI(base_url=f"{self.url}/v1", api_key=self.plaintext, max_retries=0, **kw)

    def policy(self, **fields: Any) -> RoutingPolicy:
        policy, _ = RoutingPolicy.objects.get_or_create(tenant=self.tenant)
        for k, v in fields.items():
            setattr(policy, k, v)
        policy.version += 1
        policy.save()
        cache.clear()
        return policy

    def usage(self, expected: int = 1, timeout: float = 5.0) -> list[UsageRecord]:
        """Usage rows of this tenant, waiting for the batch writer to flush them."""
        deadline = time.monotonic() + timeout
        while True:
            rows = list(UsageRecord.objects.filter(tenant=self.tenant).order_by("id"))
            if len(rows) >= expected or time.monotonic() > deadline:
                return rows
            time.sleep(0.05)


def add_model(
    provider: Provider,
    model_id: str,
    *,
    tier: str = "balanced",
    quality: float = 0.7,
    caps: list[str] | None = None,
    kind: str = "chat",
    context_window: int = 32000,
    max_output: int = 4096,
    price_in: Decimal | None = None,
    price_out: Decimal | None = None,
) -> CatalogModel:
    return CatalogModel.objects.create(
        provider=provider,
        model_id=model_id,
        kind=kind,
        tier=tier,
        capabilities=caps if caps is not None else CHAT_CAPS,
        quality={
            c: quality
            for c in (
                "code",
                "math",
                "reasoning",
                "extraction",
                "summarization",
                "creative",
                "chat",
            )
        },
        input_price_per_mtok=PRICES["in"] if price_in is None else price_in,
        output_price_per_mtok=PRICES["out"] if price_out is None else price_out,
        context_window=context_window,
        max_output_tokens=max_output,
    )


def add_provider(
    slug: str,
    wire: str,
    base_url: str,
    *,
    secret: str | None = "sk-test-" + "x" * 8,
    is_local: bool = False,
    api_version: str = "",
) -> Provider:
    provider = Provider.objects.create(slug=slug, name=slug, wire_format=wire, is_local=is_local)
    ep = ProviderEndpoint.objects.create(
        provider=provider,
        name="main",
        base_url=base_url,
        api_version=api_version,
        connect_timeout=2,
        first_byte_timeout=2,
        total_timeout=10,
        max_retries=1,
    )
    if secret:
        credential_create(provider=provider, name="platform", secret=secret, endpoint=ep)
    return provider


class FakeVllm(FakeOpenAI):
    """An OpenAI-compatible server started without a key (vLLM without --api-key)."""

    def auth_error(self, ex: Exchange) -> tuple[int, Any] | None:
        return None


@pytest.fixture(scope="module")
def vllm_server() -> Iterator[FakeVllm]:
    server = FakeVllm()
    server.start()
    yield server
    server.stop()


def reset_health() -> None:
    """Forget what the gateway learnt about providers: Redis (breakers, budgets, limits,
    change counters), this process's breaker view, latency stats and overrun margins."""
    sync_client().flushdb()
    breakers._open_until.clear()
    breakers._pending_ok.clear()
    breakers._refreshed_at = float("-inf")
    stats.latency_ms.clear()
    overruns.clear()
    board.apply({})
    board._refreshed_at = float("-inf")
    # The change counters went with the flush: the next request takes the versions as it
    # finds them, rather than as changes since the ones it saw before (which would drop
    # this process's caches at a moment that depends on timing).
    cache._version, cache._checked_at = None, float("-inf")
    resolver._version, resolver._checked_at = None, float("-inf")


def reset_runtime(fakes: dict[str, Any]) -> None:
    """Everything ``gw`` resets per test but the database: health, caches, the fakes."""
    reset_health()
    cache.clear()
    api_key_cache_forget()
    for f in fakes.values():
        f.reset()


@pytest.fixture
def gw(live_gateway: LiveServer, fakes: dict[str, Any], transactional_db: Any) -> Iterator[Env]:
    reset_runtime(fakes)
    providers = {
        "fakeai": add_provider("fakeai", "openai", fakes["openai"].base_url),
        "fakeclaude": add_provider("fakeclaude", "anthropic", fakes["anthropic"].base_url),
        "fakegemini": add_provider("fakegemini", "gemini", fakes["gemini"].base_url),
        "fakellama": add_provider(
            "fakellama", "ollama", fakes["ollama"].base_url, secret=None, is_local=True
        ),
    }
    tenant = tenant_create(name="Acme", slug="acme")
    key, plaintext = api_key_create(tenant=tenant, name="app")
    yield Env(live_gateway.url, tenant, key, plaintext, fakes, providers)
    live_gateway.drain()
    cache.clear()
    api_key_cache_forget()


@pytest.fixture(scope="module")
def two_gateways(django_db_setup: Any) -> Iterator[tuple[GatewayProcess, GatewayProcess]]:
    """Two real gateway processes (uvicorn subprocesses) on the test database and Redis,
    started once per module. Tests that use them need real commits (``gw`` does that) and
    must wait for the records they cause before they end (the tables are emptied after)."""
    # Imported here: processes.py reaches tests.conftest, which imports this module.
    from tests.gateway.processes import gateway_processes

    with gateway_processes(2) as (a, b):
        yield a, b


@pytest.fixture
def pair(gw: Env, two_gateways: tuple[GatewayProcess, GatewayProcess]) -> Iterator[Any]:
    """The two gateway processes, for one test on ``gw``'s tenant; afterwards, waits until
    their usage records are all written (no new row for a while), so none arrives after
    the tables are emptied."""
    yield two_gateways
    seen, quiet_since = -1, time.monotonic()
    deadline = quiet_since + 10
    while time.monotonic() < deadline:
        count = UsageRecord.objects.count()
        if count != seen:
            seen, quiet_since = count, time.monotonic()
        elif time.monotonic() - quiet_since > 0.3:
            break
        time.sleep(0.05)


def run(coro: Any) -> Any:
    return asyncio.run(coro)
