"""The catalog's keyless local providers (Ollama) are routable only where something answers."""

from __future__ import annotations

import io
import json
import re
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command

from routing.catalog.services import CATALOG_PATH
from routing.gateway.context import build_context
from routing.models import Provider, ProviderEndpoint
from tenants.models import Tenant
from tests.fakes.ollama import FakeOllama


def run(*args: str) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out, stderr=out)
    return out.getvalue()


@pytest.fixture
def dead_url() -> Iterator[str]:
    """A loopback port that refuses connections: bound, never listening."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"


@pytest.fixture
def ollama_server() -> Iterator[FakeOllama]:
    server = FakeOllama()
    server.start()
    yield server
    server.stop()


def catalog_with_ollama_at(url: str, tmp_path: Path) -> Path:
    """The shipped catalog, with its Ollama provider's default base URL moved to ``url``."""
    data = json.loads(CATALOG_PATH.read_text())
    (ollama,) = [p for p in data["providers"] if p["slug"] == "ollama"]
    ollama["default_base_url"] = url
    path = tmp_path / "catalog.json"
    path.write_text(json.dumps(data))
    return path


def ollama_candidates(tenant: Tenant) -> list[Any]:
    return [c for c in build_context(tenant.pk).candidates if c.provider == "ollama"]


def test_ollama_where_nothing_answers_is_loaded_disabled_and_not_routable(
    acme: Tenant, dead_url: str, tmp_path: Path
) -> None:
    out = run("load_catalog", "--file", str(catalog_with_ollama_at(dead_url, tmp_path)))

    endpoint = ProviderEndpoint.objects.get(provider__slug="ollama")
    assert (endpoint.name, endpoint.base_url, endpoint.enabled) == ("default", dead_url, False)
    assert f"ollama:default at {dead_url}: no answer" in out
    assert "manage.py enable_endpoint ollama default" in out
    assert ollama_candidates(acme) == []


def test_ollama_that_answers_is_loaded_enabled_and_routable_without_a_key(
    acme: Tenant, ollama_server: FakeOllama, tmp_path: Path
) -> None:
    out = run(
        "load_catalog", "--file", str(catalog_with_ollama_at(ollama_server.root_url, tmp_path))
    )

    assert ProviderEndpoint.objects.get(provider__slug="ollama", name="default").enabled
    assert "answered, enabled" in out
    assert [c.path for c in ollama_server.calls] == ["/api/tags"]
    candidates = ollama_candidates(acme)
    assert candidates and all(c.has_credentials for c in candidates)


def test_enable_endpoint_makes_the_disabled_local_endpoint_routable(
    acme: Tenant, dead_url: str, tmp_path: Path
) -> None:
    run("load_catalog", "--file", str(catalog_with_ollama_at(dead_url, tmp_path)))

    out = run("enable_endpoint", "ollama", "default")

    assert f"ollama:default (platform) at {dead_url} is enabled" in out
    assert ProviderEndpoint.objects.get(provider__slug="ollama").enabled
    assert ollama_candidates(acme)
    run("enable_endpoint", "ollama", "default", "--disable")
    assert ollama_candidates(acme) == []


def test_loading_again_leaves_the_operators_choice_alone(
    acme: Tenant, dead_url: str, ollama_server: FakeOllama, tmp_path: Path
) -> None:
    run("load_catalog", "--file", str(catalog_with_ollama_at(ollama_server.root_url, tmp_path)))
    run("enable_endpoint", "ollama", "default", "--disable")

    out = run(
        "load_catalog", "--file", str(catalog_with_ollama_at(ollama_server.root_url, tmp_path))
    )

    assert not ProviderEndpoint.objects.get(provider__slug="ollama").enabled
    assert "ollama:default" in out and "disabled" in out
    assert ProviderEndpoint.objects.filter(provider__slug="ollama").count() == 1


def test_an_ollama_provider_the_operator_configured_gets_no_extra_endpoint(
    acme: Tenant, dead_url: str, ollama_server: FakeOllama, tmp_path: Path
) -> None:
    run("load_catalog", "--file", str(catalog_with_ollama_at(dead_url, tmp_path)))
    ProviderEndpoint.objects.all().delete()
    run("add_endpoint", "ollama", "gpu", "--base-url", ollama_server.root_url)

    run("load_catalog", "--file", str(catalog_with_ollama_at(dead_url, tmp_path)))

    assert list(ProviderEndpoint.objects.values_list("name", "enabled")) == [("gpu", True)]
    assert {c.endpoint for c in ollama_candidates(acme)} == {
        f"ep{ProviderEndpoint.objects.get().pk}"
    }


def test_a_disabled_endpoint_is_not_bypassed_through_the_providers_default_url(
    acme: Tenant,
) -> None:
    provider = Provider.objects.create(
        slug="vllm", name="vLLM", wire_format="openai", default_base_url="http://127.0.0.1:9/v1"
    )
    run(
        "add_endpoint",
        "vllm",
        "gpu1",
        "--base-url",
        "http://127.0.0.1:9/v1",
        "--no-api-key",
        "--model",
        "llama",
        "--create-models",
    )
    assert [c.key for c in build_context(acme.pk).candidates] == ["vllm/llama"]

    ProviderEndpoint.objects.filter(provider=provider).update(enabled=False)

    assert build_context(acme.pk).candidates == ()


def test_the_start_up_banner_says_ollama_is_disabled_and_how_to_enable_it(
    db: Any, dead_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(
        "routing.catalog.services.CATALOG_PATH", catalog_with_ollama_at(dead_url, tmp_path)
    )

    first = run("bootstrap_demo")
    second = run("bootstrap_demo")

    demo = Tenant.objects.get(slug="demo")
    assert ollama_candidates(demo) == []
    for out in (first, second):
        (line,) = [line for line in out.splitlines() if "local:" in line]
        assert re.search(r"ollama:default at http://127\.0\.0\.1:\d+: (no answer|disabled)", line)
        assert "manage.py enable_endpoint ollama default" in line
    assert ProviderEndpoint.objects.filter(provider__slug="ollama").count() == 1
