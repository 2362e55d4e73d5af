"""Budget threshold alerts: recorded once per period, emailed by SMTP once, webhook posted."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from django.contrib.auth import get_user_model

from billing.alerts import budget_alert_enqueue, budget_alert_send
from billing.models import Budget, BudgetAlert
from billing.tasks import send_budget_alert
from routing.models import RoutingPolicy
from tenants.models import Role, Tenant
from tenants.services import api_key_create, membership_add
from tests.billing.smtp import SmtpSink
from tests.conftest import Persona

PERIOD_START = datetime(2025, 2, 28, 23, 0, tzinfo=UTC)  # 1 March 00:00 in Paris


class Hook:
    """A webhook receiver on loopback that records JSON bodies."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        received = self.bodies

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers["content-length"])
                received.append(json.loads(self.rfile.read(length)))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def hook() -> Iterator[Hook]:
    h = Hook()
    yield h
    h.close()


@pytest.fixture
def tenant(alice: Persona, bob: Persona) -> Tenant:
    """acme in Paris: alice admin, bob member, olga owner; contacts repeat alice's address."""
    t = alice.tenant
    t.timezone = "Europe/Paris"
    t.contact_emails = ["ops@acme.test", "ALICE@example.test"]
    t.save(update_fields=["timezone", "contact_emails"])
    olga = get_user_model().objects.create_user("olga", "olga@example.test", "pw")
    membership_add(tenant=t, user=olga, role=Role.OWNER)
    return t


@pytest.fixture
def budget(tenant: Tenant) -> Budget:
    return Budget.objects.create(
        tenant=tenant, period="month", limit_usd=Decimal("10"), mode="block"
    )


def enqueue(budget: Budget, threshold: int = 90, spent: str = "9.0000") -> BudgetAlert | None:
    return budget_alert_enqueue(
        budget_id=budget.pk,
        period_start=PERIOD_START,
        threshold=threshold,
        spent_usd=Decimal(spent),
    )


def test_an_alert_enqueued_twice_is_emailed_once(
    budget: Budget, smtp: SmtpSink, eager_celery: None, django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        first = enqueue(budget)
        second = enqueue(budget, spent="9.5")

    assert first is not None and second is None
    assert len(callbacks) == 1
    assert BudgetAlert.objects.count() == 1
    # Owners and admins plus contacts, deduplicated; never plain members (bob).
    assert smtp.recipients == ["alice@example.test", "olga@example.test", "ops@acme.test"]
    alert = BudgetAlert.objects.get()
    assert alert.emailed_at is not None
    assert (alert.spent_usd, alert.limit_usd) == (Decimal("9"), Decimal("10"))


def test_the_alert_email_says_which_budget_how_far_and_when_it_resets(
    budget: Budget, smtp: SmtpSink
) -> None:
    alert = enqueue(budget)
    assert alert is not None
    assert budget_alert_send(alert) is True

    msg = smtp.to("ops@acme.test")[0]
    assert msg.message.get_content_type() == "multipart/alternative"
    assert msg.subject == (
        "Budget alert: tenant Acme reached 90% of its month budget ($9.00 of $10.00)"
    )
    for body in (msg.text, msg.html):
        assert "Month budget, tenant Acme" in body
        assert "Block" in body
        assert "90%" in body
        assert "$9.00" in body and "$10.00" in body and "90.0%" in body
        assert "2025-03-01 00:00" in body  # period start, Paris
        assert "2025-04-01 00:00" in body  # resets at, Paris
        assert "Europe/Paris" in body
    assert "Period:     from 2025-03-01 00:00 (Europe/Paris)" in msg.text
    assert "Resets at:  2025-04-01 00:00 (Europe/Paris)" in msg.text
    assert "<script" not in msg.html.lower()


def test_a_key_budget_alert_names_the_key(tenant: Tenant, smtp: SmtpSink) -> None:
    key = api_key_create(tenant=tenant, name="batch-jobs")[0]
    budget = Budget.objects.create(
        tenant=tenant, api_key=key, period="day", limit_usd=Decimal("2"), mode="downgrade"
    )
    alert = enqueue(budget, threshold=100, spent="2.10")
    assert alert is not None
    budget_alert_send(alert)

    msg = smtp.messages[0]
    assert "batch-jobs" in msg.subject and "100%" in msg.subject
    assert "Downgrade to cheaper models" in msg.text
    assert "routed to cheaper models" in msg.text
    assert "Resets at:  2025-03-02 00:00 (Europe/Paris)" in msg.text  # next local midnight


def test_a_retry_never_sends_twice(budget: Budget, smtp: SmtpSink) -> None:
    alert = enqueue(budget)
    assert alert is not None
    assert send_budget_alert(alert.pk) is True
    assert send_budget_alert(alert.pk) is False
    assert len(smtp.messages) == 3


def test_an_smtp_failure_releases_the_claim_for_the_retry(
    budget: Budget, smtp: SmtpSink, settings: Any
) -> None:
    alert = enqueue(budget)
    assert alert is not None
    settings.EMAIL_PORT = 9
    with pytest.raises(OSError):
        budget_alert_send(alert)
    alert.refresh_from_db()
    assert alert.emailed_at is None

    settings.EMAIL_PORT = smtp.port
    assert budget_alert_send(alert) is True
    assert len(smtp.messages) == 3


def test_the_webhook_gets_the_alert_as_json(
    budget: Budget, smtp: SmtpSink, hook: Hook, tenant: Tenant
) -> None:
    RoutingPolicy.objects.create(tenant=tenant, allow_private_base_urls=True)
    Budget.objects.filter(pk=budget.pk).update(webhook_url=hook.url)
    alert = enqueue(budget)
    assert alert is not None

    budget_alert_send(alert)

    [body] = hook.bodies
    assert body["type"] == "budget.threshold_crossed"
    assert body["tenant"] == "acme"
    assert body["threshold"] == 90
    assert body["spent_usd"] == "9.000000"
    assert body["budget"]["limit_usd"] == "10.000000"
    assert body["budget"]["period"] == "month"
    assert body["resets_at"] == "2025-03-31T22:00:00+00:00"
    alert.refresh_from_db()
    assert alert.webhook_status == "204"


def test_a_failing_webhook_is_recorded_and_does_not_raise(
    budget: Budget, smtp: SmtpSink, tenant: Tenant
) -> None:
    RoutingPolicy.objects.create(tenant=tenant, allow_private_base_urls=True)
    Budget.objects.filter(pk=budget.pk).update(webhook_url="http://127.0.0.1:9/hook")
    alert = enqueue(budget)
    assert alert is not None

    assert budget_alert_send(alert) is True

    alert.refresh_from_db()
    assert alert.webhook_status == "error: ConnectError"
    assert len(smtp.messages) == 3


def test_a_webhook_to_an_internal_address_is_refused(
    budget: Budget, smtp: SmtpSink, hook: Hook
) -> None:
    Budget.objects.filter(pk=budget.pk).update(webhook_url=hook.url)
    alert = enqueue(budget)
    assert alert is not None

    budget_alert_send(alert)

    alert.refresh_from_db()
    assert alert.webhook_status.startswith("refused:")
    assert hook.bodies == []


def test_the_task_ignores_an_alert_that_no_longer_exists(db: Any) -> None:
    assert send_budget_alert(123456) is False
