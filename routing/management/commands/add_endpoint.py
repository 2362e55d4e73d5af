from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from aura.errors import DomainError
from routing.credentials import catalog_models_ensure, endpoint_create
from routing.models import Provider
from tenants.models import Tenant


def parse_deployments(values: list[str]) -> dict[str, str]:
    deployments: dict[str, str] = {}
    for value in values:
        model, sep, deployment = value.partition("=")
        if not sep or not model.strip() or not deployment.strip():
            raise CommandError(f"--deployment expects MODEL=DEPLOYMENT, got {value!r}")
        deployments[model.strip()] = deployment.strip()
    return deployments


class Command(BaseCommand):
    help = (
        "Add an endpoint (a base URL) to a provider, for the platform or one tenant. "
        "Example, a keyless vLLM server: add_endpoint vllm gpu1 --base-url "
        "http://10.0.0.5:8000/v1 --no-api-key --model meta-llama/Llama-3.1-8B-Instruct --create-models"
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("provider", help="provider slug")
        parser.add_argument("name", help="endpoint name, unique per provider and owner")
        parser.add_argument("--base-url", required=True)
        parser.add_argument("--tenant", help="tenant slug (default: a platform endpoint)")
        parser.add_argument(
            "--model",
            dest="models",
            action="extend",
            nargs="+",
            default=[],
            metavar="MODEL_ID",
            help="catalog model ids served here (default: every model of the provider)",
        )
        parser.add_argument("--api-version", default="", help="Azure api-version")
        parser.add_argument(
            "--deployment",
            dest="deployments",
            action="extend",
            nargs="+",
            default=[],
            metavar="MODEL=DEPLOYMENT",
            help="Azure: catalog model id -> deployment name",
        )
        parser.add_argument(
            "--no-api-key",
            dest="requires_api_key",
            action="store_const",
            const=False,
            default=None,
            help="the server needs no credential (default: as the provider says)",
        )
        parser.add_argument(
            "--create-models",
            action="store_true",
            help="add unknown model ids to the catalog (zero price; chat, streaming, tools, json)",
        )

    def handle(self, *args: Any, **opts: Any) -> None:
        provider = Provider.objects.filter(slug=opts["provider"]).first()
        if provider is None:
            raise CommandError(f"no provider with slug {opts['provider']!r} (see add_provider)")
        tenant = None
        if opts["tenant"]:
            tenant = Tenant.objects.filter(slug=opts["tenant"]).first()
            if tenant is None:
                raise CommandError(f"no tenant with slug {opts['tenant']!r}")
        deployments = parse_deployments(opts["deployments"])
        try:
            # One transaction: a refused endpoint leaves no half-created catalog models.
            with transaction.atomic():
                created = []
                if opts["create_models"]:
                    wanted = [*opts["models"], *deployments]
                    created = catalog_models_ensure(provider=provider, model_ids=wanted)
                endpoint = endpoint_create(
                    provider=provider,
                    name=opts["name"],
                    base_url=opts["base_url"],
                    tenant=tenant,
                    models=opts["models"],
                    api_version=opts["api_version"],
                    deployments=deployments,
                    requires_api_key=opts["requires_api_key"],
                )
        except DomainError as exc:
            raise CommandError(exc.message) from exc
        for model in created:
            self.stdout.write(
                f"Created catalog model {model.key} (zero price: set it in the admin)"
            )
        served = ", ".join(opts["models"]) or f"every {provider.slug} model"
        keyless = "" if endpoint.needs_api_key else " (no credential needed)"
        self.stdout.write(
            f"Created endpoint {endpoint} at {endpoint.base_url} serving {served}{keyless}"
        )
        if (
            endpoint.needs_api_key
            and not provider.credentials.filter(tenant=tenant, enabled=True).exists()
        ):
            self.stdout.write(
                f"  needs a credential before it is routable: manage.py add_credential "
                f"{provider.slug} NAME --secret-env VAR, or --no-api-key for a keyless server"
            )
