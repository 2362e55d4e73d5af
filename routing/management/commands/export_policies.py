from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from routing.models import RoutingPolicy
from routing.policy import document
from routing.policy.services import policy_state
from tenants.models import Tenant


class Command(BaseCommand):
    help = "Print routing policies as YAML (every tenant with a policy, or one tenant)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--tenant", metavar="SLUG", help="only this tenant")

    def handle(self, *args: Any, **opts: Any) -> None:
        slug = opts.get("tenant")
        entries: dict[str, dict[str, Any]] = {}
        if slug:
            tenant = Tenant.objects.filter(slug=slug).first()
            if tenant is None:
                raise CommandError(f"unknown tenant slug: {slug}")
            policy = RoutingPolicy.objects.filter(tenant=tenant).first()
            state = policy_state(policy) if policy else document.default_state()
            entries[slug] = document.non_default_entry(state, operator=True)
        else:
            for policy in RoutingPolicy.objects.select_related("tenant").order_by("tenant__slug"):
                entries[policy.tenant.slug] = document.non_default_entry(
                    policy_state(policy), operator=True
                )
        if not entries:
            self.stderr.write("no routing policies yet")
            return
        self.stdout.write(document.dump_document(entries), ending="")
