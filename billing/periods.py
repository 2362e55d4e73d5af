"""Budget periods: the one definition of when an hour, day, week or month starts and ends
in a tenant's time zone. The gateway enforces budgets with it, and spend, alerts and
reports are counted with it, so they always agree."""

from __future__ import annotations

import zoneinfo
from datetime import UTC, datetime, timedelta, tzinfo

PERIODS = ("hour", "day", "week", "month")
# A per-request budget caps each request; it has no calendar period.
REQUEST = "request"


def period_bounds(period: str, now: datetime, tz_name: str | tzinfo) -> tuple[datetime, datetime]:
    """[start, end) in UTC of the calendar period containing ``now``, in the tenant's zone.

    Hours are absolute (60 minutes, also across a DST change); days, weeks (Monday) and
    months run from local midnight to local midnight.
    """
    tz = zoneinfo.ZoneInfo(tz_name) if isinstance(tz_name, str) else tz_name
    local = now.astimezone(tz)
    if period == "hour":
        start = local.replace(minute=0, second=0, microsecond=0).astimezone(UTC)
        return start, start + timedelta(hours=1)
    day = local.replace(hour=0, minute=0, second=0, microsecond=0, tzinfo=None)
    if period == "day":
        s, e = day, day + timedelta(days=1)
    elif period == "week":
        s = day - timedelta(days=day.weekday())
        e = s + timedelta(days=7)
    elif period == "month":
        s = day.replace(day=1)
        e = (s + timedelta(days=32)).replace(day=1)
    else:
        raise ValueError(f"budget period {period!r} has no calendar bounds")
    # Local midnights (DST-safe: attach the zone to the naive wall time, then convert).
    return s.replace(tzinfo=tz).astimezone(UTC), e.replace(tzinfo=tz).astimezone(UTC)


def budget_period_bounds(period: str, tz_name: str, at: datetime) -> tuple[datetime, datetime]:
    """[start, end) of the budget period containing ``at``; a per-request budget has no
    calendar period: ``(at, at)``."""
    if period == REQUEST:
        return at, at
    return period_bounds(period, at, tz_name)
