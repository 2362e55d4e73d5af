"""A key's priority (its place in an overloaded endpoint's queue) through /api/v1/keys."""

from __future__ import annotations

import pytest

from tenants.auth import resolver
from tenants.models import ApiKey

pytestmark = pytest.mark.django_db


def test_a_key_is_created_normal_unless_told_and_reports_its_priority(alice):
    plain = alice.client.post("/api/v1/keys", {"name": "app"}, format="json").json()
    batch = alice.client.post(
        "/api/v1/keys", {"name": "batch", "priority": "low"}, format="json"
    ).json()
    assert plain["priority"] == "normal"
    assert batch["priority"] == "low"
    assert ApiKey.objects.get(pk=batch["id"]).priority == "low"
    assert alice.client.get(f"/api/v1/keys/{batch['id']}").json()["priority"] == "low"


def test_an_admin_changes_a_keys_priority_and_the_gateway_sees_it_at_once(alice, alice_key):
    key, plaintext = alice_key
    assert resolver.resolve(plaintext).priority == "normal"  # cached in this process

    resp = alice.client.patch(f"/api/v1/keys/{key.pk}", {"priority": "high"}, format="json")

    assert resp.status_code == 200, resp.json()
    assert resp.json()["priority"] == "high"
    key.refresh_from_db()
    assert key.priority == "high"
    assert resolver.resolve(plaintext).priority == "high"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"priority": "urgent"}, "priority"),
        ({}, "priority"),
        ({"priority": "high", "name": "renamed"}, "name"),
        ({"priority": "high", "can_manage": True}, "can_manage"),
    ],
)
def test_a_bad_priority_change_is_a_400_naming_the_field_and_changes_nothing(
    alice, alice_key, body, field
):
    key, _ = alice_key
    resp = alice.client.patch(f"/api/v1/keys/{key.pk}", body, format="json")
    assert resp.status_code == 400
    assert field in resp.json()
    key.refresh_from_db()
    assert (key.priority, key.name, key.can_manage) == ("normal", "alice-app", False)


def test_a_bad_priority_at_creation_is_a_400_naming_it(alice):
    resp = alice.client.post("/api/v1/keys", {"name": "x", "priority": "max"}, format="json")
    assert resp.status_code == 400
    assert "priority" in resp.json()
    assert not ApiKey.objects.exists()


def test_a_member_cannot_change_a_keys_priority(bob, alice_key):
    key, _ = alice_key
    resp = bob.client.patch(f"/api/v1/keys/{key.pk}", {"priority": "high"}, format="json")
    assert resp.status_code == 403
    key.refresh_from_db()
    assert key.priority == "normal"


def test_charlie_gets_404_on_acmes_key_and_changes_nothing(charlie, alice_key):
    key, _ = alice_key
    resp = charlie.client.patch(f"/api/v1/keys/{key.pk}", {"priority": "high"}, format="json")
    assert resp.status_code == 404
    key.refresh_from_db()
    assert key.priority == "normal"
