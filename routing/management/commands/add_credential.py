from __future__ import annotations

import getpass
import os
import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from aura.errors import DomainError
from routing.catalog.services import credential_create
from routing.models import Provider, ProviderEndpoint
from tenants.models import Tenant


class Command(BaseCommand):
    help = (
        "Store a provider API key, encrypted. The secret is read from stdin or an environment "
        "variable, never from the command line (argv is visible to every user in ps)."
    )
    stealth_options = ("stdin",)  # call_command(..., stdin=io.StringIO(...)) in tests

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("provider", help="provider slug")
        parser.add_argument("name", help="a label for this key")
        parser.add_argument("--tenant", help="tenant slug (default: a platform credential)")
        parser.add_argument("--endpoint", help="endpoint name (default: every endpoint)")
        source = parser.add_mutually_exclusive_group(required=True)
        source.add_argument(
            "--secret-stdin",
            action="store_true",
            help="read the secret from stdin (prompts without echo on a terminal)",
        )
        source.add_argument("--secret-env", metavar="VAR", help="read the secret from $VAR")

    def _read_secret(self, opts: dict[str, Any]) -> str:
        if opts["secret_env"]:
            value = os.environ.get(opts["secret_env"])
            if not value:
                raise CommandError(f"environment variable {opts['secret_env']} is not set or empty")
            return value
        stdin = opts.get("stdin") or sys.stdin
        if stdin.isatty():
            return getpass.getpass("Secret: ")
        return stdin.read()

    def handle(self, *args: Any, **opts: Any) -> None:
        provider = Provider.objects.filter(slug=opts["provider"]).first()
        if provider is None:
            raise CommandError(f"no provider with slug {opts['provider']!r}")
        tenant = None
        if opts["tenant"]:
            tenant = Tenant.objects.filter(slug=opts["tenant"]).first()
            if tenant is None:
                raise CommandError(f"no tenant with slug {opts['tenant']!r}")
        endpoint = None
        if opts["endpoint"]:
            # The tenant's own endpoint of that name first, then the platform's.
            candidates = ProviderEndpoint.objects.filter(provider=provider, name=opts["endpoint"])
            endpoint = (tenant and candidates.filter(tenant=tenant).first()) or candidates.filter(
                tenant__isnull=True
            ).first()
            if endpoint is None:
                raise CommandError(f"no endpoint {opts['endpoint']!r} for provider {provider.slug}")
        secret = self._read_secret(opts)
        try:
            credential = credential_create(
                provider=provider,
                name=opts["name"],
                secret=secret,
                tenant=tenant,
                endpoint=endpoint,
            )
        except DomainError as exc:
            raise CommandError(exc.message) from exc
        owner = tenant.slug if tenant else "platform"
        self.stdout.write(
            f"Created credential {credential.pk} {provider.slug}:{credential.name} "
            f"({owner}) {credential.masked}"
        )
