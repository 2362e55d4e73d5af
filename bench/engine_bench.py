"""Benchmark of routing.engine.plan: decision time for a 50-model catalog.

Run from the repo root:  .venv/bin/python bench/engine_bench.py [--iterations N] [--health]

``--health``: the snapshot also carries health-check state (one endpoint down, a few
degraded, one never seen healthy), as the gateway passes it once health checks run.

Prints mean, p50 and p99 per decision in microseconds for each strategy and request kind.
The bar is 200 us per decision for 50 models on a slow 2-core machine.
"""

from __future__ import annotations

import argparse
import gc
import random
import statistics
import sys
import time
import timeit
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from routing.engine import (
    OBJECTIVES,
    STRATEGIES,
    TIERS,
    Candidate,
    HealthSnapshot,
    Policy,
    RouteRequest,
    plan,
)

PROVIDERS = ("openai", "anthropic", "google", "mistral", "groq", "together", "local")


def make_catalog(n: int = 50, seed: int = 7) -> list[Candidate]:
    """A synthetic but realistic catalog: price spread ~1000x, mixed capabilities."""
    rnd = random.Random(seed)
    catalog = []
    for i in range(n):
        provider = PROVIDERS[i % len(PROVIDERS)]
        tier = TIERS[i % 3]
        caps = {"chat", "streaming"}
        if i % 2 == 0:
            caps.add("tools")
        if i % 3 == 0:
            caps.add("vision")
        if i % 4 != 3:
            caps.add("json")
        if i % 10 == 9:
            caps = {"embeddings"}
        base = {"eco": 0.1, "balanced": 1.0, "premium": 10.0}[tier] * rnd.uniform(0.5, 2.0)
        catalog.append(
            Candidate(
                key=f"{provider}/model-{i}",
                provider=provider,
                endpoint=f"{provider}-ep",
                model_id=f"model-{i}",
                aliases=(f"alias-{i}",),
                input_price=base,
                output_price=base * 4,
                context_window=rnd.choice((8_192, 32_768, 128_000, 200_000)),
                max_output=rnd.choice((4_096, 8_192, 16_384)),
                capabilities=frozenset(caps),
                quality={"chat": rnd.uniform(0.5, 0.95), "code": rnd.uniform(0.4, 0.95)},
                tier=tier,
                is_local=provider == "local",
                has_credentials=i % 17 != 5,
                weight=float(1 + i % 3),
            )
        )
    return catalog


REQUESTS = {
    "auto chat": RouteRequest(model="auto", prompt_tokens=800, max_output_tokens=512),
    "auto tools+json premium": RouteRequest(
        model="auto",
        prompt_tokens=3_000,
        max_output_tokens=None,
        needs=frozenset({"tools", "json"}),
        category="code",
        tier="premium",
        session_id="sess-42",
    ),
    "named model": RouteRequest(model="model-12", prompt_tokens=500, max_output_tokens=256),
    "embeddings": RouteRequest(model="auto", prompt_tokens=200, kind="embeddings"),
}


def bench(iterations: int, with_health: bool = False) -> None:
    catalog = make_catalog()
    keys = [c.key for c in catalog]
    endpoints = sorted({c.endpoint for c in catalog})
    health = HealthSnapshot(
        open_endpoints=frozenset({"groq-ep"}),
        latency_ms={k: 300.0 + 37.0 * i for i, k in enumerate(keys[:40])},
        in_flight={k: i % 5 for i, k in enumerate(keys)},
        learned_quality={k: 0.7 for k in keys[:10]},
        down_endpoints=frozenset(endpoints[:1]) if with_health else frozenset(),
        health_scores={e: 0.5 for e in endpoints[1:4]} if with_health else {},
        unproven=frozenset(endpoints[4:5]) if with_health else frozenset(),
    )
    rng = random.Random(1)
    # Machine speed reference: the bar assumes ~1.4 us here on the slow 2-core target.
    calib = min(timeit.repeat("sum(range(100))", number=20_000, repeat=5)) / 20_000 * 1e6
    print(f"machine: sum(range(100)) = {calib:.2f} us  (target machine ~1.4 us)")
    print(f"{'strategy':<22} {'request':<25} {'mean us':>8} {'p50 us':>8} {'p99 us':>8}")
    for strategy in STRATEGIES:
        policy = Policy(weights=OBJECTIVES["balanced"], strategy=strategy, hedge_k=2)
        for label, request in REQUESTS.items():
            for _ in range(200):  # warm-up
                plan(request, catalog, policy, health, rng=rng, counter=1)
            samples = []
            gc.disable()
            for n in range(iterations):
                t0 = time.perf_counter()
                plan(request, catalog, policy, health, rng=rng, counter=n)
                samples.append(time.perf_counter() - t0)
            gc.enable()
            samples.sort()
            mean = statistics.fmean(samples) * 1e6
            p50 = samples[len(samples) // 2] * 1e6
            p99 = samples[int(len(samples) * 0.99)] * 1e6
            print(f"{strategy:<22} {label:<25} {mean:8.1f} {p50:8.1f} {p99:8.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=5_000)
    parser.add_argument("--health", action="store_true", help="with health-check state")
    args = parser.parse_args()
    bench(args.iterations, args.health)


if __name__ == "__main__":
    main()
