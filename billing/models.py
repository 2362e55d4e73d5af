"""Usage records: one append-only row per request that reached a provider."""

from __future__ import annotations

from django.db import models

from tenants.models import TenantOwned


class UsageRecord(TenantOwned):
    class Status(models.TextChoices):
        OK = "ok", "OK"
        ERROR = "error", "Error"
        CUT = "cut", "Stream cut"
        CANCELLED = "cancelled", "Client disconnected"

    id = models.BigAutoField(primary_key=True)
    created_at = models.DateTimeField(db_index=False)
    request_id = models.CharField(max_length=64)
    api_key = models.ForeignKey(
        "tenants.ApiKey", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    kind = models.CharField(max_length=16, default="chat")  # chat | embeddings
    provider = models.CharField(max_length=64)
    model = models.CharField(max_length=200)
    endpoint_id = models.BigIntegerField(null=True, blank=True)
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
    fallbacks = models.PositiveSmallIntegerField(default=0)
    attempts = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["tenant", "created_at"], name="usage_tenant_time"),
            models.Index(fields=["api_key", "created_at"], name="usage_key_time"),
        ]
