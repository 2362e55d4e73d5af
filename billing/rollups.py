"""Daily rollups of usage records, per tenant-local day; spend rows read from them; the
JobClaim helper.

``rollups_refresh`` recomputes whole days from ``UsageRecord``: for each (tenant, day) one
statement aggregates the day's records and upserts them into ``DailyRollup`` (replacing
the figures, never adding to them) and deletes that day's rollup rows whose group no longer
has usage. Recomputing a day is therefore idempotent and heals late-arriving records; the
periodic task recomputes today and yesterday, which covers the usage writer's spool delay.

``spend_rows`` is what every spend figure reads (the spend summary API, the weekly report,
its page and CSV): rollup rows for the days that are completely rolled up, and the same
aggregation computed live from usage records for the days after them (today, usually), so
figures are current without waiting for the next refresh and no day is counted twice. A
tenant's days are complete up to the latest day whose rollup was refreshed at least
``ROLLUP_SETTLE`` after that day ended.

``cache_savings_usd`` sums what cache hits would have cost upstream (each hit's usage
record carries its original call's cost; a hit itself costs 0).
"""

from __future__ import annotations

import zoneinfo
from collections.abc import Iterable, Sequence
from datetime import date, datetime, time, timedelta
from typing import Any

from django.db import connection, transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone

from billing.models import DailyRollup, JobClaim, UsageRecord
from tenants.models import Tenant

REFRESH_JOB = "billing.refresh_rollups"
# A double-fired beat (or a retry) within this window does nothing; operators may schedule
# the task more often than this only by lowering it.
REFRESH_MIN_GAP = timedelta(minutes=1)

# The figures of one rollup row (DailyRollup.MEASURES), aggregated
# from usage records ``u``: stored by the refresh, computed live by spend_rows.
_MEASURES_SQL = """count(*) AS requests,
           count(*) FILTER (WHERE u.status <> 'ok') AS errors,
           coalesce(sum(u.prompt_tokens), 0) AS prompt_tokens,
           coalesce(sum(u.completion_tokens), 0) AS completion_tokens,
           coalesce(sum(u.cost_usd), 0) AS cost_usd,
           count(*) FILTER (WHERE u.cache_status <> 'miss') AS cache_hits,
           coalesce(sum(u.cache_savings_usd), 0) AS cache_savings_usd"""

# One statement per (tenant, day). The WHERE clause uses UTC bounds so that the
# (tenant, created_at) index serves it; the GROUP BY day expression is constant within the
# bounds but keeps the row's day derived from the record itself. The DELETE sees the rows
# as they were before the statement, so it keeps exactly the rows the upsert touched.
_REFRESH_TEMPLATE = """
WITH agg AS (
    SELECT u.tenant_id,
           (u.created_at AT TIME ZONE %(tz)s)::date AS day,
           u.api_key_id, u.provider, u.model, u.kind, {measures}
      FROM billing_usagerecord u
     WHERE u.tenant_id = %(tenant_id)s
       AND u.created_at >= %(start)s AND u.created_at < %(end)s
     GROUP BY 1, 2, 3, 4, 5, 6
), upserted AS (
    INSERT INTO billing_dailyrollup AS r
           (tenant_id, day, api_key_id, provider, model, kind, requests, errors,
            prompt_tokens, completion_tokens, cost_usd, cache_hits, cache_savings_usd,
            updated_at)
    SELECT tenant_id, day, api_key_id, provider, model, kind, requests, errors,
           prompt_tokens, completion_tokens, cost_usd, cache_hits, cache_savings_usd, now()
      FROM agg
    ON CONFLICT ON CONSTRAINT rollup_unique_row DO UPDATE SET
           requests = EXCLUDED.requests,
           errors = EXCLUDED.errors,
           prompt_tokens = EXCLUDED.prompt_tokens,
           completion_tokens = EXCLUDED.completion_tokens,
           cost_usd = EXCLUDED.cost_usd,
           cache_hits = EXCLUDED.cache_hits,
           cache_savings_usd = EXCLUDED.cache_savings_usd,
           updated_at = EXCLUDED.updated_at
    RETURNING r.id
), deleted AS (
    DELETE FROM billing_dailyrollup d
     WHERE d.tenant_id = %(tenant_id)s AND d.day = %(day)s
       AND d.id NOT IN (SELECT id FROM upserted)
    RETURNING d.id
)
SELECT (SELECT count(*) FROM upserted), (SELECT count(*) FROM deleted)
"""

# A day counts as rolled up once a refresh ran at least this long after the day ended: by
# then the records of requests that started before midnight have been written.
ROLLUP_SETTLE = timedelta(minutes=10)
_ROW_COLUMNS = (
    "tenant_id",
    "day",
    "api_key_id",
    "provider",
    "model",
    "kind",
    *DailyRollup.MEASURES,
)

# One statement: per tenant, the last completely rolled-up day in [since, until] (index
# (tenant, day)); rollup rows up to it; live aggregates of the usage records after it up
# to ``until`` (index (tenant, created_at), one range per tenant).
_SPEND_ROWS_TEMPLATE = """
WITH tenants AS (
    SELECT t.id, t.timezone FROM tenants_tenant t
     WHERE %(all_tenants)s OR t.id = ANY(%(tenant_ids)s)
), complete AS (
    SELECT r.tenant_id, max(r.day) AS last_day
      FROM billing_dailyrollup r JOIN tenants t ON t.id = r.tenant_id
     WHERE r.day >= %(since)s AND r.day <= %(until)s
       AND r.updated_at >= ((r.day + 1)::timestamp AT TIME ZONE t.timezone) + %(settle)s
     GROUP BY r.tenant_id
), live AS (
    SELECT t.id AS tenant_id, t.timezone,
           (greatest(%(since)s, c.last_day + 1)::timestamp AT TIME ZONE t.timezone) AS start_at,
           ((%(until)s + 1)::timestamp AT TIME ZONE t.timezone) AS end_at
      FROM tenants t LEFT JOIN complete c ON c.tenant_id = t.id
)
SELECT r.tenant_id, r.day, r.api_key_id, r.provider, r.model, r.kind, r.requests, r.errors,
       r.prompt_tokens, r.completion_tokens, r.cost_usd, r.cache_hits, r.cache_savings_usd
  FROM billing_dailyrollup r JOIN complete c ON c.tenant_id = r.tenant_id
 WHERE r.day >= %(since)s AND r.day <= c.last_day
UNION ALL
SELECT l.tenant_id, (u.created_at AT TIME ZONE l.timezone)::date AS day,
       u.api_key_id, u.provider, u.model, u.kind, {measures}
  FROM live l JOIN billing_usagerecord u
    ON u.tenant_id = l.tenant_id AND u.created_at >= l.start_at AND u.created_at < l.end_at
 GROUP BY 1, 2, 3, 4, 5, 6
"""
_REFRESH_SQL = _REFRESH_TEMPLATE.format(measures=_MEASURES_SQL)
_SPEND_ROWS_SQL = _SPEND_ROWS_TEMPLATE.format(measures=_MEASURES_SQL)


def day_bounds(day: date, tz_name: str) -> tuple[datetime, datetime]:
    """UTC-aware [start, end) of a tenant-local calendar day (23 or 25 hours across DST)."""
    tz = zoneinfo.ZoneInfo(tz_name)
    start = datetime.combine(day, time.min, tzinfo=tz)
    end = datetime.combine(day + timedelta(days=1), time.min, tzinfo=tz)
    return start, end


def local_today(tz_name: str, now: datetime | None = None) -> date:
    return (now or timezone.now()).astimezone(zoneinfo.ZoneInfo(tz_name)).date()


def rollup_refresh_day(*, tenant_id: int, tz_name: str, day: date) -> tuple[int, int]:
    """Recompute one tenant-local day; returns (rows upserted, rows deleted)."""
    start, end = day_bounds(day, tz_name)
    params: dict[str, Any] = {
        "tz": tz_name,
        "tenant_id": tenant_id,
        "start": start,
        "end": end,
        "day": day,
    }
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(_REFRESH_SQL, params)
        upserted, deleted = cursor.fetchone()
    return int(upserted), int(deleted)


def spend_rows(
    *, tenant_ids: Sequence[int] | None, since: date, until: date
) -> list[dict[str, Any]]:
    """Rollup-shaped rows (``tenant_id``, ``day``, ``api_key_id``, ``provider``, ``model``,
    ``kind`` and ``DailyRollup.MEASURES``) for the tenant-local days [since, until] of
    ``tenant_ids`` (None: every tenant): stored rollups where the days are complete, live
    aggregates of usage records after them (see the module docstring)."""
    params: dict[str, Any] = {
        "since": since,
        "until": until,
        "settle": ROLLUP_SETTLE,
        "all_tenants": tenant_ids is None,
        "tenant_ids": list(tenant_ids or []),
    }
    with connection.cursor() as cursor:
        cursor.execute(_SPEND_ROWS_SQL, params)
        return [dict(zip(_ROW_COLUMNS, row, strict=True)) for row in cursor.fetchall()]


def _tenants_with_usage(tenant_ids: Iterable[int] | None, since: datetime) -> list[Tenant]:
    tenants = Tenant.objects.order_by("pk")
    if tenant_ids is not None:
        return list(tenants.filter(pk__in=list(tenant_ids)))
    # Per-tenant EXISTS probes use the (tenant, created_at) and (tenant, day) indexes; tenants
    # that only have rollups left (records deleted) are included so stale rows get cleaned.
    recent_usage = UsageRecord.objects.filter(tenant_id=OuterRef("pk"), created_at__gte=since)
    recent_rollups = DailyRollup.objects.filter(tenant_id=OuterRef("pk"), day__gte=since.date())
    return list(tenants.filter(Exists(recent_usage) | Exists(recent_rollups)))


def rollups_refresh(
    *,
    days: list[date] | None = None,
    tenant_ids: Iterable[int] | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """Recompute DailyRollup rows from UsageRecord.

    ``days`` are tenant-local dates applied to every selected tenant; by default each
    tenant's own local today and yesterday. ``tenant_ids`` defaults to every tenant with
    usage (or rollups) in the last three days.
    """
    now = now or timezone.now()
    tenants = _tenants_with_usage(tenant_ids, now - timedelta(days=3))
    rows = deleted = day_count = 0
    for tenant in tenants:
        if days is None:
            today = local_today(tenant.timezone, now)
            tenant_days = [today - timedelta(days=1), today]
        else:
            tenant_days = sorted(set(days))
        for day in tenant_days:
            upserted, removed = rollup_refresh_day(
                tenant_id=tenant.pk, tz_name=tenant.timezone, day=day
            )
            rows += upserted
            deleted += removed
            day_count += 1
    return {"tenants": len(tenants), "days": day_count, "rows": rows, "deleted": deleted}


def job_claim(name: str, *, now: datetime, min_gap: timedelta) -> bool:
    """Claim one run of periodic job ``name``: True for exactly one of concurrent callers.

    The claim is a conditional UPDATE on ``next_run_at`` (compare-and-set): of two runs that
    read the same value only one updates a row; a run before ``next_run_at`` does nothing.
    """
    claim, _ = JobClaim.objects.get_or_create(name=name, defaults={"next_run_at": now})
    if claim.next_run_at > now:
        return False
    n = JobClaim.objects.filter(name=name, next_run_at=claim.next_run_at).update(
        next_run_at=now + min_gap, last_run_at=now
    )
    return n == 1


def rollups_refresh_periodic(*, now: datetime | None = None) -> dict[str, Any] | None:
    """The beat job: refresh today and yesterday once per claim; None when not claimed."""
    now = now or timezone.now()
    if not job_claim(REFRESH_JOB, now=now, min_gap=REFRESH_MIN_GAP):
        return None
    result = rollups_refresh(now=now)
    JobClaim.objects.filter(name=REFRESH_JOB).update(last_result=result)
    return result
