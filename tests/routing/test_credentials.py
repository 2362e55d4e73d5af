"""routing.catalog.services: encrypted provider credentials, endpoints, base URL checks, catalog."""

from __future__ import annotations

import base64
import json
import os
import socket
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from aura import crypto
from aura.errors import DomainError
from aura.redis import sync_client
from routing.catalog.services import (
    CATALOG_PATH,
    base_url_check,
    catalog_load,
    catalog_models_ensure,
    credential_create,
    credential_rotate_secret,
    credential_secret,
    credentials_reencrypt,
    endpoint_create,
)
from routing.changes import VERSION_KEY
from routing.models import CatalogModel, Credential, Provider, ProviderEndpoint, RoutingPolicy
from tenants.models import Tenant

SECRET = "sk-test-4f8a9b2c7d1e6f30abcd"


def new_key() -> str:
    return base64.urlsafe_b64encode(os.urandom(32)).decode()


@pytest.fixture(autouse=True)
def field_keys(settings: Any) -> list[str]:
    settings.FIELD_ENCRYPTION_KEYS = [new_key()]
    return settings.FIELD_ENCRYPTION_KEYS


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
    return CatalogModel.objects.create(provider=openai, model_id="gpt-x")


def fake_dns(monkeypatch: pytest.MonkeyPatch, table: dict[str, list[str]]) -> None:
    def getaddrinfo(host: str, *args: Any, **kwargs: Any) -> list[Any]:
        if host not in table:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [
            (socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, 0))
            for a in table[host]
        ]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


# --------------------------------------------------------------------------- credentials


def test_a_created_credential_is_encrypted_and_bound_to_its_row(openai: Provider) -> None:
    cred = credential_create(provider=openai, name="main", secret=SECRET)
    cred.refresh_from_db()
    assert SECRET not in cred.ciphertext
    assert cred.ciphertext.startswith(f"v1:{crypto.keys()[0].id}:")
    assert crypto.decrypt(cred.ciphertext, aad=f"routing.Credential:{cred.pk}") == SECRET
    assert credential_secret(cred) == SECRET
    assert cred.last4 == "abcd"
    assert cred.masked == "••••abcd"


def test_pasted_whitespace_around_a_secret_is_dropped(openai: Provider) -> None:
    cred = credential_create(provider=openai, name="main", secret=f"  {SECRET}\n")
    assert credential_secret(cred) == SECRET


def test_a_short_secret_does_not_reveal_its_last_four_characters(openai: Provider) -> None:
    cred = credential_create(provider=openai, name="main", secret="short-key")
    assert cred.last4 == ""
    assert cred.masked == "••••"


def test_a_blank_secret_is_refused(openai: Provider) -> None:
    with pytest.raises(DomainError, match="secret must not be blank") as info:
        credential_create(provider=openai, name="main", secret="  \n")
    assert info.value.param == "secret"
    assert not Credential.objects.exists()


def test_a_ciphertext_copied_to_another_row_does_not_decrypt(openai: Provider) -> None:
    first = credential_create(provider=openai, name="first", secret=SECRET)
    second = credential_create(provider=openai, name="second", secret="sk-other-0000000000")
    Credential.objects.filter(pk=second.pk).update(ciphertext=first.ciphertext)
    second.refresh_from_db()
    with pytest.raises(crypto.DecryptionError, match="another row"):
        credential_secret(second)


def test_a_credential_cannot_use_another_providers_endpoint(openai: Provider) -> None:
    other = Provider.objects.create(slug="groq", name="Groq", wire_format="openai")
    endpoint = endpoint_create(provider=other, name="main", base_url="https://api.groq.com")
    with pytest.raises(DomainError, match="belongs to provider groq") as info:
        credential_create(provider=openai, name="main", secret=SECRET, endpoint=endpoint)
    assert info.value.param == "endpoint"


def test_a_platform_credential_cannot_attach_to_a_tenants_endpoint(
    openai: Provider, acme: Tenant
) -> None:
    endpoint = endpoint_create(
        provider=openai, name="byo", base_url="https://93.184.216.34/v1", tenant=acme
    )
    with pytest.raises(DomainError, match="another tenant"):
        credential_create(provider=openai, name="main", secret=SECRET, endpoint=endpoint)
    cred = credential_create(
        provider=openai, name="main", secret=SECRET, endpoint=endpoint, tenant=acme
    )
    stored = Credential.objects.get(pk=cred.pk)
    assert (stored.tenant_id, stored.endpoint_id) == (acme.pk, endpoint.pk)
    assert Credential.objects.count() == 1  # the refused platform one was not written


def test_rotating_a_secret_replaces_it_and_records_when(openai: Provider) -> None:
    cred = credential_create(provider=openai, name="main", secret=SECRET)
    old_ciphertext = cred.ciphertext
    credential_rotate_secret(credential=cred, secret="sk-new-secret-value-9999")
    cred.refresh_from_db()
    assert cred.ciphertext != old_ciphertext
    assert credential_secret(cred) == "sk-new-secret-value-9999"
    assert cred.last4 == "9999"
    assert cred.rotated_at is not None


def test_key_rotation_end_to_end(openai: Provider, settings: Any, field_keys: list[str]) -> None:
    old_key = field_keys[0]
    creds = [
        credential_create(provider=openai, name=f"k{i}", secret=f"{SECRET}{i}") for i in range(3)
    ]

    settings.FIELD_ENCRYPTION_KEYS = [new_key(), old_key]
    for cred in creds:
        cred.refresh_from_db()
        assert crypto.needs_reencrypt(cred.ciphertext)
        assert credential_secret(cred).startswith(SECRET)

    assert credentials_reencrypt() == 3
    assert credentials_reencrypt() == 0  # nothing left under the old key

    settings.FIELD_ENCRYPTION_KEYS = settings.FIELD_ENCRYPTION_KEYS[:1]  # retire the old key
    for i, cred in enumerate(creds):
        cred.refresh_from_db()
        assert not crypto.needs_reencrypt(cred.ciphertext)
        assert credential_secret(cred) == f"{SECRET}{i}"


def test_reencrypt_moves_what_it_can_and_names_what_it_cannot(
    openai: Provider, settings: Any, field_keys: list[str]
) -> None:
    good = credential_create(provider=openai, name="good", secret=SECRET)
    bad = credential_create(provider=openai, name="bad", secret=SECRET)
    Credential.objects.filter(pk=bad.pk).update(ciphertext=good.ciphertext)  # wrong row
    settings.FIELD_ENCRYPTION_KEYS = [new_key(), field_keys[0]]

    with pytest.raises(crypto.DecryptionError, match=f"re-encrypted 1 .* credential {bad.pk}:"):
        credentials_reencrypt()
    good.refresh_from_db()
    assert not crypto.needs_reencrypt(good.ciphertext)


def _published_version() -> Any:
    """What every gateway process watches for configuration changes (routing.changes)."""
    return sync_client().get(VERSION_KEY)


@pytest.mark.django_db(transaction=True)  # changes are published when they commit
def test_every_write_is_published_to_every_process(openai: Provider) -> None:
    versions = [_published_version()]
    cred = credential_create(provider=openai, name="main", secret=SECRET)
    versions.append(_published_version())
    credential_rotate_secret(credential=cred, secret=SECRET + "x")
    versions.append(_published_version())
    endpoint_create(provider=openai, name="main", base_url="https://api.openai.com/v1")
    versions.append(_published_version())
    catalog_load()
    versions.append(_published_version())
    assert len(set(versions)) == 5, versions  # each write published a new version
    catalog_load()  # nothing changed: nothing to tell
    assert _published_version() == versions[-1]


# --------------------------------------------------------------------------- base URLs


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8000/v1",
        "http://localhost:11434",
        "http://10.1.2.3/v1",
        "https://192.168.1.10",
        "http://172.16.0.1",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]:8000",
        "http://[::ffff:127.0.0.1]/",
        "http://[::ffff:a9fe:a9fe]/",  # 169.254.169.254, hex-mapped
        "http://[fe80::1]/",
        "http://[fc00::1]/",
        "http://0.0.0.0:80",
        "http://100.64.0.1",  # carrier-grade NAT
        "http://224.0.0.1",
        "http://[2002:7f00:1::1]/",  # 6to4 wrapping 127.0.0.1
    ],
)
def test_private_and_internal_addresses_are_refused(url: str) -> None:
    with pytest.raises(DomainError) as info:
        base_url_check(url, allow_private=False)
    assert info.value.param == "base_url"
    assert "address" in info.value.message


@pytest.mark.parametrize(
    "url", ["ftp://93.184.216.34/", "file:///etc/passwd", "gopher://x", "93.184.216.34", "http://"]
)
def test_non_http_urls_are_refused(url: str) -> None:
    with pytest.raises(DomainError) as info:
        base_url_check(url, allow_private=True)
    assert info.value.param == "base_url"


def test_a_public_literal_ip_is_accepted_without_resolving(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_dns(monkeypatch, {})  # any lookup would fail
    base_url_check("https://93.184.216.34/v1", allow_private=False)
    base_url_check("https://[2606:4700:4700::1111]/v1", allow_private=False)


def test_allow_private_lets_loopback_through() -> None:
    base_url_check("http://127.0.0.1:8000/v1", allow_private=True)


def test_a_hostname_is_judged_by_every_address_it_resolves_to(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fake_dns(
        monkeypatch,
        {
            "api.example.com": ["93.184.216.34", "2606:2800:220:1::1"],
            "sneaky.example.com": ["93.184.216.34", "10.0.0.7"],
            "metadata.example.com": ["169.254.169.254"],
        },
    )
    base_url_check("https://api.example.com/v1", allow_private=False)
    with pytest.raises(DomainError, match=r"sneaky.example.com \(10.0.0.7\) is a private"):
        base_url_check("https://sneaky.example.com/v1", allow_private=False)
    with pytest.raises(DomainError, match="link-local"):
        base_url_check("https://metadata.example.com/", allow_private=False)


def test_an_unresolvable_host_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_dns(monkeypatch, {})
    with pytest.raises(DomainError, match="does not resolve"):
        base_url_check("https://nowhere.invalid/v1", allow_private=False)


def test_credentials_inside_a_base_url_are_refused() -> None:
    with pytest.raises(DomainError, match="must not contain credentials"):
        base_url_check("https://user:pw@93.184.216.34/v1", allow_private=False)


# --------------------------------------------------------------------------- endpoints


def test_a_tenant_endpoint_on_a_private_address_is_refused(openai: Provider, acme: Tenant) -> None:
    with pytest.raises(DomainError, match="loopback"):
        endpoint_create(provider=openai, name="byo", base_url="http://127.0.0.1:9/v1", tenant=acme)
    assert not ProviderEndpoint.objects.exists()


def test_an_operator_can_allow_private_base_urls_for_a_tenant(
    openai: Provider, gpt: CatalogModel, acme: Tenant
) -> None:
    RoutingPolicy.objects.create(tenant=acme, allow_private_base_urls=True)
    endpoint = endpoint_create(
        provider=openai, name="byo", base_url="http://127.0.0.1:9/v1", tenant=acme
    )
    stored = ProviderEndpoint.objects.get(pk=endpoint.pk)
    assert (stored.tenant_id, stored.base_url) == (acme.pk, "http://127.0.0.1:9/v1")
    # Routing may then connect to it: the call is not restricted to public addresses.
    from routing.gateway.context import build_context

    ctx = build_context(acme.pk)
    (target,) = [t for t in ctx.targets.values() if t.endpoint_id == endpoint.pk]
    assert target.public_only is False


def test_platform_endpoints_may_use_private_addresses(openai: Provider) -> None:
    endpoint = endpoint_create(provider=openai, name="vllm", base_url="http://10.0.0.5:8000/v1")
    stored = ProviderEndpoint.objects.get(pk=endpoint.pk)
    assert (stored.tenant_id, stored.base_url) == (None, "http://10.0.0.5:8000/v1")


def test_an_endpoint_serves_the_models_it_names(openai: Provider, gpt: CatalogModel) -> None:
    endpoint = endpoint_create(
        provider=openai,
        name="main",
        base_url="https://api.openai.com/v1",
        models=["gpt-x"],
        deployments={"gpt-x": "gpt-x-prod"},
        api_version="2024-10-21",
        total_timeout=30,
    )
    endpoint.refresh_from_db()
    assert list(endpoint.served_models.all()) == [gpt]
    assert endpoint.deployments == {"gpt-x": "gpt-x-prod"}
    assert endpoint.total_timeout == 30


def test_an_endpoint_naming_an_unknown_model_is_refused(openai: Provider) -> None:
    with pytest.raises(DomainError, match=r"unknown model.*nope") as info:
        endpoint_create(provider=openai, name="m", base_url="https://x.test", models=["nope"])
    assert info.value.param == "models"


def test_two_platform_endpoints_cannot_share_a_name(openai: Provider) -> None:
    endpoint_create(provider=openai, name="main", base_url="https://api.openai.com/v1")
    with pytest.raises(DomainError, match="already exists"):
        endpoint_create(provider=openai, name="main", base_url="https://api.openai.com/v1")


def test_an_unknown_endpoint_option_is_refused(openai: Provider) -> None:
    with pytest.raises(DomainError, match=r"unknown endpoint option.*read_timeout"):
        endpoint_create(provider=openai, name="m", base_url="https://x.test", read_timeout=3)


def test_missing_models_are_created_with_zero_price_claiming_only_chat(
    openai: Provider, gpt: CatalogModel
) -> None:
    created = catalog_models_ensure(provider=openai, model_ids=["gpt-x", "llama-3.1-8b"])
    assert [m.model_id for m in created] == ["llama-3.1-8b"]
    model = created[0]
    assert model.input_price_per_mtok == model.output_price_per_mtok == 0
    assert model.capabilities == ["chat"]


# --------------------------------------------------------------------------- catalog


def test_the_catalog_loads_every_provider_and_model(db: Any) -> None:
    data = json.loads(CATALOG_PATH.read_text())
    counts = catalog_load()
    assert counts["providers_created"] == len(data["providers"]) == Provider.objects.count()
    assert counts["models_created"] == len(data["models"]) == CatalogModel.objects.count()
    first = data["models"][0]
    model = CatalogModel.objects.get(provider__slug=first["provider"], model_id=first["model_id"])
    assert model.input_price_per_mtok == Decimal(str(first["input_price_per_mtok"]))
    assert model.capabilities == first["capabilities"]


def test_loading_the_catalog_twice_changes_nothing(db: Any) -> None:
    catalog_load()
    stamps = dict(CatalogModel.objects.values_list("pk", "updated_at"))
    counts = catalog_load()
    assert counts["unchanged"] == Provider.objects.count() + CatalogModel.objects.count()
    assert sum(v for k, v in counts.items() if k != "unchanged") == 0
    assert dict(CatalogModel.objects.values_list("pk", "updated_at")) == stamps


def test_a_changed_file_updates_prices_but_never_deletes_or_reenables(
    db: Any, tmp_path: Path
) -> None:
    catalog_load()
    data = json.loads(CATALOG_PATH.read_text())
    first, dropped = data["models"][0], data["models"][-1]
    CatalogModel.objects.filter(model_id=first["model_id"]).update(enabled=False)
    first["input_price_per_mtok"] = 123.456
    data["models"] = data["models"][:-1]
    path = tmp_path / "catalog.json"
    path.write_text(json.dumps(data))

    counts = catalog_load(path)

    assert counts["models_updated"] == 1
    model = CatalogModel.objects.get(model_id=first["model_id"])
    assert model.input_price_per_mtok == Decimal("123.456")
    assert model.enabled is False  # the operator's switch, not the file's
    assert CatalogModel.objects.filter(model_id=dropped["model_id"]).exists()


def test_a_catalog_model_of_an_unknown_provider_is_refused(db: Any, tmp_path: Path) -> None:
    path = tmp_path / "catalog.json"
    path.write_text(json.dumps({"providers": [], "models": [{"provider": "x", "model_id": "m"}]}))
    with pytest.raises(DomainError, match="model x/m: unknown provider"):
        catalog_load(path)


def test_a_second_credential_with_the_same_name_in_the_same_place_is_refused(
    openai: Provider,
) -> None:
    credential_create(provider=openai, name="platform", secret="sk-first-000000000000")
    with pytest.raises(DomainError) as info:
        credential_create(provider=openai, name="platform", secret="sk-second-00000000000")
    assert info.value.param == "name"
    assert Credential.objects.filter(provider=openai).count() == 1


def test_a_pinned_url_goes_to_the_checked_public_address(monkeypatch: pytest.MonkeyPatch) -> None:
    import httpx

    from routing.catalog import services as credentials

    monkeypatch.setattr(credentials, "_resolve", lambda host: ["93.184.216.34"])
    url, headers, ext = credentials.pinned_public_url(httpx.URL("https://hooks.example.test/x"))
    assert (url.host, url.path) == ("93.184.216.34", "/x")
    assert headers == {"host": "hooks.example.test"} and ext == {
        "sni_hostname": "hooks.example.test"
    }
    monkeypatch.setattr(credentials, "_resolve", lambda host: ["93.184.216.34", "10.1.2.3"])
    with pytest.raises(DomainError):
        credentials.pinned_public_url(httpx.URL("https://hooks.example.test/x"))
