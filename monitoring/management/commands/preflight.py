from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from aura.pgvector import PgvectorMissing, check_pgvector_available
from monitoring.probes import redis_ping


class Command(BaseCommand):
    help = "Check that Postgres (with pgvector) and Redis are reachable; fail with advice if not."

    def handle(self, *args: Any, **opts: Any) -> None:
        try:
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
