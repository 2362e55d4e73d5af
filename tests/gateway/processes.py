"""Real gateway processes for tests: uvicorn as ``make run`` starts it, in a subprocess, on
the test database and Redis (so two of them are two workers sharing all state)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
from django.conf import settings

from tests.billing.test_celery_worker import database_url

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class GatewayProcess:
    proc: subprocess.Popen[bytes]
    url: str
    log: Path

    def output(self) -> str:
        """The end of the process's log (for assertion messages)."""
        return self.log.read_text(errors="replace")[-3000:]


def _start() -> GatewayProcess:
    port = _free_port()
    env = {
        **os.environ,
        "DATABASE_URL": database_url(),
        "REDIS_URL": settings.REDIS_URL,
        "AURA_EMBEDDED_DB": os.environ.get("AURA_EMBEDDED_DB", "1"),
        "DJANGO_SETTINGS_MODULE": "aura.settings",
    }
    log = Path(tempfile.mkstemp(prefix="aura-gw-", suffix=".log")[1])
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "aura.asgi:application",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--lifespan",
                "on",
                "--log-level",
                "warning",
                "--no-access-log",
            ],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    return GatewayProcess(proc, f"http://127.0.0.1:{port}", log)


def _wait_ready(gp: GatewayProcess, deadline: float) -> None:
    while True:
        try:
            if httpx.get(f"{gp.url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        assert gp.proc.poll() is None, gp.output()
        assert time.monotonic() < deadline, "gateway did not start"
        time.sleep(0.1)


def _stop(gp: GatewayProcess) -> None:
    if gp.proc.poll() is None:
        gp.proc.terminate()
        try:
            gp.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            gp.proc.kill()
            gp.proc.wait(timeout=5)
    gp.log.unlink(missing_ok=True)


@contextmanager
def gateway_processes(n: int) -> Iterator[list[GatewayProcess]]:
    """Start ``n`` gateway processes side by side; yields them once all answer; stops them."""
    started: list[GatewayProcess] = []
    try:
        for _ in range(n):
            started.append(_start())
        deadline = time.monotonic() + 60
        for gp in started:
            _wait_ready(gp, deadline)
        yield started
    finally:
        for gp in started:
            _stop(gp)


@contextmanager
def gateway_process() -> Iterator[tuple[subprocess.Popen[bytes], str, Path]]:
    """Start one gateway process; yields (process, base URL, log file); stops it after."""
    with gateway_processes(1) as (gp,):
        yield gp.proc, gp.url, gp.log


def poll_until(
    request: Callable[[], httpx.Response], done: Callable[[httpx.Response], bool], seconds: float
) -> tuple[float, httpx.Response]:
    """Send ``request()`` every 50 ms until ``done`` says yes: (seconds it took, the answer).
    Fails once ``seconds`` have passed."""
    started = time.monotonic()
    while True:
        resp = request()
        elapsed = time.monotonic() - started
        if done(resp):
            return elapsed, resp
        assert elapsed < seconds, f"still {resp.status_code} after {elapsed:.2f} s: {resp.text}"
        time.sleep(0.05)
