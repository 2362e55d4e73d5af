"""Out of the box, `auto` routes only to endpoints that answer: the catalog's Ollama on a
machine where it does not run does not take requests from a healthy provider."""

from __future__ import annotations

import io
import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from django.core.management import call_command

from routing.catalog.services import CATALOG_PATH
from tests.gateway.conftest import add_model


@pytest.fixture
def catalog_with_dead_ollama(tmp_path: Path) -> Iterator[Path]:
    with socket.socket() as sock:  # bound, never listening: connections are refused
        sock.bind(("127.0.0.1", 0))
        data = json.loads(CATALOG_PATH.read_text())
        for provider in data["providers"]:
            if provider["slug"] == "ollama":
                provider["default_base_url"] = f"http://127.0.0.1:{sock.getsockname()[1]}"
        path = tmp_path / "catalog.json"
        path.write_text(json.dumps(data))
        yield path


def test_auto_is_served_by_the_healthy_provider_not_by_an_ollama_that_is_not_running(
    gw: Any, catalog_with_dead_ollama: Path
) -> None:
    add_model(gw.providers["fakeai"], "fake-ok")
    call_command("load_catalog", "--file", str(catalog_with_dead_ollama), stdout=io.StringIO())

    with httpx.Client(timeout=20) as client:
        resp = client.post(
            f"{gw.url}/v1/chat/completions",
            json={"model": "auto", "messages": [{"role": "user", "content": "hi"}]},
            headers={"authorization": f"Bearer {gw.plaintext}"},
        )

    assert resp.status_code == 200, resp.text
    assert resp.headers["x-aura-provider"] != "ollama"
    assert resp.headers["x-aura-fallbacks"] == "0"
