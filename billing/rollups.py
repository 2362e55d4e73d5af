"""Daily rollups of usage records, per tenant-local day, and the JobClaim helper.

``rollups_refresh`` recomputes whole days from ``UsageRecord``: for each (tenant, day) one
statement aggregates the day's records and upserts them into ``DailyRollup`` (replacing
the figures, never adding to them) and deletes that day's rollup rows whose group no longer
has usage. Recomputing a day is therefore idempotent and heals late-arriving records; the
periodic task recomputes today and yesterday, which covers the usage writer's spool delay.

``cache_savings_usd`` is written as 0: there is no response cache yet. When the cache lands,
the gateway should record what a hit would have cost (e.g. in the usage record) and this
statement should sum it.
"""

from __future__ import annotations

import zoneinfo
from collections.abc import Iterable
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

# One statement per (tenant, day). The WHERE clause uses UTC bounds so that the
# (tenant, created_at) index serves it; the GROUP BY day expression is constant within the
# bounds but keeps the row's day derived from the record itself. The DELETE sees the rows
# as they were before the statement, so it keeps exactly the rows the upsert touched.
_REFRESH_SQL = """
WITH agg AS (
    SELECT u.tenant_id,
           (u.created_at AT TIME ZONE %(tz)s)::date AS day,
           u.api_key_id, u.provider, u.model, u.kind,
           count(*) AS requests,
           count(*) FILTER (WHERE u.status <> 'ok') AS errors,
           coalesce(sum(u.prompt_tokens), 0) AS prompt_tokens,
           coalesce(sum(u.completion_tokens), 0) AS completion_tokens,
           coalesce(sum(u.cost_usd), 0) AS cost_usd,
           count(*) FILTER (WHERE u.cache_status <> 'miss') AS cache_hits
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
           prompt_tokens, completion_tokens, cost_usd, cache_hits, 0, now()
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
