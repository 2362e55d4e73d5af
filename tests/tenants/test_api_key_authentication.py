"""What an API key presented on the API gets back when it is not a good key."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from tenants.models import ApiKey, Tenant
from tests.conftest import key_client

pytestmark = pytest.mark.django_db


def _refused(plaintext: str) -> dict:
    resp = key_client(plaintext).get("/api/v1/tenant")
    assert resp.status_code == 401, resp.content
    assert resp["WWW-Authenticate"] == 'Bearer realm="aura"'
    return resp.json()


def test_a_valid_prefix_with_a_wrong_secret_is_refused(alice_manage_key):
    key, plaintext = alice_manage_key
    body = _refused(f"aura-{key.prefix}.not-the-secret")
    assert body["detail"] == "Incorrect API key provided."
    # ...and the right secret still works afterwards (the refusal poisoned nothing)
    assert key_client(plaintext).get("/api/v1/tenant").status_code == 200


def test_the_wrong_secret_is_refused_even_when_the_key_is_cached(alice_manage_key):
    key, plaintext = alice_manage_key
    assert key_client(plaintext).get("/api/v1/tenant").status_code == 200
    _refused(f"aura-{key.prefix}.{plaintext.split('.', 1)[1][:-1]}x")


@pytest.mark.parametrize(
    "raw",
    [
        "not-a-key",
        "aura-",
        "aura-abc",
        "aura-.secret",
        "aura-abc.",
        "sk-abc.def",
        "aura-" + "a" * 17 + ".secret",
        "aura-abc." + "s" * 129,
    ],
)
def test_a_malformed_key_is_refused(alice_manage_key, raw):
    assert _refused(raw)["detail"] == "Incorrect API key provided."


def test_an_unknown_prefix_is_refused(db):
    assert _refused("aura-000000000000.whatever")["detail"] == "Incorrect API key provided."


def test_a_non_bearer_authorization_header_is_not_an_api_key(alice_manage_key):
    _, plaintext = alice_manage_key
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Basic {plaintext}")
    resp = client.get("/api/v1/tenant")
    assert resp.status_code == 401
    assert resp.json()["detail"] == "Authentication credentials were not provided."


def test_an_expired_key_is_refused_with_a_message_saying_expired(alice_manage_key):
    key, plaintext = alice_manage_key
    ApiKey.objects.filter(pk=key.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    body = _refused(plaintext)
    assert "expired" in body["detail"]


def test_a_key_stops_working_when_it_expires_even_while_cached(alice, time_machine):
    from tenants.services import api_key_create

    time_machine.move_to(timezone.now(), tick=False)
    _, plaintext = api_key_create(
        tenant=alice.tenant,
        name="short",
        can_manage=True,
        expires_at=timezone.now() + timedelta(minutes=5),
    )
    assert key_client(plaintext).get("/api/v1/tenant").status_code == 200
    time_machine.shift(timedelta(minutes=5, seconds=1))
    assert "expired" in _refused(plaintext)["detail"]


def test_a_key_of_a_suspended_tenant_is_refused(alice_manage_key):
    key, plaintext = alice_manage_key
    Tenant.objects.filter(pk=key.tenant_id).update(status=Tenant.Status.SUSPENDED)
    assert "suspended" in _refused(plaintext)["detail"]


def test_a_revoked_key_is_refused_with_a_message_saying_revoked(alice_manage_key):
    key, plaintext = alice_manage_key
    key.revoke()
    assert "revoked" in _refused(plaintext)["detail"]


def test_a_bad_key_is_refused_even_alongside_a_logged_in_session(alice, alice_manage_key):
    key, _ = alice_manage_key
    alice.client.credentials(HTTP_AUTHORIZATION=f"Bearer aura-{key.prefix}.wrong")
    assert alice.client.get("/api/v1/tenant").status_code == 401
