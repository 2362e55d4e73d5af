"""Management commands for the catalog, providers, endpoints and credentials."""

from __future__ import annotations

import base64
import io
import json
import os
from typing import Any

import pytest
from django.core.management import CommandError, call_command

from aura import crypto
from routing.catalog.services import CATALOG_PATH, credential_create, credential_secret
from routing.models import CatalogModel, Credential, Provider, ProviderEndpoint
from tenants.models import Tenant

SECRET = "sk-cli-test-1a2b3c4d5e6f7788"


def new_key() -> str:
    return base64.urlsafe_b64encode(os.urandom(32)).decode()


@pytest.fixture(autouse=True)
def field_keys(settings: Any) -> list[str]:
    settings.FIELD_ENCRYPTION_KEYS = [new_key()]
    return settings.FIELD_ENCRYPTION_KEYS


def run(*args: str, **kwargs: Any) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out, stderr=out, **kwargs)
    return out.getvalue()


@pytest.fixture
def vllm(db: Any) -> Provider:
    return Provider.objects.create(slug="vllm", name="vLLM", wire_format="openai", is_local=True)


def test_load_catalog_prints_counts_and_is_idempotent(db: Any) -> None:
    n_models = len(json.loads(CATALOG_PATH.read_text())["models"])
    first = run("load_catalog")
    assert f"models created: {n_models}" in first
    second = run("load_catalog")
    assert "models created: 0" in second
    assert "models updated: 0" in second
    assert CatalogModel.objects.count() == n_models


def test_load_catalog_with_a_missing_file_is_a_command_error(db: Any) -> None:
    with pytest.raises(CommandError, match=r"cannot read catalog /nope\.json"):
        run("load_catalog", "--file", "/nope.json")


def test_add_provider_creates_then_updates(db: Any) -> None:
    out = run(
        "add_provider",
        "vllm",
        "--wire-format",
        "openai",
        "--base-url",
        "http://10.0.0.5:8000/v1",
        "--local",
    )
    assert out.startswith("Created provider vllm")
    out = run(
        "add_provider",
        "vllm",
        "--wire-format",
        "openai",
        "--base-url",
        "http://10.0.0.6:8000/v1",
        "--name",
        "GPU box",
    )
    assert out.startswith("Updated provider vllm")
    provider = Provider.objects.get(slug="vllm")
    assert (provider.name, provider.default_base_url, provider.is_local) == (
        "GPU box",
        "http://10.0.0.6:8000/v1",
        False,
    )


def test_add_endpoint_with_create_models_serves_those_models(vllm: Provider) -> None:
    out = run(
        "add_endpoint",
        "vllm",
        "gpu1",
        "--base-url",
        "http://10.0.0.5:8000/v1",
        "--model",
        "meta-llama/Llama-3.1-8B-Instruct",
        "Qwen/Qwen2.5-7B-Instruct",
        "--create-models",
    )
    assert "Created catalog model vllm/meta-llama/Llama-3.1-8B-Instruct" in out
    endpoint = ProviderEndpoint.objects.get(provider=vllm, name="gpu1")
    served = sorted(endpoint.served_models.values_list("model_id", flat=True))
    assert served == ["Qwen/Qwen2.5-7B-Instruct", "meta-llama/Llama-3.1-8B-Instruct"]
    for model in endpoint.served_models.all():
        assert model.input_price_per_mtok == 0
        assert model.capabilities == ["chat"]  # nothing it was not said to do
        assert model.is_local
    assert "zero price" in out


def test_add_endpoint_without_create_models_refuses_unknown_models(vllm: Provider) -> None:
    with pytest.raises(CommandError, match=r"unknown model.*llama"):
        run("add_endpoint", "vllm", "gpu1", "--base-url", "http://10.0.0.5/v1", "--model", "llama")
    assert not ProviderEndpoint.objects.exists()


def test_a_refused_endpoint_leaves_no_created_models_behind(vllm: Provider, acme: Tenant) -> None:
    with pytest.raises(CommandError, match="private"):
        run(
            "add_endpoint",
            "vllm",
            "theirs",
            "--base-url",
            "http://10.0.0.5/v1",
            "--tenant",
            "acme",
            "--model",
            "llama",
            "--create-models",
        )
    assert not CatalogModel.objects.exists()


def test_add_endpoint_parses_deployments(db: Any) -> None:
    azure = Provider.objects.create(slug="azure", name="Azure", wire_format="azure")
    CatalogModel.objects.create(provider=azure, model_id="gpt-x")
    run(
        "add_endpoint",
        "azure",
        "eu",
        "--base-url",
        "https://eu.openai.azure.com",
        "--api-version",
        "2024-10-21",
        "--deployment",
        "gpt-x=gpt-x-eu",
    )
    endpoint = ProviderEndpoint.objects.get(name="eu")
    assert endpoint.deployments == {"gpt-x": "gpt-x-eu"}
    assert endpoint.api_version == "2024-10-21"
    with pytest.raises(CommandError, match="MODEL=DEPLOYMENT"):
        run("add_endpoint", "azure", "us", "--base-url", "https://x.test", "--deployment", "gpt-x")


def test_add_endpoint_names_an_unknown_provider(db: Any) -> None:
    with pytest.raises(CommandError, match="no provider with slug 'nope'"):
        run("add_endpoint", "nope", "x", "--base-url", "https://x.test")


def test_add_credential_reads_stdin_and_prints_only_the_masked_form(vllm: Provider) -> None:
    out = run("add_credential", "vllm", "main", "--secret-stdin", stdin=io.StringIO(SECRET + "\n"))
    cred = Credential.objects.get()
    assert credential_secret(cred) == SECRET
    assert SECRET not in out
    assert cred.ciphertext not in out
    assert "••••7788" in out


def test_add_credential_reads_an_environment_variable(
    vllm: Provider, acme: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    ProviderEndpoint.objects.create(provider=vllm, name="gpu1", base_url="http://10.0.0.5/v1")
    monkeypatch.setenv("VLLM_KEY", SECRET)
    out = run(
        "add_credential",
        "vllm",
        "main",
        "--tenant",
        "acme",
        "--endpoint",
        "gpu1",
        "--secret-env",
        "VLLM_KEY",
    )
    assert SECRET not in out
    cred = Credential.objects.get()
    assert cred.endpoint is not None
    assert (cred.tenant, cred.endpoint.name) == (acme, "gpu1")
    assert credential_secret(cred) == SECRET


def test_add_credential_never_takes_the_secret_as_an_argument(vllm: Provider) -> None:
    with pytest.raises(CommandError):
        run("add_credential", "vllm", "main", SECRET)
    with pytest.raises(CommandError, match="one of the arguments --secret-stdin --secret-env"):
        run("add_credential", "vllm", "main")


def test_add_credential_with_an_unset_variable_is_a_command_error(vllm: Provider) -> None:
    with pytest.raises(CommandError, match="NOPE_KEY is not set"):
        run("add_credential", "vllm", "main", "--secret-env", "NOPE_KEY")


def test_reencrypt_credentials_moves_everything_to_the_newest_key(
    vllm: Provider, settings: Any, field_keys: list[str]
) -> None:
    cred = credential_create(provider=vllm, name="main", secret=SECRET)
    settings.FIELD_ENCRYPTION_KEYS = [new_key(), field_keys[0]]

    out = run("reencrypt_credentials")

    assert out.strip() == "Re-encrypted 1 credential(s) under the newest key."
    assert run("reencrypt_credentials").startswith("Re-encrypted 0")
    settings.FIELD_ENCRYPTION_KEYS = settings.FIELD_ENCRYPTION_KEYS[:1]  # old key retired
    cred.refresh_from_db()
    assert credential_secret(cred) == SECRET
    assert not crypto.needs_reencrypt(cred.ciphertext)


def test_reencrypt_credentials_reports_rows_it_cannot_decrypt(
    vllm: Provider, settings: Any
) -> None:
    cred = credential_create(provider=vllm, name="main", secret=SECRET)
    kid = cred.ciphertext.split(":")[1]
    settings.FIELD_ENCRYPTION_KEYS = [new_key()]  # the old key was dropped too early
    with pytest.raises(CommandError, match=f"credential {cred.pk}: .*key id {kid}") as info:
        run("reencrypt_credentials")
    assert SECRET not in str(info.value)
