"""Celery tasks are counted by name and outcome, through Celery's own task signals."""

from __future__ import annotations

from aura.celery import app
from tests.monitoring.conftest import Scrape


@app.task(name="tests.monitoring.metrics_ok")
def succeeds() -> int:
    return 1


@app.task(name="tests.monitoring.metrics_boom")
def fails() -> None:
    raise ValueError("on purpose")


@app.task(name="tests.monitoring.metrics_retry", bind=True, max_retries=1)
def retries(self) -> None:
    raise self.retry(countdown=0)


def celery_tasks(client) -> Scrape:
    return Scrape(client.get("/metrics").content.decode())


def test_task_successes_failures_and_retries_are_counted_by_task(client):
    before = celery_tasks(client)

    succeeds.apply()
    succeeds.apply()
    assert fails.apply().failed()
    retries.apply()

    after = celery_tasks(client)

    def moved(task: str, state: str) -> float:
        name = f"tests.monitoring.metrics_{task}"
        return after.value("aura_celery_tasks_total", task=name, state=state) - before.value(
            "aura_celery_tasks_total", task=name, state=state
        )

    assert moved("ok", "success") == 2
    assert moved("ok", "failure") == 0
    assert moved("boom", "failure") == 1
    assert moved("retry", "retry") >= 1
