"""Weekly cost reports: the data (billing.rollups.spend_rows), the email, the weekly job.

Savings vs the premium baseline: every chat rollup row's prompt and completion tokens are
priced at the tenant's *premium baseline* model, and the row's actual cost is subtracted.
The baseline is the enabled chat model (enabled provider) with the highest mean catalog
quality (mean of its per-category scores; models without quality data are ignored) among
those the tenant's RoutingPolicy allows by its allowed/denied providers and models (other
policy rules such as local_only or max cost are not applied: the baseline answers "what if
every request had gone to the best model you allow"). Ties go to the pricier model, then
to the model key. Embedding rows are left out of both sides. Savings can be negative when
traffic went to models pricier than the baseline.
"""

from __future__ import annotations

import zoneinfo
from collections import defaultdict
from collections.abc import Mapping
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from functools import partial
from typing import Any

from django.conf import settings
from django.core import signing
from django.db import transaction
from django.db.models import Exists, OuterRef, Sum
from django.utils import timezone

from aura import emails
from aura.money import plain_decimal, usd
from billing.models import Budget, DailyRollup, UsageRecord, WeeklyReport
from billing.periods import budget_period_bounds
from billing.rollups import local_today, rollups_refresh, spend_rows
from routing.models import CatalogModel, RoutingPolicy, WeightOptimization
from routing.policy.convert import policy_to_engine
from tenants.models import ADMIN_ROLES, ApiKey, Membership, Tenant

MTOK = Decimal(1_000_000)
REPORT_HOUR = 8  # tenant-local hour on Monday from which last week's report is due
TOP_KEYS = 5


# --------------------------------------------------------------------------- formatting


def _pct(part: Decimal | int, whole: Decimal | int) -> int:
    """Bar width in whole percent of the largest value (0..100)."""
    if not whole or part <= 0:
        return 0
    return max(1, min(100, round(Decimal(part) / Decimal(whole) * 100)))


def _jsonable(value: Any) -> Any:
    if isinstance(value, Decimal):
        return plain_decimal(value)
    if isinstance(value, date | datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


# --------------------------------------------------------------------------- weeks


def last_full_week_start(tenant: Tenant, now: datetime | None = None) -> date:
    """Monday of the last complete Monday..Sunday week in the tenant's time zone."""
    today = local_today(tenant.timezone, now)
    return today - timedelta(days=today.weekday() + 7)


def _check_monday(week_start: date) -> None:
    if week_start.weekday() != 0:
        raise ValueError(f"week_start {week_start.isoformat()} is not a Monday")


# --------------------------------------------------------------------------- baseline


def _allowed(policy: Any, model: CatalogModel) -> bool:
    provider = model.provider.slug
    key = f"{provider}/{model.model_id}"
    if provider in policy.denied_providers:
        return False
    if policy.allowed_providers is not None and provider not in policy.allowed_providers:
        return False
    if key in policy.denied_models or model.model_id in policy.denied_models:
        return False
    allowed = policy.allowed_models
    return allowed is None or key in allowed or model.model_id in allowed


def _mean_quality(model: CatalogModel) -> float | None:
    values = [float(v) for v in (model.quality or {}).values() if isinstance(v, int | float)]
    return sum(values) / len(values) if values else None


def premium_baseline_model(tenant: Tenant) -> CatalogModel | None:
    """The tenant's best-quality allowed chat model (see the module docstring)."""
    policy = policy_to_engine(RoutingPolicy.objects.for_tenant(tenant).first())
    best: tuple[float, Decimal, Decimal, str] | None = None
    best_model: CatalogModel | None = None
    models = CatalogModel.objects.filter(
        enabled=True, provider__enabled=True, kind=CatalogModel.Kind.CHAT
    ).select_related("provider")
    for model in models:
        quality = _mean_quality(model)
        if quality is None or not _allowed(policy, model):
            continue
        rank = (quality, model.output_price_per_mtok, model.input_price_per_mtok, model.key)
        if best is None or rank > best:
            best, best_model = rank, model
    return best_model


def baseline_cost(model: CatalogModel | None, prompt: int, completion: int) -> Decimal | None:
    if model is None:
        return None
    return (
        Decimal(prompt) * model.input_price_per_mtok
        + Decimal(completion) * model.output_price_per_mtok
    ) / MTOK


# --------------------------------------------------------------------------- data


def budget_status(tenant: Tenant, now: datetime) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    budgets = (
        Budget.objects.for_tenant(tenant)
        .filter(enabled=True)
        .exclude(period=Budget.Period.REQUEST)  # no period spend to show
        .select_related("api_key")
        .order_by("api_key_id", "period", "pk")
    )
    for budget in budgets:
        start, end = budget_period_bounds(budget.period, tenant.timezone, now)
        usage = UsageRecord.objects.for_tenant(tenant).filter(
            created_at__gte=start, created_at__lt=end
        )
        if budget.api_key_id:
            usage = usage.filter(api_key_id=budget.api_key_id)
        spent = usage.aggregate(s=Sum("cost_usd"))["s"] or Decimal(0)
        percent = spent / budget.limit_usd * 100 if budget.limit_usd else Decimal(0)
        tz = zoneinfo.ZoneInfo(tenant.timezone)
        out.append(
            {
                "id": budget.pk,
                "scope": f"key {budget.api_key.name}" if budget.api_key else "whole tenant",
                "period": budget.get_period_display(),
                "period_key": budget.period,
                "mode": budget.get_mode_display(),
                "limit_usd": budget.limit_usd,
                "limit": usd(budget.limit_usd),
                "spent_usd": spent,
                "spent": usd(spent),
                "percent_used": percent.quantize(Decimal("0.1")),
                "bar_pct": min(100, _pct(spent, budget.limit_usd)),
                "over": spent >= budget.limit_usd,
                "resets_at": end.astimezone(tz).strftime("%Y-%m-%d %H:%M"),
            }
        )
    return out


def _weights_text(w: Mapping[str, Any] | None) -> str:
    if not w:
        return "-"
    return " / ".join(f"{k} {float(w[k]):g}" for k in ("quality", "cost", "latency"))


def _routing_changes(tenant: Tenant, week_start: date) -> list[dict[str, Any]]:
    """The weight optimizer's runs in the week (tenant-local Monday 00:00 to Monday 00:00):
    what it proposed or applied, on what evidence, and what became of it."""
    tz = zoneinfo.ZoneInfo(tenant.timezone)
    start = datetime.combine(week_start, time.min, tzinfo=tz)
    runs = WeightOptimization.objects.filter(
        tenant=tenant, created_at__gte=start, created_at__lt=start + timedelta(days=7)
    ).order_by("created_at", "id")
    out = []
    for run in runs:
        figures = run.figures or {}
        before, after = figures.get("before") or {}, figures.get("after") or {}
        out.append(
            {
                "id": run.pk,
                "when": run.created_at.astimezone(tz).strftime("%a %Y-%m-%d %H:%M"),
                "trigger": run.get_trigger_display(),
                "method": run.method,
                "goal": run.goal,
                "status": run.get_status_display(),
                "applied": run.status == WeightOptimization.Status.APPLIED,
                "message": run.message,
                "weights_before": _weights_text(run.weights_before),
                "weights_after": _weights_text(run.weights_after),
                "objective_before": run.objective_before,
                "quality_before": before.get("quality"),
                "quality_after": after.get("quality"),
                "cost_before": usd(Decimal(str(before["cost_usd"]))) if before else None,
                "cost_after": usd(Decimal(str(after["cost_usd"]))) if after else None,
                "cases": after.get("cases"),
            }
        )
    return out


def weekly_report_data(
    tenant: Tenant, week_start: date, *, now: datetime | None = None
) -> dict[str, Any]:
    """Everything the weekly report shows, computed from billing.rollups.spend_rows (rollups
    for completed days, live usage after them; budgets excepted: their current-period spend
    comes from UsageRecord, because periods need not be whole days)."""
    _check_monday(week_start)
    now = now or timezone.now()
    week_end = week_start + timedelta(days=7)
    previous_start = week_start - timedelta(days=7)
    # Completed days from their rollups, the rest (today) live from usage records.
    rollups = spend_rows(
        tenant_ids=[tenant.pk], since=previous_start, until=week_end - timedelta(days=1)
    )
    this_week = [r for r in rollups if r["day"] >= week_start]
    previous_cost = sum((r["cost_usd"] for r in rollups if r["day"] < week_start), Decimal(0))
    baseline = premium_baseline_model(tenant)

    days: dict[date, dict[str, Any]] = {
        week_start + timedelta(days=i): {"requests": 0, "errors": 0, "cost_usd": Decimal(0)}
        for i in range(7)
    }
    providers: dict[str, dict[str, Any]] = defaultdict(
        lambda: {"requests": 0, "tokens": 0, "cost_usd": Decimal(0)}
    )
    models: dict[tuple[str, str, str], dict[str, Any]] = defaultdict(
        lambda: {"requests": 0, "prompt_tokens": 0, "completion_tokens": 0, "cost_usd": Decimal(0)}
    )
    keys: dict[int | None, dict[str, Any]] = defaultdict(
        lambda: {"requests": 0, "cost_usd": Decimal(0)}
    )
    rows: dict[tuple[date, str, str], dict[str, Any]] = {}
    totals: dict[str, Any] = {
        "requests": 0,
        "errors": 0,
        "prompt_tokens": 0,
        "completion_tokens": 0,
        "cost_usd": Decimal(0),
        "cache_hits": 0,
        "cache_savings_usd": Decimal(0),
    }
    baseline_total = Decimal(0)
    chat_cost = Decimal(0)
    for r in this_week:
        for name in totals:
            totals[name] += r[name]
        d = days[r["day"]]
        d["requests"] += r["requests"]
        d["errors"] += r["errors"]
        d["cost_usd"] += r["cost_usd"]
        p = providers[r["provider"]]
        p["requests"] += r["requests"]
        p["tokens"] += r["prompt_tokens"] + r["completion_tokens"]
        p["cost_usd"] += r["cost_usd"]
        m = models[(r["provider"], r["model"], r["kind"])]
        for name in ("requests", "prompt_tokens", "completion_tokens", "cost_usd"):
            m[name] += r[name]
        k = keys[r["api_key_id"]]
        k["requests"] += r["requests"]
        k["cost_usd"] += r["cost_usd"]
        row = rows.setdefault(
            (r["day"], r["provider"], r["model"]),
            {
                "day": r["day"],
                "provider": r["provider"],
                "model": r["model"],
                "requests": 0,
                "errors": 0,
                "prompt_tokens": 0,
                "completion_tokens": 0,
                "cost_usd": Decimal(0),
                "cache_hits": 0,
                "cache_savings_usd": Decimal(0),
                "baseline_cost_usd": Decimal(0) if baseline is not None else None,
                "baseline_savings_usd": Decimal(0) if baseline is not None else None,
            },
        )
        for name in DailyRollup.MEASURES:
            row[name] += r[name]
        row_baseline = baseline_cost(baseline, r["prompt_tokens"], r["completion_tokens"])
        if r["kind"] == CatalogModel.Kind.CHAT and row_baseline is not None:
            row["baseline_cost_usd"] += row_baseline
            row["baseline_savings_usd"] += row_baseline - r["cost_usd"]
            baseline_total += row_baseline
            chat_cost += r["cost_usd"]

    cost = totals["cost_usd"]
    totals.update(
        {
            "previous_cost_usd": previous_cost,
            "change_pct": ((cost - previous_cost) / previous_cost * 100).quantize(Decimal("0.1"))
            if previous_cost
            else None,
            "total_tokens": totals["prompt_tokens"] + totals["completion_tokens"],
            "error_rate_pct": (Decimal(totals["errors"]) / totals["requests"] * 100).quantize(
                Decimal("0.1")
            )
            if totals["requests"]
            else Decimal(0),
            "baseline_cost_usd": baseline_total if baseline is not None else None,
            "baseline_savings_usd": baseline_total - chat_cost if baseline is not None else None,
        }
    )
    for name in list(totals):
        if name.endswith("_usd"):
            totals[name.removesuffix("_usd")] = usd(totals[name])

    max_day = max((d["cost_usd"] for d in days.values()), default=Decimal(0))
    by_day = [
        {
            "day": day,
            "weekday": day.strftime("%a"),
            **d,
            "cost": usd(d["cost_usd"]),
            "bar_pct": _pct(d["cost_usd"], max_day),
        }
        for day, d in days.items()
    ]
    by_provider = sorted(
        ({"provider": name, **p} for name, p in providers.items()),
        key=lambda p: (-p["cost_usd"], p["provider"]),
    )
    for p in by_provider:
        p["cost"] = usd(p["cost_usd"])
        p["share_pct"] = _pct(p["cost_usd"], cost) if cost else 0
        p["bar_pct"] = _pct(p["cost_usd"], by_provider[0]["cost_usd"])
    by_model = sorted(
        (
            {"provider": prov, "model": model, "kind": kind, **m}
            for (prov, model, kind), m in models.items()
        ),
        key=lambda m: (-m["cost_usd"], m["provider"], m["model"]),
    )
    for m in by_model:
        m["cost"] = usd(m["cost_usd"])
        m["bar_pct"] = _pct(m["cost_usd"], by_model[0]["cost_usd"])
    top = sorted(keys.items(), key=lambda kv: (-kv[1]["cost_usd"], -kv[1]["requests"]))[:TOP_KEYS]
    names = dict(
        ApiKey.objects.for_tenant(tenant)
        .filter(pk__in=[key_id for key_id, _ in top if key_id is not None])
        .values_list("pk", "name")
    )
    top_keys = [
        {
            "name": names.get(key_id, "(deleted key)") if key_id is not None else "(no key)",
            **k,
            "cost": usd(k["cost_usd"]),
        }
        for key_id, k in top
    ]
    row_list = sorted(rows.values(), key=lambda r: (r["day"], r["provider"], r["model"]))
    return {
        "tenant": {
            "id": tenant.pk,
            "name": tenant.name,
            "slug": tenant.slug,
            "timezone": tenant.timezone,
        },
        "week_start": week_start,
        "week_end": week_end - timedelta(days=1),
        "previous_week_start": previous_start,
        "totals": totals,
        "baseline": {
            "model": baseline.key,
            "input_price_per_mtok": baseline.input_price_per_mtok,
            "output_price_per_mtok": baseline.output_price_per_mtok,
        }
        if baseline is not None
        else None,
        "by_day": by_day,
        "by_provider": by_provider,
        "by_model": by_model,
        "top_keys": top_keys,
        "rows": row_list,
        "budgets": budget_status(tenant, now),
        "routing_changes": _routing_changes(tenant, week_start),
    }


# --------------------------------------------------------------------------- email


def weekly_report_recipients(tenant: Tenant) -> list[str]:
    """Admins who have not opted out, then contact emails; an opted-out admin's address is
    left out even when it is also a contact address."""
    admins = list(
        Membership.objects.for_tenant(tenant)
        .filter(role__in=list(ADMIN_ROLES), user__is_active=True)
        .exclude(user__email="")
        .order_by("pk")
        .values_list("user__email", "weekly_report_opt_out")
    )
    opted_out = {email.lower() for email, out in admins if out}
    wanted = [email for email, out in admins if not out] + list(tenant.contact_emails or [])
    seen: set[str] = set()
    result: list[str] = []
    for email in wanted:
        if email and email.lower() not in opted_out and email.lower() not in seen:
            seen.add(email.lower())
            result.append(email)
    return result


OPT_OUT_SALT = "aura.weekly-report.opt-out"


def weekly_report_opt_out_url(membership_id: int) -> str:
    """A signed link that lets one admin stop the weekly report (after a confirm click)."""
    token = signing.dumps({"m": membership_id}, salt=OPT_OUT_SALT)
    return f"{settings.AURA_PUBLIC_URL}/reports/weekly/opt-out/{token}/"


def weekly_report_opt_out_links(tenant: Tenant) -> dict[str, str]:
    """email (lower-case) -> opt-out link, for the tenant's admins."""
    admins = Membership.objects.for_tenant(tenant).filter(role__in=list(ADMIN_ROLES))
    return {
        m.user.email.lower(): weekly_report_opt_out_url(m.pk)
        for m in admins.select_related("user")
        if m.user.email
    }


def weekly_report_url(tenant: Tenant, week_start: date) -> str:
    return (
        f"{settings.AURA_PUBLIC_URL}/reports/weekly/"
        f"?tenant={tenant.slug}&week={week_start.isoformat()}"
    )


def weekly_report_send(
    tenant: Tenant, week_start: date, *, resend: bool = False, now: datetime | None = None
) -> WeeklyReport | None:
    """Email one tenant's report for one week; returns the report, or None when it was
    already sent (or is being sent) by someone else.

    The WeeklyReport row (unique per tenant and week) is created first; whoever then moves
    its ``sent_at`` from null with a conditional UPDATE sends. ``resend`` sends regardless
    and records the new send. If SMTP fails the claim is released and the error re-raised,
    so the task's retry (or the next hourly run) can send it.
    """
    _check_monday(week_start)
    now = now or timezone.now()
    report, _ = WeeklyReport.objects.get_or_create(tenant=tenant, week_start=week_start)
    if not resend:
        claimed = WeeklyReport.objects.filter(pk=report.pk, sent_at__isnull=True).update(
            sent_at=now
        )
        if claimed != 1:
            return None
    # Recompute the reported week first, so late-arriving usage is included.
    rollups_refresh(days=[week_start + timedelta(days=i) for i in range(7)], tenant_ids=[tenant.pk])
    data = weekly_report_data(tenant, week_start, now=now)
    context = {**data, "report_url": weekly_report_url(tenant, week_start)}
    try:
        links = weekly_report_opt_out_links(tenant)
        sent = emails.send(
            "weekly-report",
            to=weekly_report_recipients(tenant),
            context=context,
            per_recipient=lambda address: {"opt_out_url": links.get(address.lower())},
        )
    except Exception:
        if not resend:
            WeeklyReport.objects.filter(pk=report.pk, sent_at=now).update(sent_at=None)
        raise
    WeeklyReport.objects.filter(pk=report.pk).update(
        sent_at=now, recipients=sent, totals=_jsonable(data["totals"])
    )
    report.refresh_from_db()
    return report


def due_weekly_reports(*, now: datetime | None = None) -> list[tuple[Tenant, date]]:
    """(tenant, week) pairs whose report is due and not yet sent.

    Due from Monday 08:00 tenant-local for the Monday..Sunday week just ended; a report
    missed on Monday (beat down) is still sent later that week. Tenants created after the
    week ended and tenants without any usage in that week and the one before are skipped.
    """
    now = now or timezone.now()
    due: list[tuple[Tenant, date]] = []
    for tenant in Tenant.objects.filter(status=Tenant.Status.ACTIVE).order_by("pk"):
        tz = zoneinfo.ZoneInfo(tenant.timezone)
        local = now.astimezone(tz)
        monday = local.date() - timedelta(days=local.weekday())
        if local < datetime.combine(monday, time(REPORT_HOUR), tzinfo=tz):
            continue
        week_start = monday - timedelta(days=7)
        if tenant.created_at >= datetime.combine(monday, time.min, tzinfo=tz):
            continue
        due.append((tenant, week_start))
    if not due:
        return []
    # Two queries for all candidates, not two per tenant.
    weeks = {week for _, week in due}
    sent = set(
        WeeklyReport.objects.filter(
            tenant_id__in=[t.pk for t, _ in due], week_start__in=weeks, sent_at__isnull=False
        ).values_list("tenant_id", "week_start")
    )
    active_rollups = DailyRollup.objects.filter(
        tenant_id=OuterRef("pk"),
        day__gte=min(weeks) - timedelta(days=7),
        day__lt=max(weeks) + timedelta(days=7),
    )
    with_usage = set(
        Tenant.objects.filter(pk__in=[t.pk for t, _ in due])
        .filter(Exists(active_rollups))
        .values_list("pk", flat=True)
    )
    return [(t, w) for t, w in due if (t.pk, w) not in sent and t.pk in with_usage]


def weekly_reports_enqueue_due(*, now: datetime | None = None) -> list[tuple[int, str]]:
    """Queue one send task per due report (on commit); returns (tenant id, week) pairs."""
    from billing.tasks import send_weekly_report

    queued = [(t.pk, week.isoformat()) for t, week in due_weekly_reports(now=now)]
    for tenant_id, week in queued:
        transaction.on_commit(partial(send_weekly_report.delay, tenant_id, week))
    return queued
