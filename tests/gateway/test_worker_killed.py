"""A gateway process killed with SIGKILL under load loses no usage record.

The gateway here is a real uvicorn process (as ``make run`` starts it) on the test
database and Redis. It is killed mid-load; a second one is started on the same data folder,
as a supervisor would, and recovers the first one's journal. Every request the upstream
received is recorded (answered ones as ``ok``, those the process died in as
``interrupted``), none twice.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time

import httpx

from billing.models import UsageRecord
from tests.gateway.conftest import add_model
from tests.gateway.processes import gateway_process

REQUESTS = int(os.environ.get("AURA_KILL_TEST_REQUESTS", "240"))
CONCURRENCY = 24


async def _load(url: str, key: str, answered: list[str]) -> None:
    """Keep CONCURRENCY requests in flight until REQUESTS were sent or the server died."""
    sent = 0
    limits = httpx.Limits(max_connections=CONCURRENCY)
    async with httpx.AsyncClient(timeout=30, limits=limits) as client:

        async def one() -> None:
            nonlocal sent
            while sent < REQUESTS:
                sent += 1
                try:
                    resp = await client.post(
                        f"{url}/v1/chat/completions",
                        json={
                            "model": "fake-slow-first-byte",
                            "messages": [{"role": "user", "content": "count me"}],
                        },
                        headers={"Authorization": f"Bearer {key}"},
                    )
                except httpx.HTTPError:
                    return  # the process is gone
                if resp.status_code == 200:
                    answered.append(resp.headers["x-aura-request-id"])

        await asyncio.gather(*(one() for _ in range(CONCURRENCY)))


def test_a_killed_gateway_loses_no_usage_record(gw) -> None:
    add_model(gw.providers["fakeai"], "fake-slow-first-byte")  # the fake waits 0.3 s
    gw.fakes["openai"].slow_first_byte = 0.05
    answered: list[str] = []
    with gateway_process() as (proc, url, _):

        async def load_then_kill() -> float:
            task = asyncio.create_task(_load(url, gw.plaintext, answered))
            started = time.monotonic()
            while len(gw.fakes["openai"].calls) < REQUESTS // 2:  # noqa: ASYNC110
                await asyncio.sleep(0.01)
            os.kill(proc.pid, signal.SIGKILL)  # mid-load, requests in flight
            rate = len(gw.fakes["openai"].calls) / (time.monotonic() - started)
            await task
            return rate

        rate = asyncio.run(load_then_kill())
        proc.wait(timeout=10)
    reached = len(gw.fakes["openai"].calls)
    assert 0 < len(answered) < reached, "the kill came mid-load"

    # A supervisor starts a new process on the same data: it recovers the journal.
    with gateway_process():
        deadline = time.monotonic() + 30
        while UsageRecord.objects.filter(tenant=gw.tenant).count() < reached:
            assert time.monotonic() < deadline, (
                f"{UsageRecord.objects.count()} records for {reached} upstream calls"
            )
            time.sleep(0.1)
    rows = list(UsageRecord.objects.filter(tenant=gw.tenant))
    by_request = {r.request_id: r for r in rows}
    assert len(by_request) == len(rows), "a record was written twice"
    assert all(by_request[rid].status == "ok" for rid in answered)
    interrupted = [r for r in rows if r.status == "interrupted"]
    print(
        f"{rate:.0f} req/s; upstream calls {reached}, answered 200 {len(answered)}, "
        f"records {len(rows)} "
        f"(ok {sum(r.status == 'ok' for r in rows)}, interrupted {len(interrupted)})"
    )
    # Requests the process died in: recorded, their prompt charged, flagged estimated.
    assert all(r.cost_estimated and r.cost_usd > 0 for r in interrupted)
    assert len(rows) >= reached
    # At most the requests in flight at the kill are without an upstream call.
    assert len(rows) - reached <= CONCURRENCY
