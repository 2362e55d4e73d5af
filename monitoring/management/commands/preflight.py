from __future__ import annotations

from typing import Any

import psycopg
from django.core.management.base import BaseCommand, CommandError
from django.db import connection

from aura.pgvector import PgvectorMissing, check_pgvector_available
from monitoring.probes import redis_ping

CONNECT_TIMEOUT = 5


def _postgres_connect_once() -> None:
    """One plain connection first: the pool would wait out its timeout and then report only
    that it got none, not the server's reason (no such database, refused, bad password)."""
    params = connection.get_connection_params()
    params.setdefault("connect_timeout", CONNECT_TIMEOUT)
    with psycopg.connect(**params):
        pass


class Command(BaseCommand):
    help = "Check that Postgres (with pgvector) and Redis are reachable; fail with advice if not."

    def handle(self, *args: Any, **opts: Any) -> None:
        try:
            _postgres_connect_once()
            check_pgvector_available()
        except PgvectorMissing as exc:
            raise CommandError(str(exc)) from exc
        except Exception as exc:
            raise CommandError(f"cannot reach Postgres at DATABASE_URL: {exc}") from exc
        try:
            redis_ping()
        except Exception as exc:
            raise CommandError(f"cannot reach Redis at REDIS_URL: {exc}") from exc
        self.stdout.write("preflight ok: Postgres with pgvector, Redis")
