"""``manage.py preflight`` (run first by ``make run``): passes on a working configuration,
fails with the server's own reason on a broken one.

The broken ones are real: the command runs in a fresh process with the environment a
misconfigured deployment would have.
"""

from __future__ import annotations

import os
import subprocess
import sys
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.core.management import call_command

from tests.billing.test_celery_worker import database_url

ROOT = Path(__file__).resolve().parents[2]


def preflight(**env: str) -> subprocess.CompletedProcess[str]:
    full = {
        **os.environ,
        "DATABASE_URL": database_url(),
        "REDIS_URL": settings.REDIS_URL,
        "AURA_EMBEDDED_DB": "1",
        "DJANGO_SETTINGS_MODULE": "aura.settings",
        **env,
    }
    return subprocess.run(
        [sys.executable, "manage.py", "preflight"],
        cwd=ROOT,
        env=full,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_preflight_passes_on_a_working_configuration(db: Any) -> None:
    out = StringIO()
    call_command("preflight", stdout=out)
    assert out.getvalue().strip() == "preflight ok: Postgres with pgvector, Redis"


@pytest.mark.parametrize(
    ("env", "says"),
    [
        (
            {"DATABASE_URL": database_url().rsplit("/", 1)[0] + "/no_such_database"},
            [
                "CommandError: cannot reach Postgres at DATABASE_URL:",
                'database "no_such_database" does not exist',
            ],
        ),
        (
            {"REDIS_URL": "redis://127.0.0.1:1/0"},
            ["CommandError: cannot reach Redis at REDIS_URL:", "Connection refused"],
        ),
    ],
    ids=["database-missing", "redis-down"],
)
def test_preflight_fails_naming_what_is_wrong(db: Any, env: dict[str, str], says: list[str]):
    proc = preflight(**env)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    error = proc.stderr.strip().splitlines()[-1]
    for words in says:
        assert words in error, proc.stderr[-2000:]
    assert "preflight ok" not in proc.stdout
