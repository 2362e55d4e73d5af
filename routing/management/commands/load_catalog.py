from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from aura.errors import DomainError
from routing.catalog.local import describe, local_endpoints_ensure
from routing.catalog.services import CATALOG_PATH, catalog_load


class Command(BaseCommand):
    help = (
        "Upsert providers and models from the catalog JSON (idempotent; never deletes). "
        "Keyless local providers (Ollama) get an endpoint at their default URL, enabled only "
        "if something answers there."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--file", default=None, help=f"catalog JSON (default: {CATALOG_PATH})")

    def handle(self, *args: Any, **opts: Any) -> None:
        try:
            counts = catalog_load(opts["file"])
        except DomainError as exc:
            raise CommandError(exc.message) from exc
        self.stdout.write(", ".join(f"{name.replace('_', ' ')}: {n}" for name, n in counts.items()))
        for state in local_endpoints_ensure(opts["file"]):
            if state.created or not state.endpoint.enabled:
                self.stdout.write(("Created endpoint " if state.created else "") + describe(state))
