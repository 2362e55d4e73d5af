"""What the metrics cost a request on the hot path: CPU µs per call of
``monitoring.metrics.request_observed`` (the gateway's one metrics call per request, from
accounting) for realistic usage records, in single-process mode and in multiprocess mode
(``PROMETHEUS_MULTIPROC_DIR``: every sample write goes to a memory-mapped file).

    .venv/bin/python bench/metrics_cost.py [--n 100000]

The budget is 50 µs CPU per request. Each mode runs in a child process of its own, since
prometheus_client picks its mode when it is first imported. No database or Redis is needed.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


@dataclass(slots=True)
class Attempt:  # the fields of routing.gateway.execution.Attempt that metrics read
    provider: str
    ok: bool
    kind: str | None
    latency_ms: float


def _record(**fields: Any) -> dict[str, Any]:
    """A usage record as routing.gateway.accounting.usage_record builds it."""
    record: dict[str, Any] = {
        "record_uid": "0" * 32,
        "tenant_id": 7,
        "request_id": "req_" + "x" * 20,
        "api_key_id": 11,
        "kind": "chat",
        "provider": "openai",
        "model": "gpt-4.1-mini",
        "endpoint_id": 3,
        "status": "ok",
        "http_status": 200,
        "error_code": "",
        "stream": False,
        "prompt_tokens": 120,
        "completion_tokens": 80,
        "cached_tokens": 0,
        "cost_usd": Decimal("0.000368"),
        "cost_estimated": False,
        "latency_ms": 812.5,
        "ttft_ms": None,
        "overhead_ms": 0.9,
        "cache_status": "miss",
        "cache_savings_usd": Decimal(0),
        "fallbacks": 0,
        "attempts": [],
    }
    record.update(fields)
    return record


CASES: dict[str, tuple[dict[str, Any], list[Attempt], bool]] = {
    "served, 1 attempt, cache miss": (
        _record(),
        [Attempt("openai", True, None, 810.0)],
        True,
    ),
    "served after a fallback (3 attempts)": (
        _record(provider="anthropic", model="claude-haiku", fallbacks=1),
        [
            Attempt("openai", False, "server", 120.0),
            Attempt("openai", False, "server", 118.0),
            Attempt("anthropic", True, None, 640.0),
        ],
        True,
    ),
    "exact cache hit": (
        _record(cost_usd=Decimal(0), cache_status="exact", cache_savings_usd=Decimal("0.0004")),
        [],
        True,
    ),
    "refused: budget (402)": (
        _record(
            provider="",
            model="gpt-4.1",
            status="error",
            http_status=402,
            error_code="budget_exceeded",
            cost_usd=Decimal(0),
        ),
        [],
        False,
    ),
}


def child(n: int) -> dict[str, float]:
    from django.conf import settings

    settings.configure(METRICS_TENANT_LABELS=os.environ.get("METRICS_TENANT_LABELS") == "true")
    from monitoring import metrics

    figures = {}
    for name, (record, attempts, consulted) in CASES.items():
        observe = metrics.request_observed
        for _ in range(1000):  # bind the label children, warm the caches
            observe(record, attempts, cache_consulted=consulted, decision_seconds=0.00004)
        cpu = time.process_time()
        for _ in range(n):
            observe(record, attempts, cache_consulted=consulted, decision_seconds=0.00004)
        figures[name] = (time.process_time() - cpu) / n * 1e6
        metrics.flush()

    # The once-a-second write of what was counted: a busy second touches many series.
    def busy_second() -> None:
        for record, attempts, consulted in CASES.values():
            for provider in ("openai", "anthropic", "gemini", "groq", "mistral"):
                for model in ("m1", "m2", "m3", "m4"):
                    metrics.request_observed(
                        {**record, "provider": provider, "model": model},
                        attempts,
                        cache_consulted=consulted,
                        decision_seconds=0.00004,
                    )

    busy_second()
    metrics.flush()  # the first flush of a series binds its label child (once per process)
    busy_second()
    series = len(metrics._counts) + len(metrics._observed)
    cpu = time.process_time()
    metrics.flush()
    figures[f"flush() of {series} touched series (once a second)"] = (
        time.process_time() - cpu
    ) * 1e6
    # What the gateway adds around the engine's plan() to time it.
    clock = time.perf_counter
    cpu = time.process_time()
    for _ in range(n):
        started = clock()
        _ = clock() - started
    figures["timing plan() (2 perf_counter calls)"] = (time.process_time() - cpu) / n * 1e6
    return figures


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.n)))
        return 0
    results = {}
    for mode in ("single", "multiprocess"):
        env = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
        env["PYTHONPATH"] = str(ROOT)
        with tempfile.TemporaryDirectory(prefix="aura-metrics-bench-") as folder:
            if mode == "multiprocess":
                env["PROMETHEUS_MULTIPROC_DIR"] = folder
            out = subprocess.run(
                [sys.executable, __file__, "--child", "--n", str(args.n)],
                env=env,
                cwd=ROOT,
                capture_output=True,
                text=True,
                check=True,
            )
        results[mode] = json.loads(out.stdout.strip().splitlines()[-1])
    width = max(len(name) for name in results["single"])
    print(f"CPU µs per request, {args.n} calls each (budget: 50 µs)")
    print(f"{'case':<{width}}  {'single':>8}  {'multiprocess':>12}")
    for name in results["single"]:
        single, multi = results["single"][name], results["multiprocess"][name]
        print(f"{name:<{width}}  {single:8.2f}  {multi:12.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
