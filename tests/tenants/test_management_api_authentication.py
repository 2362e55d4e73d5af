"""Who may call the management API at all: session users, manage-keys, nobody else."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from tenants.models import ApiKey
from tenants.services import api_key_create
from tests.conftest import key_client

pytestmark = pytest.mark.django_db

ENDPOINTS = ["/api/v1/tenant", "/api/v1/keys"]


@pytest.mark.parametrize("path", ENDPOINTS)
def test_an_anonymous_caller_gets_401_in_drf_shape(db, path):
    resp = APIClient().get(path)
    assert resp.status_code == 401
    assert resp.json() == {"detail": "Authentication credentials were not provided."}
    assert resp["WWW-Authenticate"].startswith("Bearer")


def test_an_anonymous_create_gets_401_and_creates_nothing(acme):
    resp = APIClient().post("/api/v1/keys", {"name": "sneaky"}, format="json")
    assert resp.status_code == 401
    assert not ApiKey.objects.exists()


def test_a_logged_in_member_sees_their_tenant_and_role(alice):
    resp = alice.client.get("/api/v1/tenant")
    assert resp.status_code == 200
    body = resp.json()
    assert body["slug"] == "acme"
    assert body["role"] == "admin"
    assert body["via_api_key"] is None
    assert body["contact_emails"] == ["ops@acme.test"]


def test_a_manage_key_acts_as_tenant_admin(alice_manage_key):
    key, plaintext = alice_manage_key
    resp = key_client(plaintext).get("/api/v1/tenant")
    assert resp.status_code == 200
    assert resp.json()["slug"] == "acme"
    assert resp.json()["role"] == "admin"
    assert resp.json()["via_api_key"] == key.prefix


def test_the_key_may_also_come_in_the_x_api_key_header(alice_manage_key):
    _, plaintext = alice_manage_key
    client = APIClient()
    client.credentials(HTTP_X_API_KEY=plaintext)
    assert client.get("/api/v1/tenant").json()["slug"] == "acme"


def test_a_key_creates_keys_without_recording_a_user_as_creator(alice_manage_key):
    _, plaintext = alice_manage_key
    resp = key_client(plaintext).post("/api/v1/keys", {"name": "from-ci"}, format="json")
    assert resp.status_code == 201
    assert resp.json()["created_by"] is None


@pytest.mark.parametrize("path", ENDPOINTS)
def test_a_gateway_only_key_gets_403_explaining_it_may_only_call_the_gateway(alice_key, path):
    _, plaintext = alice_key
    resp = key_client(plaintext).get(path)
    assert resp.status_code == 403
    detail = resp.json()["detail"]
    assert "/v1" in detail
    assert "can_manage" in detail


def test_a_gateway_only_key_cannot_mint_a_manage_key(alice_key):
    _, plaintext = alice_key
    resp = key_client(plaintext).post(
        "/api/v1/keys", {"name": "escalate", "can_manage": True}, format="json"
    )
    assert resp.status_code == 403
    assert not ApiKey.objects.filter(name="escalate").exists()


def test_a_user_without_any_tenant_gets_403_saying_so(db, django_user_model):
    user = django_user_model.objects.create_user("drifter", password="pw")
    client = APIClient()
    client.force_login(user)
    resp = client.get("/api/v1/tenant")
    assert resp.status_code == 403
    assert "not a member of any tenant" in resp.json()["detail"]


def test_a_user_in_two_tenants_must_name_one(alice, globex):
    from tenants.services import membership_add

    membership_add(tenant=globex, user=alice.user, role="viewer")
    ambiguous = alice.client.get("/api/v1/tenant")
    assert ambiguous.status_code == 400
    assert "X-Aura-Tenant" in ambiguous.json()

    chosen = alice.client.get("/api/v1/tenant", HTTP_X_AURA_TENANT="globex")
    assert chosen.status_code == 200
    assert chosen.json()["slug"] == "globex"
    assert chosen.json()["role"] == "viewer"


def test_a_member_of_a_suspended_tenant_gets_403(alice):
    alice.tenant.status = "suspended"
    alice.tenant.save()
    resp = alice.client.get("/api/v1/tenant")
    assert resp.status_code == 403
    assert "suspended" in resp.json()["detail"]


def test_an_operator_acts_inside_a_named_tenant(acme, admin_client):
    api_key_create(tenant=acme, name="acme-key")
    resp = admin_client.get("/api/v1/keys", HTTP_X_AURA_TENANT="acme")
    assert resp.status_code == 200
    assert [k["name"] for k in resp.json()["results"]] == ["acme-key"]


def test_an_operator_naming_an_unknown_tenant_gets_404(db, admin_client):
    resp = admin_client.get("/api/v1/keys", HTTP_X_AURA_TENANT="nope")
    assert resp.status_code == 404
