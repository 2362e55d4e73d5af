"""BYOK: /api/v1/providers, /credentials and /endpoints — a tenant's own keys and endpoints."""

from __future__ import annotations

import socket
from typing import Any

import pytest
from django.urls import get_resolver

from routing.catalog.services import credential_create, credential_secret, endpoint_create
from routing.gateway.context import build_context
from routing.models import CatalogModel, Credential, Provider, ProviderEndpoint, RoutingPolicy
from tenants.models import ApiKey
from tests.conftest import Persona, key_client

pytestmark = pytest.mark.django_db

PROVIDERS = "/api/v1/providers"
CREDENTIALS = "/api/v1/credentials"
ENDPOINTS = "/api/v1/endpoints"
SECRET = "sk-alice-4f8a9b2c7d1e6f30abcd"
NEW_SECRET = "sk-alice-rotated-77c1d0e9wxyz"
PUBLIC_URL = "https://93.184.216.34/v1"


@pytest.fixture(autouse=True)
def config_changes(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Records each routing.changes.config_changed() call instead of publishing to Redis."""
    # Load every view module first: one that does `from routing.gateway.context import
    # config_changed` on its first import would otherwise keep the fake for the whole run.
    get_resolver().url_patterns  # noqa: B018
    calls: list[int] = []
    monkeypatch.setattr("routing.changes.config_changed", lambda: calls.append(1))
    return calls


@pytest.fixture
def openai(db: Any) -> Provider:
    return Provider.objects.create(
        slug="openai",
        name="OpenAI",
        wire_format="openai",
        default_base_url="https://api.openai.com/v1",
    )


@pytest.fixture
def gpt(openai: Provider) -> CatalogModel:
    return CatalogModel.objects.create(provider=openai, model_id="gpt-x", capabilities=["chat"])


@pytest.fixture
def gpt_mini(openai: Provider) -> CatalogModel:
    return CatalogModel.objects.create(
        provider=openai, model_id="gpt-x-mini", capabilities=["chat"]
    )


def fake_dns(monkeypatch: pytest.MonkeyPatch, table: dict[str, list[str]]) -> None:
    def getaddrinfo(host: str, *args: Any, **kwargs: Any) -> list[Any]:
        if host not in table:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [
            (socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, 0))
            for a in table[host]
        ]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


def field_named(resp: Any) -> set[str]:
    """The fields a 400 names: DRF's {field: [...]} or the domain {"field": ...} shape."""
    body = resp.json()
    return {body["field"]} if "field" in body else set(body)


def results(resp: Any) -> list[dict[str, Any]]:
    assert resp.status_code == 200, resp.json()
    rows: list[dict[str, Any]] = resp.json()["results"]
    return rows


def create_credential(who: Persona, **overrides: Any) -> dict[str, Any]:
    body = {"provider": "openai", "name": "main", "secret": SECRET, **overrides}
    resp = who.client.post(CREDENTIALS, body, format="json")
    assert resp.status_code == 201, resp.json()
    created: dict[str, Any] = resp.json()
    return created


def create_endpoint(who: Persona, **overrides: Any) -> dict[str, Any]:
    body = {"provider": "openai", "name": "byo", "base_url": PUBLIC_URL, **overrides}
    resp = who.client.post(ENDPOINTS, body, format="json")
    assert resp.status_code == 201, resp.json()
    created: dict[str, Any] = resp.json()
    return created


# --------------------------------------------------------------------------- credentials


def test_alice_creates_lists_rotates_and_deletes_a_credential(
    alice: Persona, openai: Provider, config_changes: list[int]
) -> None:
    created = create_credential(alice)
    assert created["provider"] == "openai"
    assert created["name"] == "main"
    assert created["masked"] == "••••abcd"
    assert created["endpoint"] is None and created["enabled"] is True
    row = Credential.objects.get(pk=created["id"])
    assert row.tenant == alice.tenant
    assert credential_secret(row) == SECRET
    assert len(config_changes) == 1

    listed = results(alice.client.get(CREDENTIALS))
    assert [c["id"] for c in listed] == [created["id"]]
    assert listed[0]["masked"] == "••••abcd"

    resp = alice.client.patch(
        f"{CREDENTIALS}/{created['id']}", {"secret": NEW_SECRET}, format="json"
    )
    assert resp.status_code == 200, resp.json()
    assert resp.json()["masked"] == "••••wxyz"
    assert resp.json()["rotated_at"] is not None
    row.refresh_from_db()
    assert credential_secret(row) == NEW_SECRET
    assert len(config_changes) == 2

    resp = alice.client.patch(
        f"{CREDENTIALS}/{created['id']}", {"name": "primary", "enabled": False}, format="json"
    )
    assert resp.status_code == 200, resp.json()
    row.refresh_from_db()
    assert (row.name, row.enabled) == ("primary", False)
    assert credential_secret(row) == NEW_SECRET  # a rename is not a rotation
    assert len(config_changes) == 3

    assert alice.client.delete(f"{CREDENTIALS}/{created['id']}").status_code == 204
    assert not Credential.objects.exists()
    assert len(config_changes) == 4
    assert alice.client.get(f"{CREDENTIALS}/{created['id']}").status_code == 404


def test_renaming_a_credential_to_a_taken_name_is_a_400_naming_the_field(
    alice: Persona, openai: Provider
) -> None:
    create_credential(alice, name="main")
    other = create_credential(alice, name="backup")
    resp = alice.client.patch(
        f"{CREDENTIALS}/{other['id']}", {"name": "main", "enabled": False}, format="json"
    )
    assert resp.status_code == 400
    assert field_named(resp) == {"name"}
    assert "already exists" in resp.json()["detail"]
    row = Credential.objects.get(pk=other["id"])
    assert (row.name, row.enabled) == ("backup", True)  # nothing half-written


def test_the_secret_never_appears_in_any_response_body(alice: Persona, openai: Provider) -> None:
    resp = alice.client.post(
        CREDENTIALS, {"provider": "openai", "name": "main", "secret": SECRET}, format="json"
    )
    bodies = [resp]
    cred_id = resp.json()["id"]
    bodies.append(alice.client.get(CREDENTIALS))
    bodies.append(alice.client.get(f"{CREDENTIALS}/{cred_id}"))
    bodies.append(
        alice.client.patch(f"{CREDENTIALS}/{cred_id}", {"secret": NEW_SECRET}, format="json")
    )
    bodies.append(alice.client.patch(f"{CREDENTIALS}/{cred_id}", {"name": "x"}, format="json"))
    bodies.append(alice.client.get(PROVIDERS))
    ciphertext = Credential.objects.get(pk=cred_id).ciphertext
    for r in bodies:
        assert r.status_code in (200, 201)
        text = r.content.decode()
        assert SECRET not in text
        assert NEW_SECRET not in text
        assert ciphertext not in text
        assert "ciphertext" not in text and '"secret"' not in text


def test_a_credential_can_be_bound_to_the_tenants_own_endpoint(
    alice: Persona, openai: Provider
) -> None:
    endpoint = create_endpoint(alice)
    created = create_credential(alice, endpoint=endpoint["id"])
    assert created["endpoint"] == endpoint["id"]
    assert Credential.objects.get(pk=created["id"]).endpoint_id == endpoint["id"]


def test_an_endpoint_that_is_not_the_tenants_own_is_refused_naming_endpoint(
    alice: Persona, charlie: Persona, openai: Provider
) -> None:
    platform = endpoint_create(provider=openai, name="platform", base_url=PUBLIC_URL)
    globex = endpoint_create(
        provider=openai, name="globex", base_url=PUBLIC_URL, tenant=charlie.tenant
    )
    other_provider = Provider.objects.create(slug="groq", name="Groq", wire_format="openai")
    own_of_other_provider = endpoint_create(
        provider=other_provider, name="groq", base_url=PUBLIC_URL, tenant=alice.tenant
    )
    for endpoint_id in (platform.pk, globex.pk, own_of_other_provider.pk, 999_999):
        resp = alice.client.post(
            CREDENTIALS,
            {"provider": "openai", "name": "main", "secret": SECRET, "endpoint": endpoint_id},
            format="json",
        )
        assert resp.status_code == 400, resp.json()
        assert field_named(resp) == {"endpoint"}
    assert not Credential.objects.exists()


# --------------------------------------------------------------------------- endpoints


def test_alice_creates_lists_updates_and_deletes_an_endpoint(
    alice: Persona, gpt: CatalogModel, gpt_mini: CatalogModel, config_changes: list[int]
) -> None:
    created = create_endpoint(
        alice,
        models=["gpt-x"],
        api_version="2024-10-21",
        deployments={"gpt-x": "gpt-x-prod"},
        connect_timeout=2,
        first_byte_timeout=20,
        total_timeout=120,
        max_retries=5,
    )
    assert created["provider"] == "openai"
    assert created["base_url"] == PUBLIC_URL
    assert created["models"] == ["gpt-x"]
    assert created["deployments"] == {"gpt-x": "gpt-x-prod"}
    assert (created["connect_timeout"], created["total_timeout"]) == (2.0, 120.0)
    assert created["max_retries"] == 5
    row = ProviderEndpoint.objects.get(pk=created["id"])
    assert row.tenant == alice.tenant
    assert len(config_changes) == 1

    assert [e["id"] for e in results(alice.client.get(ENDPOINTS))] == [created["id"]]
    assert alice.client.get(f"{ENDPOINTS}/{created['id']}").json() == created

    resp = alice.client.patch(
        f"{ENDPOINTS}/{created['id']}",
        {
            "base_url": "https://93.184.216.35/v2",
            "models": ["gpt-x", "gpt-x-mini"],
            "max_retries": 0,
            "name": "byo-2",
        },
        format="json",
    )
    assert resp.status_code == 200, resp.json()
    assert resp.json()["models"] == ["gpt-x", "gpt-x-mini"]
    row.refresh_from_db()
    assert row.base_url == "https://93.184.216.35/v2"
    assert (row.name, row.max_retries) == ("byo-2", 0)
    assert sorted(row.served_models.values_list("model_id", flat=True)) == ["gpt-x", "gpt-x-mini"]
    assert len(config_changes) == 2

    assert alice.client.delete(f"{ENDPOINTS}/{created['id']}").status_code == 204
    assert not ProviderEndpoint.objects.exists()
    assert len(config_changes) == 3


def test_deleting_an_endpoint_deletes_the_keys_bound_to_it(
    alice: Persona, openai: Provider
) -> None:
    endpoint = create_endpoint(alice)
    bound = create_credential(alice, name="bound", endpoint=endpoint["id"])
    wide = create_credential(alice, name="wide")
    assert alice.client.delete(f"{ENDPOINTS}/{endpoint['id']}").status_code == 204
    assert list(Credential.objects.values_list("pk", flat=True)) == [wide["id"]]
    assert bound["id"] != wide["id"]


def test_a_second_endpoint_with_the_same_name_is_refused(alice: Persona, openai: Provider) -> None:
    first = create_endpoint(alice)
    resp = alice.client.post(
        ENDPOINTS, {"provider": "openai", "name": "byo", "base_url": PUBLIC_URL}, format="json"
    )
    assert resp.status_code == 400
    assert field_named(resp) == {"name"}
    other = create_endpoint(alice, name="other")
    resp = alice.client.patch(f"{ENDPOINTS}/{other['id']}", {"name": "byo"}, format="json")
    assert resp.status_code == 400
    assert field_named(resp) == {"name"}
    assert sorted(ProviderEndpoint.objects.values_list("name", flat=True)) == ["byo", "other"]
    assert first["id"] != other["id"]


def test_a_public_hostname_is_accepted(alice: Persona, openai: Provider, monkeypatch: Any) -> None:
    fake_dns(monkeypatch, {"llm.example.com": ["93.184.216.34"]})
    created = create_endpoint(alice, base_url="https://llm.example.com/v1")
    assert created["base_url"] == "https://llm.example.com/v1"


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://127.0.0.1:8000/v1", "loopback"),
        ("http://10.0.0.5/v1", "private"),
        ("http://169.254.169.254/latest/meta-data/", "link-local"),
        ("https://intranet.example.com/v1", "private"),
    ],
)
def test_a_private_base_url_is_refused(
    alice: Persona, openai: Provider, monkeypatch: Any, url: str, reason: str
) -> None:
    fake_dns(monkeypatch, {"intranet.example.com": ["192.168.1.2"]})
    resp = alice.client.post(
        ENDPOINTS, {"provider": "openai", "name": "byo", "base_url": url}, format="json"
    )
    assert resp.status_code == 400, resp.json()
    assert field_named(resp) == {"base_url"}
    assert f"is a {reason} address" in resp.json()["detail"]
    assert not ProviderEndpoint.objects.exists()


def test_a_patch_to_a_private_base_url_is_refused_and_changes_nothing(
    alice: Persona, openai: Provider, monkeypatch: Any, config_changes: list[int]
) -> None:
    fake_dns(monkeypatch, {"intranet.example.com": ["192.168.1.2"]})
    created = create_endpoint(alice)
    for url in ("http://169.254.169.254/", "https://intranet.example.com/v1"):
        resp = alice.client.patch(
            f"{ENDPOINTS}/{created['id']}", {"base_url": url, "name": "renamed"}, format="json"
        )
        assert resp.status_code == 400, resp.json()
        assert field_named(resp) == {"base_url"}
    row = ProviderEndpoint.objects.get(pk=created["id"])
    assert (row.base_url, row.name) == (PUBLIC_URL, "byo")
    assert len(config_changes) == 1  # the create only


def test_an_operator_can_allow_private_base_urls_for_a_tenant(
    alice: Persona, charlie: Persona, openai: Provider, monkeypatch: Any
) -> None:
    fake_dns(monkeypatch, {"intranet.example.com": ["192.168.1.2"]})
    RoutingPolicy.objects.create(tenant=alice.tenant, allow_private_base_urls=True)
    created = create_endpoint(alice, base_url="http://10.0.0.5:8000/v1")
    resp = alice.client.patch(
        f"{ENDPOINTS}/{created['id']}",
        {"base_url": "https://intranet.example.com/v1"},
        format="json",
    )
    assert resp.status_code == 200, resp.json()
    assert ProviderEndpoint.objects.get(pk=created["id"]).base_url == (
        "https://intranet.example.com/v1"
    )
    # The switch is acme's alone.
    resp = charlie.client.post(
        ENDPOINTS,
        {"provider": "openai", "name": "byo", "base_url": "http://10.0.0.5:8000/v1"},
        format="json",
    )
    assert resp.status_code == 400
    assert field_named(resp) == {"base_url"}


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "main"}, "secret"),
        ({"name": "main", "secret": ""}, "secret"),
        ({"name": "main", "secret": "   \n"}, "secret"),
        ({"name": "main", "secret": "x" * 4097}, "secret"),
        ({"name": "main", "secret": ["sk-a"]}, "secret"),
        ({"name": "main", "secret": None}, "secret"),
        ({"secret": SECRET}, "name"),
        ({"name": "", "secret": SECRET}, "name"),
        ({"name": "n" * 101, "secret": SECRET}, "name"),
        ({"name": "main", "secret": SECRET, "provider": "nope"}, "provider"),
        ({"name": "main", "secret": SECRET, "provider": "disabled"}, "provider"),
        ({"name": "main", "secret": SECRET, "endpoint": "first"}, "endpoint"),
        ({"name": "main", "secret": SECRET, "tenant": 1}, "tenant"),
    ],
)
def test_a_bad_credential_is_refused_naming_the_field_with_nothing_written(
    alice: Persona, openai: Provider, body: dict[str, Any], field: str, config_changes: list[int]
) -> None:
    Provider.objects.create(slug="disabled", name="Off", wire_format="openai", enabled=False)
    resp = alice.client.post(CREDENTIALS, {"provider": "openai", **body}, format="json")
    assert resp.status_code == 400, resp.json()
    assert field_named(resp) == {field}
    assert SECRET not in resp.content.decode()
    assert not Credential.objects.exists()
    assert config_changes == []


def test_a_secret_of_the_maximum_length_is_accepted(alice: Persona, openai: Provider) -> None:
    created = create_credential(alice, secret="k" * 4096)
    assert credential_secret(Credential.objects.get(pk=created["id"])) == "k" * 4096


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"secret": ""}, "secret"),
        ({"secret": "y" * 4097}, "secret"),
        ({"name": ""}, "name"),
        ({"enabled": "maybe"}, "enabled"),
        ({"provider_id": 3}, "provider_id"),
        ({"provider": "anthropic"}, "provider"),
        ({"endpoint": 1}, "endpoint"),
    ],
)
def test_a_bad_credential_patch_is_refused_and_changes_nothing(
    alice: Persona, openai: Provider, body: dict[str, Any], field: str
) -> None:
    created = create_credential(alice)
    before = Credential.objects.values().get(pk=created["id"])
    resp = alice.client.patch(
        f"{CREDENTIALS}/{created['id']}", {"name": "renamed", **body}, format="json"
    )
    assert resp.status_code == 400, resp.json()
    assert field_named(resp) == {field}
    assert Credential.objects.values().get(pk=created["id"]) == before


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"base_url": None}, "base_url"),
        ({"base_url": "ftp://93.184.216.34/"}, "base_url"),
        ({"base_url": "not a url"}, "base_url"),
        ({"base_url": "https://user:pw@93.184.216.34/v1"}, "base_url"),
        ({"base_url": "https://nowhere.invalid/v1"}, "base_url"),
        ({"models": ["gpt-x", "nope"]}, "models"),
        ({"models": "gpt-x"}, "models"),
        ({"deployments": {"nope": "prod"}}, "models"),
        ({"max_retries": 6}, "max_retries"),
        ({"max_retries": -1}, "max_retries"),
        ({"connect_timeout": 0}, "connect_timeout"),
        ({"total_timeout": "forever"}, "total_timeout"),
        ({"first_byte_timeout": 1e9}, "first_byte_timeout"),
        ({"name": ""}, "name"),
        ({"provider": "nope"}, "provider"),
        ({"extra_headers": {"X-Evil": "1"}}, "extra_headers"),
    ],
)
def test_a_bad_endpoint_is_refused_naming_the_field_with_nothing_written(
    alice: Persona,
    gpt: CatalogModel,
    monkeypatch: Any,
    body: dict[str, Any],
    field: str,
    config_changes: list[int],
) -> None:
    fake_dns(monkeypatch, {})
    resp = alice.client.post(
        ENDPOINTS, {"provider": "openai", "name": "byo", "base_url": PUBLIC_URL, **body}, "json"
    )
    assert resp.status_code == 400, resp.json()
    assert field_named(resp) == {field}
    assert not ProviderEndpoint.objects.exists()
    assert config_changes == []


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"models": ["nope"]}, "models"),
        ({"deployments": {"nope": "prod"}}, "models"),
        ({"max_retries": 9}, "max_retries"),
        ({"base_url": "gopher://93.184.216.34"}, "base_url"),
        ({"provider": "other"}, "provider"),
    ],
)
def test_a_bad_endpoint_patch_is_refused_and_changes_nothing(
    alice: Persona, gpt: CatalogModel, body: dict[str, Any], field: str
) -> None:
    created = create_endpoint(alice, models=["gpt-x"])
    before = ProviderEndpoint.objects.values().get(pk=created["id"])
    resp = alice.client.patch(
        f"{ENDPOINTS}/{created['id']}", {"name": "renamed", **body}, format="json"
    )
    assert resp.status_code == 400, resp.json()
    assert field_named(resp) == {field}
    assert ProviderEndpoint.objects.values().get(pk=created["id"]) == before
    row = ProviderEndpoint.objects.get(pk=created["id"])
    assert list(row.served_models.values_list("model_id", flat=True)) == ["gpt-x"]


def test_a_get_body_can_be_sent_back_as_a_patch(alice: Persona, gpt: CatalogModel) -> None:
    created = create_endpoint(alice, models=["gpt-x"])
    resp = alice.client.patch(
        f"{ENDPOINTS}/{created['id']}", {**created, "max_retries": 1}, format="json"
    )
    assert resp.status_code == 200, resp.json()
    assert resp.json() == {**created, "max_retries": 1}


# --------------------------------------------------------------------------- roles


def test_bob_can_list_but_every_write_is_forbidden(
    alice: Persona, bob: Persona, openai: Provider, config_changes: list[int]
) -> None:
    endpoint = create_endpoint(alice)
    cred = create_credential(alice)
    writes_before = len(config_changes)

    assert [c["id"] for c in results(bob.client.get(CREDENTIALS))] == [cred["id"]]
    assert [e["id"] for e in results(bob.client.get(ENDPOINTS))] == [endpoint["id"]]
    assert bob.client.get(f"{CREDENTIALS}/{cred['id']}").status_code == 200
    assert bob.client.get(f"{ENDPOINTS}/{endpoint['id']}").status_code == 200
    assert results(bob.client.get(PROVIDERS))[0]["has_own_credential"] is True

    attempts = [
        bob.client.post(
            CREDENTIALS, {"provider": "openai", "name": "b", "secret": SECRET}, format="json"
        ),
        bob.client.patch(f"{CREDENTIALS}/{cred['id']}", {"secret": NEW_SECRET}, format="json"),
        bob.client.delete(f"{CREDENTIALS}/{cred['id']}"),
        bob.client.post(
            ENDPOINTS, {"provider": "openai", "name": "b", "base_url": PUBLIC_URL}, format="json"
        ),
        bob.client.patch(f"{ENDPOINTS}/{endpoint['id']}", {"name": "b"}, format="json"),
        bob.client.delete(f"{ENDPOINTS}/{endpoint['id']}"),
    ]
    assert [r.status_code for r in attempts] == [403] * 6
    assert credential_secret(Credential.objects.get()) == SECRET
    assert ProviderEndpoint.objects.get().name == "byo"
    assert len(config_changes) == writes_before


def test_a_gateway_only_api_key_cannot_manage_but_a_manage_key_can(
    alice_key: tuple[ApiKey, str], alice_manage_key: tuple[ApiKey, str], openai: Provider
) -> None:
    body = {"provider": "openai", "name": "main", "secret": SECRET}
    assert key_client(alice_key[1]).post(CREDENTIALS, body, format="json").status_code == 403
    resp = key_client(alice_manage_key[1]).post(CREDENTIALS, body, format="json")
    assert resp.status_code == 201, resp.json()
    assert Credential.objects.get().tenant == alice_key[0].tenant


# --------------------------------------------------------------------------- isolation


def test_charlie_gets_404_for_every_acme_credential_and_endpoint(
    alice: Persona, charlie: Persona, openai: Provider, config_changes: list[int]
) -> None:
    endpoint = create_endpoint(alice)
    cred = create_credential(alice, endpoint=endpoint["id"])
    writes_before = len(config_changes)
    charlies = create_credential(charlie, name="globex-key", secret="sk-globex-000011112222")

    for url in (f"{CREDENTIALS}/{cred['id']}", f"{ENDPOINTS}/{endpoint['id']}"):
        assert charlie.client.get(url).status_code == 404
        assert charlie.client.patch(url, {"name": "mine"}, format="json").status_code == 404
        assert charlie.client.delete(url).status_code == 404
    assert (
        charlie.client.patch(
            f"{CREDENTIALS}/{cred['id']}", {"secret": NEW_SECRET}, format="json"
        ).status_code
        == 404
    )
    assert [c["id"] for c in results(charlie.client.get(CREDENTIALS))] == [charlies["id"]]
    assert results(charlie.client.get(ENDPOINTS)) == []
    assert [c["id"] for c in results(alice.client.get(CREDENTIALS))] == [cred["id"]]

    row = Credential.objects.get(pk=cred["id"])
    assert (row.name, credential_secret(row)) == ("main", SECRET)
    assert ProviderEndpoint.objects.get(pk=endpoint["id"]).name == "byo"
    assert len(config_changes) == writes_before + 1  # charlie's own create only


def test_platform_credentials_and_endpoints_are_never_listed_or_reachable(
    alice: Persona, openai: Provider, config_changes: list[int]
) -> None:
    platform_ep = endpoint_create(provider=openai, name="platform", base_url=PUBLIC_URL)
    platform_cred = credential_create(provider=openai, name="platform", secret="sk-platform-9999")
    writes_before = len(config_changes)

    assert results(alice.client.get(CREDENTIALS)) == []
    assert results(alice.client.get(ENDPOINTS)) == []
    assert results(alice.client.get(PROVIDERS))[0]["has_own_credential"] is False
    for url in (f"{CREDENTIALS}/{platform_cred.pk}", f"{ENDPOINTS}/{platform_ep.pk}"):
        assert alice.client.get(url).status_code == 404
        assert alice.client.patch(url, {"name": "mine"}, format="json").status_code == 404
        assert alice.client.delete(url).status_code == 404
    platform_cred.refresh_from_db()
    assert credential_secret(platform_cred) == "sk-platform-9999"
    assert platform_cred.name == "platform"
    assert ProviderEndpoint.objects.get(pk=platform_ep.pk).name == "platform"
    assert len(config_changes) == writes_before


# --------------------------------------------------------------------------- providers


def test_the_providers_list_shows_enabled_providers_and_which_have_our_own_key(
    alice: Persona, charlie: Persona, openai: Provider
) -> None:
    Provider.objects.create(slug="anthropic", name="Anthropic", wire_format="anthropic")
    Provider.objects.create(slug="off", name="Off", wire_format="openai", enabled=False)
    Provider.objects.create(slug="ollama", name="Ollama", wire_format="ollama", is_local=True)
    create_credential(alice)

    rows = results(alice.client.get(PROVIDERS))
    assert rows == [
        {
            "slug": "anthropic",
            "name": "Anthropic",
            "wire_format": "anthropic",
            "is_local": False,
            "has_own_credential": False,
        },
        {
            "slug": "ollama",
            "name": "Ollama",
            "wire_format": "ollama",
            "is_local": True,
            "has_own_credential": False,
        },
        {
            "slug": "openai",
            "name": "OpenAI",
            "wire_format": "openai",
            "is_local": False,
            "has_own_credential": True,
        },
    ]
    assert all(r["has_own_credential"] is False for r in results(charlie.client.get(PROVIDERS)))


# --------------------------------------------------------------------------- routing


def test_the_tenants_own_credential_is_what_routing_uses(
    alice: Persona, charlie: Persona, gpt: CatalogModel
) -> None:
    before = build_context(alice.tenant.pk)
    assert [c.has_credentials for c in before.candidates if c.provider == "openai"] == [False]

    create_credential(alice)

    acme_ctx = build_context(alice.tenant.pk)
    acme_openai = [c for c in acme_ctx.candidates if c.provider == "openai"]
    assert acme_openai and all(c.has_credentials for c in acme_openai)
    assert all(acme_ctx.targets[c.key].target.api_key == SECRET for c in acme_openai)

    globex_ctx = build_context(charlie.tenant.pk)
    globex_openai = [c for c in globex_ctx.candidates if c.provider == "openai"]
    assert globex_openai and not any(c.has_credentials for c in globex_openai)
    assert all(globex_ctx.targets[c.key].target.api_key is None for c in globex_openai)


def test_routing_sends_the_tenants_key_to_the_tenants_own_endpoint(
    alice: Persona, charlie: Persona, gpt: CatalogModel
) -> None:
    endpoint = create_endpoint(alice, base_url="https://93.184.216.34/custom/")
    create_credential(alice, endpoint=endpoint["id"])

    acme_ctx = build_context(alice.tenant.pk)
    (candidate,) = [c for c in acme_ctx.candidates if c.provider == "openai"]
    target = acme_ctx.targets[candidate.key]
    assert candidate.has_credentials
    assert target.endpoint_id == endpoint["id"]
    assert target.target.base_url == "https://93.184.216.34/custom"
    assert target.target.api_key == SECRET

    globex_ctx = build_context(charlie.tenant.pk)
    (theirs,) = [c for c in globex_ctx.candidates if c.provider == "openai"]
    assert globex_ctx.targets[theirs.key].endpoint_id is None
    assert globex_ctx.targets[theirs.key].target.api_key is None


def test_a_platform_key_is_never_sent_to_a_tenants_own_endpoint(
    alice: Persona, gpt: CatalogModel
) -> None:
    credential_create(provider=gpt.provider, name="platform", secret="sk-platform-secret-0000")
    endpoint = create_endpoint(alice)
    ctx = build_context(alice.tenant.pk)
    own = [c for c in ctx.candidates if ctx.targets[c.key].endpoint_id == endpoint["id"]]
    assert own, "the tenant's endpoint is a candidate"
    for candidate in own:
        # No key of the tenant's own: none is sent, and the platform's never is.
        assert ctx.targets[candidate.key].target.api_key is None
        assert not candidate.has_credentials


def test_an_endpoint_sets_its_own_health_checks(alice: Persona, gpt: CatalogModel) -> None:
    created = create_endpoint(
        alice, health_check_mode="completion", health_check_model="gpt-x", health_check_interval=60
    )
    assert created["health_check_mode"] == "completion"
    assert (created["health_check_interval"], created["health_check_timeout"]) == (60.0, None)
    resp = alice.client.patch(
        f"{ENDPOINTS}/{created['id']}", {"health_check_interval": 1}, format="json"
    )
    assert resp.status_code == 400
    assert resp.json()["field"] == "health_check_interval"
    resp = alice.client.patch(
        f"{ENDPOINTS}/{created['id']}", {"health_check_mode": "ping"}, format="json"
    )
    assert resp.status_code == 400 and resp.json()["field"] == "health_check_mode"
    resp = alice.client.patch(
        f"{ENDPOINTS}/{created['id']}", {"health_check_mode": "off"}, format="json"
    )
    assert resp.status_code == 200 and resp.json()["health_check_mode"] == "off"
