"""The benchmark's tenant (``manage.py bench_setup``) is served end to end: a bench that
measures 503s measures nothing."""

from __future__ import annotations

from urllib.parse import urlsplit

import httpx
from django.core.management import call_command

from tests.gateway.conftest import FakeVllm

KEY = "aura-benchtest01." + "b" * 32


def test_bench_setup_routes_fake_gpt_to_a_keyless_upstream(gw, vllm_server: FakeVllm) -> None:
    vllm = vllm_server
    vllm.reset()
    port = urlsplit(vllm.base_url).port
    call_command("bench_setup", "--key", KEY, "--port", str(port), "--budgets", "on")
    resp = httpx.post(
        f"{gw.url}/v1/chat/completions",
        json={"model": "fake-gpt", "messages": [{"role": "user", "content": "hi"}]},
        headers={"authorization": f"Bearer {KEY}"},
        timeout=10,
    )
    assert resp.status_code == 200, resp.text
    assert resp.headers["x-aura-provider"] == "benchfake"
    assert "authorization" not in {k.lower() for k in vllm.last_call.headers}


def test_the_bench_tenant_falls_back_from_a_failing_named_model(gw, vllm_server: FakeVllm) -> None:
    from routing.models import RoutingPolicy

    port = urlsplit(vllm_server.base_url).port
    call_command("bench_setup", "--key", KEY, "--port", str(port))
    policy = RoutingPolicy.objects.get(tenant__slug="bench")
    assert policy.model_fallback == "any_model"
