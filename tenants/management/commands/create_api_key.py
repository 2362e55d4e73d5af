from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from aura.errors import DomainError
from tenants.models import Tenant
from tenants.services import api_key_create


class Command(BaseCommand):
    help = "Create an API key for a tenant; prints the key once (it is not stored)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("tenant", help="tenant slug")
        parser.add_argument("name")
        parser.add_argument("--expires-in-days", type=int)
        parser.add_argument("--can-manage", action="store_true", help="also allow /api/v1")

    def handle(self, *args: Any, **opts: Any) -> None:
        tenant = Tenant.objects.filter(slug=opts["tenant"]).first()
        if tenant is None:
            raise CommandError(f"no tenant with slug {opts['tenant']!r}")
        days = opts["expires_in_days"]
        if days is not None and days < 1:
            raise CommandError(f"--expires-in-days must be 1 or more (got {days})")
        expires_at = timezone.now() + timedelta(days=days) if days is not None else None
        try:
            key, plaintext = api_key_create(
                tenant=tenant,
                name=opts["name"],
                expires_at=expires_at,
                can_manage=opts["can_manage"],
            )
        except DomainError as exc:
            raise CommandError(exc.message) from exc
        self.stderr.write(f"created key {key.name!r} (id {key.pk}); it is shown only once:")
        self.stdout.write(plaintext)
