"""The weekly report for people (HTML page) and for spreadsheets (CSV via the API).

Both resolve the tenant exactly like the management API (``tenants.scoping``): the user's
membership, or the tenant named by ``X-Aura-Tenant`` / ``?tenant=``; a tenant the caller
does not belong to is a 404.
"""

from __future__ import annotations

import csv
import io
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core import signing
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseBadRequest,
    HttpResponseNotAllowed,
)
from django.shortcuts import redirect, render
from rest_framework import exceptions, renderers, serializers
from rest_framework.authentication import SessionAuthentication
from rest_framework.request import Request

from aura.money import plain_decimal
from billing.models import DailyRollup
from billing.reports import OPT_OUT_SALT, last_full_week_start, weekly_report_data
from tenants.console import Console, console_object, console_page
from tenants.models import Membership, Tenant
from tenants.scoping import TenantScopedAPIView, tenant_context_for

CSV_COLUMNS = (
    "day",
    "provider",
    "model",
    *DailyRollup.MEASURES,
    "baseline_cost_usd",
    "baseline_savings_usd",
)


def _parse_week(raw: str | None, tenant: Tenant) -> date:
    """``?week=YYYY-MM-DD`` (a Monday); default the tenant's last full week."""
    if not raw:
        return last_full_week_start(tenant)
    try:
        week = date.fromisoformat(raw)
    except ValueError as exc:
        raise ValueError("week must be a date like 2025-01-06") from exc
    if week.weekday() != 0:
        raise ValueError("week must be a Monday")
    return week


@login_required
def weekly_report_page(request: HttpRequest) -> HttpResponse:
    """GET /reports/weekly/ — the same report as the email, for any member of the tenant."""
    drf_request = Request(request, authenticators=[SessionAuthentication()])
    try:
        ctx = tenant_context_for(drf_request)
    except exceptions.ValidationError:
        # Several memberships and none named: let the user pick.
        user_id: Any = request.user.pk
        memberships = Membership.objects.filter(user_id=user_id).select_related("tenant")
        return render(
            request,
            "billing/choose_tenant.html",
            {"tenants": [m.tenant for m in memberships.order_by("tenant__name")]},
            status=400,
        )
    except exceptions.PermissionDenied as exc:
        return HttpResponse(str(exc.detail), status=403, content_type="text/plain")
    try:
        week = _parse_week(request.GET.get("week"), ctx.tenant)
    except ValueError as exc:
        return HttpResponseBadRequest(str(exc), content_type="text/plain")
    data = weekly_report_data(ctx.tenant, week)
    context: dict[str, Any] = {
        **data,
        "previous_week": week - timedelta(days=7),
        "next_week": week + timedelta(days=7),
    }
    return render(request, "billing/weekly_report.html", context)


def _csv_value(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, Decimal):
        return plain_decimal(value)
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


class CSVRenderer(renderers.BaseRenderer):
    media_type = "text/csv"
    format = "csv"
    charset = "utf-8"

    def render(
        self, data: Any, accepted_media_type: Any = None, renderer_context: Any = None
    ) -> Any:
        # Only errors reach the renderer; the CSV itself is returned as a finished response.
        if isinstance(data, bytes | str):
            return data
        return "\n".join(f"{k}: {v}" for k, v in (data or {}).items())


class WeeklyReportCSVView(TenantScopedAPIView):
    """GET /api/v1/reports/weekly.csv?week=YYYY-MM-DD — one row per day, provider and model."""

    renderer_classes = [renderers.JSONRenderer, CSVRenderer]

    def get(self, request: Request) -> HttpResponse:
        try:
            week = _parse_week(request.query_params.get("week"), self.tenant)
        except ValueError as exc:
            raise serializers.ValidationError({"week": [str(exc)]}) from exc
        data = weekly_report_data(self.tenant, week)
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(CSV_COLUMNS)
        for row in data["rows"]:
            writer.writerow([_csv_value(row[c]) for c in CSV_COLUMNS])
        response = HttpResponse(buffer.getvalue(), content_type="text/csv; charset=utf-8")
        filename = f"aura-{self.tenant.slug}-week-{week.isoformat()}.csv"
        response["Content-Disposition"] = f'attachment; filename="{filename}"'
        return response


def weekly_report_opt_out(request: HttpRequest, token: str) -> HttpResponse:
    """The link in a weekly report: GET asks to confirm (mail scanners prefetch links, so a
    GET must not change anything), POST stops the report for that one membership."""
    try:
        data = signing.loads(token, salt=OPT_OUT_SALT)
    except signing.BadSignature:
        return HttpResponseBadRequest("This opt-out link is not valid.", content_type="text/plain")
    membership = (
        Membership.objects.select_related("tenant", "user").filter(pk=data.get("m")).first()
    )
    if membership is None:
        return HttpResponseBadRequest(
            "This opt-out link belongs to a membership that no longer exists.",
            content_type="text/plain",
        )
    done = False
    if request.method == "POST":
        Membership.objects.filter(pk=membership.pk).update(weekly_report_opt_out=True)
        done = True
    return render(
        request,
        "billing/weekly_report_opt_out.html",
        {"membership": membership, "done": done or membership.weekly_report_opt_out},
    )


# --------------------------------------------------------------------------- console


def _budget_form_data(post: Any) -> dict[str, Any]:
    """The HTML form's fields as BudgetInput data (thresholds typed as "50, 75, 90")."""
    data: dict[str, Any] = {
        "period": post.get("period", ""),
        "limit_usd": post.get("limit_usd", ""),
        "mode": post.get("mode", ""),
        "webhook_url": post.get("webhook_url", ""),
        "api_key": post.get("api_key") or None,
    }
    raw = (post.get("thresholds") or "").strip()
    if raw:
        parts = [p.strip().rstrip("%") for p in raw.replace(";", ",").split(",") if p.strip()]
        data["thresholds"] = parts
    return data


@console_page()
def budgets_page(request: HttpRequest) -> HttpResponse:
    """GET/POST /budgets/ — the tenant's budgets with this period's spend, and their alerts;
    admins create them here (the same validation as POST /api/v1/budgets)."""
    from django.utils import timezone

    from billing.api import BudgetInput
    from billing.models import Budget, BudgetAlert
    from billing.reports import budget_status
    from billing.services import BudgetError, budget_create
    from tenants.models import ApiKey

    console: Console = request.console  # type: ignore[attr-defined]
    tenant = console.tenant
    errors: dict[str, list[str]] = {}
    values: dict[str, Any] = {"period": "month", "mode": "block", "thresholds": "50, 75, 90, 100"}
    status = 200
    if request.method == "POST":
        values = {k: request.POST.get(k, "") for k in request.POST}
        form = BudgetInput(data=_budget_form_data(request.POST), context={"tenant": tenant})
        if form.is_valid():
            try:
                budget = budget_create(tenant=tenant, **form.validated_data)
            except BudgetError as exc:
                errors[exc.param or "period"] = [exc.message]
            else:
                messages.success(request, f"Budget created: {budget}.")
                return redirect("console-budgets")
        else:
            errors = {k: [str(e) for e in v] for k, v in form.errors.items()}
        status = 400
    spent = {b["id"]: b for b in budget_status(tenant, timezone.now())}
    budgets = [
        {"budget": b, "status": spent.get(b.pk)}
        for b in Budget.objects.for_tenant(tenant)
        .select_related("api_key")
        .order_by("api_key_id", "period", "pk")
    ]
    alerts = (
        BudgetAlert.objects.filter(budget__tenant=tenant)
        .select_related("budget", "budget__api_key")
        .order_by("-created_at")[:20]
    )
    return render(
        request,
        "console/budgets.html",
        {
            "console": console,
            "nav": "budgets",
            "budgets": budgets,
            "alerts": alerts,
            "errors": errors,
            "values": values,
            "periods": Budget.Period.choices,
            "modes": Budget.Mode.choices,
            "keys": ApiKey.objects.for_tenant(tenant).filter(revoked_at__isnull=True),
        },
        status=status,
    )


@console_page()
def budget_action(request: HttpRequest, budget_id: int, action: str) -> HttpResponse:
    """POST /budgets/<id>/<enable|disable|delete>/ (admins)."""
    from billing.models import Budget
    from billing.services import budget_delete, budget_update

    budget = console_object(request, Budget, pk=budget_id)
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    if action == "delete":
        budget_delete(budget=budget)
        messages.success(request, f"Budget deleted: {budget}.")
    elif action in ("enable", "disable"):
        budget_update(budget=budget, changes={"enabled": action == "enable"})
        messages.success(request, f"Budget {action}d: {budget}.")
    else:
        raise Http404
    return redirect("console-budgets")


REQUEST_WINDOWS = {"1h": 1, "24h": 24, "7d": 24 * 7, "30d": 24 * 30}
REQUESTS_PER_PAGE = 50


@console_page()
def requests_page(request: HttpRequest) -> HttpResponse:
    """GET /requests/ — the tenant's requests, newest first, filtered by time window, key,
    provider, model, status and cache; "older" pages by (time, id), so new traffic does
    not shift them."""
    from datetime import datetime, timedelta

    from django.db.models import Q
    from django.utils import timezone

    from billing.models import UsageRecord
    from tenants.models import ApiKey

    console: Console = request.console  # type: ignore[attr-defined]
    params = request.GET
    window = str(params.get("window", ""))
    if window not in REQUEST_WINDOWS:
        window = "24h"
    qs = UsageRecord.objects.for_tenant(console.tenant).filter(
        created_at__gte=timezone.now() - timedelta(hours=REQUEST_WINDOWS[window])
    )
    filters = {
        "api_key": params.get("api_key", ""),
        "provider": params.get("provider", "").strip(),
        "model": params.get("model", "").strip(),
        "status": params.get("status", ""),
        "cache": params.get("cache", ""),
    }
    if filters["api_key"].isdigit():
        qs = qs.filter(api_key_id=int(filters["api_key"]))
    if filters["provider"]:
        qs = qs.filter(provider=filters["provider"])
    if filters["model"]:
        qs = qs.filter(model__icontains=filters["model"])
    if filters["status"] in UsageRecord.Status.values:
        qs = qs.filter(status=filters["status"])
    if filters["cache"] in ("miss", "exact", "semantic"):
        qs = qs.filter(cache_status=filters["cache"])
    before = params.get("before", "")
    at, _, last_id = before.partition("_")
    if at and last_id.isdigit():
        try:
            instant = datetime.fromisoformat(at)
        except ValueError:
            return HttpResponseBadRequest("'before' is not a position of this list.")
        qs = qs.filter(Q(created_at__lt=instant) | Q(created_at=instant, id__lt=int(last_id)))
    rows = list(
        qs.select_related("api_key").order_by("-created_at", "-id")[: REQUESTS_PER_PAGE + 1]
    )
    more = len(rows) > REQUESTS_PER_PAGE
    rows = rows[:REQUESTS_PER_PAGE]
    older = None
    if more:
        query = params.copy()
        query["before"] = f"{rows[-1].created_at.isoformat()}_{rows[-1].pk}"
        older = query.urlencode()
    return render(
        request,
        "console/requests.html",
        {
            "console": console,
            "nav": "requests",
            "rows": rows,
            "older": older,
            "window": window,
            "windows": list(REQUEST_WINDOWS),
            "filters": filters,
            "keys": ApiKey.objects.for_tenant(console.tenant).order_by("name"),
            "statuses": UsageRecord.Status.choices,
        },
    )


@console_page()
def request_detail(request: HttpRequest, record_id: int) -> HttpResponse:
    """GET /requests/<id>/ — one request: where it went, every attempt (fallbacks, retries,
    errors, latency), tokens, cost, cache."""
    from billing.models import UsageRecord

    console: Console = request.console  # type: ignore[attr-defined]
    record = console_object(request, UsageRecord, pk=record_id)
    return render(
        request,
        "console/request_detail.html",
        {"console": console, "nav": "requests", "r": record, "attempts": record.attempts or []},
    )
