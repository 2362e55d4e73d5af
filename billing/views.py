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

from django.contrib.auth.decorators import login_required
from django.core import signing
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import render
from rest_framework import exceptions, renderers, serializers
from rest_framework.authentication import SessionAuthentication
from rest_framework.request import Request

from aura.money import plain_decimal
from billing.models import DailyRollup
from billing.reports import OPT_OUT_SALT, last_full_week_start, weekly_report_data
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
