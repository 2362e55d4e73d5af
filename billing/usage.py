"""Group-commit writer of usage records for the gateway.

The gateway must record every request that reached a provider without paying a database
round trip per request on the hot path. Records go into an in-process queue and one
background task per event loop writes whatever has accumulated with a single ``COPY``
(about every ``FLUSH_INTERVAL`` seconds, sooner when ``MAX_BATCH`` are waiting), on its own
psycopg connection, outside any request and any transaction the request holds.

Durability: a record waits in memory for at most ``FLUSH_INTERVAL`` plus one write. On a
database error the batch is kept and retried with backoff (bounded by ``MAX_PENDING``; past
that, records are appended to ``<AURA_DATA_DIR>/usage-spool.jsonl``, which the writer
loads back once the database accepts writes again, rather than dropped). A single record
the database refuses outright goes to ``usage-rejected.jsonl`` for an operator to inspect. Graceful shutdown (ASGI lifespan) flushes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

import psycopg
from django.conf import settings

from aura import lifecycle

log = logging.getLogger(__name__)

FLUSH_INTERVAL = 0.05
MAX_BATCH = 1000
MAX_PENDING = 100_000
SPOOL_FILE = "usage-spool.jsonl"
REJECTED_FILE = "usage-rejected.jsonl"
SPOOL_CHECK_INTERVAL = 30.0

COLUMNS: tuple[str, ...] = (
    "tenant_id",
    "created_at",
    "request_id",
    "api_key_id",
    "kind",
    "provider",
    "model",
    "endpoint_id",
    "status",
    "http_status",
    "error_code",
    "stream",
    "prompt_tokens",
    "completion_tokens",
    "cached_tokens",
    "cost_usd",
    "cost_estimated",
    "latency_ms",
    "ttft_ms",
    "overhead_ms",
    "cache_status",
    "fallbacks",
    "attempts",
)
_COPY_SQL = f"COPY billing_usagerecord ({', '.join(COLUMNS)}) FROM STDIN"


def _conninfo() -> str:
    db = settings.DATABASES["default"]
    params: dict[str, Any] = {
        "dbname": db["NAME"],
        "user": db.get("USER") or None,
        "password": db.get("PASSWORD") or None,
        "host": db.get("HOST") or None,
        "port": db.get("PORT") or None,
    }
    for k, v in (db.get("OPTIONS") or {}).items():
        if k not in ("pool",):
            params[k] = v
    return psycopg.conninfo.make_conninfo(**{k: v for k, v in params.items() if v is not None})


def _row(rec: dict[str, Any]) -> tuple[Any, ...]:
    row = []
    for col in COLUMNS:
        value = rec.get(col)
        if col == "attempts":
            value = json.dumps(value or [])
        row.append(value)
    return tuple(row)


class UsageWriter:
    def __init__(self) -> None:
        self._queue: list[dict[str, Any]] = []
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._conn: psycopg.AsyncConnection[Any] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._spool_checked_at = float("-inf")
        self._busy = False
        self.written = 0

    def submit(self, record: dict[str, Any]) -> None:
        """Queue one record (non-blocking). Starts the writer task on first use."""
        self._queue.append(record)
        loop = asyncio.get_running_loop()
        if self._task is None or self._loop is not loop or self._task.done():
            self._start(loop)
        if len(self._queue) >= MAX_BATCH and self._wake is not None:
            self._wake.set()

    def _start(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._wake = asyncio.Event()
        self._conn = None
        self._task = loop.create_task(self._run(), name="aura-usage-writer")

    async def _connection(self) -> psycopg.AsyncConnection[Any]:
        if self._conn is None or self._conn.closed:
            self._conn = await psycopg.AsyncConnection.connect(_conninfo(), autocommit=True)
        return self._conn

    async def _copy(self, batch: Sequence[dict[str, Any]]) -> None:
        conn = await self._connection()
        async with conn.cursor() as cur, cur.copy(_COPY_SQL) as copy:
            for rec in batch:
                await copy.write_row(_row(rec))
        self.written += len(batch)

    async def _write(self, batch: Sequence[dict[str, Any]]) -> None:
        try:
            await self._copy(batch)
        except (psycopg.errors.IntegrityError, psycopg.errors.DataError):
            # One record the database refuses (its API key or tenant was deleted while the
            # request ran) must not hold back every record after it, retried forever: write
            # them one by one and set the refused ones aside.
            log.warning("usage batch of %d refused; writing records one by one", len(batch))
            for rec in batch:
                await self._write_alone(rec)

    async def _write_alone(self, rec: dict[str, Any]) -> None:
        try:
            await self._copy([rec])
            return
        except psycopg.errors.ForeignKeyViolation:
            if rec.get("api_key_id") is not None:
                # The key was deleted meanwhile: keep the record, as the FK's SET_NULL would.
                try:
                    await self._copy([{**rec, "api_key_id": None}])
                    return
                except (psycopg.errors.IntegrityError, psycopg.errors.DataError):
                    pass
        except (psycopg.errors.IntegrityError, psycopg.errors.DataError):
            pass
        log.error("usage record %s refused by the database; set aside", rec.get("request_id"))
        self._spill_records([rec], REJECTED_FILE)

    async def _run(self) -> None:
        backoff = 0.1
        assert self._wake is not None
        while True:
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=FLUSH_INTERVAL)
            except TimeoutError:
                pass
            self._wake.clear()
            if not self._queue:
                continue
            batch, self._queue = self._queue[:MAX_BATCH], self._queue[MAX_BATCH:]
            self._busy = True
            try:
                await self._write(batch)
                backoff = 0.1
            except asyncio.CancelledError:
                self._queue[:0] = batch
                raise
            except Exception:
                log.exception("usage write failed (%d records kept for retry)", len(batch))
                self._queue[:0] = batch
                if self._conn is not None:
                    await self._conn.close()
                self._conn = None
                if len(self._queue) > MAX_PENDING:
                    self._spill()
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
            else:
                # Outside the try above: a failed reload must never re-queue a batch that
                # was already written (that would record it twice).
                try:
                    await self._maybe_reload_spool()
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.exception("reloading spilled usage records failed; will retry")
            finally:
                self._busy = False

    def _spill(self) -> None:
        path = self._spill_records(self._queue)
        log.error(
            "usage queue over %d: spilled %d records to %s", MAX_PENDING, len(self._queue), path
        )
        self._queue = []

    async def _maybe_reload_spool(self) -> None:
        """The database takes writes again: load what an outage spilled (at most every 30 s)."""
        now = asyncio.get_running_loop().time()
        if now - self._spool_checked_at < SPOOL_CHECK_INTERVAL:
            return
        self._spool_checked_at = now
        from aura.embedded import data_dir

        path = data_dir() / SPOOL_FILE
        if not path.exists():
            return
        loading = path.with_name(f"{SPOOL_FILE}.loading-{os.getpid()}")
        path.rename(loading)  # atomic: new spills start a fresh file meanwhile
        records: list[dict[str, Any]] = []
        torn: list[str] = []
        for line in loading.read_text().splitlines():
            try:
                records.append(json.loads(line))
            except ValueError:  # a line torn by a crash mid-spill: keep it for an operator
                torn.append(line)
        if torn:
            self._spill_lines(torn, REJECTED_FILE)
        done = 0
        try:
            for start in range(0, len(records), MAX_BATCH):
                await self._write(records[start : start + MAX_BATCH])
                done = start + MAX_BATCH
        finally:
            # Whatever was not written goes back to the spool for the next attempt.
            if done < len(records):
                self._spill_records(records[done:])
            loading.unlink()
        log.warning("reloaded %d spilled usage records from %s", len(records), path)

    @staticmethod
    def _spill_lines(lines: Sequence[str], name: str) -> None:
        from aura.embedded import data_dir

        with open(data_dir() / name, "a") as fh:
            fh.writelines(line + "\n" for line in lines)

    @staticmethod
    def _spill_records(records: Sequence[dict[str, Any]], name: str = "") -> Any:
        from aura.embedded import data_dir

        path = data_dir() / (name or SPOOL_FILE)
        with open(path, "a") as fh:
            for rec in records:
                fh.write(json.dumps(rec, default=_json_default) + "\n")
        return path

    async def drain(self, seconds: float = 10.0) -> None:
        """Wait until everything queued so far is written (graceful shutdown, tests)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        while (self._queue or self._busy) and loop.time() < deadline:
            if self._wake is not None:
                self._wake.set()
            await asyncio.sleep(0.01)

    async def flush(self) -> None:
        """Write everything queued now (shutdown, tests)."""
        while self._queue:
            batch, self._queue = self._queue[:MAX_BATCH], self._queue[MAX_BATCH:]
            try:
                await self._write(batch)
            except Exception:
                self._queue[:0] = batch
                self._spill()
                raise

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task  # its own errors were logged where they happened
            self._task = None
        try:
            await self.flush()
        finally:
            if self._conn is not None:
                await self._conn.close()
                self._conn = None


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(type(value))


writer = UsageWriter()


@lifecycle.on_shutdown
async def _close_writer() -> None:
    await writer.close()
