"""Billing admin: budgets and alerts, read-only usage and rollups, weekly reports and a
"Send weekly report now" page."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse

from aura.admin_columns import usd_column
from aura.errors import DomainError
from billing.models import Budget, BudgetAlert, DailyRollup, UsageRecord, WeeklyReport
from billing.reports import last_full_week_start
from billing.rollups import rollups_refresh
from routing.catalog.services import base_url_check, tenant_allows_private_base_urls
from routing.changes import config_changed
from tenants.models import Tenant


class ReadOnlyAdmin(admin.ModelAdmin):
    """Rows written by the system: viewable, never added, edited or deleted here."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class BudgetAdminForm(forms.ModelForm):
    # Declared, with the https default the routing admin uses for URLs.
    webhook_url = forms.URLField(max_length=500, required=False, assume_scheme="https")

    class Meta:
        model = Budget
        fields = [
            "tenant",
            "api_key",
            "period",
            "limit_usd",
            "mode",
            "thresholds",
            "webhook_url",
            "enabled",
        ]

    def clean(self) -> dict[str, Any]:
        super().clean()
        data = self.cleaned_data
        tenant, url = data.get("tenant"), data.get("webhook_url")
        # A tenant's webhook is checked like one sent through the API (and like its
        # endpoints), unless an operator allowed private URLs for that tenant.
        if tenant is not None and url:
            try:
                base_url_check(
                    url,
                    allow_private=tenant_allows_private_base_urls(tenant),
                    field="webhook_url",
                )
            except DomainError as exc:
                self.add_error("webhook_url", exc.message)
        return data


@admin.register(Budget)
class BudgetAdmin(admin.ModelAdmin):
    form = BudgetAdminForm
    list_display = ("id", "tenant", "api_key", "period", "limit", "mode", "enabled")
    limit = usd_column("limit_usd", "limit")
    list_filter = ("period", "mode", "enabled")
    search_fields = ("tenant__slug", "tenant__name")
    raw_id_fields = ("tenant", "api_key")
    list_select_related = ("tenant", "api_key")

    # The gateway caches budgets with the routing context: every write here invalidates it,
    # as billing.services does for the API.
    def save_model(self, request: HttpRequest, obj: Budget, form: Any, change: bool) -> None:
        super().save_model(request, obj, form, change)
        config_changed()

    def delete_model(self, request: HttpRequest, obj: Budget) -> None:
        super().delete_model(request, obj)
        config_changed()

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Budget]) -> None:
        super().delete_queryset(request, queryset)
        config_changed()


@admin.register(BudgetAlert)
class BudgetAlertAdmin(ReadOnlyAdmin):
    list_display = (
        "created_at",
        "tenant",
        "budget",
        "threshold",
        "spent",
        "limit",
        "period_start",
        "emailed_at",
        "webhook_status",
    )
    spent = usd_column("spent_usd", "spent")
    limit = usd_column("limit_usd", "limit")
    list_filter = ("threshold",)
    search_fields = ("tenant__slug",)
    list_select_related = ("tenant", "budget")


@admin.register(UsageRecord)
class UsageRecordAdmin(ReadOnlyAdmin):
    list_display = (
        "created_at",
        "tenant",
        "api_key",
        "provider",
        "model",
        "status",
        "prompt_tokens",
        "completion_tokens",
        "cost",
        "latency_ms",
        "cache_status",
    )
    cost = usd_column("cost_usd", "cost")
    list_filter = ("status", "kind", "cache_status")
    search_fields = ("request_id",)
    list_select_related = ("tenant", "api_key")
    # The table is large and append-only: no exact COUNT(*) on every page view.
    show_full_result_count = False


@admin.register(DailyRollup)
class DailyRollupAdmin(ReadOnlyAdmin):
    list_display = (
        "day",
        "tenant",
        "api_key",
        "provider",
        "model",
        "kind",
        "requests",
        "errors",
        "prompt_tokens",
        "completion_tokens",
        "cost",
        "cache_hits",
        "updated_at",
    )
    cost = usd_column("cost_usd", "cost")
    list_filter = ("kind", "provider")
    search_fields = ("tenant__slug", "model")
    list_select_related = ("tenant", "api_key")
    actions = ["recompute"]

    @admin.action(description="Recompute the selected rows' days from usage records")
    def recompute(self, request: HttpRequest, queryset: QuerySet[DailyRollup]) -> None:
        pairs = set(queryset.values_list("tenant_id", "day"))
        for tenant_id, day in sorted(pairs):
            rollups_refresh(days=[day], tenant_ids=[tenant_id])
        self.message_user(request, f"Recomputed {len(pairs)} tenant-day(s).", messages.SUCCESS)


class SendWeeklyReportForm(forms.Form):
    tenant = forms.ModelChoiceField(queryset=Tenant.objects.filter(status=Tenant.Status.ACTIVE))
    week = forms.DateField(
        required=False,
        help_text="Monday of the week to report (YYYY-MM-DD). Empty: the last full week in "
        "the tenant's time zone.",
    )
    resend = forms.BooleanField(
        required=False, help_text="Send even if this week's report was already sent."
    )

    def clean_week(self) -> date | None:
        week: date | None = self.cleaned_data.get("week")
        if week is not None and week.weekday() != 0:
            raise forms.ValidationError("Pick a Monday.")
        return week


@admin.register(WeeklyReport)
class WeeklyReportAdmin(ReadOnlyAdmin):
    list_display = ("week_start", "tenant", "created_at", "sent_at", "recipient_count")
    list_filter = ("week_start",)
    search_fields = ("tenant__slug",)
    list_select_related = ("tenant",)
    change_list_template = "billing/admin/weeklyreport_change_list.html"

    @admin.display(description="recipients")
    def recipient_count(self, obj: WeeklyReport) -> int:
        return len(obj.recipients or [])

    def get_urls(self) -> list[URLPattern]:
        send_now = path(
            "send-now/",
            self.admin_site.admin_view(self.send_now_view),
            name="billing_weeklyreport_send_now",
        )
        return [send_now, *super().get_urls()]

    def send_now_view(self, request: HttpRequest) -> HttpResponse:
        """Queue a tenant's report now, bypassing the Monday 08:00 rule (still once per
        week unless 'resend' is ticked)."""
        if not request.user.has_perm("billing.add_weeklyreport"):
            raise PermissionDenied
        form = SendWeeklyReportForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            from billing.tasks import send_weekly_report

            tenant: Tenant = form.cleaned_data["tenant"]
            week = form.cleaned_data["week"] or last_full_week_start(tenant)
            resend = bool(form.cleaned_data["resend"])
            transaction.on_commit(
                lambda: send_weekly_report.delay(tenant.pk, week.isoformat(), resend)
            )
            end = week + timedelta(days=6)
            self.message_user(
                request,
                f"Weekly report of {tenant.slug} for {week} to {end} queued"
                + (" (resend)." if resend else "."),
                messages.SUCCESS,
            )
            return HttpResponseRedirect(reverse("admin:billing_weeklyreport_changelist"))
        context = {
            **self.admin_site.each_context(request),
            "title": "Send weekly report now",
            "form": form,
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "billing/admin/send_weekly_report.html", context)
