from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from aura.errors import DomainError
from routing.catalog.services import provider_upsert
from routing.models import WIRE_FORMATS


class Command(BaseCommand):
    help = "Create a provider, or update the one with this slug (safe to re-run from scripts)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("slug")
        parser.add_argument("--wire-format", required=True, choices=[w for w, _ in WIRE_FORMATS])
        parser.add_argument("--base-url", required=True, help="default base URL")
        parser.add_argument("--name", default="", help="display name (default: the slug)")
        parser.add_argument(
            "--local", action="store_true", help="runs on our own hardware (privacy routing)"
        )
        parser.add_argument(
            "--no-api-key",
            dest="requires_api_key",
            action="store_const",
            const=False,
            default=None,
            help="its servers need no credential (default: by wire format; Ollama needs none)",
        )

    def handle(self, *args: Any, **opts: Any) -> None:
        try:
            provider, created = provider_upsert(
                slug=opts["slug"],
                wire_format=opts["wire_format"],
                default_base_url=opts["base_url"],
                name=opts["name"],
                is_local=opts["local"],
                requires_api_key=opts["requires_api_key"],
            )
        except DomainError as exc:
            raise CommandError(exc.message) from exc
        verb = "Created" if created else "Updated"
        key = "a credential" if provider.needs_api_key else "no credential"
        self.stdout.write(
            f"{verb} provider {provider.slug} ({provider.wire_format}, "
            f"{provider.default_base_url}; calls need {key})"
        )
