"""The gateway's usage writer: journaled before the response, stored exactly once.

Real Postgres and real files; a dead process is a real process killed with SIGKILL; a
database outage is the writer pointed at a port where nothing listens.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings

from aura.middleware import request_id_var
from billing import usage
from billing.models import UsageRecord
from billing.usage import REJECTED_FILE, SUFFIX, UsageWriter, _conninfo

pytestmark = pytest.mark.django_db(transaction=True)
ROOT = Path(__file__).resolve().parents[2]


def record(tenant_id: int, request_id: str, **fields: Any) -> dict[str, Any]:
    return {
        "tenant_id": tenant_id,
        "created_at": datetime.now(UTC),
        "request_id": request_id,
        "api_key_id": None,
        "kind": "chat",
        "provider": "openai",
        "model": "gpt-x",
        "status": "ok",
        "http_status": 200,
        "error_code": "",
        "stream": False,
        "prompt_tokens": 10,
        "completion_tokens": 5,
        "cached_tokens": 0,
        "cost_usd": Decimal("0.000123"),
        "cost_estimated": False,
        "latency_ms": 12.5,
        "cache_status": "miss",
        "fallbacks": 0,
        "attempts": [],
        **fields,
    }


def stored() -> list[str]:
    return sorted(UsageRecord.objects.values_list("request_id", flat=True))


def journal_files(directory: Path) -> list[Path]:
    return sorted(directory.glob(f"*{SUFFIX}"))


async def wait_until(condition: Callable[[], bool], seconds: float = 10.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while not condition():
        if loop.time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.02)


def test_a_record_is_in_the_journal_before_submit_returns(acme, tmp_path) -> None:
    async def run() -> None:
        writer = UsageWriter(directory=tmp_path)
        writer.submit(record(acme.pk, "req_journaled"))
        # Nothing awaited yet: the writer task has not run, the file has the line.
        (segment,) = journal_files(tmp_path)
        assert "req_journaled" in segment.read_text()
        await wait_until(lambda: writer.written == 1)
        await writer.close()

    asyncio.run(run())
    assert stored() == ["req_journaled"]
    assert journal_files(tmp_path) == []  # everything is in Postgres: nothing left to replay


def test_a_resubmitted_record_is_stored_once(acme, tmp_path) -> None:
    # The same record id twice, as after a commit whose acknowledgement was lost.
    async def run() -> None:
        writer = UsageWriter(directory=tmp_path)
        rec = record(acme.pk, "req_twice", record_uid=writer.new_uid())
        writer.submit(dict(rec))
        await wait_until(lambda: writer.written == 1)
        writer.submit(dict(rec))
        writer.submit(record(acme.pk, "req_other"))
        await wait_until(lambda: writer.written >= 2)
        await writer.close()

    asyncio.run(run())
    assert stored() == ["req_other", "req_twice"]


def test_texts_postgres_refuses_are_stored_cleaned(acme, tmp_path) -> None:
    attempts = [
        {"model": "tenant/x", "ok": False, "message": "boom\x00boom \ud800", "error": "server"},
        {"model": "fakeai/fake-ok", "ok": True},
    ]
    rec = record(
        acme.pk,
        "req_nul",
        status="ok",
        error_code="e\x00",
        model="m" * 300,
        attempts=attempts,
    )

    async def run() -> None:
        writer = UsageWriter(directory=tmp_path)
        writer.submit(rec)
        await wait_until(lambda: writer.written == 1)
        await writer.close()

    asyncio.run(run())
    row = UsageRecord.objects.get(request_id="req_nul")
    assert row.attempts[0]["message"] == "boom\ufffdboom \ufffd"
    assert row.error_code == "e\ufffd"
    assert row.model == "m" * 200
    assert not (tmp_path / REJECTED_FILE).exists()


CHILD = textwrap.dedent(
    """
    import os, sys
    from datetime import UTC, datetime
    from decimal import Decimal
    from pathlib import Path
    from billing.usage import FINAL, PROVISIONAL, Journal

    journal = Journal(Path(sys.argv[1]))
    tenant = int(sys.argv[2])
    for i in range(3):
        base = {
            "record_uid": f"{i + 1:032x}", "tenant_id": tenant,
            "created_at": datetime.now(UTC), "request_id": f"req_child_{i}",
            "api_key_id": None, "kind": "chat", "provider": "openai", "model": "gpt-x",
            "endpoint_id": None, "http_status": 200, "error_code": "", "stream": False,
            "prompt_tokens": 10, "completion_tokens": 5, "cached_tokens": 0,
            "cost_usd": Decimal("0.0001"), "cost_estimated": False, "latency_ms": 1.0,
            "ttft_ms": None, "overhead_ms": 0.1, "cache_status": "miss", "fallbacks": 0,
            "attempts": [],
        }
        # Every request journals a provisional record first; 0 and 1 also finished.
        journal.append(PROVISIONAL, {**base, "status": "interrupted", "http_status": None,
                                     "completion_tokens": 0, "cost_estimated": True})
        if i < 2:
            journal.append(FINAL, {**base, "status": "ok"})
    print("ready", flush=True)
    os.kill(os.getpid(), 9)
    """
)


def run_child_killed(directory: Path, tenant_id: int) -> None:
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "aura.settings"}
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            "import django; django.setup()\n" + CHILD,
            str(directory),
            str(tenant_id),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-3000:]
    assert "ready" in proc.stdout


def test_the_journal_of_a_killed_process_is_recovered_exactly_once(acme, tmp_path) -> None:
    run_child_killed(tmp_path, acme.pk)
    assert len(journal_files(tmp_path)) == 1

    async def run() -> None:
        first, second = UsageWriter(directory=tmp_path), UsageWriter(directory=tmp_path)
        assert await first.recover() == 3
        assert await second.recover() == 0  # nothing left, nothing twice
        await first.close()
        await second.close()

    asyncio.run(run())
    rows = {r.request_id: r for r in UsageRecord.objects.all()}
    assert sorted(rows) == ["req_child_0", "req_child_1", "req_child_2"]
    assert rows["req_child_0"].status == rows["req_child_1"].status == "ok"
    # The request the process died in: recorded as interrupted, its prompt charged, flagged.
    assert rows["req_child_2"].status == "interrupted"
    assert rows["req_child_2"].cost_estimated is True
    assert rows["req_child_2"].cost_usd == Decimal("0.0001")
    assert journal_files(tmp_path) == []


def test_a_live_writers_journal_is_never_recovered_by_another(acme, tmp_path) -> None:
    async def run() -> None:
        live = UsageWriter(directory=tmp_path)
        live.provisional(
            record(acme.pk, "req_in_flight", status="interrupted", record_uid=live.new_uid())
        )
        other = UsageWriter(directory=tmp_path)
        assert await other.recover() == 0
        await other.close()
        await live.close()  # graceful: unfinished ones are left for the next process
        third = UsageWriter(directory=tmp_path)
        assert await third.recover() == 1
        await third.close()

    asyncio.run(run())
    assert [r.status for r in UsageRecord.objects.all()] == ["interrupted"]


def test_an_outage_past_the_memory_cap_loses_nothing_and_writes_nothing_twice(
    acme, tmp_path, monkeypatch
) -> None:
    monkeypatch.setattr(usage, "MAX_PENDING", 5)
    database = {"up": False}

    def conninfo() -> str:
        return _conninfo() if database["up"] else "host=127.0.0.1 port=1 dbname=x user=x"

    async def run() -> None:
        writer = UsageWriter(conninfo=conninfo, directory=tmp_path)
        for i in range(30):
            writer.submit(record(acme.pk, f"req_outage_{i:02d}"))
            await asyncio.sleep(0.01)
        await wait_until(lambda: len(writer._queue) <= 5)  # the rest was dropped to disk
        assert await asyncio.to_thread(UsageRecord.objects.count) == 0
        database["up"] = True
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 20
        while await asyncio.to_thread(UsageRecord.objects.count) < 30:
            assert loop.time() < deadline, "the journal was not replayed"
            await asyncio.sleep(0.1)
        await writer.close()

    asyncio.run(run())
    assert stored() == [f"req_outage_{i:02d}" for i in range(30)]
    assert journal_files(tmp_path) == []


def test_a_refused_record_alerts_operators_and_is_stored_once_it_can_be(
    acme, tmp_path, smtp, eager_celery, settings, django_user_model
) -> None:
    from aura.redis import sync_client

    sync_client().delete("aura:alert:usage-rejected")
    settings.OPERATOR_EMAILS = ["ops@aura.test"]
    orphan_tenant = acme.pk + 1000  # no such tenant yet: the database refuses the record

    async def run() -> None:
        writer = UsageWriter(directory=tmp_path)
        writer.submit(record(orphan_tenant, "req_orphan"))
        writer.submit(record(acme.pk, "req_fine"))
        await wait_until(lambda: writer.written == 1 and writer.rejected == 1)
        assert await writer.retry_rejected() == 1  # still refused: kept, not dropped
        await writer.close()

    asyncio.run(run())
    assert stored() == ["req_fine"]
    assert "req_orphan" in (tmp_path / REJECTED_FILE).read_text()
    smtp.wait_for(1)
    assert smtp.messages[0].subject == "AURA: 1 usage record refused by the database"
    assert "ForeignKeyViolation" in smtp.messages[0].text
    assert smtp.recipients == ["ops@aura.test"]

    from tenants.models import Tenant

    Tenant.objects.create(pk=orphan_tenant, name="Late", slug="late")

    async def retry() -> None:
        writer = UsageWriter(directory=tmp_path)
        assert await writer.retry_rejected() == 0
        await writer.close()

    asyncio.run(retry())
    assert stored() == ["req_fine", "req_orphan"]
    assert (tmp_path / REJECTED_FILE).read_text() == ""


def test_the_writers_log_lines_carry_no_request_id(acme, tmp_path, caplog) -> None:
    async def run() -> None:
        writer = UsageWriter(directory=tmp_path)
        token = request_id_var.set("req_unrelated")
        try:
            writer.submit(record(acme.pk + 1000, "req_refused"))  # refused: logs an error
        finally:
            request_id_var.reset(token)
        await wait_until(lambda: writer.rejected == 1)
        await writer.close()

    with caplog.at_level(logging.ERROR, logger="billing.usage"):
        asyncio.run(run())
    from aura.middleware import RequestIdLogFilter

    lines = [r for r in caplog.records if "refused by the database" in r.getMessage()]
    assert lines
    for line in lines:
        RequestIdLogFilter().filter(line)
        assert line.request_id == "-"


def test_the_journal_lives_beside_the_database_it_belongs_to() -> None:
    name = settings.DATABASES["default"]["NAME"]
    assert usage.journal_directory().name == name
