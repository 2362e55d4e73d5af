"""Budget paths through the real gateway: Redis unreachable (fail closed, or open when told),
a crashed request's reservation expiring, key budgets alone and with the tenant's, and
alerts whose notification never went out.

Prices: output only ($8 per 1M), so every answer costs exactly its worst case: max_tokens=4
cuts the fake's answer to 4 completion tokens.
"""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time
import zoneinfo
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import httpx
import pytest
import redis.asyncio as aioredis
import time_machine
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from aura.celery import app as celery_app
from aura.redis import sync_client
from billing.budgets import counter_key, period_bounds, rules_from_rows
from billing.models import Budget, BudgetAlert, UsageRecord
from billing.tasks import reconcile_budget_counters
from billing.usage import UsageWriter, journal_directory
from routing.gateway.context import cache
from tenants.services import api_key_create
from tests.billing.counters import counter, recorded_spend, settled
from tests.billing.smtp import smtp_sink
from tests.gateway.conftest import add_model
from tests.gateway.http import http
from tests.gateway.processes import gateway_process

PER_REQUEST = Decimal(4) * 8 / Decimal(1_000_000)  # $0.000032
BODY = {"model": "fake-ok", "max_tokens": 4, "messages": [{"role": "user", "content": "a b c d e"}]}


def post(gw, key: str | None = None, **body) -> httpx.Response:
    return http().post(
        f"{gw.url}/v1/chat/completions",
        json={**BODY, **body},
        headers={"Authorization": f"Bearer {key or gw.plaintext}"},
        timeout=30,
    )


def budget(gw, **fields) -> Budget:
    row = Budget.objects.create(tenant=gw.tenant, **{"mode": "block", **fields})
    cache.clear()
    return row


@pytest.fixture
def priced(gw) -> None:
    add_model(gw.providers["fakeai"], "fake-ok", price_in=Decimal(0), price_out=Decimal(8))


def steady_month(gw, ahead: timedelta) -> None:
    """Put the tenant in a time zone where now and now + ``ahead`` are the same month, so a
    monthly budget's counter stays the same while the test moves the clock."""
    now = datetime.now(UTC)
    for name in ("UTC", "Etc/GMT-12", "Etc/GMT+12"):
        zone = zoneinfo.ZoneInfo(name)
        if now.astimezone(zone).month == (now + ahead).astimezone(zone).month:
            gw.tenant.timezone = name
            gw.tenant.save(update_fields=["timezone"])
            cache.clear()
            return
    raise AssertionError("unreachable: the zones are 12 hours apart")


# --------------------------------------------------------------------- Redis unreachable


@pytest.mark.parametrize("fail_open", [False, True], ids=["default-fail-closed", "fail-open"])
def test_with_redis_unreachable_a_block_budget_refuses_unless_told_to_fail_open(
    gw, priced, settings, monkeypatch, fail_open
):
    settings.BUDGET_FAIL_OPEN = fail_open
    day = budget(gw, period="day", limit_usd=1)
    # A real client to a Redis that is not there (no retries: the outcome is the same).
    dead = aioredis.Redis(
        unix_socket_path="/nonexistent/redis.sock",
        socket_connect_timeout=0.2,
        retry=Retry(NoBackoff(), 0),
    )
    monkeypatch.setattr("routing.gateway.guard.async_client", lambda: dead)

    resp = post(gw)

    [row] = gw.usage(1)
    if not fail_open:
        assert resp.status_code == 503
        assert resp.json()["error"]["code"] == "budget_unavailable"
        assert gw.fakes["openai"].calls == []
        assert (row.status, row.http_status, row.error_code, row.cost_usd) == (
            "error",
            503,
            "budget_unavailable",
            0,
        )
        return
    assert resp.status_code == 200, resp.text
    assert len(gw.fakes["openai"].calls) == 1
    assert (row.status, row.cost_usd) == ("ok", PER_REQUEST)
    # Nothing could be counted while Redis was away; once it is back, the periodic
    # reconcile raises the counter to what the records say was spent.
    monkeypatch.undo()
    assert counter(day).spent == 0
    assert reconcile_budget_counters() == 1
    assert counter(day).spent == PER_REQUEST == recorded_spend(day)


# --------------------------------------------------------------------- crashed request


def test_the_reservation_of_a_request_whose_process_died_frees_the_budget_after_its_ttl(gw, priced):
    # A request that dies holds its worst case until the reservation's TTL (15 minutes:
    # longer than the endpoint can run, 2 attempts of 10 s). Room for one worst case.
    add_model(gw.providers["fakeai"], "fake-timeout", price_in=Decimal(0), price_out=Decimal(8))
    steady_month(gw, timedelta(minutes=20))
    month = budget(gw, period="month", limit_usd=PER_REQUEST * Decimal("1.5"))
    rule = rules_from_rows([month])[0]
    start, _ = period_bounds("month", datetime.now(UTC), gw.tenant.timezone)
    live = counter_key(rule, start) + ":z"

    with gateway_process() as (proc, url, _):
        sent_ms = int(time.time() * 1000)

        # The upstream never answers "fake-timeout": the request is in flight when killed.
        def doomed() -> None:
            with pytest.raises(httpx.HTTPError):  # its own client: another thread
                httpx.post(
                    f"{url}/v1/chat/completions",
                    json={**BODY, "model": "fake-timeout"},
                    headers={"Authorization": f"Bearer {gw.plaintext}"},
                    timeout=30,
                )

        threading.Thread(target=doomed, daemon=True).start()
        deadline = time.monotonic() + 10
        while not gw.fakes["openai"].calls:
            assert time.monotonic() < deadline, "the request never reached the upstream"
            time.sleep(0.01)
        reached_ms = int(time.time() * 1000)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)

    [(_, expires_ms)] = sync_client().zrange(live, 0, -1, withscores=True)
    ttl_ms = 15 * 60 * 1000
    assert sent_ms + ttl_ms <= expires_ms <= reached_ms + ttl_ms
    held = post(gw)
    assert held.status_code == 402
    assert "with $0.000032 reserved by requests in flight" in held.json()["error"]["message"]
    expires = datetime.fromtimestamp(expires_ms / 1000, UTC)
    with time_machine.travel(expires - timedelta(seconds=1), tick=False):
        assert post(gw).status_code == 402  # a second before: still held
    with time_machine.travel(expires, tick=False):
        assert post(gw).status_code == 200  # at its expiry the next reservation sweeps it
        c = settled(month, PER_REQUEST)
        assert (c.spent, c.reserved, c.live_reservations) == (PER_REQUEST, 0, 0)

    # The dead process's journal: the request it died in is recorded once, as
    # interrupted (its prompt, free here, is all it is charged).
    writer = UsageWriter(directory=journal_directory())

    async def recover() -> None:
        await writer.recover()
        await writer.close()

    asyncio.run(recover())
    deadline = time.monotonic() + 10
    while not UsageRecord.objects.filter(tenant=gw.tenant, status="interrupted").exists():
        assert time.monotonic() < deadline, "the dead process's record was not recovered"
        time.sleep(0.05)
    [crashed] = UsageRecord.objects.filter(tenant=gw.tenant, status="interrupted")
    assert (crashed.model, crashed.cost_usd) == ("fake-timeout", 0)


# --------------------------------------------------------------------- key budgets


def test_a_key_budget_limits_only_that_key_and_both_counters_are_settled(gw, priced):
    tenant_day = budget(gw, period="day", limit_usd=1)
    key_day = budget(gw, period="day", limit_usd=PER_REQUEST * 2, api_key=gw.key)
    _, other = api_key_create(tenant=gw.tenant, name="other")

    statuses = [post(gw) for _ in range(3)]
    assert [r.status_code for r in statuses] == [200, 200, 402]
    message = statuses[2].json()["error"]["message"]
    assert f"the API key {gw.key.pk} daily budget (id {key_day.pk})" in message
    assert post(gw, other).status_code == 200  # the tenant's budget has room

    k = settled(key_day, PER_REQUEST * 2)
    t = settled(tenant_day, PER_REQUEST * 3)
    assert (k.spent, k.reserved, k.live_reservations) == (PER_REQUEST * 2, 0, 0)
    assert (t.spent, t.reserved, t.live_reservations) == (PER_REQUEST * 3, 0, 0)
    gw.usage(4)
    assert recorded_spend(key_day) == k.spent and recorded_spend(tenant_day) == t.spent


def test_with_tenant_and_key_budgets_the_tighter_one_refuses(gw, priced):
    tenant_day = budget(gw, period="day", limit_usd=PER_REQUEST * 3)
    key_day = budget(gw, period="day", limit_usd=PER_REQUEST * 5, api_key=gw.key)
    _, other = api_key_create(tenant=gw.tenant, name="other")

    assert [post(gw).status_code for _ in range(3)] == [200, 200, 200]
    for key in (gw.plaintext, other):
        refused = post(gw, key)
        assert refused.status_code == 402
        assert (
            f"the tenant daily budget (id {tenant_day.pk})" in (refused.json()["error"]["message"])
        )
    k = settled(key_day, PER_REQUEST * 3)
    t = settled(tenant_day, PER_REQUEST * 3)
    assert (k.spent, k.reserved, k.live_reservations) == (PER_REQUEST * 3, 0, 0)
    assert (t.spent, t.reserved, t.live_reservations) == (PER_REQUEST * 3, 0, 0)
    gw.usage(5)
    assert recorded_spend(key_day) == recorded_spend(tenant_day) == PER_REQUEST * 3


# --------------------------------------------------------------------- unsent alerts


def test_an_alert_whose_notification_never_went_out_is_sent_by_the_reconcile_once(
    gw, priced, settings
):
    steady_month(gw, timedelta(minutes=10))
    gw.tenant.contact_emails = ["ops@acme.test"]
    gw.tenant.save(update_fields=["contact_emails"])
    month = budget(gw, period="month", limit_usd=PER_REQUEST * 2, thresholds=[50])

    # The request crosses 50 %: the gateway records the alert and publishes its send task,
    # which no worker ever runs (a broker blip, a worker down).
    assert post(gw).status_code == 200
    deadline = time.monotonic() + 5
    while not BudgetAlert.objects.filter(budget=month).exists():
        assert time.monotonic() < deadline, "the threshold crossing was not recorded"
        time.sleep(0.02)
    [alert] = BudgetAlert.objects.filter(budget=month)
    assert (alert.threshold, alert.spent_usd, alert.emailed_at) == (50, PER_REQUEST, None)

    previous = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True
    try:
        with smtp_sink(settings) as smtp:
            assert reconcile_budget_counters() == 1
            assert smtp.messages == []  # under 2 minutes old: its own task may still run
            # Eager tasks send inline: when the reconcile returns, the email is out.
            with time_machine.travel(alert.created_at + timedelta(minutes=3), tick=False):
                assert reconcile_budget_counters() == 1
            assert len(smtp.messages) == 1
            with time_machine.travel(alert.created_at + timedelta(minutes=6), tick=False):
                assert reconcile_budget_counters() == 1
            assert len(smtp.messages) == 1  # sent: never again
    finally:
        celery_app.conf.task_always_eager = previous
    [mail] = smtp.messages
    assert smtp.recipients == ["ops@acme.test"]
    assert "reached 50%" in mail.subject
    alert.refresh_from_db()
    assert alert.emailed_at is not None
