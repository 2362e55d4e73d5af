from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from tenants.services import tenant_create


class Command(BaseCommand):
    help = "Create a tenant."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name")
        parser.add_argument("--slug", help="URL-safe id (default: from the name)")
        parser.add_argument("--timezone", default="UTC", help="IANA zone, e.g. Europe/Paris")
        parser.add_argument("--email", action="append", default=[], help="contact email (repeat)")

    def handle(self, *args: Any, **opts: Any) -> None:
        try:
            tenant = tenant_create(
                name=opts["name"],
                slug=opts["slug"],
                timezone_name=opts["timezone"],
                contact_emails=opts["email"],
            )
        except ValidationError as exc:
            raise CommandError(
                "; ".join(f"{k}: {' '.join(v)}" for k, v in exc.message_dict.items())
            ) from exc
        self.stdout.write(f"created tenant {tenant.slug} (id {tenant.pk})")
