"""Provider health checks: one round probes every due endpoint, folds in what real traffic
saw, moves each endpoint's state with hysteresis, records flips and publishes the board.

A round (``health_round``, run by the ``check_providers`` task every few seconds and by
``manage.py check_providers``):

1. **Targets.** Every enabled endpoint a request could reach is a target, named as the
   gateway names it (``routing.catalog.targets.endpoint_name``): each enabled endpoint row
   (platform or a tenant's own), each provider's built-in base URL that no platform endpoint
   replaces, and each tenant's own key on a shared endpoint (its 401 or quota is its own).
   A target needing a key nobody configured is skipped: routing never sends it anything.
2. **Probe** the due ones (``next_check_at`` passed; claimed by a conditional UPDATE, so a
   double-fired beat probes nothing twice) with the cheapest call the wire format allows:
   the adapter's ``health()`` (a models list) by default, a 1-token completion where the
   endpoint or ``HEALTH_CHECK_MODE`` asks for it (billed: the cost is on the check row, and
   on the tenant's usage when its key paid).
3. **Passive**: per endpoint, the last ``PASSIVE_WINDOW`` of real attempts (usage records'
   attempts): error rate and p95 latency; and whether its circuit breaker is open.
4. **Assess** (``assess``, pure): status healthy / degraded / down / unknown with
   hysteresis (``HEALTH_DOWN_AFTER`` failed probes in a row to go down,
   ``HEALTH_UP_AFTER`` good ones to come back) and a 0..1 score.
5. **Record**: a ``HealthCheck`` row per probe, the state on ``EndpointHealth``, a
   ``HealthFlip`` per state change (alerts are made from flips by another task), and the
   board in Redis (``monitoring.state``) that every gateway process routes by.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from aura.http import public_only as http_public_only
from aura.redis import sync_client
from monitoring.models import EndpointHealth, HealthCheck, HealthFlip, HealthStatus
from monitoring.state import BoardEntry, board_write
from routing.catalog.targets import CredentialSecrets, endpoint_name, pick_credential
from routing.providers import get_adapter
from routing.providers.base import ProviderError, ProviderTarget, Timeouts, redact

log = logging.getLogger(__name__)

# Real traffic considered per round, and the least of it that says anything.
PASSIVE_WINDOW = timedelta(minutes=2)
PASSIVE_MIN_ATTEMPTS = 5
# Error kinds that are the endpoint's fault (as the gateway's breakers count them).
ENDPOINT_ERROR_KINDS = ("server", "timeout", "connection", "malformed", "rate_limit", "auth")
# Attempts that say nothing about the endpoint: nothing was sent, or the caller left.
NOT_ENDPOINT_ATTEMPTS = ("cancelled", "budget", "circuit_open", "overloaded")
# Every upstream attempt since a time (the first parameter), one row each: (endpoint, ok,
# error kind, latency ms, record's tenant, provider, model, stream, ttft ms). A record
# keeps its attempts list only when there was more than one attempt or it failed; a plain
# success is one attempt on the record's own endpoint, its upstream time the latency minus
# the gateway's overhead. Cache hits made no attempt. The BRIN index on created_at limits
# the scan to the recent block ranges.
ATTEMPTS_CTE = """
    recent AS (
        SELECT tenant_id, provider, model, stream, ttft_ms, attempts, endpoint, status,
               latency_ms - coalesce(overhead_ms, 0) AS upstream_ms
          FROM billing_usagerecord
         WHERE created_at >= %s AND cache_status = 'miss'
    ),
    attempts AS (
        SELECT a->>'endpoint' AS endpoint, (a->>'ok')::boolean AS ok, a->>'error' AS error,
               (a->>'latency_ms')::float AS latency_ms, tenant_id, provider, model, stream,
               ttft_ms
          FROM recent, jsonb_array_elements(recent.attempts) a
         WHERE a ? 'endpoint'
        UNION ALL
        SELECT endpoint, true, NULL, upstream_ms, tenant_id, provider, model, stream, ttft_ms
          FROM recent
         WHERE jsonb_array_length(attempts) = 0 AND endpoint <> '' AND status = 'ok'
    )
"""
# Probes of one round run together, at most this many at once.
ROUND_CONCURRENCY = 16
PROBE_PROMPT = "ping"


@dataclass(frozen=True, slots=True)
class ProbeSpec:
    """What to probe for one target, and how."""

    name: str
    provider_id: int
    provider_slug: str
    wire_format: str
    endpoint_id: int | None
    credential_id: int | None
    tenant_id: int | None  # the owner (its endpoint or its key), None for the platform's
    target: ProviderTarget
    mode: str  # models | completion | off
    interval: float
    timeout: float
    public_only: bool
    # Completion probes: the catalog model asked and its prices (USD per million tokens).
    model: str = ""
    input_price: float = 0.0
    output_price: float = 0.0


@dataclass(slots=True)
class ProbeResult:
    ok: bool
    latency_ms: float
    http_status: int | None = None
    error_kind: str = ""
    message: str = ""
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: Decimal = Decimal(0)


@dataclass(frozen=True, slots=True)
class Passive:
    attempts: int
    failures: int
    p95_ms: float | None
    breaker_open: bool = False

    @property
    def successes(self) -> int:
        return self.attempts - self.failures

    @property
    def error_rate(self) -> float:
        return self.failures / self.attempts if self.attempts else 0.0


@dataclass(frozen=True, slots=True)
class Thresholds:
    down_after: int
    up_after: int
    latency_warn_ms: float
    latency_crit_ms: float

    @classmethod
    def from_settings(cls) -> Thresholds:
        warn, crit = settings.SLA_LATENCY_P95_MS
        return cls(settings.HEALTH_DOWN_AFTER, settings.HEALTH_UP_AFTER, warn, crit)


@dataclass(frozen=True, slots=True)
class Verdict:
    status: str
    score: float
    ever_healthy: bool
    failures: int
    successes: int
    reason: str


def assess(
    *,
    status: str,
    ever_healthy: bool,
    failures: int,
    successes: int,
    probe: ProbeResult | None,
    passive: Passive | None,
    limits: Thresholds,
    probing: bool = True,
) -> Verdict:
    """The next state of one endpoint from its previous state, this round's probe (None:
    not probed this round) and its recent traffic. Pure: no clock, no I/O.

    Probes decide ``down`` (``down_after`` failures in a row) and the way back (``up_after``
    good probes in a row); between, one failed probe or bad traffic (error rate >= 50 %,
    p95 latency beyond the warning target, an open breaker) makes it ``degraded``. Without
    probes (``probing`` False: mode off) traffic alone decides, an error rate >= 90 % being
    ``down``. Nothing known at all is ``unknown``.
    """
    reasons: list[str] = []
    if probe is not None:
        if probe.ok:
            failures, successes = 0, successes + 1
        else:
            failures, successes = failures + 1, 0
    active: str | None = None
    if probing and (failures or successes):
        if failures >= limits.down_after:
            active = HealthStatus.DOWN
            reasons.append(f"{failures} failed probes in a row")
        elif status == HealthStatus.DOWN and failures == 0 and successes < limits.up_after:
            active = HealthStatus.DOWN
            reasons.append(f"recovering: {successes}/{limits.up_after} good probes")
        elif failures:
            active = HealthStatus.DEGRADED
            reasons.append(f"{failures} failed probe(s)")
        else:
            active = HealthStatus.HEALTHY
    if probe is not None and not probe.ok and probe.message:
        reasons.append(probe.message[:120])

    traffic_bad = traffic_down = slow = False
    score = 1.0
    if passive is not None:
        if passive.successes > 0:
            ever_healthy = True
        if passive.attempts >= PASSIVE_MIN_ATTEMPTS:
            score *= 1.0 - passive.error_rate
            if passive.error_rate >= 0.5:
                traffic_bad = True
                reasons.append(f"traffic error rate {passive.error_rate:.0%}")
            if passive.error_rate >= 0.9 and passive.attempts >= 2 * PASSIVE_MIN_ATTEMPTS:
                traffic_down = True
        if passive.p95_ms is not None and passive.p95_ms > limits.latency_warn_ms:
            slow = True
            span = max(1.0, limits.latency_crit_ms - limits.latency_warn_ms)
            over = min(1.0, (passive.p95_ms - limits.latency_warn_ms) / span)
            score *= 1.0 - 0.5 * over
            reasons.append(f"p95 latency {passive.p95_ms:.0f} ms")
        if passive.breaker_open:
            traffic_bad = True
            score *= 0.3
            reasons.append("circuit breaker open")
    if active == HealthStatus.HEALTHY or (probe is not None and probe.ok):
        ever_healthy = True

    if active == HealthStatus.DOWN or (not probing and traffic_down):
        new = HealthStatus.DOWN
        score = 0.0
    elif active == HealthStatus.DEGRADED or traffic_bad or slow:
        new = HealthStatus.DEGRADED
        if active == HealthStatus.DEGRADED:
            score *= 0.4
    elif active == HealthStatus.HEALTHY or (passive is not None and passive.successes > 0):
        new = HealthStatus.HEALTHY
    else:
        new = HealthStatus.UNKNOWN
    return Verdict(
        new, max(0.0, min(1.0, score)), ever_healthy, failures, successes, "; ".join(reasons)
    )


# ------------------------------------------------------------------------------ targets


def _cheapest_model(provider: Any, endpoint: Any, models: list[Any]) -> Any | None:
    served = list(endpoint.served_models.all()) if endpoint is not None else []
    pool = [m for m in (served or models) if m.enabled and m.kind == "chat"]
    if endpoint is not None and endpoint.health_check_model:
        named = [m for m in models if m.model_id == endpoint.health_check_model]
        pool = named or pool
    if not pool:
        return None
    return min(pool, key=lambda m: (m.input_price_per_mtok + m.output_price_per_mtok, m.model_id))


def probe_specs() -> list[ProbeSpec]:
    """Every target a request could reach, as of now (a handful of queries)."""
    from routing.models import CatalogModel, Credential, Provider, ProviderEndpoint, RoutingPolicy

    providers = list(Provider.objects.filter(enabled=True))
    models_by_provider: dict[int, list[Any]] = {}
    for m in CatalogModel.objects.filter(enabled=True, provider__enabled=True):
        models_by_provider.setdefault(m.provider_id, []).append(m)
    endpoints = list(
        ProviderEndpoint.objects.filter(enabled=True, provider__enabled=True)
        .select_related("provider")
        .prefetch_related("served_models")
    )
    creds = list(Credential.objects.filter(enabled=True))
    creds_by_provider: dict[int, list[Any]] = {}
    for c in creds:
        creds_by_provider.setdefault(c.provider_id, []).append(c)
    tenants_with_keys: dict[int, set[int]] = {}
    for c in creds:
        if c.tenant_id is not None:
            tenants_with_keys.setdefault(c.provider_id, set()).add(c.tenant_id)
    secrets = CredentialSecrets()
    # Tenants whose own endpoints may be on private addresses (one query, not one each).
    private_ok = set(
        RoutingPolicy.objects.filter(allow_private_base_urls=True).values_list(
            "tenant_id", flat=True
        )
    )

    specs: list[ProbeSpec] = []
    default_mode = settings.HEALTH_CHECK_MODE

    def add(provider: Any, ep: Any, owner: int | None) -> None:
        models = models_by_provider.get(provider.pk, [])
        if not models:
            return  # nothing of it is routable
        cred = pick_credential(creds_by_provider.get(provider.pk, []), owner, ep)
        if owner is not None and ep is not None and ep.tenant_id is None:
            # A tenant's key on a shared endpoint: only when its key is the one used.
            if cred is None or cred.tenant_id != owner:
                return
        secret = secrets.of(cred)
        needs_key = ep.needs_api_key if ep is not None else provider.needs_api_key
        if needs_key and secret is None:
            return
        mode = (ep.health_check_mode if ep is not None else "") or default_mode
        interval = (ep.health_check_interval if ep is not None else None) or (
            settings.HEALTH_CHECK_INTERVAL
        )
        timeout = (ep.health_check_timeout if ep is not None else None) or (
            settings.HEALTH_CHECK_TIMEOUT
        )
        model = _cheapest_model(provider, ep, models) if mode == "completion" else None
        if mode == "completion" and model is None:
            mode = "models"
        upstream = model.model_id if model is not None else ""
        if model is not None and ep is not None:
            upstream = (ep.deployments or {}).get(model.model_id) or upstream
        allow_private = ep is not None and ep.tenant_id in private_ok
        base_url = ep.base_url if ep is not None else provider.default_base_url
        specs.append(
            ProbeSpec(
                name=endpoint_name(provider.slug, ep, cred),
                provider_id=provider.pk,
                provider_slug=provider.slug,
                wire_format=provider.wire_format,
                endpoint_id=ep.pk if ep is not None else None,
                credential_id=cred.pk if cred is not None else None,
                tenant_id=owner,
                target=ProviderTarget(
                    base_url=base_url.rstrip("/"),
                    api_key=secret,
                    upstream_model=upstream,
                    api_version=(ep.api_version or None) if ep is not None else None,
                    extra_headers=dict(ep.extra_headers or {}) if ep is not None else {},
                    timeouts=Timeouts(min(timeout, 5.0), timeout, timeout),
                    max_output=1,
                ),
                mode=mode,
                interval=float(interval),
                timeout=float(timeout),
                public_only=ep is not None and ep.tenant_id is not None and not allow_private,
                model=model.model_id if model is not None else "",
                input_price=float(model.input_price_per_mtok) if model is not None else 0.0,
                output_price=float(model.output_price_per_mtok) if model is not None else 0.0,
            )
        )

    eps_by_provider: dict[int, list[Any]] = {}
    for ep in endpoints:
        eps_by_provider.setdefault(ep.provider_id, []).append(ep)
    # The built-in base URL serves only where no platform endpoint replaces it (the
    # gateway's rule, in routing.gateway.context; disabled rows count as configured).
    configured = set(
        ProviderEndpoint.objects.filter(tenant__isnull=True).values_list("provider_id", flat=True)
    )
    for provider in providers:
        eps = eps_by_provider.get(provider.pk, [])
        shared = [ep for ep in eps if ep.tenant_id is None]
        places: list[Any] = list(shared)
        if provider.default_base_url and provider.pk not in configured:
            places.append(None)
        for ep in eps:
            if ep.tenant_id is not None:
                add(provider, ep, ep.tenant_id)
        for place in places:
            add(provider, place, None)
            for tenant_id in sorted(tenants_with_keys.get(provider.pk, ())):
                add(provider, place, tenant_id)
    seen: set[str] = set()
    unique = []
    for spec in specs:
        if spec.name not in seen:
            seen.add(spec.name)
            unique.append(spec)
    return unique


def _sync_targets(specs: list[ProbeSpec]) -> dict[str, EndpointHealth]:
    """EndpointHealth rows for ``specs`` (created or updated), others marked inactive."""
    rows = {r.name: r for r in EndpointHealth.objects.all()}
    for spec in specs:
        wanted = {
            "provider_id": spec.provider_id,
            "endpoint_id": spec.endpoint_id,
            "credential_id": spec.credential_id,
            "tenant_id": spec.tenant_id,
            "active": True,
        }
        row = rows.get(spec.name)
        if row is None:
            row = EndpointHealth.objects.create(name=spec.name, **wanted)
            rows[spec.name] = row
        elif any(getattr(row, k) != v for k, v in wanted.items()):
            for k, v in wanted.items():
                setattr(row, k, v)
            row.save(update_fields=[k.removesuffix("_id") for k in wanted])
    names = {s.name for s in specs}
    EndpointHealth.objects.filter(active=True).exclude(name__in=names).update(active=False)
    return {name: rows[name] for name in names}


# ------------------------------------------------------------------------------ probing


async def probe(spec: ProbeSpec) -> ProbeResult:
    """One probe. Never raises: every failure is a result."""
    adapter = get_adapter(spec.wire_format)
    guard = http_public_only.set(spec.public_only)
    started = time.perf_counter()
    try:
        if spec.mode == "completion":
            body = {
                "model": spec.model,
                "messages": [{"role": "user", "content": PROBE_PROMPT}],
                "max_tokens": 1,
                "stream": False,
            }
            completion = await asyncio.wait_for(
                adapter.complete(spec.target, body), spec.timeout + 1
            )
            ms = (time.perf_counter() - started) * 1000
            usage = completion.usage
            prompt = usage.prompt_tokens if usage is not None else 1
            out = usage.completion_tokens if usage is not None else 1
            cost = (
                Decimal(prompt) * Decimal(str(spec.input_price))
                + Decimal(out) * Decimal(str(spec.output_price))
            ) / Decimal(1_000_000)
            return ProbeResult(
                True, ms, 200, prompt_tokens=prompt, completion_tokens=out, cost_usd=cost
            )
        await asyncio.wait_for(adapter.health(spec.target), spec.timeout + 1)
        return ProbeResult(True, (time.perf_counter() - started) * 1000, 200)
    except ProviderError as exc:
        ms = (time.perf_counter() - started) * 1000
        message = redact(exc.message, spec.target.api_key)
        return ProbeResult(False, ms, exc.status, exc.kind, message[:300])
    except TimeoutError:
        ms = (time.perf_counter() - started) * 1000
        return ProbeResult(False, ms, None, "timeout", f"no answer within {spec.timeout:g} s")
    except Exception as exc:  # an adapter bug must not end the round for everyone
        log.exception("health probe of %s crashed", spec.name)
        ms = (time.perf_counter() - started) * 1000
        return ProbeResult(False, ms, None, "malformed", f"{type(exc).__name__}"[:300])
    finally:
        http_public_only.reset(guard)


async def _probe_all(specs: list[ProbeSpec]) -> list[ProbeResult]:
    from aura.http import aclose_client

    gate = asyncio.Semaphore(ROUND_CONCURRENCY)

    async def one(spec: ProbeSpec) -> ProbeResult:
        async with gate:
            return await probe(spec)

    try:
        return list(await asyncio.gather(*(one(s) for s in specs)))
    finally:
        await aclose_client()


def probe_many(specs: list[ProbeSpec]) -> list[ProbeResult]:
    """Run probes from synchronous code (a Celery task, a command): a loop of their own."""
    if not specs:
        return []
    return asyncio.run(_probe_all(specs))


# ------------------------------------------------------------------------------ traffic


def _open_breakers() -> list[tuple[Any, float]]:
    from routing.gateway.breaker import OPEN_SET

    raw: Any = sync_client().zrange(OPEN_SET, 0, -1, withscores=True)
    return [(member, float(score)) for member, score in raw]


def passive_stats(since: datetime, names: Iterable[str]) -> dict[str, Passive]:
    """Per endpoint name: attempts, endpoint-fault failures and p95 latency of successful
    attempts since ``since`` (usage records' attempts; the BRIN index on created_at keeps
    this to the recent block ranges), with the breakers' open set."""
    wanted = set(names)
    sql = f"""
        WITH {ATTEMPTS_CTE}
        SELECT endpoint,
               count(*) FILTER (WHERE coalesce(error, '') <> ALL(%s)),
               count(*) FILTER (WHERE NOT ok AND error = ANY(%s)),
               percentile_cont(0.95) WITHIN GROUP (ORDER BY latency_ms) FILTER (WHERE ok)
          FROM attempts
         GROUP BY endpoint
    """  # noqa: S608 - constants only; values are parameters
    with connection.cursor() as cur:
        cur.execute(sql, [since, list(NOT_ENDPOINT_ATTEMPTS), list(ENDPOINT_ERROR_KINDS)])
        rows = cur.fetchall()
    try:
        open_set = {
            (m.decode() if isinstance(m, bytes) else str(m))
            for m, until in _open_breakers()
            if float(until) > time.time()
        }
    except Exception:
        log.warning("circuit-breaker state unreadable; health scores without it")
        open_set = set()
    stats: dict[str, Passive] = {}
    for ep, attempts, failures, p95 in rows:
        if ep in wanted:
            stats[ep] = Passive(int(attempts), int(failures), float(p95) if p95 else None)
    for ep in open_set & wanted:
        found = stats.get(ep, Passive(0, 0, None))
        stats[ep] = Passive(found.attempts, found.failures, found.p95_ms, breaker_open=True)
    return stats


# ------------------------------------------------------------------------------ the round


@dataclass(slots=True)
class RoundReport:
    targets: int = 0
    probed: int = 0
    failed: int = 0
    flips: list[tuple[str, str, str]] = field(default_factory=list)
    statuses: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "targets": self.targets,
            "probed": self.probed,
            "failed": self.failed,
            "flips": [list(f) for f in self.flips],
            "statuses": self.statuses,
        }


def _claim_due(
    rows: dict[str, EndpointHealth], specs: list[ProbeSpec], now: datetime, force: bool
) -> list[ProbeSpec]:
    due = []
    for spec in specs:
        if spec.mode == "off":
            continue
        row = rows[spec.name]
        if not force and row.next_check_at is not None and row.next_check_at > now:
            continue
        # Claim: a second round started meanwhile (a double-fired beat) finds it taken.
        claimed = EndpointHealth.objects.filter(pk=row.pk, next_check_at=row.next_check_at).update(
            next_check_at=now + timedelta(seconds=spec.interval)
        )
        if claimed == 1:
            due.append(spec)
    return due


def _charge_tenant(spec: ProbeSpec, result: ProbeResult, now: datetime) -> None:
    """A completion probe paid with a tenant's own key shows up in its usage."""
    from billing.models import UsageRecord

    assert spec.tenant_id is not None

    UsageRecord.objects.create(
        tenant_id=spec.tenant_id,
        created_at=now,
        request_id=f"health_{uuid.uuid4().hex[:24]}",
        kind="health_check",
        provider=spec.provider_slug,
        model=f"{spec.provider_slug}/{spec.model}",
        endpoint_id=spec.endpoint_id,
        status=UsageRecord.Status.OK,
        http_status=200,
        prompt_tokens=result.prompt_tokens,
        completion_tokens=result.completion_tokens,
        cost_usd=result.cost_usd,
        latency_ms=result.latency_ms,
    )


def health_round(*, now: datetime | None = None, force: bool = False) -> RoundReport:
    """One round (see the module docstring). ``force``: probe every target now."""
    now = now or timezone.now()
    limits = Thresholds.from_settings()
    specs = probe_specs()
    rows = _sync_targets(specs)
    due = _claim_due(rows, specs, now, force)
    results = dict(zip((s.name for s in due), probe_many(due), strict=True))
    passive = passive_stats(now - PASSIVE_WINDOW, rows)
    report = RoundReport(targets=len(specs), probed=len(due))
    entries: dict[str, BoardEntry] = {}
    flipped = False
    expires = time.time() + 3 * max(s.interval for s in specs) + 60 if specs else 0.0
    for spec in specs:
        row = rows[spec.name]
        result = results.get(spec.name)
        verdict = assess(
            status=row.status,
            ever_healthy=row.ever_healthy,
            failures=row.consecutive_failures,
            successes=row.consecutive_successes,
            probe=result,
            passive=passive.get(spec.name),
            limits=limits,
            probing=spec.mode != "off",
        )
        with transaction.atomic():
            if result is not None:
                HealthCheck.objects.create(
                    target=row,
                    checked_at=now,
                    mode=spec.mode,
                    ok=result.ok,
                    latency_ms=round(result.latency_ms, 2),
                    http_status=result.http_status,
                    error_kind=result.error_kind,
                    message=result.message[:300],
                    prompt_tokens=result.prompt_tokens,
                    completion_tokens=result.completion_tokens,
                    cost_usd=result.cost_usd,
                )
                if spec.mode == "completion" and result.ok and spec.tenant_id is not None:
                    _charge_tenant(spec, result, now)
                report.failed += 0 if result.ok else 1
                row.last_checked_at = now
                row.last_latency_ms = round(result.latency_ms, 2)
                row.last_error = "" if result.ok else result.message[:300]
                if result.ok:
                    row.last_ok_at = now
            old = row.status
            if verdict.status != old:
                HealthFlip.objects.create(
                    target=row,
                    created_at=now,
                    old_status=old,
                    new_status=verdict.status,
                    reason=verdict.reason[:300],
                )
                row.status_changed_at = now
                report.flips.append((spec.name, old, verdict.status))
                flipped = True
            row.status = verdict.status
            row.score = round(verdict.score, 4)
            row.ever_healthy = verdict.ever_healthy
            row.consecutive_failures = verdict.failures
            row.consecutive_successes = verdict.successes
            p = passive.get(spec.name)
            row.passive = (
                {
                    "attempts": p.attempts,
                    "failures": p.failures,
                    "p95_ms": round(p.p95_ms, 1) if p.p95_ms is not None else None,
                    "breaker_open": p.breaker_open,
                }
                if p is not None
                else {}
            )
            row.save(
                update_fields=[
                    "status",
                    "score",
                    "ever_healthy",
                    "consecutive_failures",
                    "consecutive_successes",
                    "last_checked_at",
                    "last_latency_ms",
                    "last_error",
                    "last_ok_at",
                    "status_changed_at",
                    "passive",
                ]
            )
        report.statuses[spec.name] = verdict.status
        entries[spec.name] = BoardEntry(
            status=verdict.status,
            score=verdict.score,
            provider=spec.provider_slug,
            ever_healthy=verdict.ever_healthy,
            expires=expires,
        )
    try:
        board_write(sync_client(), entries, keep=set(entries))
    except Exception:
        log.exception("could not publish the health board")
    if flipped:
        transaction.on_commit(_enqueue_flips)
    return report


def _enqueue_flips() -> None:
    from monitoring.tasks import process_flips

    try:
        process_flips.delay()
    except Exception:  # the broker is down: the flips wait for the next scheduled run
        log.warning("could not enqueue flip processing; the beat schedule will pick them up")


def health_targets_for(tenant_id: int | None) -> Any:
    """Targets a tenant may see (its own, and the platform's), or all for operators."""
    qs = EndpointHealth.objects.filter(active=True).select_related("provider", "endpoint")
    if tenant_id is None:
        return qs
    return qs.filter(Q(tenant__isnull=True) | Q(tenant_id=tenant_id))


# How long probe results are kept: the longest SLA window, and a day of slack.
CHECK_RETENTION = timedelta(days=8)


def health_checks_prune(*, now: datetime | None = None) -> int:
    now = now or timezone.now()
    deleted, _ = HealthCheck.objects.filter(checked_at__lt=now - CHECK_RETENTION).delete()
    HealthFlip.objects.filter(
        created_at__lt=now - CHECK_RETENTION, processed_at__isnull=False
    ).delete()
    return deleted
