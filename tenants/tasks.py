"""Celery wrappers of the tenants services (emails are sent from tasks, not requests)."""

from __future__ import annotations

from smtplib import SMTPException

from aura.celery import app
from tenants.services import invite_send


@app.task(
    name="tenants.tasks.send_invite",
    autoretry_for=(SMTPException, OSError),
    retry_backoff=30,
    max_retries=5,
)
def send_invite(membership_id: int, invited_by_id: int | None = None) -> bool:
    return invite_send(membership_id=membership_id, invited_by_id=invited_by_id)
