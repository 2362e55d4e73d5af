"""The catalog's keyless local providers (Ollama) get routable only where something answers.

A catalog provider like Ollama needs no key and has a default base URL on loopback, so
without care it is routable on every machine, whether Ollama runs there or not, and its
free models rank high for `auto`. When the catalog is loaded, each such provider gets an
explicit platform endpoint at its default base URL, enabled only if a short probe gets an
answer there now; a disabled endpoint also stops routing through the default URL
(routing.gateway.context). Created once and never changed afterwards: after that, enabling it is
the operator's decision (`manage.py enable_endpoint`, or the admin). Not a health check.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from pathlib import Path

from aura.http import aclose_client
from routing.catalog import services as credentials
from routing.models import Provider, ProviderEndpoint
from routing.providers import get_adapter
from routing.providers.base import ProviderError, ProviderTarget, Timeouts

ENDPOINT_NAME = "default"
# A local server answers within milliseconds; this only has to outlast a busy machine.
PROBE_TIMEOUTS = Timeouts(connect=1.0, first_byte=2.0, total=2.0)


@dataclass(frozen=True)
class LocalEndpoint:
    endpoint: ProviderEndpoint
    created: bool
    problem: str | None  # why the probe failed when it was created; None: it answered

    @property
    def enable_hint(self) -> str:
        ep = self.endpoint
        return f"manage.py enable_endpoint {ep.provider.slug} {ep.name}"


def endpoint_probe(provider: Provider, base_url: str) -> str | None:
    """Ask the provider's liveness probe (e.g. Ollama's GET /api/tags) once, through the
    one HTTP seam. Returns why it failed, or None if the server answered."""
    target = ProviderTarget(
        base_url=base_url.rstrip("/"), api_key=None, upstream_model="", timeouts=PROBE_TIMEOUTS
    )

    async def probe() -> None:
        try:
            await get_adapter(provider.wire_format).health(target)
        finally:
            await aclose_client()

    try:
        asyncio.run(probe())
    except ProviderError as exc:
        return str(exc) or exc.kind
    return None


def _keyless_local_slugs(path: Path) -> list[str]:
    try:
        providers = json.loads(path.read_text(encoding="utf-8")).get("providers", [])
    except (OSError, ValueError):
        return []  # catalog_load reports an unreadable file
    return [p["slug"] for p in providers if p.get("is_local") and p.get("default_base_url")]


def local_endpoints_ensure(path: str | Path | None = None) -> list[LocalEndpoint]:
    """Give each keyless local provider of the catalog file a platform endpoint at its
    default base URL unless it has one; a new one is enabled only if the probe answers.
    Returns the state of every such provider's endpoint (existing ones unprobed)."""
    slugs = _keyless_local_slugs(Path(path) if path else credentials.CATALOG_PATH)
    result: list[LocalEndpoint] = []
    for provider in Provider.objects.filter(slug__in=slugs, enabled=True).order_by("slug"):
        if provider.needs_api_key or not provider.default_base_url:
            continue
        platform = ProviderEndpoint.objects.filter(provider=provider, tenant__isnull=True)
        existing = platform.filter(name=ENDPOINT_NAME).first()
        if existing is not None:
            result.append(LocalEndpoint(existing, created=False, problem=None))
            continue
        if platform.exists():
            continue  # the operator configured this provider's endpoints
        problem = endpoint_probe(provider, provider.default_base_url)
        endpoint = ProviderEndpoint.objects.create(
            provider=provider,
            name=ENDPOINT_NAME,
            base_url=provider.default_base_url,
            enabled=problem is None,
        )
        credentials.notify_config_changed()
        result.append(LocalEndpoint(endpoint, created=True, problem=problem))
    return result


def describe(state: LocalEndpoint) -> str:
    """One line for command output and the start-up banner."""
    ep = state.endpoint
    where = f"{ep.provider.slug}:{ep.name} at {ep.base_url}"
    if ep.enabled:
        return f"{where}: answered, enabled" if state.created else f"{where}: enabled"
    why = f"no answer ({state.problem})" if state.created else "disabled"
    return f"{where}: {why}, so nothing routes to it; once it runs: {state.enable_hint}"
