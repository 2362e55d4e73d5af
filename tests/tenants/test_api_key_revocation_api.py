"""Revoking a key through the API (POST …/revoke and DELETE) shuts it out at once."""

from __future__ import annotations

import pytest

from tenants.models import ApiKey
from tests.conftest import key_client

pytestmark = pytest.mark.django_db


def test_revoking_a_key_makes_it_get_401_on_the_api(alice, alice_manage_key):
    key, plaintext = alice_manage_key
    client = key_client(plaintext)
    assert client.get("/api/v1/tenant").status_code == 200  # warm this process's cache

    resp = alice.client.post(f"/api/v1/keys/{key.pk}/revoke")

    assert resp.status_code == 200
    assert resp.json()["status"] == "revoked"
    assert resp.json()["revoked_at"] is not None
    after = client.get("/api/v1/tenant")
    assert after.status_code == 401
    assert "revoked" in after.json()["detail"]


def test_deleting_a_key_revokes_it_but_keeps_the_record(alice, alice_manage_key):
    key, plaintext = alice_manage_key
    client = key_client(plaintext)
    assert client.get("/api/v1/tenant").status_code == 200

    resp = alice.client.delete(f"/api/v1/keys/{key.pk}")

    assert resp.status_code == 204
    key.refresh_from_db()
    assert key.revoked_at is not None
    assert client.get("/api/v1/tenant").status_code == 401
    assert alice.client.get(f"/api/v1/keys/{key.pk}").json()["status"] == "revoked"


def test_revoking_twice_keeps_the_first_revocation_time(alice, alice_key):
    key, _ = alice_key
    first = alice.client.post(f"/api/v1/keys/{key.pk}/revoke").json()["revoked_at"]
    second = alice.client.post(f"/api/v1/keys/{key.pk}/revoke")
    assert second.status_code == 200
    assert second.json()["revoked_at"] == first
    assert ApiKey.objects.get(pk=key.pk).revoked_at is not None


def test_a_key_can_revoke_itself_and_is_refused_afterwards(alice_manage_key):
    key, plaintext = alice_manage_key
    client = key_client(plaintext)
    assert client.post(f"/api/v1/keys/{key.pk}/revoke").status_code == 200
    assert client.get("/api/v1/keys").status_code == 401
