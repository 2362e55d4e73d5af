"""Unknown URLs: JSON under /api/, plain text elsewhere, never Django's debug page."""

from __future__ import annotations

from django.test import Client


def test_an_unknown_api_url_is_a_json_404():
    resp = Client().get("/api/v1/no-such-thing")
    assert resp.status_code == 404
    assert resp["Content-Type"] == "application/json"
    assert resp.json() == {"detail": "Not found."}


def test_an_unknown_page_is_a_plain_text_404():
    resp = Client().get("/no-such-page")
    assert resp.status_code == 404
    assert resp["Content-Type"].startswith("text/plain")
    assert b"<html" not in resp.content.lower()
