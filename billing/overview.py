"""The console overview's figures for one tenant: spend today / this week / this month
against budgets, traffic, latency, cache and savings, charts over time and by model and
provider, and a month-end forecast with a range.

Everything is current: completed days come from the rollups, today (and any day not yet
rolled up) from the usage records themselves (``billing.rollups.spend_rows``), so the last
minute's requests are in today's spend. Latency percentiles and the hourly chart read the
usage records directly (tenant + time index).
"""

from __future__ import annotations

import math
import statistics
import zoneinfo
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db import connection
from django.utils import timezone

from aura.money import usd
from billing.reports import baseline_cost, budget_status, premium_baseline_model
from billing.rollups import local_today, spend_rows
from routing.models import CatalogModel
from tenants.models import Tenant

DAYS_CHARTED = 30
HOURS_CHARTED = 24
LATENCY_WINDOW = timedelta(days=7)
# A 90 % range for the month-end forecast (normal approximation of the daily spend).
FORECAST_Z = 1.645


@dataclass(frozen=True, slots=True)
class Bar:
    label: str
    value: float
    text: str  # the value as shown (money, count)
    pct: float  # of the largest bar, 0..100


def bars(points: list[tuple[str, float, str]]) -> list[Bar]:
    top = max((v for _, v, _ in points), default=0.0)
    return [Bar(lbl, v, t, (v / top * 100) if top > 0 else 0.0) for lbl, v, t in points]


@dataclass(frozen=True, slots=True)
class Column:
    x: float
    y: float
    w: float
    h: float
    label: str
    text: str
    tick: bool  # label shown under the axis


def columns(
    points: list[Bar], *, width: int = 640, height: int = 150, ticks: int = 6
) -> dict[str, Any]:
    """Geometry of a server-side SVG column chart (no JavaScript needed to read it)."""
    n = max(len(points), 1)
    slot = width / n
    every = max(1, math.ceil(n / ticks))
    cols = [
        Column(
            x=round(i * slot + slot * 0.12, 2),
            y=round(height - max(b.pct, 0.0) / 100 * height, 2),
            w=round(slot * 0.76, 2),
            h=round(max(b.pct, 0.0) / 100 * height, 2),
            label=b.label,
            text=b.text,
            tick=(i % every == 0),
        )
        for i, b in enumerate(points)
    ]
    top = max(points, key=lambda b: b.value, default=None)
    return {
        "columns": cols,
        "width": width,
        "height": height,
        "max_text": top.text if top is not None and top.value > 0 else "",
        "empty": all(b.value <= 0 for b in points),
    }


def _percentiles(tenant_id: int, since: datetime) -> tuple[float | None, float | None, int]:
    with connection.cursor() as cur:
        cur.execute(
            """
            SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY latency_ms),
                   percentile_cont(0.95) WITHIN GROUP (ORDER BY latency_ms),
                   count(*)
              FROM billing_usagerecord
             WHERE tenant_id = %s AND created_at >= %s
               AND status = 'ok' AND cache_status = 'miss'
            """,
            [tenant_id, since],
        )
        p50, p95, n = cur.fetchone()
    return p50, p95, n


def _hourly(tenant: Tenant, now: datetime) -> list[dict[str, Any]]:
    """Requests, errors and spend per hour over the last ``HOURS_CHARTED`` hours."""
    tz = zoneinfo.ZoneInfo(tenant.timezone)
    end = now.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    start = end - timedelta(hours=HOURS_CHARTED)
    with connection.cursor() as cur:
        cur.execute(
            """
            SELECT date_trunc('hour', created_at) AS hour, count(*),
                   count(*) FILTER (WHERE status <> 'ok'), coalesce(sum(cost_usd), 0)
              FROM billing_usagerecord
             WHERE tenant_id = %s AND created_at >= %s AND created_at < %s
             GROUP BY 1
            """,
            [tenant.pk, start, end],
        )
        found = {row[0]: row[1:] for row in cur.fetchall()}
    out = []
    for i in range(HOURS_CHARTED):
        hour = start + timedelta(hours=i)
        n, errors, cost = found.get(hour, (0, 0, Decimal(0)))
        out.append({"hour": hour.astimezone(tz), "requests": n, "errors": errors, "cost_usd": cost})
    return out


def _forecast(
    spent: Decimal, daily: list[Decimal], days_left: int
) -> tuple[Decimal, Decimal, Decimal]:
    """Month-end spend: what is spent plus the mean of the recent completed days for each
    day left (today counted as half left), with a 90 % range from their spread."""
    if not daily:
        return spent, spent, spent
    mean = statistics.fmean(float(d) for d in daily)
    sd = statistics.pstdev(float(d) for d in daily) if len(daily) > 1 else mean
    left = days_left - 0.5
    point = float(spent) + mean * left
    half = FORECAST_Z * sd * math.sqrt(max(left, 0.0))
    low = max(float(spent), point - half)
    q = Decimal("0.01")
    return (
        Decimal(str(point)).quantize(q),
        Decimal(str(low)).quantize(q),
        Decimal(str(point + half)).quantize(q),
    )


def overview_data(tenant: Tenant, *, now: datetime | None = None) -> dict[str, Any]:
    now = now or timezone.now()
    today = local_today(tenant.timezone, now)
    month_start = today.replace(day=1)
    week_start = today - timedelta(days=today.weekday())
    chart_start = today - timedelta(days=DAYS_CHARTED - 1)
    since = min(month_start, week_start, chart_start)
    rows = spend_rows(tenant_ids=[tenant.pk], since=since, until=today)

    def total(start: date, name: str = "cost_usd") -> Any:
        zero: Any = Decimal(0) if name.endswith("_usd") else 0
        return sum((r[name] for r in rows if r["day"] >= start), zero)

    measures = ("requests", "errors", "prompt_tokens", "completion_tokens", "cache_hits")
    month = {name: total(month_start, name) for name in measures}
    month_cost = total(month_start)
    month_savings = total(month_start, "cache_savings_usd")
    baseline = premium_baseline_model(tenant)
    baseline_total = Decimal(0)
    chat_cost = Decimal(0)
    by_day: dict[date, dict[str, Any]] = defaultdict(lambda: {"cost": Decimal(0), "requests": 0})
    models: dict[str, Decimal] = defaultdict(Decimal)
    model_requests: dict[str, int] = defaultdict(int)
    providers: dict[str, Decimal] = defaultdict(Decimal)
    for r in rows:
        d = by_day[r["day"]]
        d["cost"] += r["cost_usd"]
        d["requests"] += r["requests"]
        if r["day"] >= month_start:
            key = f"{r['provider']}/{r['model']}"
            models[key] += r["cost_usd"]
            model_requests[key] += r["requests"]
            providers[r["provider"]] += r["cost_usd"]
            if r["kind"] == CatalogModel.Kind.CHAT and baseline is not None:
                b = baseline_cost(baseline, r["prompt_tokens"], r["completion_tokens"])
                baseline_total += b or Decimal(0)
                chat_cost += r["cost_usd"]

    days = [chart_start + timedelta(days=i) for i in range(DAYS_CHARTED)]
    spend_chart = bars([(d.strftime("%b %d"), float(by_day[d]["cost"]), usd(by_day[d]["cost"]))
                        for d in days])  # fmt: skip
    hourly = _hourly(tenant, now)
    hourly_chart = bars(
        [(h["hour"].strftime("%H:00"), float(h["requests"]), str(h["requests"])) for h in hourly]
    )
    model_chart = bars(
        [
            (m, float(c), f"{usd(c)} · {model_requests[m]} req")
            for m, c in sorted(models.items(), key=lambda kv: (-kv[1], kv[0]))[:8]
        ]
    )
    provider_chart = bars(
        [
            (p, float(c), usd(c))
            for p, c in sorted(providers.items(), key=lambda kv: (-kv[1], kv[0]))
        ]
    )

    # Forecast from the month's completed days (the last 14 days early in a month).
    completed = [d for d in days if d < today]
    recent = [by_day[d]["cost"] for d in completed if d >= month_start] or [
        by_day[d]["cost"] for d in completed[-14:]
    ]
    next_month = (month_start + timedelta(days=32)).replace(day=1)
    days_left = (next_month - today).days
    point, low, high = _forecast(month_cost, recent, days_left)

    p50, p95, latency_n = _percentiles(tenant.pk, now - LATENCY_WINDOW)
    requests = month["requests"]
    budgets = budget_status(tenant, now)
    gauges: dict[str, list[dict[str, Any]]] = {"day": [], "week": [], "month": []}
    for budget in budgets:
        if budget["period_key"] in gauges and budget["scope"] == "whole tenant":
            gauges[budget["period_key"]].append(budget)
    return {
        "today": today,
        "spend": {
            "today": usd(total(today)),
            "week": usd(total(week_start)),
            "month": usd(month_cost),
        },
        "gauges": gauges,
        "budgets": budgets,
        "month": {
            **month,
            "tokens": month["prompt_tokens"] + month["completion_tokens"],
            "error_rate_pct": round(month["errors"] / requests * 100, 1) if requests else 0.0,
            "cache_hit_pct": round(month["cache_hits"] / requests * 100, 1) if requests else 0.0,
            "cache_savings": usd(month_savings),
            "baseline_model": baseline.key if baseline is not None else None,
            "baseline_savings": usd(baseline_total - chat_cost) if baseline is not None else None,
        },
        "latency": {
            "p50_ms": round(p50) if p50 is not None else None,
            "p95_ms": round(p95) if p95 is not None else None,
            "requests": latency_n,
            "window_days": LATENCY_WINDOW.days,
        },
        "forecast": {
            "point": usd(point),
            "low": usd(low),
            "high": usd(high),
            "days_left": days_left,
            "based_on_days": len(recent),
        },
        "spend_chart": columns(spend_chart),
        "hourly_chart": columns(hourly_chart),
        "model_chart": model_chart,
        "provider_chart": provider_chart,
    }
