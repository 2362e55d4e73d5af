"""Celery wrappers of the learning services: take ids, call a service.

``run_due_optimizations`` runs hourly (schedule row created by migration
``routing/0015_optimization_schedule``, editable in the admin) and queues one
``optimize_tenant`` per tenant whose weekly slot (policy ``optimization.day``/``hour``,
tenant time) has passed.
"""

from __future__ import annotations

from datetime import date

from aura.celery import app
from routing.learning.optimization import optimization_run_scheduled, optimizations_enqueue_due
from routing.learning.services import outcome_import_run, predictor_refit
from tenants.models import Tenant


@app.task(name="routing.learning.tasks.run_outcome_import")
def run_outcome_import(import_id: int) -> str | None:
    job = outcome_import_run(import_id=import_id)
    return job.status if job is not None else None


@app.task(name="routing.learning.tasks.refit_predictor")
def refit_predictor(tenant_id: int) -> int:
    predictor = predictor_refit(tenant_id=tenant_id)
    return predictor.size if predictor is not None else 0


@app.task(name="routing.learning.tasks.run_due_optimizations")
def run_due_optimizations() -> int:
    return len(optimizations_enqueue_due())


@app.task(name="routing.learning.tasks.optimize_tenant")
def optimize_tenant(tenant_id: int, scheduled_for_iso: str) -> str | None:
    tenant = Tenant.objects.filter(pk=tenant_id).first()
    if tenant is None:
        return None
    row = optimization_run_scheduled(
        tenant=tenant, scheduled_for=date.fromisoformat(scheduled_for_iso)
    )
    return row.status if row is not None else None
