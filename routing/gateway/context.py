"""A tenant's routing context: candidates, call targets and policy, cached per process.

Built from the database once and reused: a warm gateway request reads it from memory.
Any configuration write calls ``routing.changes.config_changed()``, which bumps a version
counter in Redis; every process compares its cached version with Redis at most once per
``VERSION_CHECK_INTERVAL`` seconds (one GET, not per request), so a change reaches all
workers within about a second, and within ``CONTEXT_TTL`` even if Redis is unreachable.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings

from aura.db import releasing_connection
from aura.redis import async_client, sync_client
from routing import changes, engine
from routing.cache.config import OFF, CacheSettings
from routing.catalog.targets import CredentialSecrets, endpoint_name, pick_credential
from routing.changes import VERSION_KEY
from routing.learning.config import OFF as LEARNING_OFF
from routing.learning.config import LearningSettings
from routing.policy.convert import policy_to_engine
from routing.providers.base import ProviderTarget, Timeouts

log = logging.getLogger(__name__)

VERSION_CHECK_INTERVAL = 1.0
CONTEXT_TTL = 60.0


@dataclass(frozen=True, slots=True)
class CallTarget:
    """How to call one candidate: adapter kind, target, retry budget and prices."""

    key: str
    provider: str
    model_id: str  # the catalog id (the upstream may know it by another name, e.g. Azure)
    wire_format: str
    endpoint_id: int | None
    target: ProviderTarget
    max_retries: int
    input_price: float
    output_price: float
    cached_input_price: float | None
    public_only: bool = False  # a tenant-controlled URL: connect to public addresses only
    # The tenant's own endpoint or key: its errors may be shown to the tenant verbatim.
    tenant_owned: bool = False
    endpoint_name: str = ""  # as breakers and health checks name it (the candidate's)
    # Calls at once to this endpoint per process before requests queue (0: no limit).
    max_in_flight: int = 0

    def cost(self, prompt_tokens: int, completion_tokens: int, cached_tokens: int = 0) -> Decimal:
        """USD for the given usage. Cached input tokens are billed at the cached price."""
        cached_price = self.cached_input_price if self.cached_input_price is not None else None
        if cached_price is None:
            cached_tokens = 0
        uncached = max(0, prompt_tokens - cached_tokens)
        micro = (
            Decimal(uncached) * Decimal(str(self.input_price))
            + Decimal(cached_tokens) * Decimal(str(cached_price or 0))
            + Decimal(completion_tokens) * Decimal(str(self.output_price))
        )
        return micro / Decimal(1_000_000)


@dataclass(slots=True)
class RoutingContext:
    tenant_id: int
    policy: engine.Policy
    candidates: tuple[engine.Candidate, ...]
    targets: dict[str, CallTarget]
    policy_version: int
    built_at: float
    timezone: str = "UTC"
    budgets: tuple[Any, ...] = ()  # billing.budgets.BudgetRule, tenant-wide and per key
    rate_limits: dict[str, int] = field(default_factory=dict)
    cache: CacheSettings = OFF
    learning: LearningSettings = LEARNING_OFF
    counter: int = 0


def build_context(tenant_id: int) -> RoutingContext:
    """Read everything routing needs for one tenant (a handful of queries)."""
    from django.db.models import Q

    from billing.budgets import rules_from_rows
    from billing.models import Budget
    from routing.models import CatalogModel, Credential, ProviderEndpoint, RoutingPolicy
    from tenants.models import Tenant

    policy_row = RoutingPolicy.objects.filter(tenant_id=tenant_id).first()
    allow_private = bool(policy_row and policy_row.allow_private_base_urls)
    tenant_tz = Tenant.objects.filter(pk=tenant_id).values_list("timezone", flat=True).first()
    budgets = rules_from_rows(list(Budget.objects.filter(tenant_id=tenant_id, enabled=True)))
    models = list(
        CatalogModel.objects.filter(enabled=True, provider__enabled=True).select_related("provider")
    )
    # Disabled endpoints too: a model that a disabled platform endpoint serves must not be
    # reached through the provider's default base URL instead (see `chosen` below).
    endpoints = list(
        ProviderEndpoint.objects.filter(provider__enabled=True)
        .filter(Q(tenant__isnull=True) | Q(tenant_id=tenant_id))
        .select_related("provider")
        .prefetch_related("served_models")
    )
    creds = list(
        Credential.objects.filter(enabled=True).filter(
            Q(tenant__isnull=True) | Q(tenant_id=tenant_id)
        )
    )
    creds_by_provider: dict[int, list[Any]] = {}
    for c in creds:
        creds_by_provider.setdefault(c.provider_id, []).append(c)
    eps_by_provider: dict[int, list[Any]] = {}
    for ep in endpoints:
        eps_by_provider.setdefault(ep.provider_id, []).append(ep)

    candidates: list[engine.Candidate] = []
    targets: dict[str, CallTarget] = {}
    secrets = CredentialSecrets()
    for m in models:
        prov = m.provider
        serving = [
            ep
            for ep in eps_by_provider.get(prov.pk, [])
            if not ep.served_models.all() or any(s.pk == m.pk for s in ep.served_models.all())
        ]
        configured = any(ep.tenant_id is None for ep in serving)
        serving = [ep for ep in serving if ep.enabled]
        own = [ep for ep in serving if ep.tenant_id == tenant_id]
        default = [None] if prov.default_base_url and not configured else []
        chosen: list[Any] = own or serving or default
        for ep in chosen:
            # A tenant's own endpoint gets its own key: per-process latency and load stats
            # (and the engine's scores built on them) must not mix with the platform's.
            own_ep = ep is not None and ep.tenant_id is not None
            key = m.key if len(chosen) == 1 and not own_ep else f"{m.key}@{ep.name}"
            cred = pick_credential(creds_by_provider.get(prov.pk, []), tenant_id, ep)
            secret = secrets.of(cred)
            needs_key = ep.needs_api_key if ep is not None else prov.needs_api_key
            has_credentials = secret is not None or not needs_key
            base_url = ep.base_url if ep is not None else prov.default_base_url
            deployment = (ep.deployments or {}).get(m.model_id) if ep is not None else None
            timeouts = (
                Timeouts(ep.connect_timeout, ep.first_byte_timeout, ep.total_timeout)
                if ep is not None
                else Timeouts(5.0, 60.0, 300.0)
            )
            name = endpoint_name(prov.slug, ep, cred)
            caps = set(m.capabilities or ())
            if m.kind == CatalogModel.Kind.EMBEDDINGS:
                caps.add("embeddings")
            candidates.append(
                engine.Candidate(
                    key=key,
                    provider=prov.slug,
                    endpoint=name,
                    model_id=m.model_id,
                    aliases=tuple(m.aliases or ()),
                    input_price=float(m.input_price_per_mtok),
                    output_price=float(m.output_price_per_mtok),
                    context_window=m.context_window,
                    max_output=m.max_output_tokens,
                    capabilities=frozenset(caps),
                    quality=dict(m.quality or {}),
                    tier=m.tier,
                    is_local=m.is_local or prov.is_local,
                    has_credentials=has_credentials,
                    weight=ep.weight if ep is not None else 1.0,
                )
            )
            targets[key] = CallTarget(
                key=key,
                provider=prov.slug,
                model_id=m.model_id,
                wire_format=prov.wire_format,
                endpoint_id=ep.pk if ep is not None else None,
                target=ProviderTarget(
                    base_url=base_url.rstrip("/"),
                    api_key=secret,
                    upstream_model=deployment or m.model_id,
                    api_version=(ep.api_version or None) if ep is not None else None,
                    extra_headers=dict(ep.extra_headers or {}) if ep is not None else {},
                    timeouts=timeouts,
                    max_output=m.max_output_tokens or None,
                ),
                max_retries=ep.max_retries if ep is not None else 2,
                public_only=ep is not None and ep.tenant_id is not None and not allow_private,
                tenant_owned=(ep is not None and ep.tenant_id is not None)
                or (cred is not None and cred.tenant_id is not None),
                endpoint_name=name,
                max_in_flight=ep.max_in_flight
                if ep is not None and ep.max_in_flight is not None
                else settings.SHED_MAX_IN_FLIGHT,
                input_price=float(m.input_price_per_mtok),
                output_price=float(m.output_price_per_mtok),
                cached_input_price=float(m.cached_input_price_per_mtok)
                if m.cached_input_price_per_mtok is not None
                else None,
            )
    return RoutingContext(
        tenant_id=tenant_id,
        policy=policy_to_engine(policy_row),
        candidates=tuple(candidates),
        targets=targets,
        policy_version=policy_row.version if policy_row else 0,
        built_at=time.monotonic(),
        timezone=tenant_tz or "UTC",
        budgets=budgets,
        rate_limits=dict(policy_row.rate_limits or {}) if policy_row else {},
        cache=CacheSettings.from_state(policy_row.cache if policy_row else None),
        learning=LearningSettings.from_state(policy_row.learning if policy_row else None),
    )


class ContextCache:
    """Per-process cache of RoutingContext by tenant, invalidated by the Redis version."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._contexts: dict[int, RoutingContext] = {}
        self._version: int | None = None
        self._checked_at = float("-inf")

    def clear(self) -> None:
        self._contexts.clear()

    def _apply_version(self, raw: Any) -> None:
        version = int(raw or 0)
        if version != self._version:
            self._contexts.clear()
            self._version = version

    def _fresh(self, tenant_id: int) -> RoutingContext | None:
        ctx = self._contexts.get(tenant_id)
        if ctx is not None and self.clock() - ctx.built_at < CONTEXT_TTL:
            return ctx
        return None

    async def aget(self, tenant_id: int) -> RoutingContext:
        now = self.clock()
        if now - self._checked_at >= VERSION_CHECK_INTERVAL:
            self._checked_at = now
            try:
                self._apply_version(await async_client().get(VERSION_KEY))
            except Exception:  # Redis down: keep serving cached config until CONTEXT_TTL
                log.warning("config version check failed; using cached routing context")
        ctx = self._fresh(tenant_id)
        if ctx is None:
            version = self._version
            ctx = await sync_to_async(releasing_connection(build_context))(tenant_id)
            self._keep(ctx, version)
        return ctx

    def _keep(self, ctx: RoutingContext, version: int | None) -> None:
        ctx.built_at = self.clock()
        # A change seen (by a concurrent request) while this was built may postdate what it
        # read: keeping it would serve the old configuration until CONTEXT_TTL.
        if self._version == version:
            self._contexts[ctx.tenant_id] = ctx

    def get(self, tenant_id: int) -> RoutingContext:
        try:
            self._apply_version(sync_client().get(VERSION_KEY))
        except Exception:
            log.warning("config version check failed; using cached routing context")
        ctx = self._fresh(tenant_id)
        if ctx is None:
            version = self._version
            ctx = build_context(tenant_id)
            self._keep(ctx, version)
        return ctx


cache = ContextCache()
# A change written in this process is in force here at once, not after the next check.
changes.on_change(cache.clear)
