"""charlie (admin of globex) can never reach acme's keys: every attempt is a 404."""

from __future__ import annotations

import pytest

from tenants.services import api_key_create
from tests.conftest import key_client

pytestmark = pytest.mark.django_db


def test_charlie_gets_404_reading_alices_key(charlie, alice_key):
    key, _ = alice_key
    resp = charlie.client.get(f"/api/v1/keys/{key.pk}")
    assert resp.status_code == 404
    assert "alice-app" not in resp.content.decode()


def test_charlie_gets_404_revoking_alices_key_and_it_keeps_working(charlie, alice_key):
    key, _ = alice_key
    resp = charlie.client.post(f"/api/v1/keys/{key.pk}/revoke")
    assert resp.status_code == 404
    key.refresh_from_db()
    assert key.revoked_at is None


def test_charlie_gets_404_deleting_alices_key_and_it_keeps_working(charlie, alice_key):
    key, _ = alice_key
    resp = charlie.client.delete(f"/api/v1/keys/{key.pk}")
    assert resp.status_code == 404
    key.refresh_from_db()
    assert key.revoked_at is None


def test_charlies_key_list_never_shows_acme_keys(charlie, alice_key):
    api_key_create(tenant=charlie.tenant, name="globex-app")
    resp = charlie.client.get("/api/v1/keys")
    assert resp.status_code == 200
    assert resp.json()["count"] == 1
    assert [k["name"] for k in resp.json()["results"]] == ["globex-app"]


def test_charlies_tenant_view_shows_only_globex(charlie, alice):
    body = charlie.client.get("/api/v1/tenant").json()
    assert body["slug"] == "globex"
    assert "acme" not in str(body)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/api/v1/tenant"),
        ("get", "/api/v1/keys"),
        ("post", "/api/v1/keys"),
        ("get", "/api/v1/keys/{id}"),
        ("delete", "/api/v1/keys/{id}"),
        ("post", "/api/v1/keys/{id}/revoke"),
    ],
)
def test_charlie_naming_acme_in_the_tenant_header_gets_404(charlie, alice_key, method, path):
    key, _ = alice_key
    url = path.format(id=key.pk)
    resp = getattr(charlie.client, method)(
        url, {"name": "x"} if method == "post" else None, format="json", HTTP_X_AURA_TENANT="acme"
    )
    assert resp.status_code == 404
    assert resp.json() == {"detail": "Not found."}
    key.refresh_from_db()
    assert key.revoked_at is None
    assert key.tenant.slug == "acme"
    from tenants.models import ApiKey

    assert ApiKey.objects.filter(tenant=charlie.tenant).count() == 0


def test_charlie_naming_acme_in_the_query_string_gets_404(charlie, alice):
    assert charlie.client.get("/api/v1/keys?tenant=acme").status_code == 404


def test_a_globex_manage_key_gets_404_for_acme_keys(charlie, alice_key):
    key, _ = alice_key
    _, globex_plaintext = api_key_create(tenant=charlie.tenant, name="g", can_manage=True)
    client = key_client(globex_plaintext)
    assert client.get(f"/api/v1/keys/{key.pk}").status_code == 404
    assert client.post(f"/api/v1/keys/{key.pk}/revoke").status_code == 404
    assert client.delete(f"/api/v1/keys/{key.pk}").status_code == 404
    key.refresh_from_db()
    assert key.revoked_at is None


def test_a_globex_manage_key_ignores_a_header_naming_acme(charlie, alice_key):
    _, globex_plaintext = api_key_create(tenant=charlie.tenant, name="g", can_manage=True)
    resp = key_client(globex_plaintext).get("/api/v1/keys", HTTP_X_AURA_TENANT="acme")
    assert resp.status_code == 200
    assert [k["name"] for k in resp.json()["results"]] == ["g"]
