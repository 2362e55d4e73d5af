"""Kill a provider mid-load and measure how AURA fails over (issue 11, "Measured").

    .venv/bin/python bench/failover_bench.py                 # kill -9 the primary at 10 s
    .venv/bin/python bench/failover_bench.py --mode 500      # primary answers 500 instead
    .venv/bin/python bench/failover_bench.py --interval 5    # faster health checks

Two providers serve the same model through the shared bench's fake upstream
(../shared/bench/fake_upstream.py, a small delay so requests are in flight): ``primary``
(cheaper, so ``minimize_cost`` routes there) and ``backup``. A load of C concurrent
clients runs through one uvicorn worker of AURA on its own embedded Postgres and Redis
(var/failover); health rounds run as beat would run them (``check_providers --due-only``
every 10 s, each endpoint every ``--interval`` s). At ``--kill-at`` the primary dies.

Prints: time from the kill to the first request served by the backup, to the first
request sent straight to the backup (no failed attempt first) and to the health checks
calling the primary down; errors clients saw; attempts that still reached the primary
after it died, split by phase (before its breaker opened / after / after it was seen
down); latency before and after.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("SHARED_BENCH", ROOT.parent / "shared" / "bench"))
PY = sys.executable
KEY = "aura-failover01." + "f" * 32


def sh(*args: str, env: dict[str, str], **kw: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=ROOT, env=env, check=True, text=True, **kw)


def start_upstream(port: int, mode: str, delay_ms: float) -> subprocess.Popen[bytes]:
    args = [PY, str(SHARED / "fake_upstream.py"), "--port", str(port), "--delay-ms", str(delay_ms)]
    if mode != "ok":
        args += ["--mode", mode]
    return subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def wait_http(url: str, seconds: float = 30) -> None:
    import httpx

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=1).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise SystemExit(f"{url} did not come up")


SETUP = """
from routing.models import CatalogModel, Provider, ProviderEndpoint, RoutingPolicy
from tenants.auth import hash_secret, parse_key
from tenants.models import ApiKey, Tenant
from tenants.services import tenant_create
from monitoring.models import EndpointHealth, HealthCheck, HealthFlip
from billing.models import UsageRecord
UsageRecord.objects.filter(tenant__slug="failover").delete()
HealthFlip.objects.all().delete(); HealthCheck.objects.all().delete()
EndpointHealth.objects.all().delete()
Provider.objects.exclude(slug__in=["primary", "backup"]).update(enabled=False)
tenant = Tenant.objects.filter(slug="failover").first() or tenant_create(name="Failover", slug="failover")
for slug, port, price in (("primary", {up}, "0.10"), ("backup", {up} + 1, "0.50")):
    p, _ = Provider.objects.update_or_create(slug=slug, defaults=dict(name=slug,
        wire_format="openai", requires_api_key=False, enabled=True))
    ProviderEndpoint.objects.update_or_create(provider=p, tenant=None, name="main", defaults=dict(
        base_url=f"http://127.0.0.1:{{port}}/v1", max_retries=2, connect_timeout=2,
        first_byte_timeout=10, total_timeout=30))
    CatalogModel.objects.update_or_create(provider=p, model_id="fake-gpt", defaults=dict(
        tier="eco", capabilities=["chat", "streaming"], quality={{"chat": 0.7}},
        input_price_per_mtok=price, output_price_per_mtok=price, enabled=True))
prefix, secret = parse_key("{key}")
ApiKey.objects.filter(prefix=prefix).delete()
ApiKey.objects.create(tenant=tenant, name="failover", prefix=prefix, secret_hash=hash_secret(secret))
pol, _ = RoutingPolicy.objects.get_or_create(tenant=tenant)
pol.objective = "minimize_cost"; pol.weight_quality, pol.weight_cost, pol.weight_latency = 0.2, 0.7, 0.1
pol.version += 1; pol.save()
from routing.changes import config_changed; config_changed()
"""

REPORT = """
import json
from billing.models import UsageRecord
from monitoring.models import HealthFlip
from routing.models import ProviderEndpoint
ep = "ep%d" % ProviderEndpoint.objects.get(provider__slug="primary").pk
flips = [(f.created_at.timestamp(), f.old_status, f.new_status) for f in
         HealthFlip.objects.filter(target__name=ep).order_by("id")]
tries = []
for r in UsageRecord.objects.filter(tenant__slug="failover").only("created_at", "attempts", "endpoint", "latency_ms"):
    t = r.created_at.timestamp()
    if r.attempts:
        tries += [(t, a.get("ok")) for a in r.attempts if a.get("endpoint") == ep]
    elif r.endpoint == ep:
        tries.append((t, True))
print(json.dumps({{"endpoint": ep, "flips": flips, "primary_attempts": tries}}))
"""


async def load(
    url: str, conc: int, stop_at: float, out: list[tuple[float, float, int, str, int]]
) -> None:
    import httpx

    body = {
        "model": "fake-gpt",
        "messages": [{"role": "user", "content": "hello"}],
        "max_tokens": 16,
    }
    headers = {"authorization": f"Bearer {KEY}"}
    limits = httpx.Limits(max_connections=conc, max_keepalive_connections=conc)
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as client:

        async def worker() -> None:
            while time.time() < stop_at:
                started = time.time()
                try:
                    r = await client.post("/v1/chat/completions", json=body, headers=headers)
                    status, provider = r.status_code, r.headers.get("x-aura-provider", "")
                    fallbacks = int(r.headers.get("x-aura-fallbacks", "0") or 0)
                except httpx.HTTPError:
                    status, provider, fallbacks = 599, "", 0
                out.append((started, time.time(), status, provider, fallbacks))

        await asyncio.gather(*(worker() for _ in range(conc)))


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--mode", choices=["kill", "500"], default="kill")
    ap.add_argument("--duration", type=float, default=130.0)
    ap.add_argument("--kill-at", type=float, default=10.0)
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--interval", type=float, default=30.0, help="HEALTH_CHECK_INTERVAL")
    ap.add_argument("--delay-ms", type=float, default=50.0)
    ap.add_argument("--upstream-port", type=int, default=9170)
    ap.add_argument("--port", type=int, default=8070)
    a = ap.parse_args()

    env = {**os.environ, "AURA_DATA_DIR": str(ROOT / "var" / "failover")}
    started = sh(PY, "-m", "aura.embedded", "start", env=env, capture_output=True)
    for line in started.stdout.splitlines():
        if "=" in line:
            k, _, v = line.partition("=")
            env[k.strip()] = v.strip().strip("'\"")
    env.update(AURA_EMBEDDED_DB="1", LOG_LEVEL="ERROR", HEALTH_CHECK_INTERVAL=str(a.interval))
    sh(PY, "manage.py", "migrate", "--noinput", "-v", "0", env=env)
    sh(
        PY,
        "manage.py",
        "shell",
        "--no-imports",
        "-c",
        SETUP.format(up=a.upstream_port, key=KEY),
        env=env,
    )

    procs: list[subprocess.Popen[Any]] = []
    primary = start_upstream(a.upstream_port, "ok", a.delay_ms)
    procs += [primary, start_upstream(a.upstream_port + 1, "ok", a.delay_ms)]
    gateway = subprocess.Popen(
        [
            PY,
            "-m",
            "uvicorn",
            "aura.asgi:application",
            "--port",
            str(a.port),
            "--loop",
            "uvloop",
            "--http",
            "httptools",
            "--no-access-log",
            "--log-level",
            "error",
            "--lifespan",
            "on",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    procs.append(gateway)
    stopping = threading.Event()
    try:
        wait_http(f"http://127.0.0.1:{a.upstream_port}/health")
        wait_http(f"http://127.0.0.1:{a.port}/healthz")
        sh(PY, "manage.py", "check_providers", env=env, capture_output=True)  # first round

        def rounds() -> None:  # what beat does: a round every 10 s, probing what is due
            while not stopping.wait(10):
                subprocess.run(
                    [PY, "manage.py", "check_providers", "--due-only"],
                    cwd=ROOT,
                    env=env,
                    capture_output=True,
                )

        threading.Thread(target=rounds, daemon=True).start()
        t0 = time.time()
        results: list[tuple[float, float, int, str, int]] = []
        kill_time: list[float] = []

        def killer() -> None:
            time.sleep(a.kill_at)
            kill_time.append(time.time())
            primary.send_signal(signal.SIGKILL)
            primary.wait()
            if a.mode == "500":
                procs.append(start_upstream(a.upstream_port, "500", a.delay_ms))

        threading.Thread(target=killer, daemon=True).start()
        asyncio.run(load(f"http://127.0.0.1:{a.port}", a.concurrency, t0 + a.duration, results))
        stopping.set()
        time.sleep(2)  # usage records flushed
        raw = (
            sh(
                PY,
                "manage.py",
                "shell",
                "--no-imports",
                "-c",
                REPORT.format(),
                env=env,
                capture_output=True,
            )
            .stdout.strip()
            .splitlines()[-1]
        )
    finally:
        stopping.set()
        for p in procs:
            if p.poll() is None:
                p.terminate()
        for p in procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
        subprocess.run([PY, "-m", "aura.embedded", "stop"], cwd=ROOT, env=env, capture_output=True)

    data = json.loads(raw)
    kill = kill_time[0]
    down_at = next((t for t, _, new in data["flips"] if new == "down" and t >= kill), None)
    after = [r for r in results if r[0] >= kill]
    before = [r for r in results if r[1] < kill]
    first_backup = min((r[1] for r in results if r[1] >= kill and r[3] == "backup"), default=None)
    direct = min((r[0] for r in after if r[3] == "backup" and r[4] == 0), default=None)
    errors = [r for r in results if r[2] != 200]
    tries = [t for t, _ in data["primary_attempts"] if t >= kill]
    # Breaker open ~ the last failed attempt at the primary before direct routing began.
    phase_breaker = [t for t in tries if direct is None or t < direct]
    phase_down = [t for t in tries if down_at is not None and t >= down_at]

    def lat(rows: list[Any]) -> str:
        ms = sorted((r[1] - r[0]) * 1000 for r in rows)
        if not ms:
            return "-"
        return f"p50 {statistics.median(ms):.1f} ms, p99 {ms[int(len(ms) * 0.99) - 1]:.1f} ms"

    print(
        f"mode={a.mode} concurrency={a.concurrency} interval={a.interval:g}s "
        f"upstream delay={a.delay_ms:g}ms duration={a.duration:g}s"
    )
    print(f"requests: {len(results)} ({len(before)} before the kill, {len(after)} after)")
    print(
        f"client errors: {len(errors)} " + (str(sorted({r[2] for r in errors})) if errors else "")
    )
    if first_backup is not None:
        print(f"kill -> first request served by the backup: {(first_backup - kill) * 1000:.0f} ms")
    if direct is not None:
        print(f"kill -> first request sent straight to the backup: {(direct - kill) * 1000:.0f} ms")
    if down_at is not None:
        print(f"kill -> health checks call the primary down: {down_at - kill:.1f} s")
    else:
        print("health checks did not call the primary down within the run")
    print(
        f"attempts at the dead primary after the kill: {len(tries)} "
        f"(before routing went straight to the backup: {len(phase_breaker)}; "
        f"after the checks saw it down: {len(phase_down)})"
    )
    print(f"latency before the kill: {lat(before)}; after: {lat(after)}")


if __name__ == "__main__":
    main()
