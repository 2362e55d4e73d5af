"""Tenants, their members and their API keys.

Every tenant-owned model in AURA derives from ``TenantOwned``: a ``tenant`` foreign key
plus a manager whose only way in for request code is ``for_tenant(tenant)``.
"""

from __future__ import annotations

import zoneinfo
from datetime import timedelta
from typing import Any, ClassVar

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone


def validate_timezone(value: str) -> None:
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
        raise ValidationError(
            f"{value!r} is not a known IANA time zone (e.g. Europe/Paris)"
        ) from exc


class Tenant(models.Model):
    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        SUSPENDED = "suspended", "Suspended"

    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=64, unique=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ACTIVE)
    timezone = models.CharField(max_length=64, default="UTC", validators=[validate_timezone])
    contact_emails = models.JSONField(
        default=list, blank=True, help_text="Addresses that receive reports and alerts."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.slug

    @property
    def is_active(self) -> bool:
        return self.status == self.Status.ACTIVE

    def clean(self) -> None:
        from django.core.validators import validate_email

        if not isinstance(self.contact_emails, list):
            raise ValidationError({"contact_emails": "must be a list of email addresses"})
        for email in self.contact_emails:
            try:
                validate_email(email)
            except ValidationError as exc:
                raise ValidationError(
                    {"contact_emails": f"{email!r} is not a valid email address"}
                ) from exc


class TenantScopedQuerySet(models.QuerySet):
    def for_tenant(self, tenant: Tenant | int) -> TenantScopedQuerySet:
        tenant_id = tenant if isinstance(tenant, int) else tenant.pk
        return self.filter(tenant_id=tenant_id)


class TenantOwned(models.Model):
    """Abstract base of every tenant-owned row."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+")

    objects: ClassVar[Any] = TenantScopedQuerySet.as_manager()

    class Meta:
        abstract = True


class Role(models.TextChoices):
    OWNER = "owner", "Owner"
    ADMIN = "admin", "Admin"
    MEMBER = "member", "Member"
    VIEWER = "viewer", "Viewer"


ADMIN_ROLES = frozenset({Role.OWNER, Role.ADMIN})


class Membership(TenantOwned):
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.MEMBER)
    weekly_report_opt_out = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["tenant", "user"], name="membership_unique_user")
        ]
        indexes = [models.Index(fields=["user", "tenant"])]

    def __str__(self) -> str:
        return f"{self.user} in {self.tenant.name} ({self.role})"

    @property
    def is_admin(self) -> bool:
        return self.role in ADMIN_ROLES


class Priority(models.TextChoices):
    """A key's place in the queue of an overloaded provider endpoint."""

    HIGH = "high", "High"
    NORMAL = "normal", "Normal"
    LOW = "low", "Low"


class ApiKey(TenantOwned):
    """A tenant API key. Only an HMAC of the secret is stored; the plaintext is shown once."""

    LAST_USED_RESOLUTION = timedelta(minutes=1)

    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=16, unique=True, editable=False)
    secret_hash = models.CharField(max_length=64, editable=False)
    can_manage = models.BooleanField(
        default=False,
        help_text="Also allows the management API (/api/v1) with tenant-admin rights.",
    )
    priority = models.CharField(
        max_length=8,
        choices=Priority.choices,
        default=Priority.NORMAL,
        help_text="Served first (high) or last (low) when a provider endpoint is overloaded; "
        "a request's x-aura-priority header may lower it, never raise it.",
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["tenant", "-created_at"])]
        verbose_name = "API key"

    def __str__(self) -> str:
        return f"{self.name} (aura-{self.prefix}…)"

    @property
    def masked(self) -> str:
        return f"aura-{self.prefix}.••••"

    def is_usable(self, now: Any = None) -> bool:
        now = now or timezone.now()
        if self.revoked_at is not None:
            return False
        return self.expires_at is None or self.expires_at > now

    @property
    def status(self) -> str:
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= timezone.now():
            return "expired"
        return "active"

    def revoke(self) -> bool:
        """Revoke once; returns False when it already was."""
        if self.revoked_at is not None:
            return False
        self.revoked_at = timezone.now()
        self.save(update_fields=["revoked_at"])
        return True
