"""CI: run docker-compose.yml's aura services without Docker, so the file cannot rot.

Parses docker-compose.yml, starts a separate Postgres (the embedded build as a plain
server) and uses the machine's Redis with a database number of its own, the way
`make test-external` does, then runs every aura service's `command` with that service's
environment (its env_file's committed `.example` with the empty secrets filled in, then its
`environment:`). Only what points at the other compose services is changed: DATABASE_URL,
REDIS_URL and EMAIL_URL go to the local servers (mail to the console), web binds a free
loopback port instead of 0.0.0.0:8000, and AURA_DATA_DIR is a folder of this check.

It checks: the file's shape (every aura service waits for `migrate`, Redis persists,
.dockerignore keeps local data out, files mounted from the repository exist, web and worker
share their metrics folder); the one-shots exit 0 (bootstrap twice: idempotent); web answers
/readyz with 200 and /metrics only with the token, the worker answers a Celery ping, beat
starts and stays up. The image-only services (db, redis, mail, prometheus, grafana) are not
run: the local servers stand in for db and redis.
Then it stops everything and deletes its data. Needs neither Docker nor the internet.

Usage: make compose-check (COMPOSE_CHECK_REDIS_URL overrides redis://127.0.0.1:6379/14).
"""

from __future__ import annotations

import base64
import os
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import redis
import yaml

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / "var" / "compose-check"
REDIS_URL = os.environ.get("COMPOSE_CHECK_REDIS_URL", "redis://127.0.0.1:6379/14")
VENV_BIN = Path(sys.executable).parent
ONE_SHOTS = ("migrate", "bootstrap")
LONG_RUNNING = ("web", "worker", "beat")
# How to fill the empty values of an env file example, as its comments tell a person to.
GENERATORS: dict[str, Callable[[], str]] = {
    "SECRET_KEY": lambda: secrets.token_urlsafe(32),
    "API_KEY_PEPPER": lambda: secrets.token_urlsafe(32),
    "FIELD_ENCRYPTION_KEYS": lambda: base64.urlsafe_b64encode(os.urandom(32)).decode(),
    "DJANGO_SUPERUSER_PASSWORD": lambda: secrets.token_urlsafe(16),
    "METRICS_TOKEN": lambda: secrets.token_urlsafe(32),
}
# Variables that may point at another compose service, and what they point at here.
REPLACED = ("DATABASE_URL", "REDIS_URL", "EMAIL_URL", "CELERY_BROKER_URL")
MUST_IGNORE = (".git", ".venv", "var", ".env", "compose.env")
START_TIMEOUT = 90.0


class CheckFailed(Exception):
    pass


def log(message: str) -> None:
    print(f"compose-check: {message}", flush=True)


# --------------------------------------------------------------------------- the file


def load_compose() -> dict[str, Any]:
    data = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    if not isinstance(data, dict) or not isinstance(data.get("services"), dict):
        raise CheckFailed("docker-compose.yml has no services")
    return data


def aura_services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The services built from this repository (the others are images: db, redis, mail)."""
    return {name: s for name, s in compose["services"].items() if "build" in s}


def shape_problems(compose: dict[str, Any]) -> list[str]:
    services = compose["services"]
    ours = aura_services(compose)
    problems = []
    unknown = sorted(set(ours) - set(ONE_SHOTS) - set(LONG_RUNNING))
    if unknown:
        problems.append(f"this check does not know how to check service(s) {unknown}")
    missing = sorted(set(ONE_SHOTS + LONG_RUNNING) - set(ours))
    if missing:
        problems.append(f"aura service(s) missing: {missing}")
    for name in ONE_SHOTS:
        if name in ours and ours[name].get("restart") != "no":
            problems.append(f'{name} is a one-shot: it needs restart: "no"')
    for name, service in ours.items():
        if name == "migrate":
            continue
        condition = (service.get("depends_on") or {}).get("migrate", {}).get("condition")
        if condition != "service_completed_successfully":
            problems.append(
                f"{name} must wait for migrate: depends_on: migrate: condition: "
                "service_completed_successfully"
            )
        if service.get("env_file") in (".env", [".env"]):
            problems.append(f"{name} reads .env, which is `make run`'s; use compose.env")
    redis_service = services.get("redis", {})
    if "--appendonly yes" not in str(redis_service.get("command", "")):
        problems.append("redis must persist: command: redis-server --appendonly yes")
    if not any(str(v).endswith(":/data") for v in redis_service.get("volumes", [])):
        problems.append("redis must keep /data in a volume")
    web_volumes = services.get("web", {}).get("volumes", [])
    if not any(str(v).endswith(":/app/var") for v in web_volumes):
        problems.append("web must keep /app/var (the usage journal) in a volume")
    for name, service in services.items():
        for volume in service.get("volumes", []):
            source = str(volume).split(":", 1)[0]
            if source.startswith((".", "/")) and not (ROOT / source).exists():
                problems.append(f"{name} mounts {source}, which is not in the repository")
    folders = {n: environment(ours[n]).get("PROMETHEUS_MULTIPROC_DIR") for n in ("web", "worker")}
    if None in folders.values() or len(set(folders.values())) != 1:
        problems.append(f"web and worker need one PROMETHEUS_MULTIPROC_DIR, not {folders}")
    else:
        folder = folders["web"]
        mounted = [
            {str(v).split(":", 1)[0] for v in ours[n].get("volumes", []) if f":{folder}" in str(v)}
            for n in ("web", "worker")
        ]
        if not mounted[0] or mounted[0] != mounted[1]:
            problems.append(f"web and worker must mount one volume at {folder} (metrics)")
    ignore_path = ROOT / ".dockerignore"
    ignored = set()
    if ignore_path.exists():
        ignored = {line.strip().strip("/") for line in ignore_path.read_text().splitlines()} - {""}
    for entry in MUST_IGNORE:
        if entry not in ignored:
            problems.append(f".dockerignore must list {entry} (COPY . . would take it)")
    return problems


_filled: dict[str, dict[str, str]] = {}


def env_file_values(service: dict[str, Any]) -> dict[str, str]:
    """The service's env files, read from their committed `.example`, empty values filled
    once (every service reads the same file, so they share the secrets, as in compose)."""
    files = service.get("env_file") or []
    values: dict[str, str] = {}
    for name in [files] if isinstance(files, str) else files:
        if isinstance(name, dict):  # the long form: {path: ..., required: ...}
            name = name["path"]
        if name not in _filled:
            _filled[name] = _read_example(ROOT / f"{name}.example")
        values.update(_filled[name])
    return values


def _read_example(path: Path) -> dict[str, str]:
    if not path.exists():
        raise CheckFailed(f"{path.name} is missing: it tells users what goes in the env_file")
    values: dict[str, str] = {}
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        if not sep:
            raise CheckFailed(f"{path.name}: not KEY=VALUE: {line!r}")
        if not value:
            if key not in GENERATORS:
                raise CheckFailed(
                    f"{path.name}: {key} is empty and this check does not know how to fill "
                    "it in (add it to GENERATORS in .ci/compose_check.py)"
                )
            value = GENERATORS[key]()
        values[key] = value
    return values


def environment(service: dict[str, Any]) -> dict[str, str]:
    raw = service.get("environment") or {}
    if isinstance(raw, list):
        raw = dict(item.partition("=")[::2] for item in raw)
    return {k: "" if v is None else str(v) for k, v in raw.items()}


# --------------------------------------------------------------------------- processes


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def argv_of(service: dict[str, Any], env: dict[str, str], port: int) -> list[str]:
    command = service["command"]
    argv = shlex.split(command) if isinstance(command, str) else [str(a) for a in command]
    # The image's `python`, `uvicorn`, `celery` are this virtualenv's.
    exe = sys.executable if argv[0] == "python" else shutil.which(argv[0], path=env["PATH"])
    if exe is None:
        raise CheckFailed(f"{argv[0]} is not installed in {VENV_BIN}")
    argv[0] = exe
    for flag, value in (("--host", "127.0.0.1"), ("--port", str(port))):
        if flag in argv:
            argv[argv.index(flag) + 1] = value
    return argv


class Services:
    def __init__(self, compose: dict[str, Any], database_url: str) -> None:
        self.compose = compose
        self.database_url = database_url
        self.port = free_port()
        self.running: dict[str, tuple[subprocess.Popen[bytes], Path]] = {}

    def env(self, name: str) -> dict[str, str]:
        service = aura_services(self.compose)[name]
        env = {
            "PATH": f"{VENV_BIN}:/usr/local/bin:/usr/bin:/bin",
            "HOME": os.environ.get("HOME", str(WORK)),
            "LANG": "C.UTF-8",
            **env_file_values(service),
            **environment(service),
        }
        hosts = set(self.compose["services"]) - set(aura_services(self.compose))
        for key, value in env.items():
            if urlsplit(value).hostname in hosts and key not in REPLACED:
                raise CheckFailed(
                    f"{name}: {key}={value} points at another compose service; teach this "
                    "check where it points without Docker (REPLACED)"
                )
        env["DATABASE_URL"] = self.database_url
        env["REDIS_URL"] = REDIS_URL
        env.pop("CELERY_BROKER_URL", None)  # the broker is REDIS_URL, as in compose
        if urlsplit(env.get("EMAIL_URL", "")).hostname in hosts:
            env["EMAIL_URL"] = "consolemail://"
        env["AURA_DATA_DIR"] = str(WORK / "data")
        if "PROMETHEUS_MULTIPROC_DIR" in env:  # compose's shared volume: one folder here too
            env["PROMETHEUS_MULTIPROC_DIR"] = str(WORK / "metrics")
        return env

    def run_once(self, name: str) -> str:
        env = self.env(name)
        argv = argv_of(aura_services(self.compose)[name], env, self.port)
        started = time.monotonic()
        result = subprocess.run(  # noqa: S603
            argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600, check=False
        )
        output = result.stdout + result.stderr
        if result.returncode != 0:
            raise CheckFailed(f"{name} exited with {result.returncode}:\n{output[-4000:]}")
        log(f"{name}: exit 0 in {time.monotonic() - started:.1f} s")
        return output

    def start(self, name: str) -> None:
        env = self.env(name)
        argv = argv_of(aura_services(self.compose)[name], env, self.port)
        logfile = WORK / f"{name}.log"
        with open(logfile, "wb") as out:
            proc = subprocess.Popen(  # noqa: S603
                argv,
                cwd=ROOT,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.running[name] = (proc, logfile)

    def output(self, name: str) -> str:
        return self.running[name][1].read_text(errors="replace")

    def alive(self, name: str) -> None:
        proc, _ = self.running[name]
        if proc.poll() is not None:
            raise CheckFailed(f"{name} exited with {proc.returncode}:\n{self.output(name)[-4000:]}")

    def wait_for(self, name: str, what: str, ready: Callable[[], bool]) -> None:
        started = time.monotonic()
        while not ready():
            self.alive(name)
            if time.monotonic() - started > START_TIMEOUT:
                raise CheckFailed(
                    f"{name}: {what} not within {START_TIMEOUT:.0f} s:\n{self.output(name)[-4000:]}"
                )
            time.sleep(0.5)
        log(f"{name}: {what} after {time.monotonic() - started:.1f} s")

    def stop(self) -> None:
        for _, (proc, _) in self.running.items():
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + 20
        for name, (proc, _) in self.running.items():
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log(f"{name} did not stop in time; killing it")
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def web_ready(port: int) -> Callable[[], bool]:
    def ready() -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=5) as resp:
                return bool(resp.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    return ready


def metrics_problems(port: int, token: str) -> list[str]:
    """/metrics refuses a scrape without the token and answers one with it."""
    url = f"http://127.0.0.1:{port}/metrics"
    problems = []
    try:
        with urllib.request.urlopen(url, timeout=10):
            problems.append("web's /metrics answered without METRICS_TOKEN")
    except urllib.error.HTTPError as exc:
        if exc.code != 401:
            problems.append(f"web's /metrics without the token: HTTP {exc.code}, not 401")
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request, timeout=10) as resp:  # noqa: S310 (http, above)
        body = resp.read().decode()
    if "aura_requests_total" not in body or "aura_celery_tasks_total" not in body:
        problems.append(f"web's /metrics lacks AURA's metrics:\n{body[:2000]}")
    return problems


def worker_ready(services: Services) -> Callable[[], bool]:
    env = services.env("worker")
    celery = shutil.which("celery", path=env["PATH"]) or "celery"

    def ready() -> bool:
        result = subprocess.run(  # noqa: S603
            [celery, "-A", "aura", "inspect", "ping", "--timeout", "2"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        return result.returncode == 0 and "pong" in result.stdout

    return ready


def beat_ready(services: Services) -> Callable[[], bool]:
    def ready() -> bool:
        return "beat: Starting" in services.output("beat")

    return ready


# --------------------------------------------------------------------------- main


def start_postgres() -> str:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "AURA_EMBEDDED_DB")}
    env.update(REDIS_URL=REDIS_URL, AURA_DATA_DIR=str(WORK / "pg"))
    result = subprocess.run(
        [sys.executable, "-m", "aura.embedded", "start"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if result.returncode != 0:
        raise CheckFailed(f"could not start Postgres:\n{result.stdout}{result.stderr}")
    for line in result.stdout.splitlines():
        if line.startswith("DATABASE_URL="):
            return line.partition("=")[2]
    raise CheckFailed(f"no DATABASE_URL from aura.embedded start:\n{result.stdout}")


def stop_postgres() -> None:
    env = {**os.environ, "AURA_DATA_DIR": str(WORK / "pg")}
    subprocess.run([sys.executable, "-m", "aura.embedded", "stop"], cwd=ROOT, env=env, check=False)


def check(compose: dict[str, Any], services: Services) -> None:
    services.run_once("migrate")
    first = services.run_once("bootstrap")
    if "Created operator" not in first:
        raise CheckFailed(f"bootstrap created no operator on a fresh database:\n{first}")
    again = services.run_once("bootstrap")
    if "Operator present" not in again or "Model catalog present" not in again:
        raise CheckFailed(f"bootstrap is not idempotent; its second run said:\n{again}")
    for name in LONG_RUNNING:
        services.start(name)
    services.wait_for("web", "/readyz answered 200", web_ready(services.port))
    problems = metrics_problems(services.port, services.env("web").get("METRICS_TOKEN", ""))
    if problems:
        raise CheckFailed("; ".join(problems))
    log("web: /metrics refused without the token, answered with it")
    services.wait_for("worker", "answered a Celery ping", worker_ready(services))
    services.wait_for("beat", "started", beat_ready(services))
    time.sleep(3)  # beat, and everyone else, must still be up a moment later
    for name in LONG_RUNNING:
        services.alive(name)


def main() -> int:
    started = time.monotonic()
    compose = load_compose()
    problems = shape_problems(compose)
    if problems:
        for problem in problems:
            log(f"FAIL: {problem}")
        return 1
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.RedisError as exc:
        log(f"FAIL: no Redis at {REDIS_URL} ({exc}); start one or set COMPOSE_CHECK_REDIS_URL")
        return 1
    shutil.rmtree(WORK, ignore_errors=True)
    (WORK / "data").mkdir(parents=True)
    services: Services | None = None
    try:
        services = Services(compose, start_postgres())
        check(compose, services)
    except CheckFailed as exc:
        log(f"FAIL: {exc}")
        return 1
    finally:
        if services is not None:
            services.stop()
        stop_postgres()
        client.flushdb()
        shutil.rmtree(WORK, ignore_errors=True)
    log(f"every service of docker-compose.yml ran; {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
