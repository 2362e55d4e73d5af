from __future__ import annotations

import pytest

from tests.conftest import key_client

pytestmark = pytest.mark.django_db


def test_an_admin_creates_a_key_and_sees_the_plaintext_only_once(alice):
    resp = alice.client.post("/api/v1/keys", {"name": "ci"}, format="json")
    assert resp.status_code == 201, resp.content
    plaintext = resp.json()["key"]
    assert plaintext.startswith("aura-")
    listed = alice.client.get("/api/v1/keys").json()
    assert listed["count"] == 1
    assert "key" not in listed["results"][0]
    assert plaintext not in str(listed)
    detail = alice.client.get(f"/api/v1/keys/{resp.json()['id']}").json()
    assert plaintext not in str(detail)


def test_the_created_key_authenticates_the_management_api_when_it_can_manage(alice):
    created = alice.client.post("/api/v1/keys", {"name": "ops", "can_manage": True}, format="json").json()
    resp = key_client(created["key"]).get("/api/v1/keys")
    assert resp.status_code == 200
    assert [k["name"] for k in resp.json()["results"]] == ["ops"]
