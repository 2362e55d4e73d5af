"""Postgres goes away under the live gateway: requests are still answered, their usage
records wait (memory and journal) and are stored once the database is back.

The outage is real: Postgres terminates the gateway writer's connection, and the writer's
reconnects go to a port where nothing listens until the test lets it back.
"""

from __future__ import annotations

import time
from decimal import Decimal

from django.db import connection

from billing.models import UsageRecord
from billing.usage import writer
from tests.gateway.conftest import add_model

DOWN = "host=127.0.0.1 port=1 dbname=x user=x connect_timeout=1"
HI = [{"role": "user", "content": "hello there world"}]
# The fake bills 10 + 3 prompt tokens and "fake reply: hello there world" = 5 completion
# tokens, at $2 in / $8 out per 1M.
COST = (Decimal(13) * 2 + Decimal(5) * 8) / Decimal(1_000_000)


def test_requests_are_answered_while_postgres_is_down_and_recorded_once_it_is_back(gw, caplog):
    add_model(gw.providers["fakeai"], "fake-ok")
    gw.client().chat.completions.create(model="fake-ok", messages=HI)
    assert len(gw.usage(1)) == 1  # the writer is connected
    assert writer._conn is not None
    real = writer._conninfo
    writer._conninfo = lambda: DOWN
    try:
        with connection.cursor() as cur:
            cur.execute("SELECT pg_terminate_backend(%s)", [writer._conn.info.backend_pid])
        ids = [
            gw.client()
            .chat.completions.with_raw_response.create(model="fake-ok", messages=HI)
            .headers["x-aura-request-id"]
            for _ in range(3)
        ]
        deadline = time.monotonic() + 5
        while "usage write failed" not in caplog.text:  # it tried, and kept them
            assert time.monotonic() < deadline, "the writer never hit the outage"
            time.sleep(0.02)
        assert not UsageRecord.objects.filter(request_id__in=ids).exists()
    finally:
        writer._conninfo = real
    rows = gw.usage(4, timeout=15)
    assert sorted(r.request_id for r in rows[1:]) == sorted(ids)
    assert [(r.status, r.cost_usd) for r in rows] == [("ok", COST)] * 4
