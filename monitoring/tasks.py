"""Monitoring's Celery tasks: thin wrappers over the health round, flip processing, SLA
evaluation and pruning. Schedules: migration ``monitoring/0002_default_schedules``."""

from __future__ import annotations

from typing import Any

from aura.celery import app
from monitoring import alerts, health


@app.task(name="monitoring.tasks.check_providers")
def check_providers() -> dict[str, Any]:
    return health.health_round().as_dict()


@app.task(name="monitoring.tasks.process_flips")
def process_flips() -> int:
    done = alerts.flips_process()
    alerts.alerts_notify()
    return done


@app.task(name="monitoring.tasks.evaluate_sla")
def evaluate_sla() -> dict[str, Any]:
    escalated = alerts.alerts_escalate()
    notified = alerts.alerts_notify()
    return {"escalated": escalated, "notified": notified}


@app.task(name="monitoring.tasks.prune_health_checks")
def prune_health_checks() -> int:
    return health.health_checks_prune()
