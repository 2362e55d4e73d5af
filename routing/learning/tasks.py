"""Celery wrappers of the learning services: take ids, call a service."""

from __future__ import annotations

from aura.celery import app
from routing.learning.services import outcome_import_run, predictor_refit


@app.task(name="routing.learning.tasks.run_outcome_import")
def run_outcome_import(import_id: int) -> str | None:
    job = outcome_import_run(import_id=import_id)
    return job.status if job is not None else None


@app.task(name="routing.learning.tasks.refit_predictor")
def refit_predictor(tenant_id: int) -> int:
    predictor = predictor_refit(tenant_id=tenant_id)
    return predictor.size if predictor is not None else 0
