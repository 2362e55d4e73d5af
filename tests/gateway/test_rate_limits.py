"""Requests/tokens per minute, per tenant and per key, shared through Redis."""

from __future__ import annotations

import httpx
import openai
import pytest

from tenants.services import api_key_create
from tests.gateway.conftest import add_model

HI = [{"role": "user", "content": "hi"}]


def post(gw, key: str | None = None, content: str = "hi") -> httpx.Response:
    return httpx.post(
        f"{gw.url}/v1/chat/completions",
        json={"model": "fake-ok", "messages": [{"role": "user", "content": content}]},
        headers={"Authorization": f"Bearer {key or gw.plaintext}"},
    )


def test_the_tenant_rpm_limit_refuses_the_next_request_with_retry_after(gw):
    add_model(gw.providers["fakeai"], "fake-ok")
    gw.policy(rate_limits={"rpm": 3})
    assert [post(gw).status_code for _ in range(3)] == [200, 200, 200]
    refused = post(gw)
    assert refused.status_code == 429
    body = refused.json()["error"]
    assert body["code"] == "rate_limit_exceeded" and "tenant rpm" in body["message"]
    assert int(refused.headers["retry-after"]) >= 1
    assert len(gw.fakes["openai"].calls) == 3  # the refused request never went upstream


def test_a_key_rpm_limit_applies_to_each_key_separately(gw):
    add_model(gw.providers["fakeai"], "fake-ok")
    gw.policy(rate_limits={"key_rpm": 1})
    _, other = api_key_create(tenant=gw.tenant, name="other")
    assert post(gw).status_code == 200
    assert post(gw).status_code == 429
    assert post(gw, other).status_code == 200


def test_a_tpm_limit_counts_prompt_tokens(gw):
    add_model(gw.providers["fakeai"], "fake-ok")
    gw.policy(rate_limits={"tpm": 60})
    long_prompt = " ".join(["word"] * 200)  # far more than 60 tokens
    assert post(gw, content="short").status_code == 200
    assert post(gw, content=long_prompt).status_code == 429


def test_the_sdk_sees_a_rate_limit_error(gw):
    add_model(gw.providers["fakeai"], "fake-ok")
    gw.policy(rate_limits={"rpm": 1})
    gw.client().chat.completions.create(model="fake-ok", messages=HI)
    with pytest.raises(openai.RateLimitError):
        gw.client().chat.completions.create(model="fake-ok", messages=HI)
