"""CPU cost of the durable usage hand-off per request (issue 7): journaling the provisional
record when a request starts and the final one before its response, against the
in-memory queue alone (what the writer did before).

    .venv/bin/python bench/usage_handoff_bench.py [N]

Runs without Django settings or servers: only the journal (a temporary folder) is used.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "aura.settings")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from billing.usage import FINAL, PROVISIONAL, Journal


def record(i: int) -> dict:
    return {
        "record_uid": f"{i:032x}",
        "tenant_id": 1,
        "created_at": datetime.now(UTC),
        "request_id": f"req_{i:032x}",
        "api_key_id": 7,
        "kind": "chat",
        "provider": "openai",
        "model": "gpt-4.1-mini",
        "endpoint_id": 3,
        "status": "ok",
        "http_status": 200,
        "error_code": "",
        "stream": False,
        "prompt_tokens": 120,
        "completion_tokens": 300,
        "cached_tokens": 0,
        "cost_usd": Decimal("0.0005280"),
        "cost_estimated": False,
        "latency_ms": 812.345,
        "ttft_ms": None,
        "overhead_ms": 0.61,
        "cache_status": "miss",
        "fallbacks": 0,
        "attempts": [],
    }


def cpu_us_per_call(fn, n: int) -> float:
    start = time.process_time()
    for i in range(n):
        fn(i)
    return (time.process_time() - start) / n * 1e6


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 200_000
    records = [record(i) for i in range(n)]
    queue: list = []
    with tempfile.TemporaryDirectory() as tmp:
        journal = Journal(Path(tmp))
        memory = cpu_us_per_call(lambda i: queue.append(records[i]), n)
        final = cpu_us_per_call(lambda i: journal.append(FINAL, records[i]), n)
        provisional = cpu_us_per_call(lambda i: journal.append(PROVISIONAL, records[i]), n)
        size = sum(p.stat().st_size for p in Path(tmp).iterdir()) / (2 * n)
        journal.close()
    print(f"records: {n}, journal line: {size:.0f} bytes")
    print(f"in-memory queue only (before):   {memory:6.2f} us CPU per record")
    print(f"journal final record:            {final:6.2f} us CPU per record")
    print(f"journal provisional record:      {provisional:6.2f} us CPU per record")
    print(f"hand-off per request (both):     {final + provisional:6.2f} us CPU")


if __name__ == "__main__":
    main()
