"""Keyless OpenAI-compatible servers (vLLM without --api-key, local proxies) need no
credential: the README's recipe works as written, and no Authorization header is sent."""

from __future__ import annotations

import io
from typing import Any

import httpx
import pytest
from django.core.management import call_command

from routing.models import RoutingPolicy
from tenants.services import api_key_create
from tests.gateway.conftest import FakeVllm

MODEL = "meta-llama/Llama-3.1-8B-Instruct"
HI = [{"role": "user", "content": "hi"}]


@pytest.fixture
def vllm(vllm_server: FakeVllm) -> FakeVllm:
    vllm_server.reset()
    return vllm_server


def manage(*args: str) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out, stderr=out)
    return out.getvalue()


def chat(gw: Any, model: str = MODEL) -> httpx.Response:
    with httpx.Client(timeout=10) as client:
        return client.post(
            f"{gw.url}/v1/chat/completions",
            json={"model": model, "messages": HI},
            headers={"authorization": f"Bearer {gw.plaintext}"},
        )


def test_the_readmes_vllm_recipe_serves_requests_without_any_credential(
    gw: Any, vllm: FakeVllm
) -> None:
    url = vllm.base_url
    manage("add_provider", "vllm", "--wire-format", "openai", "--base-url", url, "--no-api-key")
    out = manage(
        "add_endpoint", "vllm", "gpu1", "--base-url", url, "--model", MODEL, "--create-models"
    )
    assert "(no credential needed)" in out

    resp = chat(gw)

    assert resp.status_code == 200, resp.text
    assert resp.headers["x-aura-provider"] == "vllm"
    assert resp.json()["choices"][0]["message"]["content"]
    (call,) = vllm.calls
    assert call.json["model"] == MODEL
    assert "authorization" not in call.headers


def test_a_keyless_endpoint_of_a_provider_that_needs_keys_is_served_without_one(
    gw: Any, vllm: FakeVllm
) -> None:
    url = vllm.base_url
    manage("add_provider", "vllm", "--wire-format", "openai", "--base-url", url)
    manage("add_endpoint", "vllm", "gpu1", "--base-url", url, "--model", MODEL, "--create-models")
    refused = chat(gw)
    assert refused.status_code == 503
    assert "no credentials configured for vllm" in refused.text
    assert vllm.calls == []

    manage("add_endpoint", "vllm", "gpu2", "--base-url", url, "--no-api-key", "--model", MODEL)

    resp = chat(gw)
    assert resp.status_code == 200, resp.text
    assert [("authorization" in c.headers) for c in vllm.calls] == [False]


def test_a_tenants_own_keyless_endpoint_from_the_api_is_served_without_a_credential(
    gw: Any, vllm: FakeVllm
) -> None:
    url = vllm.base_url
    manage("add_provider", "vllm", "--wire-format", "openai", "--base-url", url)
    manage("add_endpoint", "vllm", "gpu1", "--base-url", url, "--model", MODEL, "--create-models")
    RoutingPolicy.objects.create(tenant=gw.tenant, allow_private_base_urls=True)
    _, admin_key = api_key_create(tenant=gw.tenant, name="admin", can_manage=True)
    endpoints_url = f"{gw.url}/api/v1/endpoints"
    with httpx.Client(timeout=10, headers={"authorization": f"Bearer {admin_key}"}) as client:
        created = client.post(
            endpoints_url,
            json={
                "provider": "vllm",
                "name": "ours",
                "base_url": url,
                "models": [MODEL],
                "requires_api_key": False,
            },
        )
    assert created.status_code == 201, created.text
    assert created.json()["requires_api_key"] is False

    resp = chat(gw)

    assert resp.status_code == 200, resp.text
    (call,) = vllm.calls
    assert "authorization" not in call.headers
