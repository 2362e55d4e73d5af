"""A member (bob) may read the tenant but not manage its keys."""

from __future__ import annotations

import pytest

from tenants.models import ApiKey

pytestmark = pytest.mark.django_db


def test_a_member_sees_the_tenant_with_the_member_role(bob):
    resp = bob.client.get("/api/v1/tenant")
    assert resp.status_code == 200
    assert resp.json()["slug"] == "acme"
    assert resp.json()["role"] == "member"


def test_a_member_cannot_list_keys(bob):
    resp = bob.client.get("/api/v1/keys")
    assert resp.status_code == 403
    assert resp.json()["detail"] == "This action needs the admin role or higher."


def test_a_member_cannot_create_a_key(bob):
    resp = bob.client.post("/api/v1/keys", {"name": "mine"}, format="json")
    assert resp.status_code == 403
    assert not ApiKey.objects.exists()


def test_a_member_cannot_read_a_key(bob, alice_key):
    key, _ = alice_key
    assert bob.client.get(f"/api/v1/keys/{key.pk}").status_code == 403


@pytest.mark.parametrize("method", ["post_revoke", "delete"])
def test_a_member_cannot_revoke_a_key(bob, alice_key, method):
    key, _ = alice_key
    if method == "delete":
        resp = bob.client.delete(f"/api/v1/keys/{key.pk}")
    else:
        resp = bob.client.post(f"/api/v1/keys/{key.pk}/revoke")
    assert resp.status_code == 403
    key.refresh_from_db()
    assert key.revoked_at is None


def test_an_owner_may_manage_keys(acme, django_user_model):
    from rest_framework.test import APIClient

    from tenants.services import membership_add

    owner = django_user_model.objects.create_user("olive", password="pw")
    membership_add(tenant=acme, user=owner, role="owner")
    client = APIClient()
    client.force_login(owner)
    assert client.post("/api/v1/keys", {"name": "o"}, format="json").status_code == 201
