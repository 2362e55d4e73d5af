"""Creating, listing and reading API keys through /api/v1/keys."""

from __future__ import annotations

import pytest

from tenants.models import ApiKey
from tenants.services import api_key_create
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
    created = alice.client.post(
        "/api/v1/keys", {"name": "ops", "can_manage": True}, format="json"
    ).json()
    resp = key_client(created["key"]).get("/api/v1/keys")
    assert resp.status_code == 200
    assert [k["name"] for k in resp.json()["results"]] == ["ops"]


def test_the_create_response_describes_the_new_key_and_warns_to_store_it(alice):
    resp = alice.client.post("/api/v1/keys", {"name": "  ci  "}, format="json")
    body = resp.json()
    assert resp.status_code == 201
    assert body["name"] == "ci"
    assert body["status"] == "active"
    assert body["can_manage"] is False
    assert body["created_by"] == "alice"
    assert body["key"].startswith(f"aura-{body['prefix']}.")
    assert body["masked"] == f"aura-{body['prefix']}.••••"
    assert "only once" in body["warning"]


def test_the_stored_row_holds_a_hash_and_never_the_plaintext(alice):
    body = alice.client.post("/api/v1/keys", {"name": "ci"}, format="json").json()
    secret = body["key"].split(".", 1)[1]
    row = ApiKey.objects.get(pk=body["id"])
    assert len(row.secret_hash) == 64
    assert secret not in row.secret_hash
    assert secret not in str(ApiKey.objects.filter(pk=row.pk).values().get())


def test_a_key_created_with_an_expiry_reports_it(alice):
    resp = alice.client.post(
        "/api/v1/keys", {"name": "temp", "expires_at": "2999-01-01T00:00:00Z"}, format="json"
    )
    assert resp.status_code == 201, resp.content
    assert resp.json()["expires_at"].startswith("2999-01-01T00:00:00")


def test_the_list_is_paginated_newest_first(alice, settings):
    from rest_framework.settings import api_settings

    page_size = api_settings.PAGE_SIZE
    for i in range(page_size + 2):
        api_key_create(tenant=alice.tenant, name=f"k{i:03d}")

    first = alice.client.get("/api/v1/keys").json()
    assert first["count"] == page_size + 2
    assert len(first["results"]) == page_size
    assert first["results"][0]["name"] == f"k{page_size + 1:03d}"
    assert first["next"] is not None and "page=2" in first["next"]
    assert first["previous"] is None

    second = alice.client.get(first["next"]).json()
    assert [k["name"] for k in second["results"]] == ["k001", "k000"]
    assert second["next"] is None


def test_the_list_filters_by_status(alice):
    api_key_create(tenant=alice.tenant, name="keep")
    gone, _ = api_key_create(tenant=alice.tenant, name="gone")
    gone.revoke()

    active = alice.client.get("/api/v1/keys?status=active").json()
    revoked = alice.client.get("/api/v1/keys?status=revoked").json()
    everything = alice.client.get("/api/v1/keys").json()

    assert [k["name"] for k in active["results"]] == ["keep"]
    assert [k["name"] for k in revoked["results"]] == ["gone"]
    assert revoked["results"][0]["status"] == "revoked"
    assert everything["count"] == 2


def test_an_expired_key_is_listed_as_expired_not_active(alice):
    from datetime import timedelta

    from django.utils import timezone

    old, _ = api_key_create(tenant=alice.tenant, name="old")
    api_key_create(tenant=alice.tenant, name="fresh")
    ApiKey.objects.filter(pk=old.pk).update(expires_at=timezone.now() - timedelta(days=1))

    active = alice.client.get("/api/v1/keys?status=active").json()
    expired = alice.client.get("/api/v1/keys?status=expired").json()

    assert [k["name"] for k in active["results"]] == ["fresh"]
    assert [(k["name"], k["status"]) for k in expired["results"]] == [("old", "expired")]


def test_an_unknown_status_filter_gets_400_naming_it(alice):
    resp = alice.client.get("/api/v1/keys?status=bogus")
    assert resp.status_code == 400
    assert "status" in resp.json()
    assert "active" in str(resp.json()["status"])


def test_the_detail_shows_one_key_without_its_secret(alice, alice_key):
    key, plaintext = alice_key
    resp = alice.client.get(f"/api/v1/keys/{key.pk}")
    assert resp.status_code == 200
    body = resp.json()
    assert body["id"] == key.pk
    assert body["name"] == "alice-app"
    assert "key" not in body
    assert "secret_hash" not in body
    assert plaintext.split(".", 1)[1] not in resp.content.decode()
    assert key.secret_hash not in resp.content.decode()


def test_a_missing_key_id_gets_404(alice):
    resp = alice.client.get("/api/v1/keys/999999")
    assert resp.status_code == 404
    assert resp.json() == {"detail": "Not found."}
