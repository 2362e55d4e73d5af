"""`make run`: the whole platform in the foreground.

Starts the embedded Postgres/Redis (unless DATABASE_URL/REDIS_URL are set), checks them,
migrates, creates the demo tenant/user/key (printed once), then runs the web server
(uvicorn, ASGI), a Celery worker and Celery beat. Ctrl-C (or SIGTERM) stops the children in
order, then the embedded servers (unless another process still uses them). Running it again reuses the data.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import IO

from aura import embedded

PY = sys.executable
COLORS = {"web": "\033[36m", "worker": "\033[33m", "beat": "\033[35m"}
RESET = "\033[0m"


def _pump(name: str, stream: IO[bytes], color: bool) -> None:
    tag = f"{COLORS.get(name, '')}{name:>6} |{RESET} " if color else f"{name:>6} | "
    for raw in iter(stream.readline, b""):
        sys.stdout.write(tag + raw.decode(errors="replace"))
        sys.stdout.flush()


def _manage(*args: str) -> None:
    result = subprocess.run([PY, "manage.py", *args], check=False)  # noqa: S603
    if result.returncode != 0:
        raise SystemExit(f"aura: `manage.py {' '.join(args)}` failed; see above")


def _fresh_metrics_dir() -> Path:
    """The metrics folder of web and worker (PROMETHEUS_MULTIPROC_DIR, default under the data
    folder), emptied: the counters start from zero with the processes, as Prometheus expects
    after a restart, and no file of a process from an earlier run is summed."""
    raw = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    folder = Path(raw) if raw else embedded.data_dir() / "metrics"
    folder.mkdir(parents=True, exist_ok=True)
    for stale in folder.glob("*.db"):
        stale.unlink(missing_ok=True)
    return folder


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m aura.run")
    parser.add_argument("--host", default=os.environ.get("AURA_HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("AURA_PORT", "8000")))
    parser.add_argument("--workers", type=int, default=int(os.environ.get("WEB_CONCURRENCY", "1")))
    parser.add_argument("--no-worker", action="store_true", help="do not start a Celery worker")
    parser.add_argument("--no-beat", action="store_true", help="do not start Celery beat")
    args = parser.parse_args(argv)

    os.chdir(embedded.BASE_DIR)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "aura.settings")
    os.environ.setdefault("AURA_PUBLIC_URL", f"http://{args.host}:{args.port}")
    embedded.ensure_services()
    children: list[tuple[str, subprocess.Popen[bytes]]] = []
    stopping = threading.Event()

    def stop(*_: object) -> None:
        stopping.set()

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    try:
        _manage("preflight")
        _manage("migrate", "--noinput", "-v", "0")
        _manage("bootstrap_demo")
        commands = {
            "web": [
                PY,
                "-m",
                "uvicorn",
                "aura.asgi:application",
                "--host",
                args.host,
                "--port",
                str(args.port),
                "--workers",
                str(args.workers),
                "--loop",
                "uvloop",
                "--http",
                "httptools",
                "--lifespan",
                "on",
                "--no-access-log",
                "--timeout-graceful-shutdown",
                "10",
            ],
            "worker": [
                PY,
                "-m",
                "celery",
                "-A",
                "aura",
                "worker",
                "-l",
                "INFO",
                "--concurrency",
                "2",
            ],
            "beat": [PY, "-m", "celery", "-A", "aura", "beat", "-l", "INFO"],
        }
        if args.no_worker:
            commands.pop("worker")
        if args.no_beat:
            commands.pop("beat")
        color = sys.stdout.isatty()
        metrics_env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(_fresh_metrics_dir())}
        for name, cmd in commands.items():
            # Own session: Ctrl-C reaches only us, and we stop children in a known order.
            proc = subprocess.Popen(  # noqa: S603
                cmd,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                # web and worker count into one folder that /metrics sums (monitoring.metrics)
                env=metrics_env if name in ("web", "worker") else None,
            )
            children.append((name, proc))
            assert proc.stdout is not None
            threading.Thread(target=_pump, args=(name, proc.stdout, color), daemon=True).start()
        while not stopping.is_set():
            for name, proc in children:
                if proc.poll() is not None:
                    print(f"aura: {name} exited with code {proc.returncode}; stopping", flush=True)
                    stopping.set()
            stopping.wait(0.5)
        return 0
    finally:
        print("aura: stopping…", flush=True)
        for _, proc in children:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 15
        for name, proc in children:
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                print(f"aura: {name} did not stop in time; killing it", flush=True)
                os.killpg(proc.pid, signal.SIGKILL)
        print("aura: stopped", flush=True)
        # embedded servers: released at exit (atexit), stopped if no other process uses them


if __name__ == "__main__":
    sys.exit(main())
