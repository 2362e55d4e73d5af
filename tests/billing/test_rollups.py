"""Daily rollups: recomputed per tenant-local day from usage records, idempotently."""

from __future__ import annotations

import importlib
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django_celery_beat.models import PeriodicTask

from aura.celery import app as celery_app
from billing.models import DailyRollup, JobClaim, UsageRecord
from billing.rollups import REFRESH_JOB, rollups_refresh
from billing.tasks import refresh_rollups
from tenants.models import ApiKey, Tenant
from tenants.services import api_key_create

NY = "America/New_York"


def usage(tenant: Tenant, at: datetime, **fields: Any) -> UsageRecord:
    values: dict[str, Any] = {
        "request_id": f"req-{UsageRecord.objects.count()}",
        "provider": "openai",
        "model": "gpt-small",
        "status": "ok",
        "prompt_tokens": 100,
        "completion_tokens": 10,
        "cost_usd": Decimal("0.0100"),
    }
    values.update(fields)
    return UsageRecord.objects.create(tenant=tenant, created_at=at, **values)


@pytest.fixture
def ny_tenant(acme: Tenant) -> Tenant:
    acme.timezone = NY
    acme.save(update_fields=["timezone"])
    return acme


@pytest.fixture
def key(ny_tenant: Tenant) -> ApiKey:
    return api_key_create(tenant=ny_tenant, name="app")[0]


def rows(tenant: Tenant) -> list[DailyRollup]:
    return list(DailyRollup.objects.for_tenant(tenant).order_by("day", "model", "api_key_id"))


def test_it_aggregates_usage_by_tenant_local_day(ny_tenant: Tenant, key: ApiKey) -> None:
    # 2025-03-04 03:00 UTC is 22:00 on March 3rd in New York: it belongs to March 3rd.
    usage(ny_tenant, datetime(2025, 3, 4, 3, 0, tzinfo=UTC), api_key=key)
    usage(
        ny_tenant,
        datetime(2025, 3, 3, 14, 0, tzinfo=UTC),
        api_key=key,
        status="error",
        prompt_tokens=0,
        completion_tokens=0,
        cost_usd=0,
    )
    usage(
        ny_tenant,
        datetime(2025, 3, 3, 15, 0, tzinfo=UTC),
        api_key=key,
        cache_status="exact",
        cost_usd=Decimal("0.0250"),
    )
    # No key, twice: one row (NULL keys are not distinct in the unique constraint).
    usage(ny_tenant, datetime(2025, 3, 3, 16, 0, tzinfo=UTC))
    usage(ny_tenant, datetime(2025, 3, 3, 17, 0, tzinfo=UTC))
    # 05:30 UTC on the 4th is 00:30 on the 4th in New York: another day.
    usage(ny_tenant, datetime(2025, 3, 4, 5, 30, tzinfo=UTC), api_key=key)

    result = rollups_refresh(days=[date(2025, 3, 3)], tenant_ids=[ny_tenant.pk])

    assert result == {"tenants": 1, "days": 1, "rows": 2, "deleted": 0}
    keyed, keyless = sorted(rows(ny_tenant), key=lambda r: r.api_key_id is None)
    assert (keyed.day, keyed.api_key_id) == (date(2025, 3, 3), key.pk)
    assert keyed.requests == 3
    assert keyed.errors == 1
    assert keyed.prompt_tokens == 200
    assert keyed.completion_tokens == 20
    assert keyed.cost_usd == Decimal("0.0350")
    assert keyed.cache_hits == 1
    assert keyed.cache_savings_usd == 0
    assert (keyless.api_key_id, keyless.requests, keyless.cost_usd) == (None, 2, Decimal("0.02"))


def test_recomputing_replaces_figures_and_picks_up_late_records(ny_tenant: Tenant) -> None:
    day = date(2025, 3, 3)
    usage(ny_tenant, datetime(2025, 3, 3, 12, tzinfo=UTC))
    rollups_refresh(days=[day], tenant_ids=[ny_tenant.pk])
    rollups_refresh(days=[day], tenant_ids=[ny_tenant.pk])
    [row] = rows(ny_tenant)
    assert (row.requests, row.cost_usd) == (1, Decimal("0.01"))

    usage(ny_tenant, datetime(2025, 3, 3, 13, tzinfo=UTC), cost_usd=Decimal("0.05"))
    rollups_refresh(days=[day], tenant_ids=[ny_tenant.pk])

    [row] = rows(ny_tenant)
    assert (row.requests, row.cost_usd) == (2, Decimal("0.06"))


def test_rows_whose_usage_disappeared_are_deleted(ny_tenant: Tenant) -> None:
    day = date(2025, 3, 3)
    usage(ny_tenant, datetime(2025, 3, 3, 12, tzinfo=UTC), model="gone")
    usage(ny_tenant, datetime(2025, 3, 3, 12, tzinfo=UTC), model="kept")
    rollups_refresh(days=[day], tenant_ids=[ny_tenant.pk])
    UsageRecord.objects.filter(model="gone").delete()

    result = rollups_refresh(days=[day], tenant_ids=[ny_tenant.pk])

    assert result["deleted"] == 1
    assert [r.model for r in rows(ny_tenant)] == ["kept"]


def test_other_tenants_and_days_are_left_alone(ny_tenant: Tenant, globex: Tenant) -> None:
    usage(ny_tenant, datetime(2025, 3, 3, 12, tzinfo=UTC))
    usage(ny_tenant, datetime(2025, 3, 5, 12, tzinfo=UTC))
    usage(globex, datetime(2025, 3, 3, 12, tzinfo=UTC))

    rollups_refresh(days=[date(2025, 3, 3)], tenant_ids=[ny_tenant.pk])

    assert [r.day for r in rows(ny_tenant)] == [date(2025, 3, 3)]
    assert rows(globex) == []


def test_one_day_is_one_statement_using_the_tenant_time_index(ny_tenant: Tenant) -> None:
    usage(ny_tenant, datetime(2025, 3, 3, 12, tzinfo=UTC))
    with CaptureQueriesContext(connection) as queries:
        rollups_refresh(days=[date(2025, 3, 3)], tenant_ids=[ny_tenant.pk])
    # 1: the tenants; 2: the upsert+delete statement (plus savepoint bookkeeping, if any).
    statements = [q["sql"] for q in queries.captured_queries if "SAVEPOINT" not in q["sql"]]
    assert len(statements) == 2
    assert "ON CONFLICT ON CONSTRAINT rollup_unique_row" in statements[1]


def test_by_default_it_refreshes_each_tenants_local_today_and_yesterday(
    ny_tenant: Tenant, globex: Tenant
) -> None:
    # 2025-03-05 02:00 UTC: March 4th in New York, March 5th in UTC (globex).
    now = datetime(2025, 3, 5, 2, 0, tzinfo=UTC)
    for tenant in (ny_tenant, globex):
        for day in (2, 3, 4, 5):
            usage(tenant, datetime(2025, 3, day, 1, 0, tzinfo=UTC))

    with time_machine.travel(now, tick=False):
        result = rollups_refresh()

    assert result["tenants"] == 2
    # New York's 01:00 UTC records fall on the day before: Mar 1..4; today/yesterday = 3, 4.
    assert [r.day for r in rows(ny_tenant)] == [date(2025, 3, 3), date(2025, 3, 4)]
    assert [r.day for r in rows(globex)] == [date(2025, 3, 4), date(2025, 3, 5)]


def test_a_tenant_without_recent_usage_is_skipped(ny_tenant: Tenant) -> None:
    usage(ny_tenant, datetime(2025, 1, 1, 12, tzinfo=UTC))
    with time_machine.travel(datetime(2025, 3, 5, 12, tzinfo=UTC), tick=False):
        assert rollups_refresh()["tenants"] == 0


def test_a_double_fired_beat_refreshes_only_once(ny_tenant: Tenant) -> None:
    start = datetime(2025, 3, 5, 12, 0, tzinfo=UTC)
    usage(ny_tenant, start - timedelta(hours=1))
    with time_machine.travel(start, tick=False) as traveller:
        first = refresh_rollups()
        second = refresh_rollups()
        assert first is not None and first["rows"] == 1
        assert second is None
        claim = JobClaim.objects.get(name=REFRESH_JOB)
        assert claim.last_result == first

        traveller.shift(timedelta(minutes=10))
        assert refresh_rollups() is not None


def test_the_default_schedules_name_registered_tasks(db: Any) -> None:
    from django.apps import apps

    migration = importlib.import_module("billing.migrations.0003_default_schedules")
    PeriodicTask.objects.filter(name__in=[migration.REFRESH, migration.WEEKLY]).delete()
    migration.create_schedules(apps, None)
    migration.create_schedules(apps, None)  # idempotent

    refresh = PeriodicTask.objects.get(name=migration.REFRESH)
    weekly = PeriodicTask.objects.get(name=migration.WEEKLY)
    assert refresh.interval is not None
    assert (refresh.interval.every, refresh.interval.period) == (10, "minutes")
    assert weekly.crontab is not None
    assert (weekly.crontab.minute, weekly.crontab.hour) == ("0", "*")
    celery_app.loader.import_default_modules()
    assert refresh.task in celery_app.tasks
    assert weekly.task in celery_app.tasks
