from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from tenants.models import Role, Tenant
from tenants.services import membership_add, user_get_or_create, user_invite_link


class Command(BaseCommand):
    help = (
        "Add a user (created if missing, without a usable password) to a tenant with a role; "
        "prints a one-time link for a new user to choose a password."
    )

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
                user, _ = user_get_or_create(username=opts["username"], email=opts["email"])
                membership_add(tenant=tenant, user=user, role=opts["role"])
        except ValidationError as exc:
            raise CommandError(
                "; ".join(f"{k}: {' '.join(v)}" for k, v in exc.message_dict.items())
            ) from exc
        self.stdout.write(f"{user} is {opts['role']} of {tenant.slug}")
        if not user.has_usable_password():
            self.stdout.write(
                f"{user} has no password yet: send them this one-time link to choose one and "
                f"sign in to the console:\n  {user_invite_link(user=user)}"
            )
