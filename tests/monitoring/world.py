"""Builders for SLA tests: providers, endpoints, probed targets, probe results and usage
records with known numbers, at known times (no clock is read)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from billing.models import UsageRecord
from monitoring.models import EndpointHealth, HealthCheck
from routing.models import CatalogModel, Provider, ProviderEndpoint
from tenants.models import Tenant

NOW = datetime(2025, 6, 2, 12, 0, tzinfo=UTC)


def provider(slug: str = "alpha") -> Provider:
    return Provider.objects.create(slug=slug, name=slug.title(), wire_format="openai")


def model(p: Provider, model_id: str) -> CatalogModel:
    return CatalogModel.objects.create(provider=p, model_id=model_id)


def endpoint(
    p: Provider, name: str, *, tenant: Tenant | None = None, serves: Sequence[CatalogModel] = ()
) -> ProviderEndpoint:
    ep = ProviderEndpoint.objects.create(
        provider=p, tenant=tenant, name=name, base_url="https://93.184.216.34/v1"
    )
    ep.served_models.set(serves)
    return ep


def target(
    name: str,
    p: Provider,
    *,
    ep: ProviderEndpoint | None = None,
    tenant: Tenant | None = None,
    **state: Any,
) -> EndpointHealth:
    return EndpointHealth.objects.create(name=name, provider=p, endpoint=ep, tenant=tenant, **state)


def checks(
    t: EndpointHealth, ok: int, failed: int, *, at: datetime | None = None, every: int = 30
) -> None:
    """``ok`` good then ``failed`` failed probes, one every ``every`` seconds back from
    ``at`` (default: a minute before NOW)."""
    start = at or NOW - timedelta(minutes=1)
    rows = [
        HealthCheck(
            target=t,
            checked_at=start - timedelta(seconds=every * i),
            ok=i < ok,
            latency_ms=20.0,
            error_kind="" if i < ok else "server",
        )
        for i in range(ok + failed)
    ]
    HealthCheck.objects.bulk_create(rows)


def attempt(
    key: str,
    endpoint_name: str | None,
    *,
    ok: bool = True,
    error: str | None = None,
    latency_ms: float = 50.0,
) -> dict[str, Any]:
    a: dict[str, Any] = {"model": key, "provider": key.split("/", 1)[0], "ok": ok}
    if endpoint_name:
        a["endpoint"] = endpoint_name
    if not ok:
        a.update(error=error, status=500, message="boom")
    a["latency_ms"] = latency_ms
    return a


def record(
    tenant: Tenant,
    *,
    at: datetime | None = None,
    provider: str = "alpha",
    model: str = "m1",
    ep: ProviderEndpoint | None = None,
    status: str = "ok",
    latency_ms: float = 100.0,
    ttft_ms: float | None = None,
    stream: bool = False,
    completion_tokens: int = 0,
    cache_status: str = "miss",
    attempts: Sequence[dict[str, Any]] = (),
    kind: str = "chat",
    error_code: str = "",
) -> UsageRecord:
    return UsageRecord.objects.create(
        tenant=tenant,
        created_at=at or NOW - timedelta(minutes=5),
        request_id=uuid.uuid4().hex,
        kind=kind,
        provider=provider,
        model=model,
        endpoint_id=ep.pk if ep else None,
        status=status,
        http_status=200 if status == "ok" else 502,
        error_code=error_code,
        stream=stream,
        completion_tokens=completion_tokens,
        latency_ms=latency_ms,
        ttft_ms=ttft_ms,
        cache_status=cache_status,
        attempts=list(attempts),
    )


def oks(
    tenant: Tenant,
    n: int,
    *,
    latency_ms: float = 100.0,
    at: datetime | None = None,
    **fields: Any,
) -> None:
    for _ in range(n):
        record(tenant, latency_ms=latency_ms, at=at, **fields)


def failures(
    tenant: Tenant, n: int, *, ep: ProviderEndpoint, key: str = "alpha/m1", **fields: Any
) -> None:
    """``n`` requests that failed at ``ep`` with a server error (no fallback)."""
    for _ in range(n):
        record(
            tenant,
            ep=None,
            status="error",
            attempts=[attempt(key, f"ep{ep.pk}", ok=False, error="server")],
            **fields,
        )
