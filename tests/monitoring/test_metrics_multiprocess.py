"""Several processes, one set of numbers: with PROMETHEUS_MULTIPROC_DIR every process writes
its own files in the folder and a scrape sums them; a process that stops takes its live
gauges with it, and one that died is swept by the next gateway process of its host."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.multiprocess import MultiProcessCollector

from monitoring import metrics
from tests.gateway.conftest import add_model
from tests.gateway.processes import gateway_processes
from tests.monitoring.conftest import Scrape, scrape

ROOT = Path(__file__).resolve().parents[2]

CHILD = textwrap.dedent(
    """
    import json, sys
    from decimal import Decimal
    from django.conf import settings
    settings.configure(METRICS_TENANT_LABELS=sys.argv[4] == "tenants")
    from monitoring import metrics
    record = {
        "tenant_id": 7, "kind": "chat", "provider": "openai", "model": "gpt-x",
        "status": "ok", "http_status": 200, "error_code": "", "cost_usd": Decimal("0.25"),
        "latency_ms": 300.0, "cache_status": "miss", "cache_savings_usd": Decimal(0),
        "fallbacks": 0,
    }
    for _ in range(int(sys.argv[1])):
        metrics.request_observed(record, [], cache_consulted=True, decision_seconds=0.0001)
    metrics.flush()
    metrics.USAGE_WRITER_BACKLOG.set(float(sys.argv[2]))
    if sys.argv[3] == "stop":
        metrics.process_stopped()
    print(json.dumps({"identifier": metrics.process_identifier()}))
    if not metrics.MULTIPROC_DIR:
        from prometheus_client import REGISTRY, generate_latest
        print(generate_latest(REGISTRY).decode())
    """
)


def child(
    folder: Path | None, requests: int, backlog: int, how: str, labels: str = "-"
) -> tuple[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
    if folder is not None:
        env["PROMETHEUS_MULTIPROC_DIR"] = str(folder)
    result = subprocess.run(
        [sys.executable, "-c", CHILD, str(requests), str(backlog), how, labels],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    first, _, rest = result.stdout.partition("\n")
    return json.loads(first)["identifier"], rest


def collected(folder: Path) -> Scrape:
    """What a scrape of ``folder`` shows, in the text format."""
    from prometheus_client import generate_latest

    class Folder:
        def collect(self) -> Any:
            return MultiProcessCollector(None, str(folder)).collect()

    return Scrape(generate_latest(Folder()).decode())


def test_processes_writing_into_one_folder_are_summed(tmp_path):
    first, _ = child(tmp_path, 3, backlog=5, how="stop")
    second, _ = child(tmp_path, 4, backlog=2, how="stop")

    assert first != second
    scraped = collected(tmp_path)
    served = {"provider": "openai", "model": "gpt-x", "status": "ok", "code": "200"}
    assert scraped.value("aura_requests_total", **served) == 7
    assert scraped.value("aura_request_duration_seconds_count", status="ok") == 7
    assert scraped.value("aura_request_duration_seconds_bucket", le="0.5") == 7
    assert scraped.value("aura_request_duration_seconds_bucket", le="0.25") == 0
    assert scraped.value("aura_cost_usd_total", provider="openai") == 7 * 0.25
    assert scraped.value("aura_cache_requests_total", result="miss") == 7
    assert scraped.value("aura_router_decision_seconds_count") == 7


def test_a_stopped_process_leaves_its_counters_but_not_its_live_gauges(tmp_path):
    child(tmp_path, 1, backlog=5, how="stop")
    crashed, _ = child(tmp_path, 1, backlog=2, how="crash")  # exits without saying so

    scraped = collected(tmp_path)
    assert scraped.value("aura_requests_total") == 2
    assert scraped.value("aura_usage_writer_backlog") == 2  # the stopped one's 5 is gone

    host = metrics.process_identifier().rsplit("-", 1)[0]
    assert metrics.sweep_dead_processes(str(tmp_path), host) == [crashed]

    scraped = collected(tmp_path)
    assert scraped.value("aura_usage_writer_backlog") == 0
    assert scraped.value("aura_requests_total") == 2


def test_the_sweep_leaves_live_processes_and_other_hosts_alone(tmp_path):
    _, host_pid = metrics.process_identifier().rsplit("-", 1)
    host = metrics.process_identifier().rsplit("-", 1)[0]
    for name in (
        f"gauge_livesum_{host}-{host_pid}.db",  # this process: alive
        "gauge_livesum_other-host-1.db",  # another container's: not ours to judge
        f"counter_{host}-999999999.db",  # a dead process's counters: kept
    ):
        (tmp_path / name).write_bytes(b"")

    assert metrics.sweep_dead_processes(str(tmp_path), host) == []
    assert len(list(tmp_path.iterdir())) == 3


def test_tenant_labels_are_off_unless_asked_for():
    _, without = child(None, 1, backlog=0, how="stop")
    _, with_tenants = child(None, 1, backlog=0, how="stop", labels="tenants")

    assert 'aura_cost_usd_total{model="gpt-x",provider="openai"} 0.25' in without
    assert 'aura_cost_usd_total{model="gpt-x",provider="openai",tenant="7"} 0.25' in with_tenants


def test_two_gateway_processes_count_into_one_folder_and_either_answers_for_both(
    gw, tmp_path, monkeypatch
):
    add_model(gw.providers["fakeai"], "fake-ok")
    folder = tmp_path / "metrics"
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(folder))
    served = {"provider": "fakeai", "model": "fake-ok", "status": "ok"}
    with gateway_processes(2) as (a, b):
        for url in (a.url, b.url, b.url):
            resp = httpx.post(
                f"{url}/v1/chat/completions",
                json={"model": "fake-ok", "messages": [{"role": "user", "content": "hi"}]},
                headers={"Authorization": f"Bearer {gw.plaintext}"},
                timeout=30,
            )
            assert resp.status_code == 200, resp.text

        # Each process writes its counts within a second; either one's scrape sums both.
        deadline = time.monotonic() + 10
        while scrape(a.url).value("aura_requests_total", **served) < 3:
            assert time.monotonic() < deadline, scrape(a.url).text[-3000:]
            time.sleep(0.2)
        assert scrape(b.url).value("aura_requests_total", **served) == 3
        # Families nobody wrote yet are listed all the same (no samples).
        assert "aura_celery_tasks" in scrape(a.url).families
        identifiers = {p.name.rsplit("_", 1)[-1][:-3] for p in folder.glob("counter_*.db")}
        host = socket.gethostname().replace("_", "-")
        assert identifiers == {f"{host}-{a.proc.pid}", f"{host}-{b.proc.pid}"}

        b.proc.terminate()  # a clean stop (ASGI shutdown)
        b.proc.wait(timeout=15)
        assert not list(folder.glob(f"gauge_live*_{host}-{b.proc.pid}.db"))
        assert list(folder.glob(f"gauge_live*_{host}-{a.proc.pid}.db"))
        assert scrape(a.url).value("aura_requests_total", **served) == 3
    gw.usage(3)  # the processes' usage records are in before the tables are emptied
