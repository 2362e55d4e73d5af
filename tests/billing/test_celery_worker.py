"""A real Celery worker process sends a budget alert and a weekly report by real SMTP.

The worker is ``celery -A aura worker --pool solo`` in a subprocess, configured like
production through the environment: DATABASE_URL (the test database), REDIS_URL (broker)
and EMAIL_URL (the loopback SMTP server). It consumes a queue private to this test so that
concurrent test runs sharing the embedded Redis never take each other's tasks.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from django.conf import settings
from django.utils import timezone

from aura.celery import app as celery_app
from billing.alerts import budget_alert_enqueue
from billing.models import Budget, BudgetAlert, WeeklyReport
from billing.tasks import send_weekly_report
from routing.models import CatalogModel, Provider
from tenants.models import Tenant
from tests.billing.smtp import SmtpSink, smtp_server
from tests.billing.test_weekly_report import WEEK, build_week
from tests.conftest import Persona

ROOT = Path(__file__).resolve().parents[2]
DEADLINE = 30.0


def database_url() -> str:
    db = settings.DATABASES["default"]
    user = quote(db.get("USER") or "", safe="")
    password = quote(db.get("PASSWORD") or "", safe="")
    auth = f"{user}:{password}@" if password else (f"{user}@" if user else "")
    # A unix-socket directory goes percent-encoded into the host (see aura/embedded.py).
    host = quote(str(db.get("HOST") or ""), safe="")
    port = f":{db['PORT']}" if db.get("PORT") else ""
    return f"postgres://{auth}{host}{port}/{quote(db['NAME'], safe='')}"


@pytest.fixture
def private_queue() -> Iterator[str]:
    """Route this process's task messages to a queue only our worker consumes."""
    queue = f"aura-test-{uuid.uuid4().hex[:12]}"
    previous = celery_app.conf.task_default_queue
    celery_app.conf.task_default_queue = queue
    yield queue
    celery_app.conf.task_default_queue = previous


@pytest.fixture
def smtp() -> Iterator[SmtpSink]:
    with smtp_server() as sink:
        yield sink


@pytest.fixture
def worker(transactional_db: Any, private_queue: str, smtp: SmtpSink) -> Iterator[Path]:
    env = {
        **os.environ,
        "DATABASE_URL": database_url(),
        "REDIS_URL": settings.REDIS_URL,
        "AURA_EMBEDDED_DB": "1",
        "EMAIL_URL": f"smtp://{smtp.host}:{smtp.port}",
        "DJANGO_SETTINGS_MODULE": "aura.settings",
        # Tasks the worker itself enqueues (a health round's flip processing) stay private.
        "CELERY_TASK_DEFAULT_QUEUE": private_queue,
    }
    env.pop("CELERY_BROKER_URL", None)
    log = Path(tempfile.mkstemp(prefix="aura-worker-", suffix=".log")[1])
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "aura",
                "worker",
                "--pool",
                "solo",
                "-c",
                "1",
                "-Q",
                private_queue,
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
                "-l",
                "info",
            ],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        yield log
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
        log.unlink(missing_ok=True)


def wait_for(smtp: SmtpSink, count: int, log: Path) -> None:
    try:
        smtp.wait_for(count, timeout=DEADLINE)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n--- worker log ---\n{log.read_text()[-4000:]}") from None


@pytest.mark.django_db(transaction=True)
def test_a_real_worker_sends_the_alert_and_the_weekly_report(
    alice: Persona, bob: Persona, worker: Path, smtp: SmtpSink
) -> None:
    tenant: Tenant = alice.tenant
    build_week(tenant)
    budget = Budget.objects.create(tenant=tenant, period="month", limit_usd=Decimal(10))

    # Autocommit (transactional test): on_commit runs at once and publishes the task.
    alert = budget_alert_enqueue(
        budget_id=budget.pk,
        period_start=datetime(2025, 2, 28, 23, tzinfo=UTC),
        threshold=75,
        spent_usd=Decimal("7.60"),
    )
    assert alert is not None
    send_weekly_report.delay(tenant.pk, WEEK.isoformat())

    wait_for(smtp, 4, worker)
    subjects = sorted({m.subject for m in smtp.messages})
    assert subjects == [
        "AURA weekly report for Acme, week of Mar 3, 2025: $3.80 spent",
        "Budget alert: tenant Acme reached 75% of its month budget ($7.60 of $10.00)",
    ]
    assert smtp.recipients == [
        "alice@example.test",
        "alice@example.test",
        "ops@acme.test",
        "ops@acme.test",
    ]
    for message in smtp.messages:
        assert message.text and message.html
    assert BudgetAlert.objects.get(pk=alert.pk).emailed_at is not None
    # The worker writes the report's totals just after the mail went out.
    deadline = time.monotonic() + 10
    report = WeeklyReport.objects.get(tenant=tenant, week_start=date(2025, 3, 3))
    while not report.totals and time.monotonic() < deadline:
        time.sleep(0.05)
        report.refresh_from_db()
    assert report.sent_at is not None and report.totals["cost_usd"] == "3.8"


@pytest.mark.django_db(transaction=True)
def test_a_real_worker_runs_an_outcome_import_and_publishes_the_predictor(
    worker: Path, alice: Any
) -> None:
    """POST router/outcomes/import enqueues on commit; the worker imports, refits, and
    the job's progress reads done (the routing tests cover what the predictor then does)."""
    import json

    from aura.redis import sync_client
    from routing.learning import store
    from routing.learning.models import OutcomeMemory
    from tests.learning.conftest import forget_learning
    from tests.learning.test_learning_api import IMPORT, outcome_lines

    forget_learning()
    local = {"wire_format": "ollama", "default_base_url": "http://127.0.0.1:9"}
    Provider.objects.create(slug="alpha", name="alpha", **local)
    CatalogModel.objects.create(
        provider=Provider.objects.get(slug="alpha"), model_id="small", capabilities=["chat"]
    )
    Provider.objects.create(slug="beta", name="beta", **local)
    CatalogModel.objects.create(
        provider=Provider.objects.get(slug="beta"), model_id="big", capabilities=["chat"]
    )
    body = "\n".join(json.dumps(x) for x in outcome_lines(10))
    resp = alice.client.generic("POST", IMPORT, body, content_type="application/x-ndjson")
    assert resp.status_code == 202, resp.content
    deadline = time.monotonic() + DEADLINE
    job = resp.json()
    while job["status"] in ("queued", "running") and time.monotonic() < deadline:
        time.sleep(0.1)
        job = alice.client.get(f"{IMPORT}/{job['id']}").json()
    assert job["status"] == "done", f"{job}\n--- worker log ---\n{worker.read_text()[-4000:]}"
    assert job["imported"] == 40, job
    assert job["processed"] == job["total"] == 40
    assert OutcomeMemory.objects.filter(tenant=alice.tenant).count() == 40
    assert sync_client().get(store.model_key(alice.tenant.pk))
    forget_learning()


@pytest.mark.django_db(transaction=True)
def test_a_real_worker_runs_the_due_weekly_optimization(worker: Path, alice: Any) -> None:
    """The hourly beat task finds alice's slot passed and queues her run; the worker
    stores it (a proposal: the default mode is propose)."""
    from routing.learning.models import OutcomeMemory, WeightOptimization
    from routing.learning.tasks import run_due_optimizations
    from routing.models import RoutingPolicy
    from tests.learning.conftest import forget_learning

    forget_learning()
    local = {"wire_format": "ollama", "default_base_url": "http://127.0.0.1:9"}
    for slug, model in (("alpha", "small"), ("beta", "big")):
        p = Provider.objects.create(slug=slug, name=slug, **local)
        CatalogModel.objects.create(provider=p, model_id=model, capabilities=["chat"])
    OutcomeMemory.objects.create(
        tenant=alice.tenant, prompt_hash="h", embedder="e", embedding=[0.0] * 255 + [1.0],
        model_key="alpha/small", quality=1.0, source="import",
    )  # fmt: skip
    # Every day at the current UTC hour: the slot has just passed, whatever today is.
    now = timezone.now()
    RoutingPolicy.objects.update_or_create(
        tenant=alice.tenant,
        defaults={"optimization": {"day": now.strftime("%A").lower(), "hour": now.hour}},
    )
    type(alice.tenant).objects.filter(pk=alice.tenant.pk).update(
        created_at=now - timedelta(days=30)
    )
    assert run_due_optimizations.apply().get() == 1  # queued on commit (autocommit here)
    deadline = time.monotonic() + DEADLINE
    while not WeightOptimization.objects.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    row = WeightOptimization.objects.filter(tenant=alice.tenant).first()
    assert row is not None, worker.read_text()[-4000:]
    assert row.trigger == "schedule" and row.scheduled_for is not None
    # One outcome is not evidence: the run says so instead of guessing.
    assert row.status == "insufficient_data" and "at least 40 prompts" in row.message
    assert run_due_optimizations.apply().get() == 0  # the slot's run exists
    forget_learning()
