from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from aura.crypto import DecryptionError
from routing.catalog.services import credentials_reencrypt


class Command(BaseCommand):
    help = (
        "Re-encrypt every credential not under the newest FIELD_ENCRYPTION_KEYS key. Run after "
        "adding a key in front, before removing an old one."
    )

    def handle(self, *args: Any, **opts: Any) -> None:
        try:
            count = credentials_reencrypt()
        except DecryptionError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(f"Re-encrypted {count} credential(s) under the newest key.")
