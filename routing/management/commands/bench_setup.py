from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from routing.models import CatalogModel, Provider, ProviderEndpoint, RoutingPolicy
from tenants.auth import hash_secret, parse_key
from tenants.models import ApiKey, Tenant
from tenants.services import tenant_create

ENDPOINTS = {  # provider slug -> (catalog model id, upstream base URL port offset)
    "benchfake": ("fake-gpt", 0),
    "benchfake500": ("fake-gpt-500", 1),
    "benchfake429": ("fake-gpt-429", 2),
}


class Command(BaseCommand):
    help = (
        "Configure a 'bench' tenant routing fake-gpt / fake-gpt-500 / fake-gpt-429 to the "
        "shared bench's fake upstreams (ports PORT, PORT+1, PORT+2), with a fixed API key."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--port", type=int, default=9100)
        parser.add_argument("--key", required=True, help="aura-<prefix>.<secret> to accept")
        parser.add_argument(
            "--budgets",
            choices=["on", "off"],
            default="off",
            help="on: day and month block budgets (never reached) so every request reserves",
        )
        parser.add_argument(
            "--cache",
            choices=["off", "exact", "semantic"],
            default="off",
            help="the bench tenant's response cache (exact: repeated requests are hits)",
        )

    def handle(self, *args: Any, **opts: Any) -> None:
        parsed = parse_key(opts["key"])
        if parsed is None or len(parsed[1]) < 24:
            raise CommandError("--key must look like aura-<prefix>.<secret of 24+ chars>")
        tenant = Tenant.objects.filter(slug="bench").first() or tenant_create(
            name="Bench", slug="bench"
        )
        for slug, (model_id, offset) in ENDPOINTS.items():
            provider, _ = Provider.objects.update_or_create(
                slug=slug,
                # Keyless, like the fake upstreams (and vLLM-style local servers).
                defaults={
                    "name": slug,
                    "wire_format": "openai",
                    "is_local": True,
                    "requires_api_key": False,
                },
            )
            ProviderEndpoint.objects.update_or_create(
                provider=provider,
                tenant=None,
                name="bench",
                defaults={
                    "base_url": f"http://127.0.0.1:{opts['port'] + offset}/v1",
                    "max_retries": 1,
                    "first_byte_timeout": 30,
                    "total_timeout": 60,
                },
            )
            CatalogModel.objects.update_or_create(
                provider=provider,
                model_id=model_id,
                defaults={
                    "tier": "eco",
                    "context_window": 128000,
                    "max_output_tokens": 4096,
                    "capabilities": ["chat", "streaming", "tools", "json"],
                    "input_price_per_mtok": "0.15",
                    "output_price_per_mtok": "0.60",
                    "quality": {"chat": 0.7},
                    "is_local": True,
                },
            )
        # The fault check asks for fake-gpt-500 and expects the healthy fake-gpt to answer:
        # the bench tenant lets named models fall back to any model (the default is not to).
        RoutingPolicy.objects.update_or_create(
            tenant=tenant,
            defaults={"model_fallback": "any_model", "cache": {"mode": opts["cache"]}},
        )
        from billing.models import Budget
        from routing.changes import config_changed

        if opts["budgets"] == "on":
            for period in ("day", "month"):
                Budget.objects.update_or_create(
                    tenant=tenant,
                    api_key=None,
                    period=period,
                    defaults={"limit_usd": 1_000_000, "mode": "block", "enabled": True},
                )
        else:
            Budget.objects.filter(tenant=tenant).delete()
        config_changed()
        prefix, secret = parsed
        key = ApiKey.objects.filter(prefix=prefix).first()
        if key is None:
            ApiKey.objects.create(
                tenant=tenant, name="bench", prefix=prefix, secret_hash=hash_secret(secret)
            )
        self.stdout.write("bench tenant ready: models fake-gpt, fake-gpt-500, fake-gpt-429")
