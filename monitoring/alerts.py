"""Alerts: raised and resolved by detectors (health flips, SLA and anomaly checks), one
open row per condition (``dedupe_key``), notified by a separate step.

A detector calls ``alert_raise`` every time it sees the condition (idempotent: the open
row is refreshed, a higher severity escalates it) and ``alert_resolve`` when it is gone.
Neither sends anything; ``alerts_notify`` (its own task) does, so a slow mail server or
webhook never holds up detection and a failed send is retried on the next run.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

import httpx
from django.conf import settings
from django.db import IntegrityError, models, transaction
from django.utils import timezone

from aura import emails
from monitoring.models import Alert, EndpointHealth, HealthFlip, HealthStatus
from tenants.models import Tenant

log = logging.getLogger(__name__)

_RANK: dict[str, int] = {Alert.Severity.WARNING: 1, Alert.Severity.CRITICAL: 2}
WEBHOOK_TIMEOUT = httpx.Timeout(5.0, connect=3.0)


def alert_raise(
    *,
    dedupe_key: str,
    kind: str,
    subject: str,
    severity: str,
    message: str,
    tenant: Tenant | None = None,
    target: EndpointHealth | None = None,
    metric: str = "",
    value: float | None = None,
    threshold: float | None = None,
    now: datetime | None = None,
) -> tuple[Alert, bool]:
    """Open the alert for ``dedupe_key``, or refresh the open one. Returns (alert, created).

    A refresh takes the new message and value; the severity only goes up here (a critical
    condition easing to warning stays critical until resolved, so it is not re-sent as a
    de-escalation)."""
    now = now or timezone.now()
    for _ in range(2):  # a concurrent raise of the same key wins the unique constraint once
        open_alert = Alert.objects.filter(dedupe_key=dedupe_key, state=Alert.State.OPEN).first()
        if open_alert is not None:
            fields = ["last_seen_at", "message", "value", "threshold"]
            open_alert.last_seen_at = now
            open_alert.message = message[:500]
            open_alert.value = value
            open_alert.threshold = threshold
            if _RANK[severity] > _RANK[open_alert.severity]:
                open_alert.severity = severity
                open_alert.escalated_at = now
                fields += ["severity", "escalated_at"]
            open_alert.save(update_fields=fields)
            return open_alert, False
        try:
            with transaction.atomic():
                alert = Alert.objects.create(
                    dedupe_key=dedupe_key,
                    kind=kind,
                    subject=subject[:200],
                    metric=metric,
                    tenant=tenant,
                    target=target,
                    severity=severity,
                    message=message[:500],
                    value=value,
                    threshold=threshold,
                    opened_at=now,
                    last_seen_at=now,
                )
        except IntegrityError:
            continue
        log.warning("alert opened: [%s] %s: %s", severity, subject, message)
        return alert, True
    raise RuntimeError(f"could not raise alert {dedupe_key!r}")


def alert_resolve(*, dedupe_key: str, now: datetime | None = None) -> Alert | None:
    """Resolve the open alert for ``dedupe_key`` (None if there was none)."""
    now = now or timezone.now()
    alert = Alert.objects.filter(dedupe_key=dedupe_key, state=Alert.State.OPEN).first()
    if alert is None:
        return None
    updated = Alert.objects.filter(pk=alert.pk, state=Alert.State.OPEN).update(
        state=Alert.State.RESOLVED, resolved_at=now, last_seen_at=now
    )
    if updated != 1:
        return None
    log.info("alert resolved: %s", alert.subject)
    alert.refresh_from_db()
    return alert


# ------------------------------------------------------------------------------ flips


def flips_process(*, now: datetime | None = None) -> int:
    """Turn unprocessed health flips into alerts; returns how many flips were handled.

    Each flip is claimed by a conditional UPDATE before it is acted on, so two workers
    never handle one twice. Down opens a critical alert; leaving down resolves it.
    Degraded alone alerts nobody: one failed probe is enough for it (routing reacts at
    once), and sustained trouble short of down is what the SLA and anomaly checks report.
    """
    now = now or timezone.now()
    done = 0
    pending = HealthFlip.objects.filter(processed_at__isnull=True).order_by("created_at", "id")
    for flip in pending.select_related("target", "target__provider", "target__tenant")[:500]:
        if (
            HealthFlip.objects.filter(pk=flip.pk, processed_at__isnull=True).update(
                processed_at=now
            )
            != 1
        ):
            continue
        done += 1
        target = flip.target
        subject = _target_subject(target)
        down_key = f"endpoint_down:{target.name}"
        if flip.new_status == HealthStatus.DOWN:
            alert_raise(
                dedupe_key=down_key,
                kind="endpoint_down",
                subject=subject,
                severity=Alert.Severity.CRITICAL,
                message=f"{subject} is down: {flip.reason or 'health checks failing'}",
                tenant=target.tenant,
                target=target,
                metric="availability",
                now=now,
            )
        elif flip.old_status == HealthStatus.DOWN:  # up again (healthy, or degraded)
            alert_resolve(dedupe_key=down_key, now=now)
    return done


def _target_subject(target: EndpointHealth) -> str:
    where = target.endpoint.name if target.endpoint_id and target.endpoint else "default URL"
    owner = f" ({target.tenant.slug}'s)" if target.tenant_id and target.tenant else ""
    return f"{target.provider.slug} {where}{owner} [{target.name}]"


# ------------------------------------------------------------------------------ escalation


def alerts_escalate(*, now: datetime | None = None) -> int:
    """Open alerts that persist: a warning open longer than ALERT_ESCALATE_AFTER_MINUTES
    becomes critical; a critical one is sent again after as long (a reminder). Returns how
    many escalated."""
    now = now or timezone.now()
    after = timedelta(minutes=settings.ALERT_ESCALATE_AFTER_MINUTES)
    warned = Alert.objects.filter(
        state=Alert.State.OPEN,
        severity=Alert.Severity.WARNING,
        opened_at__lte=now - after,
        last_seen_at__gte=now - after,  # still seen: the condition persists
    )
    n = warned.update(severity=Alert.Severity.CRITICAL, escalated_at=now)
    # Reminders: a critical alert notified long ago is due again.
    Alert.objects.filter(
        state=Alert.State.OPEN,
        severity=Alert.Severity.CRITICAL,
        notified_severity=Alert.Severity.CRITICAL,
        notified_at__lte=now - after,
    ).update(notified_severity="")
    return n


# ------------------------------------------------------------------------------ notifying


def alert_recipients(alert: Alert) -> list[str]:
    from billing.alerts import operator_recipients, tenant_alert_recipients

    if alert.tenant_id is not None and alert.tenant is not None:
        return tenant_alert_recipients(alert.tenant)
    return operator_recipients()


def alert_payload(alert: Alert) -> dict[str, Any]:
    return {
        "type": f"alert.{'resolved' if alert.state == Alert.State.RESOLVED else 'firing'}",
        "id": alert.pk,
        "kind": alert.kind,
        "subject": alert.subject,
        "metric": alert.metric,
        "severity": alert.severity,
        "state": alert.state,
        "message": alert.message,
        "value": alert.value,
        "threshold": alert.threshold,
        "tenant": alert.tenant.slug if alert.tenant_id and alert.tenant else None,
        "opened_at": alert.opened_at.isoformat(),
        "escalated_at": alert.escalated_at.isoformat() if alert.escalated_at else None,
        "resolved_at": alert.resolved_at.isoformat() if alert.resolved_at else None,
    }


def _webhook(alert: Alert) -> None:
    url = settings.OPERATOR_ALERT_WEBHOOK
    if not url or alert.tenant_id is not None:
        return  # tenants' alerts go to their admins by email only
    try:
        with httpx.Client(timeout=WEBHOOK_TIMEOUT, trust_env=False) as client:
            client.post(url, json=alert_payload(alert), headers={"user-agent": "AURA-alert/1"})
    except httpx.HTTPError as exc:
        log.warning("alert webhook failed: %s", type(exc).__name__)


def alert_notify(alert: Alert) -> bool:
    """Send what this alert has not yet said (its severity, or its resolution), once."""
    now = timezone.now()
    if alert.state == Alert.State.OPEN:
        claimed = (
            Alert.objects.filter(pk=alert.pk, state=Alert.State.OPEN)
            .exclude(notified_severity=alert.severity)
            .update(notified_severity=alert.severity, notified_at=now)
        )
        previous: dict[str, Any] = {
            "notified_severity": alert.notified_severity,
            "notified_at": alert.notified_at,
        }
    else:
        # A resolution is news only to those who heard of the alert.
        claimed = Alert.objects.filter(
            pk=alert.pk, notified_resolved=False, notified_at__isnull=False
        ).update(notified_resolved=True)
        previous = {"notified_resolved": False}
    if claimed != 1:
        return False
    context = {"alert": alert, "payload": alert_payload(alert), "site": settings.AURA_PUBLIC_URL}
    try:
        emails.send("provider-alert", to=alert_recipients(alert), context=context)
    except Exception:
        Alert.objects.filter(pk=alert.pk).update(**previous)
        raise
    _webhook(alert)
    return True


def alerts_notify() -> int:
    """Notify every alert with news (opened, escalated, reminded, resolved)."""
    due = (
        Alert.objects.filter(state=Alert.State.OPEN)
        .exclude(notified_severity=models.F("severity"))
        .union(
            Alert.objects.filter(
                state=Alert.State.RESOLVED, notified_resolved=False, notified_at__isnull=False
            )
        )
    )
    sent = 0
    for alert in Alert.objects.filter(pk__in=[a.pk for a in due]).select_related("tenant"):
        sent += alert_notify(alert)
    return sent
