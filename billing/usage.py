"""Usage records for the gateway: durable before the response, written to Postgres in batches.

The gateway must record every request that reached a provider without paying a database
round trip per request on the hot path, and without losing a record when its process dies.

* **Journal first.** ``submit`` appends the record as one line to this process's journal
  (``<AURA_DATA_DIR>/usage-journal/<database>/``, an append-only file held under an
  exclusive ``flock``) before it returns, i.e. before the response goes out. A record in the
  journal survives ``kill -9`` of the process (it is in the kernel's page cache; a power
  loss can still take the last moments unless the disk is synced — see the README).
* **Provisional records.** When a request starts executing, the gateway journals a
  provisional record (``status=interrupted``, the prompt's estimated cost) under the same
  record id as its final one. Only the journal sees it: if the process dies mid-call, the
  provider still bills the request, and recovery stores the provisional record.
* **Batches.** One background task per process writes what has accumulated with a single
  ``COPY`` (about every ``FLUSH_INTERVAL`` seconds, sooner when ``MAX_BATCH`` are waiting),
  on its own psycopg connection, outside any request and any transaction the request
  holds. A journal segment is deleted once every record in it is in Postgres.
* **Exactly once.** Every record has a ``record_uid`` (unique in Postgres). Replays (journal
  recovery, outage catch-up, retries after an unacknowledged commit) insert with
  ``ON CONFLICT DO NOTHING``, so no record is written twice.
* **Recovery.** Every writer, at start and every ``RECOVERY_INTERVAL``, looks for journal
  segments whose owner died (their lock is free), stores their final records and then the
  provisional records that never got a final one, and deletes them.
* **Outage.** On a database error the batch is kept and retried with backoff; past
  ``MAX_PENDING`` records in memory the oldest are dropped from memory only — they stay in
  the journal and are replayed from it once the database takes writes again.
* **Refused records.** Every text is made storable first (Postgres refuses NUL and lone
  surrogates; texts are cut to their column's length). A record the database still refuses
  goes to ``rejected.jsonl`` beside the journal, is retried every ``REJECTED_RETRY_INTERVAL``
  and raises an operator alert (error log and email) until it is stored.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import fcntl
import json
import logging
import os
import secrets
import socket
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
from django.conf import settings

from aura import lifecycle
from aura.text import storable_json, storable_text

log = logging.getLogger(__name__)

FLUSH_INTERVAL = 0.05
MAX_BATCH = 1000
MAX_PENDING = 20_000
RECOVERY_INTERVAL = 30.0
REJECTED_RETRY_INTERVAL = 60.0
SEGMENT_MAX_RECORDS = 20_000
SEGMENT_MAX_AGE = 60.0
SUFFIX = ".journal"
REJECTED_FILE = "rejected.jsonl"
FINAL, PROVISIONAL = "r", "p"

# The record's columns as the API and CSV show them; the writer adds ``record_uid``.
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
    "cache_savings_usd",
    "endpoint",
)
# Journal and COPY order: the first journal format's columns, its record_uid, then columns
# added since, with the defaults a journal written before them replays with.
_ADDED: dict[str, Any] = {"cache_savings_usd": "0", "endpoint": ""}
_DB_COLUMNS = (*(c for c in COLUMNS if c not in _ADDED), "record_uid", *_ADDED)
_COLUMN_LIST = ", ".join(_DB_COLUMNS)
_COPY_SQL = f"COPY billing_usagerecord ({_COLUMN_LIST}) FROM STDIN"
_STAGE_SQL = (
    "CREATE TEMP TABLE IF NOT EXISTS usage_stage ON COMMIT DELETE ROWS AS "  # noqa: S608
    f"SELECT {_COLUMN_LIST} FROM billing_usagerecord WITH NO DATA"
)
_STAGE_COPY_SQL = f"COPY usage_stage ({_COLUMN_LIST}) FROM STDIN"
_STAGE_INSERT_SQL = (
    f"INSERT INTO billing_usagerecord ({_COLUMN_LIST}) SELECT {_COLUMN_LIST} "  # noqa: S608
    "FROM usage_stage ON CONFLICT (record_uid) DO NOTHING"
)
# Text columns and their lengths (billing.models.UsageRecord).
_TEXT_LIMITS = {
    "request_id": 64,
    "kind": 16,
    "provider": 64,
    "model": 200,
    "status": 16,
    "error_code": 64,
    "cache_status": 16,
    "endpoint": 120,
}
_CREATED = COLUMNS.index("created_at")
# Half the CPU of json.dumps here (no per-call setup, no circular-reference bookkeeping).
_encode = json.JSONEncoder(separators=(",", ":"), check_circular=False).encode
_COST = _DB_COLUMNS.index("cost_usd")
_SAVINGS = _DB_COLUMNS.index("cache_savings_usd")


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


def journal_directory() -> Path:
    from aura.embedded import data_dir

    # One folder per database: a data folder shared by two deployments (or two test runs)
    # must never replay one's records into the other.
    return data_dir() / "usage-journal" / storable_text(str(settings.DATABASES["default"]["NAME"]))


def _row(rec: dict[str, Any]) -> tuple[Any, ...]:
    """The COPY row of a record, every text made storable."""
    row = []
    for col in _DB_COLUMNS:
        value = rec.get(col)
        if value is None and col in _ADDED:
            value = _ADDED[col]
        limit = _TEXT_LIMITS.get(col)
        if limit is not None:
            value = storable_text(str(value or ""), limit)
        elif col == "attempts":
            value = json.dumps(storable_json(value or []))
        row.append(value)
    return tuple(row)


def _journal_line(flag: str, rec: dict[str, Any]) -> bytes:
    values = [rec.get(c) for c in _DB_COLUMNS]
    created = values[_CREATED]
    if isinstance(created, datetime):
        values[_CREATED] = created.timestamp()
    values[_COST] = str(values[_COST] if values[_COST] is not None else 0)
    values[_SAVINGS] = str(values[_SAVINGS] if values[_SAVINGS] is not None else 0)
    return (_encode([flag, *values]) + "\n").encode()


def _from_journal(line: str) -> tuple[str, dict[str, Any]]:
    flag, *values = json.loads(line)
    if len(values) == len(_DB_COLUMNS) - len(_ADDED):
        values.extend(_ADDED.values())  # written before those columns existed
    if flag not in (FINAL, PROVISIONAL) or len(values) != len(_DB_COLUMNS):
        raise ValueError("not a journal line")
    rec = dict(zip(_DB_COLUMNS, values, strict=True))
    rec["created_at"] = datetime.fromtimestamp(rec["created_at"], UTC)
    rec["cost_usd"] = Decimal(rec["cost_usd"])
    rec["cache_savings_usd"] = Decimal(rec["cache_savings_usd"])
    return flag, rec


@dataclass(eq=False)
class _Segment:
    path: Path
    fd: int
    opened_at: float
    outstanding: set[str] = field(default_factory=set)  # record ids not yet in Postgres
    records: int = 0
    sealed: bool = False  # no new records go here
    spilled: bool = False  # some records were dropped from memory: replay from the file


class Journal:
    """This process's append-only segments, and recovery of dead processes' ones."""

    def __init__(self, directory: Path, clock: Callable[[], float] = time.monotonic) -> None:
        self.directory = directory
        self.clock = clock
        self.owner = f"{os.getpid()}-{secrets.token_hex(4)}"
        self._serial = 0
        self._current: _Segment | None = None
        self._segments: list[_Segment] = []
        self._provisional: dict[str, _Segment] = {}
        self._failed_at = float("-inf")

    @property
    def segments(self) -> list[_Segment]:
        return self._segments

    def _open(self) -> _Segment:
        self.directory.mkdir(parents=True, exist_ok=True)
        self._serial += 1
        path = self.directory / f"{self.owner}-{self._serial:06d}{SUFFIX}"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)
        # Held until every record in it is in Postgres: a free lock means its owner died.
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        seg = _Segment(path, fd, self.clock())
        self._segments.append(seg)
        return seg

    def append(self, flag: str, rec: dict[str, Any]) -> _Segment | None:
        """Journal one record (one ``write``). None if the journal cannot be written: the
        record then lives in memory only, which is logged (at most once a minute)."""
        uid = rec["record_uid"]
        try:
            seg = self._current
            if (
                seg is None
                or seg.records >= SEGMENT_MAX_RECORDS
                or self.clock() - seg.opened_at > SEGMENT_MAX_AGE
            ):
                if seg is not None:
                    seg.sealed = True
                seg = self._current = self._open()
            os.write(seg.fd, _journal_line(flag, rec))
        except OSError as exc:
            now = self.clock()
            if now - self._failed_at > 60:
                self._failed_at = now
                log.error(
                    "usage journal %s not writable (%s): records are in memory only",
                    self.directory,
                    exc,
                )
            return None
        seg.records += 1
        seg.outstanding.add(uid)
        if flag == PROVISIONAL:
            self._provisional[uid] = seg
        return seg

    def resolved(self, uid: str, seg: _Segment | None) -> None:
        """The final record ``uid`` is in Postgres (its provisional one is settled too)."""
        if seg is not None:
            seg.outstanding.discard(uid)
        provisional = self._provisional.pop(uid, None)
        if provisional is not None:
            provisional.outstanding.discard(uid)

    def sweep(self) -> None:
        """Delete sealed segments whose every record is in Postgres."""
        kept = []
        for seg in self._segments:
            if seg.sealed and not seg.outstanding:
                with contextlib.suppress(FileNotFoundError):
                    seg.path.unlink()
                os.close(seg.fd)
            else:
                kept.append(seg)
        self._segments = kept

    def close(self) -> None:
        """Shutdown: delete what is done; leave the rest (unlocked) for recovery."""
        for seg in self._segments:
            seg.sealed = True
        self.sweep()
        for seg in self._segments:
            os.close(seg.fd)
        self._segments = []
        self._current = None

    def read(self, seg: _Segment) -> list[tuple[str, dict[str, Any]]]:
        return _read_lines(seg.path.read_text(errors="replace").splitlines())[0]

    def orphans(self) -> Iterable[tuple[str, list[tuple[Path, int]]]]:
        """Groups of segments of dead owners, each locked by us (caller closes the fds)."""
        if not self.directory.is_dir():
            return
        groups: dict[str, list[Path]] = {}
        for path in sorted(self.directory.glob(f"*{SUFFIX}")):
            owner = path.name[: -len(SUFFIX)].rsplit("-", 1)[0]
            if owner != self.owner:
                groups.setdefault(owner, []).append(path)
        for owner, paths in groups.items():
            locked: list[tuple[Path, int]] = []
            alive = False
            for path in paths:
                try:
                    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
                except FileNotFoundError:
                    continue  # another process recovered it meanwhile
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    os.close(fd)
                    alive = True
                    break
                if os.fstat(fd).st_nlink == 0:  # recovered and deleted by another process
                    os.close(fd)
                    continue
                locked.append((path, fd))
            if alive:
                for _, fd in locked:
                    os.close(fd)
                continue
            if locked:
                yield owner, locked


def _read_lines(lines: Iterable[str]) -> tuple[list[tuple[str, dict[str, Any]]], list[str]]:
    """Parsed journal lines, and lines that do not parse (torn by a crash mid-write)."""
    parsed: list[tuple[str, dict[str, Any]]] = []
    torn: list[str] = []
    for line in lines:
        if not line.strip():
            continue
        try:
            parsed.append(_from_journal(line))
        except (ValueError, TypeError, KeyError, ArithmeticError):
            torn.append(line)
    return parsed, torn


class UsageWriter:
    def __init__(
        self, conninfo: Callable[[], str] = _conninfo, directory: Path | None = None
    ) -> None:
        self._conninfo = conninfo
        self._directory = directory
        self._queue: list[tuple[dict[str, Any], _Segment | None]] = []
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._conn: psycopg.AsyncConnection[Any] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._journal: Journal | None = None
        self._uid_prefix = secrets.token_hex(8)
        self._uid_serial = 0
        self._recovered_at = float("-inf")
        self._rejected_at = float("-inf")
        self._busy = False
        self._last_refusal = "unparseable journal lines"
        self.written = 0
        self.rejected = 0

    # --------------------------------------------------------------------- hand-off

    def new_uid(self) -> str:
        """A record id, unique across processes (32 hex digits: a Postgres uuid)."""
        self._uid_serial += 1
        return f"{self._uid_prefix}{self._uid_serial:016x}"

    @property
    def backlog(self) -> int:
        """Records waiting for Postgres (the batch being written, if any, is not counted)."""
        return len(self._queue)

    @property
    def journal(self) -> Journal:
        if self._journal is None:
            self._journal = Journal(self._directory or journal_directory())
        return self._journal

    def submit(self, record: dict[str, Any]) -> None:
        """Journal one final record and queue it for Postgres (non-blocking)."""
        if not record.get("record_uid"):
            record["record_uid"] = self.new_uid()
        seg = self.journal.append(FINAL, record)
        self._queue.append((record, seg))
        self._ensure_running()
        if len(self._queue) >= MAX_BATCH and self._wake is not None:
            self._wake.set()

    def provisional(self, record: dict[str, Any]) -> None:
        """Journal what to record if this process dies before ``submit`` of the same
        ``record_uid``; never written to Postgres by this process."""
        self.journal.append(PROVISIONAL, record)

    def _ensure_running(self) -> None:
        loop = asyncio.get_running_loop()
        if self._task is None or self._loop is not loop or self._task.done():
            self._loop = loop
            self._wake = asyncio.Event()
            self._conn = None
            # A context of its own: its log lines must not carry the request id of
            # whichever request happened to start it.
            self._task = loop.create_task(
                self._run(), name="aura-usage-writer", context=contextvars.Context()
            )

    async def start(self) -> None:
        """Start the writer now (ASGI start-up), so dead processes' journals are recovered
        without waiting for a request."""
        self._ensure_running()

    # --------------------------------------------------------------------- database

    async def _connection(self) -> psycopg.AsyncConnection[Any]:
        if self._conn is None or self._conn.closed:
            self._conn = await psycopg.AsyncConnection.connect(self._conninfo(), autocommit=True)
        return self._conn

    async def _copy(self, batch: Sequence[dict[str, Any]]) -> None:
        conn = await self._connection()
        async with conn.cursor() as cur, cur.copy(_COPY_SQL) as copy:
            for rec in batch:
                await copy.write_row(_row(rec))

    async def _insert_new(self, batch: Sequence[dict[str, Any]]) -> None:
        """Insert what is not stored yet (by record_uid), in one transaction."""
        conn = await self._connection()
        async with conn.transaction(), conn.cursor() as cur:
            await cur.execute(_STAGE_SQL)
            async with cur.copy(_STAGE_COPY_SQL) as copy:
                for rec in batch:
                    await copy.write_row(_row(rec))
            await cur.execute(_STAGE_INSERT_SQL)

    async def _store(self, batch: Sequence[dict[str, Any]], *, replay: bool = False) -> list[int]:
        """Store a batch; returns the indexes of records the database refused (set aside
        by the caller). Connection-level errors propagate (the caller retries)."""
        try:
            if replay:
                await self._insert_new(batch)
            else:
                try:
                    await self._copy(batch)
                except psycopg.errors.UniqueViolation:
                    # Written before, but the commit's acknowledgement was lost: skip those.
                    await self._insert_new(batch)
            self.written += len(batch)
            return []
        except (psycopg.errors.IntegrityError, psycopg.errors.DataError):
            # One record the database refuses must not hold back every record after it,
            # retried forever: write them one by one.
            log.warning("usage batch of %d refused; writing records one by one", len(batch))
        refused = []
        for i, rec in enumerate(batch):
            if not await self._store_alone(rec):
                refused.append(i)
        return refused

    async def _store_alone(self, rec: dict[str, Any]) -> bool:
        try:
            await self._insert_new([rec])
            self.written += 1
            return True
        except psycopg.errors.ForeignKeyViolation as exc:
            if rec.get("api_key_id") is None:
                return self._refused(rec, exc)
        except (psycopg.errors.IntegrityError, psycopg.errors.DataError) as exc:
            return self._refused(rec, exc)
        # The key was deleted meanwhile: keep the record, as the FK's SET_NULL would.
        try:
            await self._insert_new([{**rec, "api_key_id": None}])
            self.written += 1
            return True
        except (psycopg.errors.IntegrityError, psycopg.errors.DataError) as exc:
            return self._refused(rec, exc)

    def _refused(self, rec: dict[str, Any], exc: Exception) -> bool:
        log.error(
            "usage record %s (tenant %s) refused by the database (%s); kept in %s and retried",
            rec.get("request_id"),
            rec.get("tenant_id"),
            str(exc).splitlines()[0] if str(exc) else type(exc).__name__,
            self.journal.directory / REJECTED_FILE,
        )
        self._last_refusal = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        return False

    # --------------------------------------------------------------------- the loop

    async def _run(self) -> None:
        backoff = 0.1
        assert self._wake is not None
        await self._housekeeping(force=True)
        while True:
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=FLUSH_INTERVAL)
            except TimeoutError:
                pass
            self._wake.clear()
            if not self._queue:
                await self._housekeeping()
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
                await self._reset_connection()
                if len(self._queue) > MAX_PENDING:
                    self._drop_to_journal()
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
            else:
                await self._housekeeping()
            finally:
                self._busy = False

    async def _reset_connection(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):
                await self._conn.close()
        self._conn = None

    async def _write(self, batch: Sequence[tuple[dict[str, Any], _Segment | None]]) -> None:
        refused = set(await self._store([rec for rec, _ in batch]))
        if refused:
            self._set_aside([batch[i][0] for i in sorted(refused)])
        journal = self.journal
        for rec, seg in batch:
            journal.resolved(rec["record_uid"], seg)
        journal.sweep()

    def _drop_to_journal(self) -> None:
        """Too much waiting in memory: forget the oldest; the journal still has them."""
        excess = len(self._queue) - MAX_PENDING
        dropped, self._queue = self._queue[:excess], self._queue[excess:]
        unjournaled = 0
        for _, seg in dropped:
            if seg is None:
                unjournaled += 1
            else:
                seg.spilled = True
        log.error(
            "usage queue over %d records: %d dropped from memory, replayed from the journal "
            "once the database is back%s",
            MAX_PENDING,
            len(dropped),
            f"; {unjournaled} were not journaled and are LOST" if unjournaled else "",
        )

    async def _housekeeping(self, *, force: bool = False) -> None:
        """Catch up on the journal while the database takes writes: what an outage dropped
        from memory, dead processes' segments, refused records."""
        try:
            await self._replay_spilled()
            now = time.monotonic()
            if force or now - self._recovered_at >= RECOVERY_INTERVAL:
                self._recovered_at = now
                await self.recover()
            if force or now - self._rejected_at >= REJECTED_RETRY_INTERVAL:
                self._rejected_at = now
                await self.retry_rejected()
        except asyncio.CancelledError:
            raise
        except Exception:
            # Never re-queues anything: a failed replay is retried from the files.
            log.exception("usage journal housekeeping failed; will retry")
            await self._reset_connection()

    async def _replay_spilled(self) -> None:
        journal = self.journal
        for seg in [s for s in journal.segments if s.spilled]:
            finals = [
                rec
                for flag, rec in journal.read(seg)
                if flag == FINAL and rec["record_uid"] in seg.outstanding
            ]
            for start in range(0, len(finals), MAX_BATCH):
                chunk = finals[start : start + MAX_BATCH]
                refused = set(await self._store(chunk, replay=True))
                self._set_aside([chunk[i] for i in sorted(refused)])
                for rec in chunk:
                    journal.resolved(rec["record_uid"], seg)
            seg.spilled = False
            log.warning("replayed %d usage records from %s", len(finals), seg.path.name)
        journal.sweep()

    async def recover(self) -> int:
        """Store the records of dead processes' journals; returns how many were stored."""
        stored = 0
        for owner, locked in self.journal.orphans():
            try:
                lines: list[str] = []
                for path, _ in locked:
                    lines += path.read_text(errors="replace").splitlines()
                parsed, torn = _read_lines(lines)
                if torn:
                    self._set_aside_lines(torn)
                finals = {rec["record_uid"]: rec for flag, rec in parsed if flag == FINAL}
                interrupted = {
                    rec["record_uid"]: rec
                    for flag, rec in parsed
                    if flag == PROVISIONAL and rec["record_uid"] not in finals
                }
                # Finals first: a provisional record must never take the place of its final.
                for records in (list(finals.values()), list(interrupted.values())):
                    for start in range(0, len(records), MAX_BATCH):
                        chunk = records[start : start + MAX_BATCH]
                        refused = set(await self._store(chunk, replay=True))
                        self._set_aside([chunk[i] for i in sorted(refused)])
                        stored += len(chunk) - len(refused)
                for path, _ in locked:
                    with contextlib.suppress(FileNotFoundError):
                        path.unlink()
                log.warning(
                    "recovered the usage journal of dead process %s: %d records "
                    "(%d interrupted requests)",
                    owner,
                    len(finals) + len(interrupted),
                    len(interrupted),
                )
            finally:
                for _, fd in locked:
                    os.close(fd)
        return stored

    # --------------------------------------------------------------------- refused

    def _set_aside(self, records: Sequence[dict[str, Any]]) -> None:
        if records:
            self._set_aside_lines(
                [_journal_line(FINAL, rec).decode().rstrip("\n") for rec in records]
            )

    def _set_aside_lines(self, lines: Sequence[str]) -> None:
        if not lines:
            return
        self.rejected += len(lines)
        directory = self.journal.directory
        directory.mkdir(parents=True, exist_ok=True)
        with open(directory / REJECTED_FILE, "a") as fh:
            fh.writelines(line + "\n" for line in lines)
        self._alert_operators(len(lines))

    async def retry_rejected(self) -> int:
        """Try the refused records again; returns how many are still refused."""
        path = self.journal.directory / REJECTED_FILE
        if not path.exists():
            return 0
        retrying = path.with_name(f"{REJECTED_FILE}.{self.journal.owner}")
        try:
            path.rename(retrying)  # atomic: new refusals start a fresh file meanwhile
        except FileNotFoundError:  # another process is retrying them right now
            return 0
        parsed, torn = _read_lines(retrying.read_text(errors="replace").splitlines())
        still = list(torn)
        pending = [rec for _, rec in parsed]
        try:
            while pending:
                if not await self._store_alone(pending[0]):
                    still.append(_journal_line(FINAL, pending[0]).decode().rstrip("\n"))
                pending.pop(0)
        finally:
            # Still refused, and (after an error) not tried yet: back to the file.
            still += [_journal_line(FINAL, rec).decode().rstrip("\n") for rec in pending]
            with open(path, "a") as fh:  # noqa: ASYNC230 (a local file, rarely)
                fh.writelines(line + "\n" for line in still)
            retrying.unlink()
        done = len(parsed) + len(torn) - len(still)
        if still:
            log.error(
                "%d usage records are still refused by the database (%s); retrying every %ds",
                len(still),
                path,
                int(REJECTED_RETRY_INTERVAL),
            )
            self._alert_operators(len(still))
        if done:
            log.warning("stored %d previously refused usage records", done)
        return len(still)

    def _alert_operators(self, count: int) -> None:
        reason = self._last_refusal
        path = str(self.journal.directory / REJECTED_FILE)

        def enqueue() -> None:
            try:
                from billing.tasks import usage_rejected_alert

                usage_rejected_alert.delay(
                    count=count, reason=reason, path=path, host=socket.gethostname()
                )
            except Exception:
                log.exception("could not enqueue the operator alert for refused usage records")

        try:
            asyncio.get_running_loop().run_in_executor(None, enqueue)
        except RuntimeError:  # no loop (management command): send inline
            enqueue()

    # --------------------------------------------------------------------- shutdown

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
            await self._write(batch)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task  # its own errors were logged where they happened
            self._task = None
        try:
            await self.flush()
        except Exception:
            # Not lost: the journal keeps them for the next process's recovery.
            log.exception("usage records left for recovery at shutdown (%d)", len(self._queue))
            self._queue = []
        finally:
            if self._conn is not None:
                await self._conn.close()
                self._conn = None
            if self._journal is not None:
                self._journal.close()
                self._journal = None


writer = UsageWriter()


@lifecycle.on_startup
async def _start_writer() -> None:
    await writer.start()


@lifecycle.on_shutdown
async def _close_writer() -> None:
    await writer.close()
