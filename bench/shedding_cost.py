"""What load shedding costs when nothing is overloaded, and what it does when it is.

Run from the repo root:  .venv/bin/python bench/shedding_cost.py [--iterations N]

1. Microseconds per uncontended acquire + release of an endpoint slot (the only work the
   gateway adds to a call when the endpoint has room), for a limited endpoint and an
   unlimited one (max_in_flight 0), beside an empty loop of the same shape.
2. A tiny overload: one slot, requests of mixed priority arriving while it is held; prints
   the order they are served in (high first, first come first served within a priority).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from routing.gateway.shedding import PRIORITIES, RANK, Shedder


def per_call_us(fn: object, iterations: int, repeats: int = 7) -> tuple[float, float]:
    """(median, min) microseconds per call over ``repeats`` timed loops."""
    samples = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn(iterations)  # type: ignore[operator]
        samples.append((time.perf_counter() - started) / iterations * 1e6)
    return statistics.median(samples), min(samples)


def cost(iterations: int) -> None:
    shedder = Shedder()
    try_acquire = shedder.try_acquire

    def limited(n: int) -> None:
        for _ in range(n):
            slot = try_acquire("ep1", 64)
            slot.release()  # type: ignore[union-attr]

    def unlimited(n: int) -> None:
        for _ in range(n):
            slot = try_acquire("ep2", 0)
            slot.release()  # type: ignore[union-attr]

    class Nothing:
        def release(self) -> None:
            pass

    nothing = Nothing()

    def baseline(n: int) -> None:
        for _ in range(n):
            slot = nothing
            slot.release()

    print(f"uncontended acquire + release, {iterations} iterations x 7 (median / min, us):")
    base = per_call_us(baseline, iterations)
    for name, fn in (("max_in_flight=64", limited), ("max_in_flight=0 (no limit)", unlimited)):
        median, low = per_call_us(fn, iterations)
        print(
            f"  {name:28s} {median:6.3f} / {low:6.3f}   "
            f"(loop + method call alone: {base[0]:.3f}; added: {median - base[0]:.3f})"
        )
    assert shedder.in_flight("ep1") == shedder.in_flight("ep2") == 0


async def overload_demo() -> None:
    shedder = Shedder()
    served: list[str] = []
    held = shedder.try_acquire("gpu1", 1)
    assert held is not None
    arrivals = ["low-1", "normal-1", "high-1", "low-2", "normal-2", "high-2", "normal-3"]

    async def request(name: str) -> None:
        rank = RANK[name.split("-")[0]]
        slot = await shedder.acquire("gpu1", 1, rank, queue_size=100, max_wait=5)
        served.append(name)
        await asyncio.sleep(0)  # "calls the provider"
        slot.release()

    tasks = []
    for name in arrivals:
        tasks.append(asyncio.create_task(request(name)))
        await asyncio.sleep(0)  # arrives (and queues) in this order
    print(f"\noverload: max_in_flight=1, slot held; arrivals: {', '.join(arrivals)}")
    held.release()
    await asyncio.gather(*tasks)
    print(f"served in order:        {', '.join(served)}")
    expected = sorted(arrivals, key=lambda n: (PRIORITIES.index(n.split("-")[0]), n))
    assert served == expected, served
    assert shedder.in_flight("gpu1") == 0 and shedder.queued("gpu1") == 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=1_000_000)
    args = parser.parse_args()
    print(f"python {sys.version.split()[0]}")
    cost(args.iterations)
    asyncio.run(overload_demo())


if __name__ == "__main__":
    main()
