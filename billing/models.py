"""Usage records: one append-only row per gateway request (served, refused or failed)."""

from __future__ import annotations

from django.contrib.postgres.indexes import BrinIndex
from django.db import models

from aura.money import usd
from tenants.models import TenantOwned


class UsageRecord(TenantOwned):
    class Status(models.TextChoices):
        OK = "ok", "OK"
        ERROR = "error", "Error"
        CUT = "cut", "Stream cut"
        CANCELLED = "cancelled", "Client disconnected"
        INTERRUPTED = "interrupted", "Gateway process died mid-request"

    id = models.BigAutoField(primary_key=True)
    created_at = models.DateTimeField(db_index=False)
    request_id = models.CharField(max_length=64)
    api_key = models.ForeignKey(
        "tenants.ApiKey",
        verbose_name="API key",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    kind = models.CharField(max_length=16, default="chat")  # chat | embeddings
    provider = models.CharField(max_length=64)
    model = models.CharField(max_length=200)
    endpoint_id = models.BigIntegerField(null=True, blank=True)
    # The endpoint's name as health checks and breakers know it (``ep3``, ``ep3:t7``,
    # ``openai-default``): the one that answered, else the last tried. Blank: none tried.
    endpoint = models.CharField(max_length=120, blank=True, default="")
    status = models.CharField(max_length=16, choices=Status.choices)
    http_status = models.PositiveSmallIntegerField(null=True, blank=True)
    error_code = models.CharField(max_length=64, blank=True)
    stream = models.BooleanField(default=False)
    prompt_tokens = models.PositiveIntegerField(default=0)
    completion_tokens = models.PositiveIntegerField(default=0)
    cached_tokens = models.PositiveIntegerField(default=0)
    cost_usd = models.DecimalField(max_digits=18, decimal_places=10, default=0)
    cost_estimated = models.BooleanField(
        default=False, help_text="Tokens counted locally: the provider reported no usage."
    )
    latency_ms = models.FloatField(default=0)
    ttft_ms = models.FloatField(null=True, blank=True)
    overhead_ms = models.FloatField(null=True, blank=True)
    cache_status = models.CharField(max_length=16, default="miss")  # miss | exact | semantic
    # What a cache hit would have cost had it gone upstream (the original call's cost).
    cache_savings_usd = models.DecimalField(max_digits=18, decimal_places=10, default=0)
    fallbacks = models.PositiveSmallIntegerField(default=0)
    attempts = models.JSONField(default=list, blank=True)
    # Set by the gateway's writer: replays of its journal insert each record at most once.
    record_uid = models.UUIDField(null=True, blank=True, unique=True, editable=False)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["tenant", "created_at"], name="usage_tenant_time"),
            models.Index(fields=["api_key", "created_at"], name="usage_key_time"),
            # Platform-wide windows (health and SLA figures: the last minutes, hours, days
            # of every tenant's traffic). BRIN: the table is append-only in time order,
            # so a few pages of block ranges index it at almost no write cost.
            BrinIndex(fields=["created_at"], name="usage_time_brin", autosummarize=True),
        ]

    def __str__(self) -> str:
        return f"{self.request_id} {self.provider}/{self.model} {self.status}"


class Budget(TenantOwned):
    """A spend limit on a tenant or one of its API keys, per request or per calendar period
    in the tenant's time zone."""

    class Period(models.TextChoices):
        REQUEST = "request", "Per request"
        HOUR = "hour", "Hour"
        DAY = "day", "Day"
        WEEK = "week", "Week (Monday-Sunday)"
        MONTH = "month", "Month"

    class Mode(models.TextChoices):
        BLOCK = "block", "Block"
        DOWNGRADE = "downgrade", "Downgrade to cheaper models"
        ALERT_ONLY = "alert_only", "Alert only"

    api_key = models.ForeignKey(
        "tenants.ApiKey",
        verbose_name="API key",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="+",
        help_text="Empty: the whole tenant. Set: only this key's requests.",
    )
    period = models.CharField(max_length=16, choices=Period.choices)
    limit_usd = models.DecimalField(max_digits=14, decimal_places=6)
    mode = models.CharField(max_length=16, choices=Mode.choices, default=Mode.BLOCK)
    thresholds = models.JSONField(
        default=list, blank=True, help_text="Alert at these % of the limit."
    )
    webhook_url = models.URLField(max_length=500, blank=True)
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    DEFAULT_THRESHOLDS = (50, 75, 90, 100)

    class Meta:
        ordering = ["tenant_id", "period", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "api_key", "period"],
                name="budget_one_per_scope_period",
                nulls_distinct=False,
            )
        ]

    def __str__(self) -> str:
        scope = f"key {self.api_key_id}" if self.api_key_id else "whole tenant"
        return f"{self.period} budget {usd(self.limit_usd)} ({scope}, {self.mode})"

    @property
    def alert_thresholds(self) -> list[int]:
        return sorted(self.thresholds) if self.thresholds else list(self.DEFAULT_THRESHOLDS)


class BudgetAlert(TenantOwned):
    """One threshold crossing of one budget in one period: sent at most once (unique)."""

    budget = models.ForeignKey(Budget, on_delete=models.CASCADE, related_name="alerts")
    period_start = models.DateTimeField()
    threshold = models.PositiveSmallIntegerField()
    spent_usd = models.DecimalField(max_digits=14, decimal_places=6)
    limit_usd = models.DecimalField(max_digits=14, decimal_places=6)
    created_at = models.DateTimeField(auto_now_add=True)
    emailed_at = models.DateTimeField(null=True, blank=True)
    webhook_status = models.CharField(max_length=64, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["budget", "period_start", "threshold"], name="alert_once_per_period"
            )
        ]
        indexes = [models.Index(fields=["tenant", "-created_at"])]

    def __str__(self) -> str:
        return f"{self.threshold}% of budget {self.budget_id} from {self.period_start:%Y-%m-%d}"


class DailyRollup(TenantOwned):
    """Usage aggregated per tenant-local day, key, provider, model and kind. Dashboards and
    reports read these, never raw usage records."""

    day = models.DateField()
    api_key = models.ForeignKey(
        "tenants.ApiKey",
        verbose_name="API key",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    provider = models.CharField(max_length=64)
    model = models.CharField(max_length=200)
    kind = models.CharField(max_length=16, default="chat")
    requests = models.PositiveIntegerField(default=0)
    errors = models.PositiveIntegerField(default=0)
    prompt_tokens = models.BigIntegerField(default=0)
    completion_tokens = models.BigIntegerField(default=0)
    cost_usd = models.DecimalField(max_digits=18, decimal_places=10, default=0)
    cache_hits = models.PositiveIntegerField(default=0)
    cache_savings_usd = models.DecimalField(max_digits=18, decimal_places=10, default=0)
    updated_at = models.DateTimeField(auto_now=True)

    # The additive figures of a rollup row, in display order (reports, CSV, admin).
    MEASURES = (
        "requests",
        "errors",
        "prompt_tokens",
        "completion_tokens",
        "cost_usd",
        "cache_hits",
        "cache_savings_usd",
    )

    class Meta:
        ordering = ["-day", "provider", "model"]
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "day", "api_key", "provider", "model", "kind"],
                name="rollup_unique_row",
                nulls_distinct=False,
            )
        ]
        indexes = [models.Index(fields=["tenant", "day"])]

    def __str__(self) -> str:
        return f"{self.day} {self.provider}/{self.model} ({self.kind})"


class JobClaim(models.Model):
    """Claims for periodic jobs: a conditional UPDATE on next_run_at lets exactly one of
    several concurrent runs (double-fired beat, retries) do the work."""

    name = models.CharField(max_length=100, primary_key=True)
    next_run_at = models.DateTimeField()
    last_run_at = models.DateTimeField(null=True, blank=True)
    last_result = models.JSONField(default=dict, blank=True)

    def __str__(self) -> str:
        return f"{self.name} (next {self.next_run_at:%Y-%m-%d %H:%M})"


class WeeklyReport(TenantOwned):
    """One weekly cost report per tenant and week; the row is the claim (never sent twice)."""

    week_start = models.DateField(help_text="Monday of the reported week (tenant-local).")
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    recipients = models.JSONField(default=list, blank=True)
    totals = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-week_start"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "week_start"], name="report_once_per_week")
        ]

    def __str__(self) -> str:
        return f"weekly report of the week of {self.week_start}"
