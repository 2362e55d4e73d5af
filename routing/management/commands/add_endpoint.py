from __future__ import annotations

import argparse
from decimal import Decimal, InvalidOperation
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from aura.errors import DomainError
from routing.catalog.services import catalog_models_ensure, endpoint_create
from routing.models import CAPABILITIES, CatalogModel, Provider
from tenants.models import Tenant

MODEL_OPTIONS = (
    "kind",
    "capabilities",
    "input_price",
    "output_price",
    "context_window",
    "max_output",
)


def parse_deployments(values: list[str]) -> dict[str, str]:
    deployments: dict[str, str] = {}
    for value in values:
        model, sep, deployment = value.partition("=")
        if not sep or not model.strip() or not deployment.strip():
            raise CommandError(f"--deployment expects MODEL=DEPLOYMENT, got {value!r}")
        deployments[model.strip()] = deployment.strip()
    return deployments


def price(value: str) -> Decimal:
    try:
        parsed = Decimal(value)
    except InvalidOperation:
        raise argparse.ArgumentTypeError(
            f"expects USD per 1M tokens, e.g. 0.15, got {value!r}"
        ) from None
    if not parsed.is_finite() or parsed < 0:
        raise argparse.ArgumentTypeError(f"expects a price of 0 or more, got {value!r}")
    return parsed


def capability_list(value: str) -> list[str]:
    caps = [c.strip() for c in value.split(",") if c.strip()]
    unknown = [c for c in caps if c not in CAPABILITIES]
    if not caps or unknown:
        raise argparse.ArgumentTypeError(
            f"expects a comma-separated list of {', '.join(CAPABILITIES)}, got {value!r}"
        )
    return caps


def tokens(value: str) -> int:
    try:
        parsed = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expects a number of tokens, got {value!r}") from None
    if parsed < 0:
        raise argparse.ArgumentTypeError(f"expects 0 or more tokens, got {value!r}")
    return parsed


class Command(BaseCommand):
    help = (
        "Add an endpoint (a base URL) to a provider, for the platform or one tenant. "
        "Example, a keyless vLLM server: add_endpoint vllm gpu1 --base-url "
        "http://10.0.0.5:8000/v1 --no-api-key --model meta-llama/Llama-3.1-8B-Instruct "
        "--create-models --capabilities chat,streaming --input-price 0.05 --output-price 0.1"
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
        models = parser.add_argument_group(
            "--create-models", "add unknown model ids to the catalog, described by:"
        )
        models.add_argument("--create-models", action="store_true")
        models.add_argument(
            "--kind",
            choices=CatalogModel.Kind.values,
            help="chat (default) or embeddings",
        )
        models.add_argument(
            "--capabilities",
            type=capability_list,
            metavar="CAP,CAP",
            help=f"of {', '.join(CAPABILITIES)} (default: chat, or embeddings for that kind)",
        )
        models.add_argument(
            "--input-price", type=price, metavar="USD", help="per 1M input tokens (default 0)"
        )
        models.add_argument(
            "--output-price", type=price, metavar="USD", help="per 1M output tokens (default 0)"
        )
        models.add_argument("--context-window", type=tokens, metavar="TOKENS", help="default 8192")
        models.add_argument(
            "--max-output",
            type=tokens,
            metavar="TOKENS",
            help="longest answer (default 4096; 0 for embeddings)",
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
        described = [o for o in MODEL_OPTIONS if opts[o] is not None]
        if described and not opts["create_models"]:
            flags = ", ".join("--" + o.replace("_", "-") for o in described)
            raise CommandError(f"{flags} describe new models: use them with --create-models")
        wanted = [*opts["models"], *deployments]
        if opts["create_models"] and not wanted:
            raise CommandError("--create-models needs the model ids: --model MODEL_ID ...")
        try:
            # One transaction: a refused endpoint leaves no half-created catalog models.
            with transaction.atomic():
                created = []
                if opts["create_models"]:
                    created = catalog_models_ensure(
                        provider=provider,
                        model_ids=wanted,
                        kind=opts["kind"] or CatalogModel.Kind.CHAT,
                        capabilities=opts["capabilities"],
                        input_price=opts["input_price"] or Decimal(0),
                        output_price=opts["output_price"] or Decimal(0),
                        context_window=opts["context_window"],
                        max_output_tokens=opts["max_output"],
                    )
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
                f"Created catalog model {model.key}: {model.kind}, "
                f"capabilities {', '.join(model.capabilities)}, "
                f"${model.input_price_per_mtok.normalize():f} in / "
                f"${model.output_price_per_mtok.normalize():f} out per 1M tokens, "
                f"context {model.context_window}, max output {model.max_output_tokens}"
            )
        if created and not (opts["input_price"] or opts["output_price"]):
            self.stdout.write(
                "  (zero price: requests to these models cost nothing; set "
                "--input-price/--output-price or edit them in the admin)"
            )
        kept = [m for m in dict.fromkeys(wanted) if m not in {c.model_id for c in created}]
        if opts["create_models"] and kept:
            self.stdout.write(f"Already in the catalog, left as they are: {', '.join(kept)}")
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
