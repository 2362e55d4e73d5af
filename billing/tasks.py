"""Billing's Celery tasks: thin wrappers that take ids, load rows and call a service.

Schedules (django-celery-beat rows, editable in the admin) are created by migration
``billing/0003_default_schedules``: ``refresh_rollups`` every 10 minutes and
``send_due_weekly_reports`` hourly.
"""

from __future__ import annotations

from datetime import date
from smtplib import SMTPException
from typing import Any

from aura.celery import app
from billing.alerts import budget_alert_send
from billing.models import BudgetAlert
from billing.reports import weekly_report_send, weekly_reports_enqueue_due
from billing.rollups import rollups_refresh_periodic
from tenants.models import Tenant

# Bound to AURA's app, not @shared_task: a shared task follows celery's *current* app, which
# any other Celery() instantiated in the process (e.g. a probe in a test) silently replaces.
# SMTP trouble is worth retrying; the services release their claim before re-raising.
_RETRY: dict[str, Any] = {
    "autoretry_for": (SMTPException, OSError),
    "retry_backoff": 30,
    "retry_backoff_max": 600,
    "max_retries": 5,
}


@app.task(name="billing.tasks.refresh_rollups")
def refresh_rollups() -> dict[str, Any] | None:
    return rollups_refresh_periodic()


@app.task(name="billing.tasks.send_budget_alert", **_RETRY)
def send_budget_alert(alert_id: int) -> bool:
    alert = BudgetAlert.objects.filter(pk=alert_id).first()
    if alert is None:  # budget deleted since: nothing to say
        return False
    return budget_alert_send(alert)


@app.task(name="billing.tasks.send_due_weekly_reports")
def send_due_weekly_reports() -> int:
    return len(weekly_reports_enqueue_due())


@app.task(name="billing.tasks.send_weekly_report", **_RETRY)
def send_weekly_report(tenant_id: int, week_start_iso: str, resend: bool = False) -> bool:
    tenant = Tenant.objects.filter(pk=tenant_id).first()
    if tenant is None:
        return False
    report = weekly_report_send(tenant, date.fromisoformat(week_start_iso), resend=resend)
    return report is not None


@app.task(name="billing.tasks.reconcile_budget_counters")
def reconcile_budget_counters() -> int | None:
    """Periodic: bring Redis budget counters up to the usage records (never lowers one)."""
    from datetime import timedelta

    from django.utils import timezone

    from billing.budgets import budget_counters_rebuild
    from billing.rollups import job_claim

    now = timezone.now()
    if not job_claim("reconcile_budget_counters", now=now, min_gap=timedelta(minutes=1)):
        return None
    # Alerts whose send task was never published (broker blip) or gave up: try again.
    stale = BudgetAlert.objects.filter(
        emailed_at__isnull=True, created_at__lt=now - timedelta(minutes=2)
    ).values_list("pk", flat=True)
    for alert_id in stale[:500]:
        send_budget_alert.delay(alert_id)
    return budget_counters_rebuild(keep_higher=True)


@app.task(name="billing.tasks.usage_rejected_alert", **_RETRY)
def usage_rejected_alert(count: int, reason: str, path: str, host: str = "") -> bool:
    import socket

    from billing.alerts import usage_rejected_alert_send

    return usage_rejected_alert_send(
        count=count, reason=reason, path=path, host=host or socket.gethostname()
    )
