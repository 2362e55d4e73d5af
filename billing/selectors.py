"""Reads of money data: budget periods and spend, usage listings, spend summaries.

Budget periods are calendar periods in the tenant's time zone (``zoneinfo``): an hour, a
day from local midnight, a week from Monday 00:00, a month from the 1st 00:00. Period
arithmetic is done on local *dates* and converted to UTC afterwards, because adding a
``timedelta`` to an aware ``zoneinfo`` datetime is wall-clock arithmetic and goes wrong
across DST changes. Spend summaries read ``billing.rollups.spend_rows``: rollups for
completed days, live usage records for the days after them.
"""

from __future__ import annotations

import zoneinfo
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo
from decimal import Decimal
from typing import Any

from django.db.models import Q, QuerySet, Sum
from django.utils import timezone

from aura.money import plain_decimal
from billing.models import Budget, UsageRecord
from billing.periods import PERIODS
from billing.periods import period_bounds as budget_period_bounds
from billing.rollups import spend_rows
from routing.policy.document import BUDGET_KEYS
from tenants.models import ApiKey, Tenant

ZERO = Decimal(0)
TOP_KEYS = 10
CSV_MAX_ROWS = 1_000_000
CSV_CHUNK_ROWS = 5_000
CSV_COLUMNS: tuple[str, ...] = (
    "created_at",
    "request_id",
    "api_key_id",
    "kind",
    "provider",
    "model",
    "status",
    "http_status",
    "prompt_tokens",
    "completion_tokens",
    "cost_usd",
    "cost_estimated",
    "latency_ms",
    "ttft_ms",
    "cache_status",
    "fallbacks",
)


# --------------------------------------------------------------------------- periods


def tenant_tz(tenant: Tenant) -> tzinfo:
    try:
        return zoneinfo.ZoneInfo(tenant.timezone or "UTC")
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return UTC


def _next_month(day: date) -> date:
    return date(day.year + 1, 1, 1) if day.month == 12 else date(day.year, day.month + 1, 1)


def period_bounds(period: str, *, now: datetime, tz: tzinfo) -> tuple[datetime, datetime] | None:
    """[start, end) in UTC of the ``period`` containing ``now``; None for per-request.

    The one definition is billing.periods.period_bounds (the gateway enforces with it)."""
    if period not in PERIODS:
        return None
    return budget_period_bounds(period, now, tz)


@dataclass(frozen=True, slots=True)
class CurrentPeriod:
    start: datetime
    end: datetime
    spent_usd: Decimal


def budgets_current_periods(
    *, tenant: Tenant, budgets: Sequence[Budget], now: datetime | None = None
) -> dict[int, CurrentPeriod | None]:
    """Each budget's current period and what was spent in it, in one aggregate query.

    The query reads the tenant's usage from the earliest period start on (index
    ``usage_tenant_time``) and sums per budget with ``FILTER`` clauses.
    """
    now = now or timezone.now()
    tz = tenant_tz(tenant)
    bounds = {b.pk: period_bounds(b.period, now=now, tz=tz) for b in budgets}
    sums: dict[str, Any] = {}
    for b in budgets:
        window = bounds[b.pk]
        if window is None:
            continue
        cond = Q(created_at__gte=window[0], created_at__lt=window[1])
        if b.api_key_id is not None:
            cond &= Q(api_key_id=b.api_key_id)
        sums[f"b{b.pk}"] = Sum("cost_usd", filter=cond)
    spent: dict[str, Any] = {}
    if sums:
        earliest = min(w[0] for w in bounds.values() if w is not None)
        spent = UsageRecord.objects.filter(tenant_id=tenant.pk, created_at__gte=earliest).aggregate(
            **sums
        )
    result: dict[int, CurrentPeriod | None] = {}
    for b in budgets:
        window = bounds[b.pk]
        if window is None:
            result[b.pk] = None
        else:
            total = spent.get(f"b{b.pk}") or ZERO
            result[b.pk] = CurrentPeriod(start=window[0], end=window[1], spent_usd=total)
    return result


def budgets_policy_map(*, tenant_id: int) -> dict[str, float]:
    """The enabled tenant-wide budgets as the routing policy shows them:
    ``{"per_request": 0.05, "per_day": 50.0}`` (document.BUDGET_KEYS order)."""
    limits = dict(
        Budget.objects.filter(tenant_id=tenant_id, api_key__isnull=True, enabled=True)
        .values_list("period", "limit_usd")
        .order_by()
    )
    return {
        key: float(limits[key.removeprefix("per_")])
        for key in BUDGET_KEYS
        if key.removeprefix("per_") in limits
    }


# --------------------------------------------------------------------------- usage


def usage_records(
    *,
    tenant_ids: Iterable[int] | None,
    since: datetime | None = None,
    until: datetime | None = None,
    api_key_id: int | None = None,
    provider: str | None = None,
    model: str | None = None,
    status: str | None = None,
    kind: str | None = None,
) -> QuerySet[UsageRecord]:
    """Usage records, newest first. ``tenant_ids=None`` means every tenant (operators)."""
    qs = UsageRecord.objects.all()
    if tenant_ids is not None:
        qs = qs.filter(tenant_id__in=list(tenant_ids))
    if since is not None:
        qs = qs.filter(created_at__gte=since)
    if until is not None:
        qs = qs.filter(created_at__lt=until)
    if api_key_id is not None:
        qs = qs.filter(api_key_id=api_key_id)
    if provider:
        qs = qs.filter(provider=provider)
    if model:
        qs = qs.filter(model=model)
    if status:
        qs = qs.filter(status=status)
    if kind:
        qs = qs.filter(kind=kind)
    return qs.order_by("-created_at", "-id")


def _csv_cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
    if isinstance(value, Decimal):
        return plain_decimal(value)  # str() would write a zero cost as 0E-10
    return value


def usage_csv_chunks(
    qs: QuerySet[UsageRecord],
    *,
    with_tenant: bool = False,
    max_rows: int = CSV_MAX_ROWS,
    chunk_rows: int = CSV_CHUNK_ROWS,
) -> Iterator[list[list[Any]]]:
    """The rows of ``qs`` (newest first) as CSV cells, ``chunk_rows`` at a time.

    Keyset pagination on (created_at, id) rather than one server-side cursor: each chunk
    is a short independent query, so a slow client holds no cursor or transaction open.
    """
    fields = ["tenant__slug", *CSV_COLUMNS] if with_tenant else list(CSV_COLUMNS)
    base = qs.order_by("-created_at", "-id")
    sent = 0
    last: tuple[datetime, int] | None = None
    while sent < max_rows:
        page = base
        if last is not None:
            page = page.filter(Q(created_at__lt=last[0]) | Q(created_at=last[0], id__lt=last[1]))
        size = min(chunk_rows, max_rows - sent)
        rows = list(page.values_list("created_at", "id", *fields)[:size])
        if not rows:
            return
        yield [[_csv_cell(v) for v in row[2:]] for row in rows]
        sent += len(rows)
        if len(rows) < size:
            return
        last = (rows[-1][0], rows[-1][1])


# --------------------------------------------------------------------------- spend


def current_month(tz: tzinfo, *, now: datetime | None = None) -> tuple[date, date]:
    """First and last day of the month containing ``now`` in ``tz``."""
    today = (now or timezone.now()).astimezone(tz).date()
    first = today.replace(day=1)
    return first, _next_month(first) - timedelta(days=1)


def _money(value: Any) -> str:
    # Rollups keep 10 decimal places; summaries show 6 (a millionth of a dollar).
    return f"{Decimal(value or 0).quantize(Decimal('0.000001')):f}"


@dataclass(slots=True)
class _Sums:
    cost: Decimal = ZERO
    requests: int = 0
    errors: int = 0
    prompt: int = 0
    completion: int = 0
    cache_hits: int = 0
    savings: Decimal = ZERO

    def add(self, row: Mapping[str, Any]) -> None:
        self.cost += row["cost_usd"]
        self.requests += row["requests"]
        self.errors += row["errors"]
        self.prompt += row["prompt_tokens"]
        self.completion += row["completion_tokens"]
        self.cache_hits += row["cache_hits"]
        self.savings += row["cache_savings_usd"]

    def body(self) -> dict[str, Any]:
        return {
            "cost_usd": _money(self.cost),
            "requests": self.requests,
            "errors": self.errors,
            "prompt_tokens": self.prompt,
            "completion_tokens": self.completion,
            "total_tokens": self.prompt + self.completion,
            "cache_hits": self.cache_hits,
            "cache_savings_usd": _money(self.savings),
        }


def _grouped(rows: Iterable[Mapping[str, Any]], *fields: str) -> dict[tuple[Any, ...], _Sums]:
    groups: dict[tuple[Any, ...], _Sums] = {}
    for row in rows:
        key = tuple(row[f] for f in fields)
        sums = groups.get(key)
        if sums is None:
            sums = groups[key] = _Sums()
        sums.add(row)
    return groups


def _by_cost(groups: dict[tuple[Any, ...], _Sums]) -> list[tuple[tuple[Any, ...], _Sums]]:
    """Costliest first, then by the group's names (None last)."""
    return sorted(
        groups.items(),
        key=lambda kv: (-kv[1].cost, *((v is None, v if v is not None else 0) for v in kv[0])),
    )


def spend_summary(
    *, tenant_ids: Sequence[int] | None, since: date, until: date, per_tenant: bool = False
) -> dict[str, Any]:
    """Spend of ``tenant_ids`` (None: all tenants) over the days [since, until], inclusive.

    Totals plus breakdowns by day, provider, model and the top API keys by cost, all from
    ``billing.rollups.spend_rows`` (rollups for completed days, live usage for the days
    after them, so today counts); ``per_tenant`` adds a breakdown by tenant for operators.
    """
    rows = spend_rows(tenant_ids=tenant_ids, since=since, until=until)
    totals = _Sums()
    for row in rows:
        totals.add(row)
    by_day = [
        {"day": day.isoformat(), **sums.body()}
        for (day,), sums in sorted(_grouped(rows, "day").items())
    ]
    by_provider = [
        {"provider": provider, **sums.body()}
        for (provider,), sums in _by_cost(_grouped(rows, "provider"))
    ]
    by_model = [
        {"provider": provider, "model": model, **sums.body()}
        for (provider, model), sums in _by_cost(_grouped(rows, "provider", "model"))
    ]
    key_groups = _grouped(rows, "api_key_id")
    top = _by_cost(key_groups)[:TOP_KEYS]
    keys = {
        k.pk: k
        for k in ApiKey.objects.filter(pk__in=[key_id for (key_id,), _ in top if key_id])
        .select_related("tenant")
        .only("id", "name", "prefix", "tenant__slug")
    }
    by_api_key = []
    for (key_id,), sums in top:
        key = keys.get(key_id)
        entry: dict[str, Any] = {
            "api_key": key_id,
            "name": key.name if key else None,
            "masked": key.masked if key else None,
        }
        if per_tenant:
            entry["tenant"] = key.tenant.slug if key else None
        by_api_key.append({**entry, **sums.body()})
    body: dict[str, Any] = {
        "since": since.isoformat(),
        "until": until.isoformat(),
        "totals": totals.body(),
        "by_day": by_day,
        "by_provider": by_provider,
        "by_model": by_model,
        "by_api_key": by_api_key,
        "other_api_keys": len(key_groups) - len(top),
    }
    if per_tenant:
        tenant_groups = _grouped(rows, "tenant_id")
        slugs = dict(
            Tenant.objects.filter(pk__in=[t for (t,) in tenant_groups]).values_list("pk", "slug")
        )
        named = {(slugs.get(t),): sums for (t,), sums in tenant_groups.items()}
        body["by_tenant"] = [{"tenant": slug, **sums.body()} for (slug,), sums in _by_cost(named)]
    return body
