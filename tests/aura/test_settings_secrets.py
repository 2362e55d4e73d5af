"""Placeholder or weak secrets are refused at start-up, naming the variable and how to
generate one. Each case starts Django in a fresh process with a crafted environment."""

from __future__ import annotations

import base64
import os
import secrets
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent.parent
GOOD = {
    "SECRET_KEY": secrets.token_urlsafe(32),
    "API_KEY_PEPPER": secrets.token_urlsafe(32),
    "FIELD_ENCRYPTION_KEYS": base64.urlsafe_b64encode(os.urandom(32)).decode(),
}


def start(code: str = "import django; django.setup()", **variables: str) -> Any:
    """`django.setup()` (then ``code``) in production mode: servers named (nothing listens
    there; settings do not connect), nothing embedded, only the given variables besides."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", "/tmp"),
        "DJANGO_SETTINGS_MODULE": "aura.settings",
        "DATABASE_URL": "postgres://aura@127.0.0.1:1/aura",
        "REDIS_URL": "redis://127.0.0.1:1/0",
        **variables,
    }
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def error_of(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode != 0, "start-up was accepted"
    (line,) = [x for x in result.stderr.splitlines() if x.startswith("django.core.exceptions.")]
    return line


def test_good_random_secrets_start() -> None:
    result = start(**GOOD)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("name", ["SECRET_KEY", "API_KEY_PEPPER"])
@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("change-me", "is a placeholder"),
        ("change-me-too", "is a placeholder"),
        ("CHANGE-ME-" + "x" * 40, "is a placeholder"),
        ("external-test-secret", "is shorter than 32 characters"),
        ("ab" * 20, "has fewer than 8 different characters"),
    ],
)
def test_a_placeholder_or_weak_secret_is_refused_with_the_variable_and_how_to_generate_one(
    name: str, value: str, reason: str
) -> None:
    line = error_of(start(**{**GOOD, name: value}))
    assert f"{name} {reason}" in line
    assert "secrets.token_urlsafe(32)" in line
    assert value not in line.split(reason)[1]  # the message does not repeat the value


def test_a_placeholder_is_refused_in_development_too() -> None:
    # AURA_EMBEDDED_DB=1: the embedded servers' mode, where unset secrets are generated.
    line = error_of(start(SECRET_KEY="change-me", AURA_EMBEDDED_DB="1"))
    assert "SECRET_KEY is a placeholder" in line


@pytest.mark.parametrize("name", ["SECRET_KEY", "API_KEY_PEPPER", "FIELD_ENCRYPTION_KEYS"])
def test_an_empty_secret_in_production_is_refused(name: str) -> None:
    line = error_of(start(**{**GOOD, name: ""}))
    assert f"{name} is required when DATABASE_URL is set" in line
    assert "Generate one with: python -c" in line


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("change-me", "FIELD_ENCRYPTION_KEYS entry #1 (of 1, newest first) is not url-safe base64"),
        (base64.urlsafe_b64encode(b"short").decode(), "decodes to 5 bytes, expected 32"),
        (base64.urlsafe_b64encode(bytes(32)).decode(), "entry #1 is not random (a placeholder?)"),
    ],
)
def test_a_placeholder_encryption_key_is_refused(value: str, message: str) -> None:
    line = error_of(start(**{**GOOD, "FIELD_ENCRYPTION_KEYS": value}))
    assert message in line
    assert "base64.urlsafe_b64encode(os.urandom(32))" in line


def _settings_value(expression: str, **variables: str) -> str:
    code = (
        "import pytest, django; django.setup(); from django.conf import settings; "
        f"print({expression})"
    )
    result = start(code, **GOOD, **variables)
    assert result.returncode == 0, result.stderr
    return str(result.stdout.strip())


def test_production_settings_do_not_know_they_are_tested() -> None:
    # pytest imported and the old switch set: passwords are still hashed properly.
    hasher = _settings_value("settings.PASSWORD_HASHERS[0]", AURA_TESTING="1")
    assert hasher == "django.contrib.auth.hashers.PBKDF2PasswordHasher"
    assert "testserver" not in _settings_value("settings.ALLOWED_HOSTS")
