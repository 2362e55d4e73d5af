"""Provider health: probed targets with their state, probe results, state flips, alerts.

Detection apart from notification (healthchecks' ``Flip``): a probe round writes
``HealthCheck`` rows and moves each ``EndpointHealth`` through its states with hysteresis;
every state change writes a ``HealthFlip``. A separate task claims unprocessed flips and
raises or resolves ``Alert`` rows; notifying about an alert (email, webhook) is a step of
its own again, so a failing mail server never loses a flip or an alert.
"""

from __future__ import annotations

from django.db import models
from django.db.models import Q

from routing.models import Credential, Provider, ProviderEndpoint
from tenants.models import Tenant


class HealthStatus(models.TextChoices):
    UNKNOWN = "unknown", "Unknown"
    HEALTHY = "healthy", "Healthy"
    DEGRADED = "degraded", "Degraded"
    DOWN = "down", "Down"


class EndpointHealth(models.Model):
    """One probed target: an endpoint as the gateway calls it.

    ``name`` is the gateway's name for it (the circuit breaker's: ``ep<id>`` for an
    endpoint row, ``<provider>-default`` for a provider's built-in base URL,
    ``ep<id>:t<tenant>`` for a tenant's own key on a shared endpoint), so health state,
    breakers and routing all speak of the same thing. ``tenant`` is set for what a tenant
    owns (its endpoint or its key): its admins get the alerts, only it sees the row.
    """

    name = models.CharField(max_length=120, unique=True)
    provider = models.ForeignKey(Provider, on_delete=models.CASCADE, related_name="+")
    endpoint = models.ForeignKey(
        ProviderEndpoint, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    credential = models.ForeignKey(
        Credential, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    tenant = models.ForeignKey(
        Tenant, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    active = models.BooleanField(
        default=True, help_text="Still configured and enabled (inactive targets are not probed)."
    )
    status = models.CharField(
        max_length=16, choices=HealthStatus.choices, default=HealthStatus.UNKNOWN
    )
    score = models.FloatField(default=1.0, help_text="0 (dead) .. 1 (fully healthy).")
    ever_healthy = models.BooleanField(default=False)
    consecutive_failures = models.PositiveIntegerField(default=0)
    consecutive_successes = models.PositiveIntegerField(default=0)
    last_checked_at = models.DateTimeField(null=True, blank=True)
    last_ok_at = models.DateTimeField(null=True, blank=True)
    last_latency_ms = models.FloatField(null=True, blank=True)
    last_error = models.CharField(max_length=300, blank=True)
    status_changed_at = models.DateTimeField(null=True, blank=True)
    next_check_at = models.DateTimeField(null=True, blank=True)
    # What the last round measured from real traffic (the passive half of the score).
    passive = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["provider__slug", "name"]
        verbose_name = "endpoint health"
        verbose_name_plural = "endpoint health"
        indexes = [models.Index(fields=["tenant", "name"], name="health_tenant_name")]

    def __str__(self) -> str:
        return f"{self.name} ({self.status})"


class HealthCheck(models.Model):
    """One probe of one target. Kept for the SLA windows (7 days), then pruned."""

    id = models.BigAutoField(primary_key=True)
    target = models.ForeignKey(EndpointHealth, on_delete=models.CASCADE, related_name="checks")
    checked_at = models.DateTimeField()
    mode = models.CharField(max_length=16, default="models")  # models | completion
    ok = models.BooleanField()
    latency_ms = models.FloatField(null=True, blank=True)
    http_status = models.PositiveSmallIntegerField(null=True, blank=True)
    error_kind = models.CharField(max_length=32, blank=True)
    message = models.CharField(max_length=300, blank=True)
    # A completion probe is a real, billed call: what it cost the platform (or the tenant
    # whose key it used).
    prompt_tokens = models.PositiveIntegerField(default=0)
    completion_tokens = models.PositiveIntegerField(default=0)
    cost_usd = models.DecimalField(max_digits=18, decimal_places=10, default=0)

    class Meta:
        ordering = ["-checked_at", "-id"]
        indexes = [models.Index(fields=["target", "checked_at"], name="check_target_time")]

    def __str__(self) -> str:
        return f"{self.target.name} {'ok' if self.ok else 'fail'} at {self.checked_at}"


class HealthFlip(models.Model):
    """A state change of one target, written by the probe round; alerts are made from it."""

    id = models.BigAutoField(primary_key=True)
    target = models.ForeignKey(EndpointHealth, on_delete=models.CASCADE, related_name="flips")
    created_at = models.DateTimeField()
    old_status = models.CharField(max_length=16, choices=HealthStatus.choices)
    new_status = models.CharField(max_length=16, choices=HealthStatus.choices)
    reason = models.CharField(max_length=300, blank=True)
    processed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(
                fields=["created_at"],
                name="flip_unprocessed",
                condition=Q(processed_at__isnull=True),
            )
        ]

    def __str__(self) -> str:
        return f"{self.target.name}: {self.old_status} -> {self.new_status}"


class Alert(models.Model):
    """A condition someone should know about, open until it clears.

    One open alert per ``dedupe_key`` (kind + subject): while the condition persists the
    same row is refreshed (``last_seen_at``, ``value``) and may escalate; when it clears it
    is resolved. ``tenant`` set: the tenant's own (its endpoint, its traffic); empty: for
    operators. ``notified_severity`` / ``notified_at`` say what was last sent, so the
    notifier sends each escalation and the resolution exactly once.
    """

    class Severity(models.TextChoices):
        WARNING = "warning", "Warning"
        CRITICAL = "critical", "Critical"

    class State(models.TextChoices):
        OPEN = "open", "Open"
        RESOLVED = "resolved", "Resolved"

    id = models.BigAutoField(primary_key=True)
    dedupe_key = models.CharField(max_length=300)
    kind = models.CharField(max_length=32)  # endpoint_down | sla | anomaly
    subject = models.CharField(max_length=200)  # what it is about: an endpoint, model, ...
    metric = models.CharField(max_length=32, blank=True)
    tenant = models.ForeignKey(
        Tenant, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    target = models.ForeignKey(
        EndpointHealth, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    severity = models.CharField(max_length=16, choices=Severity.choices)
    state = models.CharField(max_length=16, choices=State.choices, default=State.OPEN)
    message = models.CharField(max_length=500)
    value = models.FloatField(null=True, blank=True)
    threshold = models.FloatField(null=True, blank=True)
    opened_at = models.DateTimeField()
    last_seen_at = models.DateTimeField()
    escalated_at = models.DateTimeField(null=True, blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    notified_at = models.DateTimeField(null=True, blank=True)
    notified_severity = models.CharField(max_length=16, blank=True)
    notified_resolved = models.BooleanField(default=False)

    class Meta:
        ordering = ["-opened_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["dedupe_key"], condition=Q(state="open"), name="alert_one_open_per_key"
            )
        ]
        indexes = [
            models.Index(fields=["tenant", "opened_at"], name="alert_tenant_time"),
            models.Index(fields=["state", "kind"], name="alert_state_kind"),
        ]

    def __str__(self) -> str:
        return f"[{self.severity}] {self.subject}: {self.message[:60]}"
