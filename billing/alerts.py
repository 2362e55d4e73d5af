"""Budget threshold alerts: recorded once per (budget, period, threshold), then notified.

Detection is the gateway's job: when a request pushes a budget's spend across one of its
thresholds it calls ``budget_alert_enqueue``. That only writes the ``BudgetAlert`` row (the
unique constraint makes it once per period) and, on commit, enqueues the
``send_budget_alert`` task, which calls ``budget_alert_send``: email to the tenant's admins
and contact addresses, plus a JSON webhook when the budget has one.
"""

from __future__ import annotations

import logging
import zoneinfo
from datetime import datetime
from decimal import Decimal
from typing import Any

import httpx
from django.db import transaction
from django.utils import timezone

from aura import emails
from aura.errors import DomainError
from billing.models import Budget, BudgetAlert
from billing.periods import budget_period_bounds
from tenants.models import ADMIN_ROLES, Membership, Tenant

log = logging.getLogger(__name__)

WEBHOOK_TIMEOUT = httpx.Timeout(5.0, connect=3.0)


def tenant_alert_recipients(tenant: Tenant) -> list[str]:
    """Emails of the tenant's owners and admins, then its contact addresses, deduplicated."""
    admin_emails = (
        Membership.objects.for_tenant(tenant)
        .filter(role__in=list(ADMIN_ROLES), user__is_active=True)
        .exclude(user__email="")
        .order_by("pk")
        .values_list("user__email", flat=True)
    )
    return _dedupe([*admin_emails, *(tenant.contact_emails or [])])


def _dedupe(addresses: list[str]) -> list[str]:
    seen: set[str] = set()
    out: list[str] = []
    for address in addresses:
        if address and address.lower() not in seen:
            seen.add(address.lower())
            out.append(address)
    return out


def budget_alert_enqueue(
    *, budget_id: int, period_start: datetime, threshold: int, spent_usd: Decimal
) -> BudgetAlert | None:
    """Record that ``budget_id`` crossed ``threshold`` % in the period starting at
    ``period_start`` and queue its notification; returns the new alert, or None when this
    crossing was already recorded or the budget no longer exists (then nothing is queued).

    Synchronous ORM code: call it through ``sync_to_async`` from async code. The task is
    queued on commit of the caller's transaction (at once outside a transaction).
    """
    from billing.tasks import send_budget_alert

    budget = Budget.objects.only("id", "tenant_id", "limit_usd").filter(pk=budget_id).first()
    if budget is None:  # deleted since the request was admitted
        return None
    alert, created = BudgetAlert.objects.get_or_create(
        budget_id=budget.pk,
        period_start=period_start,
        threshold=threshold,
        defaults={
            "tenant_id": budget.tenant_id,
            "spent_usd": spent_usd,
            "limit_usd": budget.limit_usd,
        },
    )
    if not created:
        return None
    alert_id = alert.pk
    transaction.on_commit(lambda: send_budget_alert.delay(alert_id))
    return alert


def _money(value: Decimal) -> str:
    return f"${value.quantize(Decimal('0.01')):,}"


def budget_alert_context(alert: BudgetAlert) -> dict[str, Any]:
    budget: Budget = alert.budget
    tenant: Tenant = alert.tenant
    tz = zoneinfo.ZoneInfo(tenant.timezone)
    key = budget.api_key if budget.api_key_id else None
    scope = f"API key “{key.name}”" if key is not None else f"tenant {tenant.name}"
    _, resets_at = budget_period_bounds(budget.period, tenant.timezone, alert.period_start)
    percent = (alert.spent_usd / alert.limit_usd * 100) if alert.limit_usd else Decimal(0)
    return {
        "alert": alert,
        "tenant": tenant,
        "budget": budget,
        "scope": scope,
        "key_name": key.name if key is not None else None,
        "period": budget.get_period_display(),
        "mode": budget.get_mode_display(),
        "threshold": alert.threshold,
        "spent": _money(alert.spent_usd),
        "limit": _money(alert.limit_usd),
        "percent_used": f"{percent.quantize(Decimal('0.1'))}",
        "period_start": alert.period_start.astimezone(tz).strftime("%Y-%m-%d %H:%M"),
        "resets_at": resets_at.astimezone(tz).strftime("%Y-%m-%d %H:%M"),
        "timezone": tenant.timezone,
        "resets": budget.period != Budget.Period.REQUEST,
    }


def budget_alert_webhook_payload(alert: BudgetAlert, ctx: dict[str, Any]) -> dict[str, Any]:
    budget: Budget = alert.budget
    _, resets_at = budget_period_bounds(budget.period, alert.tenant.timezone, alert.period_start)
    return {
        "type": "budget.threshold_crossed",
        "tenant": alert.tenant.slug,
        "budget": {
            "id": budget.pk,
            "scope": "api_key" if budget.api_key_id else "tenant",
            "api_key": ctx["key_name"],
            "period": budget.period,
            "mode": budget.mode,
            "limit_usd": str(alert.limit_usd),
        },
        "threshold": alert.threshold,
        "spent_usd": str(alert.spent_usd),
        "period_start": alert.period_start.isoformat(),
        "resets_at": resets_at.isoformat() if ctx["resets"] else None,
        "alert_id": alert.pk,
    }


def budget_alert_webhook(url: str, payload: dict[str, Any], *, tenant: Tenant) -> str:
    """POST the alert; returns what to record as ``webhook_status``. Never raises."""
    from routing.catalog.services import (
        base_url_check,
        pinned_public_url,
        tenant_allows_private_base_urls,
    )

    allow_private = tenant_allows_private_base_urls(tenant)
    headers = {"user-agent": "AURA-webhook/1"}
    extensions: dict[str, Any] = {}
    try:
        base_url_check(url, allow_private=allow_private, field="webhook_url")
        target = httpx.URL(url)
        if not allow_private:
            # Connect to the very address that was checked (no second DNS lookup to rebind).
            target, pinned_headers, extensions = pinned_public_url(target, field="webhook_url")
            headers.update(pinned_headers)
    except DomainError as exc:
        return f"refused: {exc.message}"[:64]
    try:
        with httpx.Client(timeout=WEBHOOK_TIMEOUT, trust_env=False) as client:
            response = client.request(
                "POST", target, json=payload, headers=headers, extensions=extensions
            )
    except httpx.HTTPError as exc:
        log.warning("budget webhook to %s failed: %s", url.split("?")[0], type(exc).__name__)
        return f"error: {type(exc).__name__}"[:64]
    return str(response.status_code)


def budget_alert_send(alert: BudgetAlert) -> bool:
    """Notify one alert at most once; returns False when it was already notified.

    ``emailed_at`` is claimed with a conditional UPDATE before sending, so a retried or
    duplicated task does nothing; if the SMTP send fails the claim is released and the
    error re-raised, so the task's retry can send it.
    """
    now = timezone.now()
    claimed = BudgetAlert.objects.filter(pk=alert.pk, emailed_at__isnull=True).update(
        emailed_at=now
    )
    if claimed != 1:
        return False
    alert = BudgetAlert.objects.select_related("budget", "budget__api_key", "tenant").get(
        pk=alert.pk
    )
    ctx = budget_alert_context(alert)
    try:
        emails.send("budget-alert", to=tenant_alert_recipients(alert.tenant), context=ctx)
    except Exception:
        BudgetAlert.objects.filter(pk=alert.pk, emailed_at=now).update(emailed_at=None)
        raise
    url = alert.budget.webhook_url
    if url:
        status = budget_alert_webhook(
            url, budget_alert_webhook_payload(alert, ctx), tenant=alert.tenant
        )
        BudgetAlert.objects.filter(pk=alert.pk).update(webhook_status=status)
    return True


# --------------------------------------------------------------------------- operators

USAGE_REJECTED_ALERT_KEY = "aura:alert:usage-rejected"
USAGE_REJECTED_ALERT_EVERY = 3600


def operator_recipients() -> list[str]:
    """``OPERATOR_EMAILS``, or else the emails of active superusers."""
    from django.conf import settings
    from django.contrib.auth import get_user_model

    configured = list(getattr(settings, "OPERATOR_EMAILS", []) or [])
    if configured:
        return _dedupe(configured)
    users = get_user_model().objects.filter(is_superuser=True, is_active=True).exclude(email="")
    return _dedupe(list(users.order_by("pk").values_list("email", flat=True)))


def usage_rejected_alert_send(*, count: int, reason: str, path: str, host: str) -> bool:
    """Tell operators that usage records are refused by the database (at most hourly):
    billed requests are missing from usage, spend and reports until they are stored."""
    from aura.redis import sync_client

    if not sync_client().set(USAGE_REJECTED_ALERT_KEY, "1", nx=True, ex=USAGE_REJECTED_ALERT_EVERY):
        return False
    recipients = operator_recipients()
    if not recipients:
        log.error("no operator email (OPERATOR_EMAILS or a superuser's) for the usage alert")
        return False
    try:
        emails.send(
            "usage-rejected",
            to=recipients,
            context={"count": count, "reason": reason, "path": path, "host": host},
        )
    except Exception:
        sync_client().delete(USAGE_REJECTED_ALERT_KEY)  # let the next refusal try again
        raise
    return True
