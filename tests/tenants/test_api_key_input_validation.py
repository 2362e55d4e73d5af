"""Bad input to POST /api/v1/keys gets a 400 naming the field, and no key is written."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from tenants.models import ApiKey

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({}, "name"),
        ({"name": ""}, "name"),
        ({"name": "   "}, "name"),
        ({"name": None}, "name"),
        ({"name": ["a"]}, "name"),
        ({"name": "x" * 101}, "name"),
        ({"name": "ok", "can_manage": "perhaps"}, "can_manage"),
        ({"name": "ok", "expires_at": "next tuesday"}, "expires_at"),
        ({"name": "ok", "expires_at": 12}, "expires_at"),
    ],
)
def test_bad_input_gets_400_naming_the_field(alice, payload, field):
    resp = alice.client.post("/api/v1/keys", payload, format="json")
    assert resp.status_code == 400, resp.content
    assert field in resp.json()
    assert not ApiKey.objects.exists()


def test_an_expiry_in_the_past_gets_400_naming_expires_at(alice):
    past = (timezone.now() - timedelta(minutes=1)).isoformat()
    resp = alice.client.post("/api/v1/keys", {"name": "old", "expires_at": past}, format="json")
    assert resp.status_code == 400
    body = resp.json()
    assert body["field"] == "expires_at"
    assert "future" in body["detail"]
    assert not ApiKey.objects.exists()


def test_a_malformed_json_body_gets_400(alice):
    resp = alice.client.post("/api/v1/keys", "{not json", content_type="application/json")
    assert resp.status_code == 400
    assert "JSON" in resp.json()["detail"]
    assert not ApiKey.objects.exists()
