from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from routing.catalog.services import notify_config_changed
from routing.models import ProviderEndpoint


class Command(BaseCommand):
    help = (
        "Enable (or --disable) an endpoint, e.g. the catalog's Ollama endpoint once Ollama "
        "runs: enable_endpoint ollama default"
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("provider", help="provider slug")
        parser.add_argument("name", help="endpoint name")
        parser.add_argument("--tenant", help="tenant slug (default: the platform endpoint)")
        parser.add_argument("--disable", action="store_true", help="disable it instead")

    def handle(self, *args: Any, **opts: Any) -> None:
        endpoints = ProviderEndpoint.objects.select_related("provider", "tenant").filter(
            provider__slug=opts["provider"], name=opts["name"]
        )
        if opts["tenant"]:
            endpoints = endpoints.filter(tenant__slug=opts["tenant"])
        else:
            endpoints = endpoints.filter(tenant__isnull=True)
        endpoint = endpoints.first()
        if endpoint is None:
            owner = f"tenant {opts['tenant']!r}" if opts["tenant"] else "the platform"
            raise CommandError(
                f"no endpoint {opts['provider']}:{opts['name']} of {owner} (see add_endpoint)"
            )
        enabled = not opts["disable"]
        if endpoint.enabled != enabled:
            endpoint.enabled = enabled
            endpoint.save(update_fields=["enabled"])
            notify_config_changed()
        state = "enabled" if enabled else "disabled"
        self.stdout.write(f"Endpoint {endpoint} at {endpoint.base_url} is {state}")
        if enabled and not endpoint.provider.enabled:
            self.stdout.write(
                f"  but provider {endpoint.provider.slug} is disabled: enable it in the admin"
            )
