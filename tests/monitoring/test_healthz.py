"""/healthz: the process is up. No auth, no database."""

from __future__ import annotations

from django.test import Client


def test_healthz_answers_200_ok_in_json_without_touching_the_database():
    # No db fixture: any query here would fail the test.
    resp = Client().get("/healthz")
    assert resp.status_code == 200
    assert resp["Content-Type"] == "application/json"
    assert resp.json() == {"status": "ok"}


def test_healthz_needs_no_credentials_even_with_a_bad_key():
    resp = Client().get("/healthz", HTTP_AUTHORIZATION="Bearer aura-nope.nope")
    assert resp.status_code == 200
