"""An upstream that echoes the key it was sent never carries it to a tenant.

The fake's "fake-500-echo" answers 500 with the key as sent, URL-encoded, inside Basic
auth's base64 and as plain base64. For a platform endpoint the tenant sees only what
failed (kind, HTTP status, the provider's code); the provider's text, redacted, is in the
operators' log. For the tenant's own key the tenant sees the provider's text, redacted.
"""

from __future__ import annotations

import base64
import logging
from urllib.parse import quote

import httpx

from routing.catalog.services import credential_create
from routing.gateway.context import cache
from routing.models import Credential, Provider, ProviderEndpoint
from tests.gateway.conftest import add_model

KEY = "sk-plat+/=:Zq7xY2w9Vb4nM1kL8pQe"
HI = [{"role": "user", "content": "hi"}]


def _forms(key: str) -> list[str]:
    return [
        key,
        quote(key, safe=""),
        base64.b64encode(f"user:{key}".encode()).decode(),
        base64.b64encode(key.encode()).decode(),
    ]


def _provider_with_key(gw, key: str, *, tenant=None) -> Provider:
    provider = Provider.objects.create(slug="echo", name="echo", wire_format="openai")
    endpoint = ProviderEndpoint.objects.create(
        provider=provider,
        name="main",
        base_url=gw.fakes["openai"].base_url,
        connect_timeout=2,
        first_byte_timeout=2,
        total_timeout=10,
        max_retries=0,
    )
    credential_create(provider=provider, name="k", secret=key, endpoint=endpoint, tenant=tenant)
    add_model(provider, "fake-500-echo")
    cache.clear()
    return provider


def _call(gw) -> httpx.Response:
    with httpx.Client(timeout=10) as client:
        return client.post(
            f"{gw.url}/v1/chat/completions",
            json={"model": "fake-500-echo", "messages": HI},
            headers={"authorization": f"Bearer {gw.plaintext}"},
        )


def test_a_platform_keys_echo_reaches_neither_the_error_nor_usage(gw, caplog) -> None:
    _provider_with_key(gw, KEY)
    with caplog.at_level(logging.WARNING, logger="routing.gateway.execution"):
        resp = _call(gw)
    assert resp.status_code == 502
    message = resp.json()["error"]["message"]
    assert "echo/fake-500-echo: provider error (HTTP 500, provider code 'key_trouble')" in message
    (row,) = gw.usage(1)
    shown = message + str(row.attempts)
    for form in _forms(KEY):
        assert form not in shown
    assert "upstream failed" not in shown  # the provider's own words stay with operators
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "upstream failed for key=***" in logged
    for form in _forms(KEY):
        assert form not in logged


def test_a_tenants_own_key_is_redacted_in_every_encoding_of_its_echo(gw) -> None:
    own = "sk-tenant+/=:Jh3kD9sQ2vX8cB5mN0rT"
    _provider_with_key(gw, own, tenant=gw.tenant)
    assert Credential.objects.get(tenant=gw.tenant).tenant_id == gw.tenant.pk
    resp = _call(gw)
    assert resp.status_code == 502
    message = resp.json()["error"]["message"]
    assert "upstream failed for key=***" in message  # its own provider's text, redacted
    assert "basic ***" in message and "b64 ***" in message
    (row,) = gw.usage(1)
    for form in _forms(own):
        assert form not in message + str(row.attempts)


def test_a_connection_failure_reads_as_one_sentence(gw) -> None:
    provider = Provider.objects.create(slug="gone", name="gone", wire_format="openai")
    ProviderEndpoint.objects.create(
        provider=provider,
        name="main",
        base_url="http://127.0.0.1:1/v1",
        connect_timeout=1,
        first_byte_timeout=1,
        total_timeout=2,
        max_retries=0,
        requires_api_key=False,
    )
    add_model(provider, "fake-ok")
    cache.clear()
    with httpx.Client(timeout=10) as client:
        resp = client.post(
            f"{gw.url}/v1/chat/completions",
            json={"model": "gone/fake-ok", "messages": HI},
            headers={"authorization": f"Bearer {gw.plaintext}"},
        )
    assert resp.status_code == 502
    assert resp.json()["error"]["message"] == (
        "Every provider in the plan failed. Tried: gone/fake-ok: could not connect to the provider"
    )
