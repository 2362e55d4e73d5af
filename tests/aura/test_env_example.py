""".env.example is safe to copy to .env for local use: it leaves the embedded servers on
and sets no secret; the production settings are there, commented out."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

from aura import embedded

ROOT = Path(__file__).resolve().parent.parent.parent
ASSIGNMENT = re.compile(r"^(#\s*)?([A-Z][A-Z0-9_]*)=(.*)$")
PRODUCTION_ONLY = {
    "DATABASE_URL",
    "REDIS_URL",
    "SECRET_KEY",
    "API_KEY_PEPPER",
    "FIELD_ENCRYPTION_KEYS",
    "DJANGO_SUPERUSER_PASSWORD",
}


def assignments(path: Path) -> tuple[dict[str, str], set[str]]:
    """(active NAME=value lines, names only present commented out)."""
    active: dict[str, str] = {}
    commented: set[str] = set()
    for line in path.read_text().splitlines():
        match = ASSIGNMENT.match(line.strip())
        if match:
            if match.group(1):
                commented.add(match.group(2))
            else:
                active[match.group(2)] = match.group(3)
    return active, commented - set(active)


def test_production_only_settings_are_listed_but_commented_out() -> None:
    active, commented = assignments(ROOT / ".env.example")
    assert PRODUCTION_ONLY & set(active) == set()
    assert PRODUCTION_ONLY <= commented


def test_starting_with_env_example_as_the_environment_keeps_the_embedded_servers() -> None:
    active, _ = assignments(ROOT / ".env.example")
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", "/tmp"),
        "DJANGO_SETTINGS_MODULE": "aura.settings",
        **active,
        # The test run's own data folder (its servers are already running) instead of ./var.
        "AURA_DATA_DIR": str(embedded.data_dir()),
        "AURA_REDIS_DB": os.environ.get("AURA_REDIS_DB", "0"),
    }
    script = (
        "import django, json; django.setup(); from django.conf import settings as s; "
        "print(json.dumps([s.EMBEDDED, s.DATABASES['default']['HOST'], s.REDIS_URL, "
        "s.CELERY_BROKER_URL, len(s.SECRET_KEY)]))"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    is_embedded, db_host, redis_url, broker, secret_length = json.loads(
        result.stdout.strip().splitlines()[-1]
    )
    data_dir = str(embedded.data_dir())
    assert is_embedded is True
    assert db_host.startswith(data_dir)
    assert redis_url.startswith(f"unix://{data_dir}")
    assert broker.startswith("redis+socket://")  # not Celery's amqp default
    assert secret_length >= 32
