"""Shared fixtures: the alice / bob / charlie personas and clients for them.

alice   admin of tenant "acme"
bob     member of "acme"
charlie admin of tenant "globex" — an outsider who must never see acme's data
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from rest_framework.test import APIClient

from tenants.auth import api_key_cache_forget
from tenants.models import ApiKey, Role, Tenant
from tenants.services import api_key_create, membership_add, tenant_create
from tests.fakes.anthropic import FakeAnthropic
from tests.fakes.gemini import FakeGemini
from tests.fakes.ollama import FakeOllama
from tests.fakes.openai import FakeOpenAI
from tests.gateway.conftest import LiveServer


@dataclass
class Persona:
    user: Any
    tenant: Tenant
    client: APIClient


def _forget_failed_attempts() -> None:
    from aura.redis import sync_client
    from tenants.auth import FAILURES_KEY, throttle

    throttle.clear()
    client = sync_client()
    for key in client.scan_iter(f"{FAILURES_KEY}:*"):
        client.delete(key)


@pytest.fixture(autouse=True)
def _fresh_key_cache() -> Any:
    api_key_cache_forget()
    _forget_failed_attempts()
    yield
    api_key_cache_forget()
    _forget_failed_attempts()


@pytest.fixture
def acme(db: Any) -> Tenant:
    return tenant_create(name="Acme", slug="acme", contact_emails=["ops@acme.test"])


@pytest.fixture
def globex(db: Any) -> Tenant:
    return tenant_create(name="Globex", slug="globex")


def _persona(username: str, tenant: Tenant, role: str) -> Persona:
    user = get_user_model().objects.create_user(
        username, f"{username}@example.test", "pw-" + username
    )
    membership_add(tenant=tenant, user=user, role=role)
    client = APIClient()
    client.force_login(user)
    return Persona(user=user, tenant=tenant, client=client)


@pytest.fixture
def alice(acme: Tenant) -> Persona:
    return _persona("alice", acme, Role.ADMIN)


@pytest.fixture
def bob(acme: Tenant, alice: Persona) -> Persona:
    return _persona("bob", acme, Role.MEMBER)


@pytest.fixture
def charlie(globex: Tenant) -> Persona:
    return _persona("charlie", globex, Role.ADMIN)


@pytest.fixture
def alice_key(alice: Persona) -> tuple[ApiKey, str]:
    return api_key_create(tenant=alice.tenant, name="alice-app", created_by=alice.user)


@pytest.fixture
def alice_manage_key(alice: Persona) -> tuple[ApiKey, str]:
    return api_key_create(tenant=alice.tenant, name="alice-admin", can_manage=True)


def key_client(plaintext: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {plaintext}")
    return client


def fake_dns(monkeypatch: pytest.MonkeyPatch, table: dict[str, list[str]]) -> None:
    """Resolve the names of ``table`` to its addresses; any other name does not resolve
    (tests may not reach a real resolver)."""

    def getaddrinfo(host: str, *args: Any, **kwargs: Any) -> list[Any]:
        if host not in table:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [
            (socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, 0))
            for a in table[host]
        ]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


# The live gateway and its fake upstreams, one of each per run, shared by tests/gateway and
# tests/fuzz (defined here so the two directories never start a second server).


@pytest.fixture(scope="session")
def fakes() -> Iterator[dict[str, Any]]:
    servers = {
        "openai": FakeOpenAI(slow_first_byte=0.3).start(),
        "anthropic": FakeAnthropic(slow_first_byte=0.3).start(),
        "gemini": FakeGemini(slow_first_byte=0.3).start(),
        "ollama": FakeOllama(slow_first_byte=0.3).start(),
    }
    yield servers
    for s in servers.values():
        s.stop()


@pytest.fixture(scope="session")
def live_gateway(django_db_setup: Any, django_db_blocker: Any) -> Iterator[LiveServer]:
    with django_db_blocker.unblock():
        server = LiveServer()
        yield server
        server.stop()
