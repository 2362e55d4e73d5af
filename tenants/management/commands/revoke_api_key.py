from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from tenants.auth import parse_key
from tenants.models import ApiKey
from tenants.services import api_key_revoke


class Command(BaseCommand):
    help = "Revoke an API key, named by its prefix (or the whole key)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("key", help="the key's prefix, aura-<prefix>, or the whole key")

    def handle(self, *args: Any, **opts: Any) -> None:
        raw: str = opts["key"]
        parsed = parse_key(raw)
        prefix = parsed[0] if parsed else raw.removeprefix("aura-")
        key = ApiKey.objects.filter(prefix=prefix).first()
        if key is None:
            raise CommandError(f"no API key with prefix {prefix!r}")
        changed = api_key_revoke(key=key)
        self.stdout.write(f"revoked {key}" if changed else f"{key} was already revoked")
