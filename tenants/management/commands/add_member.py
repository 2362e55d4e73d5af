from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from tenants.models import Role, Tenant
from tenants.services import membership_add, user_get_or_create


class Command(BaseCommand):
    help = "Add a user (created if missing, without a usable password) to a tenant with a role."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("tenant", help="tenant slug")
        parser.add_argument("username")
        parser.add_argument("--email", default="")
        parser.add_argument("--role", default=Role.MEMBER, choices=Role.values)

    def handle(self, *args: Any, **opts: Any) -> None:
        tenant = Tenant.objects.filter(slug=opts["tenant"]).first()
        if tenant is None:
            raise CommandError(f"no tenant with slug {opts['tenant']!r}")
        try:
            with transaction.atomic():
                user, created = user_get_or_create(username=opts["username"], email=opts["email"])
                membership_add(tenant=tenant, user=user, role=opts["role"])
        except ValidationError as exc:
            raise CommandError(
                "; ".join(f"{k}: {' '.join(v)}" for k, v in exc.message_dict.items())
            ) from exc
        note = " (new user: set a password with `manage.py changepassword`)" if created else ""
        self.stdout.write(f"{user} is {opts['role']} of {tenant.slug}{note}")
