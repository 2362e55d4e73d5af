"""An operator manages API keys in the Django admin: plaintext once, hash never."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from tenants.auth import hash_secret
from tenants.models import ApiKey
from tenants.services import api_key_create
from tests.conftest import key_client

pytestmark = pytest.mark.django_db

ADD_URL = "/admin/tenants/apikey/add/"
CHANGELIST_URL = "/admin/tenants/apikey/"
PLAINTEXT = re.compile(r"aura-[0-9a-f]{12}\.[A-Za-z0-9_-]+")


@pytest.fixture
def operator() -> Client:
    user = get_user_model().objects.create_superuser("root", "root@example.test", "pw-root")
    client = Client()
    client.force_login(user)
    return client


def _add(operator: Client, **fields: object):
    data: dict[str, object] = {"tenant": "", "name": "", "priority": "normal"}
    data.update({"expires_at_0": "", "expires_at_1": "", **fields})
    return operator.post(ADD_URL, data, follow=True)


def test_an_operator_adds_a_key_and_sees_the_plaintext_once(operator, acme):
    resp = _add(operator, tenant=acme.pk, name="from-admin", can_manage="on")
    assert resp.status_code == 200
    page = resp.content.decode()
    found = PLAINTEXT.findall(page)
    assert len(found) == 1
    plaintext = found[0]

    key = ApiKey.objects.get(name="from-admin")
    prefix, secret = plaintext.removeprefix("aura-").split(".", 1)
    assert key.tenant == acme
    assert key.prefix == prefix
    assert key.secret_hash == hash_secret(secret)
    assert secret not in str(ApiKey.objects.filter(pk=key.pk).values().get())
    assert key.created_by.username == "root"
    assert key_client(plaintext).get("/api/v1/tenant").json()["slug"] == "acme"

    again = operator.get(CHANGELIST_URL).content.decode()
    assert secret not in again


def test_an_operator_may_still_rename_an_already_expired_key(operator, alice_key):
    key, _ = alice_key
    ApiKey.objects.filter(pk=key.pk).update(expires_at="2000-01-01T00:00:00Z")
    operator.post(
        f"/admin/tenants/apikey/{key.pk}/change/",
        {
            "name": "old-ci",
            "priority": "normal",
            "expires_at_0": "2000-01-01",
            "expires_at_1": "00:00:00",
        },
    )
    key.refresh_from_db()
    assert key.name == "old-ci"


def test_the_change_form_never_shows_the_hash_or_the_secret(operator, alice_key):
    key, plaintext = alice_key
    page = operator.get(f"/admin/tenants/apikey/{key.pk}/change/").content.decode()
    assert key.masked in page
    assert key.secret_hash not in page
    assert plaintext.split(".", 1)[1] not in page
    assert 'name="secret_hash"' not in page
    assert 'name="prefix"' not in page


def test_the_add_form_refuses_a_blank_name_and_creates_nothing(operator, acme):
    resp = _add(operator, tenant=acme.pk, name="")
    assert "This field is required" in resp.content.decode()
    assert not ApiKey.objects.exists()


def test_the_add_form_refuses_an_expiry_in_the_past(operator, acme):
    resp = _add(
        operator, tenant=acme.pk, name="stale", expires_at_0="2000-01-01", expires_at_1="00:00:00"
    )
    page = resp.content.decode()
    assert "must be in the future" in page
    assert not PLAINTEXT.findall(page)
    assert not ApiKey.objects.exists()


def test_the_revoke_action_revokes_the_selected_keys_and_they_stop_working(operator, alice):
    key, plaintext = api_key_create(tenant=alice.tenant, name="ops", can_manage=True)
    other, _ = api_key_create(tenant=alice.tenant, name="untouched")
    client = key_client(plaintext)
    assert client.get("/api/v1/tenant").status_code == 200

    resp = operator.post(
        CHANGELIST_URL, {"action": "revoke_keys", "_selected_action": [key.pk]}, follow=True
    )

    assert "Revoked 1 key(s)." in resp.content.decode()
    key.refresh_from_db()
    other.refresh_from_db()
    assert key.revoked_at is not None
    assert other.revoked_at is None
    assert client.get("/api/v1/tenant").status_code == 401


def test_editing_a_key_in_the_admin_cannot_move_it_to_another_tenant(operator, alice_key, globex):
    key, _ = alice_key
    resp = operator.post(
        f"/admin/tenants/apikey/{key.pk}/change/",
        {
            "tenant": globex.pk,
            "name": "renamed",
            "priority": "normal",
            "expires_at_0": "",
            "expires_at_1": "",
        },
        follow=True,
    )
    assert resp.status_code == 200
    key.refresh_from_db()
    assert key.name == "renamed"
    assert key.tenant.slug == "acme"


def test_the_changelist_shows_masked_keys_only(operator, alice_key):
    key, plaintext = alice_key
    page = operator.get(CHANGELIST_URL).content.decode()
    assert key.masked in page
    assert key.secret_hash not in page
    assert plaintext.split(".", 1)[1] not in page


def test_deleting_a_key_in_the_admin_shuts_it_out_at_once(operator, alice):
    key, plaintext = api_key_create(tenant=alice.tenant, name="doomed", can_manage=True)
    client = key_client(plaintext)
    assert client.get("/api/v1/tenant").status_code == 200

    operator.post(f"/admin/tenants/apikey/{key.pk}/delete/", {"post": "yes"})

    assert not ApiKey.objects.filter(pk=key.pk).exists()
    assert client.get("/api/v1/tenant").status_code == 401


def test_bulk_deleting_keys_in_the_admin_shuts_them_out_at_once(operator, alice):
    key, plaintext = api_key_create(tenant=alice.tenant, name="doomed", can_manage=True)
    client = key_client(plaintext)
    assert client.get("/api/v1/tenant").status_code == 200

    operator.post(
        CHANGELIST_URL,
        {"action": "delete_selected", "_selected_action": [key.pk], "post": "yes"},
    )

    assert not ApiKey.objects.filter(pk=key.pk).exists()
    assert client.get("/api/v1/tenant").status_code == 401


def test_an_operator_sets_a_keys_priority_and_the_gateway_sees_it_at_once(operator, alice_key):
    from tenants.auth import resolver

    key, plaintext = alice_key
    assert resolver.resolve(plaintext).priority == "normal"  # cached in this process
    operator.post(
        f"/admin/tenants/apikey/{key.pk}/change/",
        {"name": key.name, "priority": "low", "expires_at_0": "", "expires_at_1": ""},
    )
    key.refresh_from_db()
    assert key.priority == "low"
    assert resolver.resolve(plaintext).priority == "low"
