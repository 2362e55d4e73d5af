"""The outcome memory (one row per observed prompt x model outcome) and import jobs."""

from __future__ import annotations

from typing import Any, ClassVar

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.db import models
from pgvector.django import HnswIndex, VectorField

from tenants.models import TenantOwned


class OutcomeMemory(TenantOwned):
    """How well ``model_key`` answered one prompt. Rows of one prompt share
    ``prompt_hash`` (sha256 of its text), so the predictor groups them into one point.
    The text itself is kept only when the tenant's policy says ``learning.store_prompts``."""

    class Source(models.TextChoices):
        FEEDBACK = "feedback", "Feedback on a served request"
        IMPORT = "import", "Bulk import"
        RECORD = "record", "POST /router/record"

    prompt_hash = models.CharField(max_length=64)
    embedder = models.CharField(max_length=100)
    embedding = VectorField(dimensions=256)
    lexical = ArrayField(models.SmallIntegerField(), default=list, blank=True)
    model_key = models.CharField(max_length=260)
    quality = models.FloatField()
    success = models.BooleanField(default=True)
    cost_usd = models.DecimalField(max_digits=18, decimal_places=10, null=True, blank=True)
    latency_ms = models.FloatField(null=True, blank=True)
    source = models.CharField(max_length=16, choices=Source.choices)
    external_id = models.CharField(max_length=200, blank=True)
    request_id = models.CharField(max_length=64, blank=True)
    prompt = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        app_label = "routing"
        verbose_name_plural = "outcome memory"
        indexes: ClassVar[list[models.Index]] = [
            models.Index(fields=["tenant", "created_at"], name="outcome_mem_tenant_time_idx"),
            models.Index(fields=["tenant", "request_id"], name="outcome_mem_request_idx"),
            HnswIndex(
                name="outcome_mem_embedding_hnsw",
                fields=["embedding"],
                m=16,
                ef_construction=64,
                opclasses=["vector_cosine_ops"],
            ),
        ]
        constraints: ClassVar[list[models.BaseConstraint]] = [
            # Idempotent imports: the same external id of a tenant is stored once.
            models.UniqueConstraint(
                fields=["tenant", "external_id"],
                condition=~models.Q(external_id=""),
                name="outcome_mem_external_id_unique",
            ),
            # Feedback on a request is one outcome; a second one corrects it.
            models.UniqueConstraint(
                fields=["tenant", "request_id"],
                condition=~models.Q(request_id=""),
                name="outcome_mem_request_id_unique",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.model_key} q={self.quality:.2f} ({self.source})"


class OutcomeImport(TenantOwned):
    """A bulk import of outcomes, run by a Celery worker; progress is read while it runs."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    format = models.CharField(max_length=8)  # jsonl | csv
    payload = models.TextField()  # emptied once the job finishes
    total = models.PositiveIntegerField(default=0)
    processed = models.PositiveIntegerField(default=0)
    imported = models.PositiveIntegerField(default=0)
    duplicates = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)
    errors = models.JSONField(default=list, blank=True)  # the first MAX_ERRORS rows' problems
    message = models.CharField(max_length=500, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        app_label = "routing"
        indexes: ClassVar[list[models.Index]] = [
            models.Index(fields=["tenant", "-created_at"], name="outcome_import_tenant_idx")
        ]

    def __str__(self) -> str:
        return f"import #{self.pk} {self.status} {self.processed}/{self.total}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.pk,
            "status": self.status,
            "format": self.format,
            "total": self.total,
            "processed": self.processed,
            "imported": self.imported,
            "duplicates": self.duplicates,
            "failed": self.failed,
            "progress": round(self.processed / self.total, 4) if self.total else 0.0,
            "errors": self.errors,
            "message": self.message,
            "created_at": self.created_at,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
        }


class WeightOptimization(TenantOwned):
    """One run of the weight optimizer: what it looked at, what it chose and why, and
    what became of it (proposed, applied, reverted). Applying and reverting go through
    the policy, so each also leaves a policy version and a WeightHistory row."""

    class Status(models.TextChoices):
        PROPOSED = "proposed", "Proposed"
        APPLIED = "applied", "Applied"
        REVERTED = "reverted", "Reverted"
        UNCHANGED = "unchanged", "Nothing better found"
        INSUFFICIENT = "insufficient_data", "Not enough outcomes"

    class Trigger(models.TextChoices):
        SCHEDULE = "schedule", "Weekly schedule"
        API = "api", "POST /router/optimize"

    trigger = models.CharField(max_length=16, choices=Trigger.choices)
    method = models.CharField(max_length=16)
    goal = models.CharField(max_length=32)
    status = models.CharField(max_length=20, choices=Status.choices)
    message = models.CharField(max_length=500, blank=True)
    # A scheduled run's slot: the tenant-local date it was due (one run per slot).
    scheduled_for = models.DateField(null=True, blank=True)
    window_start = models.DateTimeField()
    window_end = models.DateTimeField()
    objective_before = models.CharField(max_length=32)
    weights_before = models.JSONField()
    policy_version_before = models.PositiveIntegerField()
    weights_after = models.JSONField(null=True, blank=True)
    # {"before": {...}, "after": {...}, "best_single": {...}}: held-out quality, cost, latency.
    figures = models.JSONField(default=dict, blank=True)
    evidence = models.JSONField(default=dict, blank=True)
    policy_version_after = models.PositiveIntegerField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    applied_at = models.DateTimeField(null=True, blank=True)
    applied_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    reverted_at = models.DateTimeField(null=True, blank=True)
    reverted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        app_label = "routing"
        ordering: ClassVar[list[str]] = ["-created_at", "-id"]
        indexes: ClassVar[list[models.Index]] = [
            models.Index(fields=["tenant", "-created_at"], name="weight_opt_tenant_idx")
        ]
        constraints: ClassVar[list[models.BaseConstraint]] = [
            models.UniqueConstraint(
                fields=["tenant", "scheduled_for"],
                condition=models.Q(trigger="schedule"),
                name="weight_opt_one_scheduled_run_a_week",
            )
        ]

    def __str__(self) -> str:
        return f"optimization #{self.pk} {self.method} {self.status}"
