"""Auth through the gateway: failed attempts throttled, and revocation and suspension
reaching another gateway process (a real uvicorn process on the same Postgres and Redis)
within about a second."""

from __future__ import annotations

import time

import httpx

from tenants.models import Tenant
from tenants.services import api_key_revoke, tenant_set_status
from tests.gateway.conftest import add_model
from tests.gateway.processes import gateway_process

BAD = "aura-{:012x}.nosuchsecret"
HI = [{"role": "user", "content": "hi"}]


def _status_until(url: str, key: str, want: int, seconds: float = 5.0) -> float:
    """Seconds until the other process answers ``want`` (polling every 50 ms)."""
    started = time.monotonic()
    with httpx.Client(timeout=5) as client:
        while True:
            resp = client.post(
                f"{url}/v1/chat/completions",
                json={"model": "fake-ok", "messages": HI},
                headers={"authorization": f"Bearer {key}"},
            )
            elapsed = time.monotonic() - started
            if resp.status_code == want:
                return elapsed
            assert elapsed < seconds, f"still {resp.status_code} after {elapsed:.1f} s"
            time.sleep(0.05)


def test_a_revoked_key_stops_working_in_another_process_within_a_second(gw) -> None:
    add_model(gw.providers["fakeai"], "fake-ok")
    with gateway_process() as (_, url, _):
        assert _status_until(url, gw.plaintext, 200) < 5  # cached there now
        api_key_revoke(key=gw.key)
        assert _status_until(url, gw.plaintext, 401) < 1.5


def test_a_suspended_tenant_is_refused_in_another_process_within_a_second(gw) -> None:
    add_model(gw.providers["fakeai"], "fake-ok")
    with gateway_process() as (_, url, _):
        assert _status_until(url, gw.plaintext, 200) < 5
        tenant_set_status(tenant=gw.tenant, status=Tenant.Status.SUSPENDED)
        assert _status_until(url, gw.plaintext, 401) < 1.5
        tenant_set_status(tenant=gw.tenant, status=Tenant.Status.ACTIVE)
        assert _status_until(url, gw.plaintext, 200) < 1.5


def test_the_gateway_answers_429_with_retry_after_to_a_flooding_address(gw, settings) -> None:
    import httpx

    settings.AUTH_FAILURES_PER_MINUTE = 5
    with httpx.Client(timeout=10) as client:
        legit = {"authorization": f"Bearer {gw.plaintext}"}
        assert client.get(f"{gw.url}/v1/models", headers=legit).status_code == 200
        statuses = [
            client.get(
                f"{gw.url}/v1/models", headers={"authorization": f"Bearer {BAD.format(i)}"}
            ).status_code
            for i in range(8)
        ]
        assert statuses == [401] * 6 + [429] * 2
        refused = client.get(
            f"{gw.url}/v1/models", headers={"authorization": f"Bearer {BAD.format(99)}"}
        )
        assert refused.json()["error"]["code"] == "too_many_failed_attempts"
        assert 0 < int(refused.headers["retry-after"]) <= 60
        # The legitimate client behind the same address keeps working.
        assert client.get(f"{gw.url}/v1/models", headers=legit).status_code == 200
