"""The usage writer through a Postgres outage, beyond what test_usage_writer.py checks:
what is on disk while the database is down, that nothing is sent to it twice once it is
back, and a shutdown in the middle of the outage.

The outage is real: the writer's connection string points at a port where nothing
listens, so every write fails as it would with the server down.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from billing import usage
from billing.usage import UsageWriter, _conninfo
from tests.billing.test_usage_writer import journal_files, record, stored, wait_until

pytestmark = pytest.mark.django_db(transaction=True)
DOWN = "host=127.0.0.1 port=1 dbname=x user=x connect_timeout=1"
N = 30


class Database:
    def __init__(self) -> None:
        self.up = False

    def conninfo(self) -> str:
        return _conninfo() if self.up else DOWN


def journaled_ids(directory: Path) -> list[str]:
    return sorted(
        {
            rid
            for path in journal_files(directory)
            for rid in (f"req_outage_{i:02d}" for i in range(N))
            if f'"{rid}"' in path.read_text()
        }
    )


def test_during_an_outage_every_record_is_on_disk_and_once_back_each_is_sent_once(
    acme, tmp_path, monkeypatch
) -> None:
    monkeypatch.setattr(usage, "MAX_PENDING", 5)
    database = Database()
    expected = [f"req_outage_{i:02d}" for i in range(N)]

    async def run() -> None:
        writer = UsageWriter(conninfo=database.conninfo, directory=tmp_path)
        for rid in expected:
            writer.submit(record(acme.pk, rid))
            await asyncio.sleep(0.01)
        await wait_until(lambda: len(writer._queue) <= 5)
        # Memory holds the newest five; the journal holds all thirty.
        assert journaled_ids(tmp_path) == expected
        assert writer.written == 0  # nothing stored
        database.up = True
        await wait_until(lambda: writer.written >= N, seconds=20)
        # Let the writer run a few more rounds of catching up: nothing more is sent.
        await asyncio.sleep(0.3)
        assert writer.written == N  # rows sent to Postgres: each record exactly once
        await writer.close()

    asyncio.run(run())
    assert stored() == expected
    assert journal_files(tmp_path) == []


def test_a_shutdown_during_an_outage_leaves_the_records_for_the_next_process(
    acme, tmp_path, monkeypatch
) -> None:
    monkeypatch.setattr(usage, "MAX_PENDING", 5)
    database = Database()
    expected = [f"req_outage_{i:02d}" for i in range(N)]

    async def run() -> None:
        writer = UsageWriter(conninfo=database.conninfo, directory=tmp_path)
        for rid in expected:
            writer.submit(record(acme.pk, rid))
            await asyncio.sleep(0.01)
        await wait_until(lambda: len(writer._queue) <= 5)
        await writer.close()  # a deploy while the database is down: nothing can be written
        assert journaled_ids(tmp_path) == expected
        database.up = True
        first, second = UsageWriter(directory=tmp_path), UsageWriter(directory=tmp_path)
        assert await first.recover() == N
        assert await second.recover() == 0
        await first.close()
        await second.close()

    asyncio.run(run())
    assert stored() == expected
    assert journal_files(tmp_path) == []
