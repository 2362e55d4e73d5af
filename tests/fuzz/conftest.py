"""Fixtures of the fuzz suite: the live gateway and fake upstreams (tests/conftest.py), the
fakes made strict (they refuse, as a real provider would, a body that is not JSON), and one
world per module: alice's tenant acme and charlie's tenant globex with their rows.

Every fuzzed request is charlie's; alice's rows are compared before and after.
"""

from __future__ import annotations

import ipaddress
import json
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.test import Client
from django.utils.crypto import get_random_string

from billing.services import budget_create
from routing.catalog.services import credential_create, endpoint_create
from routing.gateway.context import cache
from routing.models import Provider, RoutingOutcome, RoutingPolicy
from tenants.auth import api_key_cache_forget
from tenants.models import Role, Tenant
from tenants.services import api_key_create, membership_add, tenant_create
from tests.fakes.server import Exchange, _Handler
from tests.fuzz.cases import Case, Outcome, Sender, Violation
from tests.gateway.conftest import (
    LiveServer,
    add_model,
    add_provider,
    reset_health,
    reset_runtime,
)

CHAT_MODELS = {
    "fakeai": "fake-ok",
    "fakeclaude": "claude-ok",
    "fakegemini": "gemini-ok",
    "fakellama": "llama-ok",
}
EMBEDDING_MODELS = {"fakeai": "embed-ok", "fakegemini": "gemini-embed", "fakellama": "llama-embed"}


# A real provider refuses an embedding this wide; the fakes would try to build it.
MAX_EMBEDDING_DIMENSIONS = 8192


def strict_json_problem(raw: bytes) -> str | None:
    """Why ``raw`` is not a JSON text a strict parser accepts (RFC 8259), or None."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return f"not UTF-8 ({exc})"

    def constant(name: str) -> Any:
        raise ValueError(f"{name} is not JSON")

    try:
        json.loads(text, parse_constant=constant)
    except ValueError as exc:
        return str(exc)
    except RecursionError:
        return None  # deep but valid; judged by the provider (the fake refuses it below)
    return None


def too_wide(value: Any) -> bool:
    """An embedding width (OpenAI/Ollama ``dimensions``, Gemini ``outputDimensionality``)
    no provider serves, anywhere in the body."""
    if isinstance(value, dict):
        for key, item in value.items():
            if key in ("dimensions", "outputDimensionality") and isinstance(item, int | float):
                if item > MAX_EMBEDDING_DIMENSIONS:
                    return True
            elif too_wide(item):
                return True
    elif isinstance(value, list):
        return any(too_wide(item) for item in value[:100])
    return False


def refusal(wire: str, message: str) -> dict[str, Any]:
    """A provider's 400 body in its own wire format."""
    if wire == "anthropic":
        return {"type": "error", "error": {"type": "invalid_request_error", "message": message}}
    if wire == "gemini":
        return {"error": {"code": 400, "message": message, "status": "INVALID_ARGUMENT"}}
    if wire == "ollama":
        return {"error": message}
    return {
        "error": {"message": message, "type": "invalid_request_error", "param": None, "code": None}
    }


@dataclass
class UpstreamLog:
    """What the fake upstreams saw that a real provider would have refused."""

    invalid_json: list[str] = field(default_factory=list)
    crashes: list[str] = field(default_factory=list)


@pytest.fixture
def strict_upstreams(monkeypatch: pytest.MonkeyPatch) -> UpstreamLog:
    """The fakes, answering 400 (as a real provider would) to a body that is not strict JSON
    or that they cannot make sense of, and logging it; otherwise unchanged."""
    log = UpstreamLog()

    def dispatch(self: _Handler) -> None:
        length = int(self.headers.get("content-length") or 0)
        raw = self.rfile.read(length) if length else b""
        fake = self.server.fake
        problem = strict_json_problem(raw) if raw else None
        try:
            body = json.loads(raw) if raw else None
        except (ValueError, RecursionError):
            body = None
        url = urlsplit(self.path)
        exchange = Exchange(self, unquote(url.path), dict(parse_qsl(url.query)), body)
        try:
            if problem is not None:
                log.invalid_json.append(f"{fake.wire} {self.command} {url.path}: {problem}")
            if problem is not None or (raw and body is None):
                exchange.send_json(400, refusal(fake.wire, f"fuzz upstream: not JSON ({problem})"))
                return
            if too_wide(body):
                exchange.send_json(400, refusal(fake.wire, "fuzz upstream: dimensions too large"))
                return
            fake._handle(exchange)
        except OSError:
            self.close_connection = True
        except Exception as exc:
            log.crashes.append(f"{fake.wire} {url.path}: {type(exc).__name__}: {exc}")
            message = f"fuzz upstream: cannot read the body ({type(exc).__name__})"
            exchange.send_json(400, refusal(fake.wire, message))

    monkeypatch.setattr(_Handler, "_dispatch", dispatch)
    return log


@dataclass
class GatewayFuzz:
    url: str
    fakes: dict[str, Any]
    alice: Tenant
    alice_key: str
    charlie: Tenant
    charlie_key: str
    sender: Sender
    drain: Callable[[], None]
    log: UpstreamLog = field(default_factory=UpstreamLog)

    def set_scenario(self, scenario: str | None) -> None:
        for fake in self.fakes.values():
            fake.set_default(scenario)

    def health_violations(self) -> list[Violation]:
        """The server still answers: /healthz, and a valid request of charlie's (with the
        circuit breakers closed again: a family of failing upstreams rightly opens them)."""
        self.set_scenario(None)
        reset_health()
        out = []
        for case in (
            Case("server health after the family", None, method="GET", path="/healthz"),
            Case(
                "a valid request after the family",
                json.dumps(
                    {"model": "fake-ok", "messages": [{"role": "user", "content": "hi"}]}
                ).encode(),
            ),
        ):
            o: Outcome = self.sender.send(case)
            if o.status != 200:
                out.append(Violation(case, o, ["the server no longer answers a valid request"]))
        return out


def flush_database() -> None:
    """What a transactional test does afterwards: empty every table."""
    call_command("flush", interactive=False, verbosity=0)


@pytest.fixture(scope="module")
def gateway_world(
    live_gateway: LiveServer, fakes: dict[str, Any], django_db_blocker: Any
) -> Iterator[GatewayFuzz]:
    """Built once per module (a family is a few hundred requests; a fresh database per
    family would cost more than the requests): acme (alice) and globex (charlie), each with
    a key, a policy and a day budget, and a chat and an embeddings model per wire format."""
    with django_db_blocker.unblock():
        reset_runtime(fakes)
        providers = {
            "fakeai": add_provider("fakeai", "openai", fakes["openai"].base_url),
            "fakeclaude": add_provider("fakeclaude", "anthropic", fakes["anthropic"].base_url),
            "fakegemini": add_provider("fakegemini", "gemini", fakes["gemini"].base_url),
            "fakellama": add_provider(
                "fakellama", "ollama", fakes["ollama"].base_url, secret=None, is_local=True
            ),
        }
        for provider, model in CHAT_MODELS.items():
            add_model(providers[provider], model)
        for provider, model in EMBEDDING_MODELS.items():
            add_model(providers[provider], model, kind="embeddings", caps=["embeddings"])
        tenants, keys = [], []
        for name, slug in (("Acme", "acme"), ("Globex", "globex")):
            tenant = tenant_create(name=name, slug=slug)
            RoutingPolicy.objects.create(tenant=tenant, denied_models=["nothing-denied"])
            budget_create(tenant=tenant, period="day", limit_usd=Decimal("1000"))
            tenants.append(tenant)
            keys.append(api_key_create(tenant=tenant, name=f"{slug}-app")[1])
    sender = Sender(
        live_gateway.url, {"authorization": f"Bearer {keys[1]}", "content-type": "application/json"}
    )
    yield GatewayFuzz(
        live_gateway.url,
        fakes,
        tenants[0],
        keys[0],
        tenants[1],
        keys[1],
        sender,
        live_gateway.drain,
    )
    sender.close()
    live_gateway.drain()
    with django_db_blocker.unblock():
        flush_database()
    cache.clear()
    api_key_cache_forget()


@pytest.fixture
def fuzz_gateway(gateway_world: GatewayFuzz, strict_upstreams: UpstreamLog) -> GatewayFuzz:
    """The module's world with fresh runtime state (breakers, caches, fakes) per family."""
    reset_runtime(gateway_world.fakes)
    gateway_world.log = strict_upstreams
    return gateway_world


# --------------------------------------------------------------------------- management API


@dataclass
class ApiWorld:
    """Tenants, users and rows of the management API fuzz (see ``api_world``)."""

    url: str
    alice: Tenant
    charlie: Tenant
    sender: Sender  # charlie's signed-in session
    charlie_key: int
    charlie_credentials: tuple[int, int]
    charlie_endpoints: tuple[int, int]
    charlie_budget: int
    alice_key: int
    alice_credential: int
    alice_endpoint: int
    alice_budget: int


def session_headers(user: Any) -> dict[str, Any]:
    """Cookies and the CSRF header of a signed-in browser session of ``user``."""
    client = Client()
    client.force_login(user)
    csrf = get_random_string(32)
    return {
        "cookie": f"sessionid={client.cookies['sessionid'].value}; csrftoken={csrf}",
        "x-csrftoken": csrf,
        "content-type": "application/json",
    }


def _tenant_rows(tenant: Tenant, prefix: str, openai: Provider) -> dict[str, Any]:
    key, _ = api_key_create(tenant=tenant, name=f"{prefix}-app")
    endpoints = [
        endpoint_create(
            provider=openai,
            tenant=tenant,
            name=f"{prefix}-ep{i}",
            base_url="https://93.184.216.34/v1",
            models=["gpt-x"],
        )
        for i in (1, 2)
    ]
    credentials = [
        credential_create(
            provider=openai,
            tenant=tenant,
            name=f"{prefix}-cred{i}",
            secret=f"sk-{prefix}-{i}-0123456789abcdef",
        )
        for i in (1, 2)
    ]
    # Scoped to the key: a policy PUT re-creates the tenant-wide budgets (new ids).
    budget = budget_create(tenant=tenant, period="day", limit_usd=Decimal("5"), api_key=key)
    budget_create(tenant=tenant, period="month", limit_usd=Decimal("100"))
    policy, _ = RoutingPolicy.objects.get_or_create(tenant=tenant)
    policy.denied_models = ["nothing-denied"]
    policy.save()
    return {
        "key": key.pk,
        "endpoints": tuple(e.pk for e in endpoints),
        "credentials": tuple(c.pk for c in credentials),
        "budget": budget.pk,
    }


@pytest.fixture(scope="module")
def api_world(live_gateway: LiveServer, django_db_blocker: Any) -> Iterator[ApiWorld]:
    """acme (alice admin, bob member) and globex (charlie admin), each with a key, two
    credentials, two endpoints, a day budget and a policy; providers openai and anthropic
    with a few catalog models. Built once per module, emptied afterwards."""
    with django_db_blocker.unblock():
        reset_health()
        cache.clear()
        openai = Provider.objects.create(
            slug="openai",
            name="OpenAI",
            wire_format="openai",
            default_base_url="https://93.184.216.34/v1",
        )
        anthropic = Provider.objects.create(
            slug="anthropic",
            name="Anthropic",
            wire_format="anthropic",
            default_base_url="https://93.184.216.34",
        )
        for provider, model in ((openai, "gpt-x"), (openai, "gpt-x-mini"), (anthropic, "claude-x")):
            add_model(provider, model)
        add_model(openai, "embed-x", kind="embeddings", caps=["embeddings"])
        users = {}
        tenants = {}
        for name, slug in (("Acme", "acme"), ("Globex", "globex")):
            tenants[slug] = tenant_create(name=name, slug=slug)
        for username, slug, role in (
            ("alice", "acme", Role.ADMIN),
            ("bob", "acme", Role.MEMBER),
            ("charlie", "globex", Role.ADMIN),
        ):
            users[username] = get_user_model().objects.create_user(
                username, f"{username}@example.test", "pw-" + username
            )
            membership_add(tenant=tenants[slug], user=users[username], role=role)
        alice = _tenant_rows(tenants["acme"], "alice", openai)
        charlie = _tenant_rows(tenants["globex"], "charlie", openai)
        headers = session_headers(users["charlie"])
    sender = Sender(live_gateway.url, headers)
    yield ApiWorld(
        live_gateway.url,
        tenants["acme"],
        tenants["globex"],
        sender,
        charlie["key"],
        charlie["credentials"],
        charlie["endpoints"],
        charlie["budget"],
        alice["key"],
        alice["credentials"][0],
        alice["endpoints"][0],
        alice["budget"],
    )
    sender.close()
    live_gateway.drain()
    with django_db_blocker.unblock():
        flush_database()
    cache.clear()
    api_key_cache_forget()


@pytest.fixture
def no_dns(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every name but localhost is unknown (a fuzzed base URL must never reach the
    network-blocking guard, which would turn a DNS lookup into a test error)."""
    real = socket.getaddrinfo

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        name = host.decode() if isinstance(host, bytes) else host
        try:
            ipaddress.ip_address(name)
        except (TypeError, ValueError):
            if name not in (None, "", "localhost"):
                raise socket.gaierror(socket.EAI_NONAME, "Name or service not known") from None
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


@pytest.fixture
def fuzz_api(api_world: ApiWorld, no_dns: None) -> ApiWorld:
    """The module's world, with charlie's recorded outcomes dropped: one family's odd but
    accepted outcome must not make another family's metrics read fail (that has a test of
    its own)."""
    cache.clear()
    RoutingOutcome.objects.filter(tenant=api_world.charlie).delete()
    return api_world
