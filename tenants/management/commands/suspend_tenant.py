from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from tenants.models import Tenant
from tenants.services import tenant_set_status


class Command(BaseCommand):
    help = "Suspend a tenant (its API keys stop working everywhere within a second)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("slug")
        parser.add_argument("--reactivate", action="store_true", help="make it active again")

    def handle(self, *args: Any, **opts: Any) -> None:
        tenant = Tenant.objects.filter(slug=opts["slug"]).first()
        if tenant is None:
            raise CommandError(f"no tenant {opts['slug']!r}")
        status = Tenant.Status.ACTIVE if opts["reactivate"] else Tenant.Status.SUSPENDED
        changed = tenant_set_status(tenant=tenant, status=status)
        self.stdout.write(f"{tenant.slug} is {status}" + ("" if changed else " (unchanged)"))
