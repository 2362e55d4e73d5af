"""`manage.py bootstrap` (docker compose's one-shot): the first operator from
DJANGO_SUPERUSER_* and the model catalog on a fresh database, and nothing on later runs."""

from __future__ import annotations

import io
import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command

from routing.catalog.services import CATALOG_PATH
from routing.models import CatalogModel, ProviderEndpoint

PASSWORD = "a-long-operator-passphrase-8c1f"


def run() -> str:
    out = io.StringIO()
    call_command("bootstrap", stdout=out)
    return out.getvalue()


@pytest.fixture(autouse=True)
def catalog_with_dead_ollama(
    db: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[None]:
    """The shipped catalog with Ollama where nothing listens, whatever runs on this machine."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        data = json.loads(CATALOG_PATH.read_text())
        for provider in data["providers"]:
            if provider["slug"] == "ollama":
                provider["default_base_url"] = f"http://127.0.0.1:{sock.getsockname()[1]}"
        path = tmp_path / "catalog.json"
        path.write_text(json.dumps(data))
        monkeypatch.setattr("routing.catalog.services.CATALOG_PATH", path)
        yield


@pytest.fixture
def operator_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DJANGO_SUPERUSER_USERNAME", "ops")
    monkeypatch.setenv("DJANGO_SUPERUSER_EMAIL", "ops@example.test")
    monkeypatch.setenv("DJANGO_SUPERUSER_PASSWORD", PASSWORD)


def test_a_fresh_database_gets_the_operator_and_the_catalog(operator_env: None) -> None:
    out = run()

    operator = get_user_model().objects.get()
    assert (operator.username, operator.email, operator.is_superuser) == (
        "ops",
        "ops@example.test",
        True,
    )
    assert operator.check_password(PASSWORD)
    assert PASSWORD not in out
    assert "Created operator ops" in out
    assert CatalogModel.objects.filter(provider__slug="openai").exists()
    assert "Loaded the model catalog" in out
    assert not ProviderEndpoint.objects.get(provider__slug="ollama").enabled
    assert "manage.py enable_endpoint ollama default" in out


def test_a_second_run_changes_nothing(operator_env: None, monkeypatch: pytest.MonkeyPatch) -> None:
    run()
    CatalogModel.objects.filter(provider__slug="openai").update(input_price_per_mtok=99)
    monkeypatch.setenv("DJANGO_SUPERUSER_PASSWORD", "another-long-passphrase-11aa")

    out = run()

    assert get_user_model().objects.count() == 1
    assert get_user_model().objects.get().check_password(PASSWORD)
    assert "Operator present (ops)" in out
    assert "Model catalog present" in out
    # The operator's price edits are theirs: bootstrap does not reload the catalog.
    assert set(
        CatalogModel.objects.filter(provider__slug="openai").values_list(
            "input_price_per_mtok", flat=True
        )
    ) == {99}


def test_without_an_operator_and_without_the_variables_it_fails_naming_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("DJANGO_SUPERUSER_USERNAME", raising=False)
    monkeypatch.delenv("DJANGO_SUPERUSER_PASSWORD", raising=False)

    with pytest.raises(
        CommandError, match="set DJANGO_SUPERUSER_USERNAME and DJANGO_SUPERUSER_PASSWORD"
    ):
        run()
    assert not get_user_model().objects.exists()


def test_an_existing_superuser_needs_no_variables(
    monkeypatch: pytest.MonkeyPatch, django_user_model: Any
) -> None:
    monkeypatch.delenv("DJANGO_SUPERUSER_USERNAME", raising=False)
    monkeypatch.delenv("DJANGO_SUPERUSER_PASSWORD", raising=False)
    django_user_model.objects.create_superuser("root", "root@example.test", PASSWORD)

    assert "Operator present (root)" in run()


@pytest.mark.parametrize("password", ["password", "12345678901234", "ops"])
def test_a_weak_operator_password_is_refused(
    operator_env: None, monkeypatch: pytest.MonkeyPatch, password: str
) -> None:
    monkeypatch.setenv("DJANGO_SUPERUSER_PASSWORD", password)

    with pytest.raises(CommandError, match="DJANGO_SUPERUSER_PASSWORD is refused"):
        run()
    assert not get_user_model().objects.exists()
