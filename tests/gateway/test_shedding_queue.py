"""The in-flight limiter and its priority queue on their own (one event loop, no server):
who gets a released slot, and that no way of leaving the queue leaks or steals one."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

import pytest

from routing.gateway.shedding import HIGH, LOW, NORMAL, Shed, Shedder, Slot, request_priority

EP = "ep1"


def run(test: Callable[[Shedder], Coroutine[Any, Any, Any]]) -> Any:
    return asyncio.run(test(Shedder()))


async def queued(shedder: Shedder, rank: int, served: list[str], name: str, **kw: Any) -> Slot:
    slot = await shedder.acquire(
        EP, 1, rank, queue_size=kw.get("queue_size", 10), max_wait=kw.get("max_wait", 30)
    )
    served.append(name)
    return slot


async def settle() -> None:
    """Let every ready task run (a queued waiter, a woken one) before checking."""
    for _ in range(5):
        await asyncio.sleep(0)


def test_a_released_slot_goes_to_the_best_waiter_high_first_then_first_come_first_served():
    async def scenario(shedder: Shedder) -> list[str]:
        held = shedder.try_acquire(EP, 1)
        assert held is not None
        served: list[str] = []
        order = [(LOW, "low-1"), (NORMAL, "normal-1"), (HIGH, "high-1"), (LOW, "low-2")]
        order += [(HIGH, "high-2"), (NORMAL, "normal-2")]
        tasks = []
        for rank, name in order:
            tasks.append(asyncio.create_task(queued(shedder, rank, served, name)))
            await settle()
        assert shedder.queued(EP) == 6 and served == []
        held.release()
        for _ in order:
            await settle()
            # One released slot wakes exactly one waiter, holding it: no herd, no overlap.
            done = [t for t in tasks if t.done()]
            assert len(done) == 1 and shedder.in_flight(EP) == 1
            tasks.remove(done[0])
            done[0].result().release()
        assert shedder.in_flight(EP) == 0 and shedder.queued(EP) == 0
        return served

    assert run(scenario) == ["high-1", "high-2", "normal-1", "normal-2", "low-1", "low-2"]


def test_a_newcomer_does_not_overtake_the_queue():
    async def scenario(shedder: Shedder) -> None:
        held = shedder.try_acquire(EP, 1)
        assert held is not None
        served: list[str] = []
        waiter = asyncio.create_task(queued(shedder, LOW, served, "waiter"))
        await settle()
        held.release()  # handed to the waiter before it even runs
        assert shedder.try_acquire(EP, 1) is None
        (await waiter).release()
        assert shedder.in_flight(EP) == 0

    run(scenario)


def test_a_waiter_that_times_out_leaves_the_queue_with_a_retry_after():
    async def scenario(shedder: Shedder) -> Shed:
        held = shedder.try_acquire(EP, 1)
        assert held is not None
        with pytest.raises(Shed) as info:
            await shedder.acquire(EP, 1, NORMAL, queue_size=10, max_wait=0.01)
        assert shedder.queued(EP) == 0 and shedder.in_flight(EP) == 1
        held.release()
        assert shedder.in_flight(EP) == 0
        return info.value

    shed = run(scenario)
    assert shed.reason == "queue_timeout" and shed.retry_after >= 1 and shed.limit == 1


def test_a_full_queue_refuses_at_once():
    async def scenario(shedder: Shedder) -> None:
        held = shedder.try_acquire(EP, 1)
        assert held is not None
        served: list[str] = []
        waiter = asyncio.create_task(queued(shedder, LOW, served, "w", queue_size=1))
        await settle()
        with pytest.raises(Shed) as info:
            # Even a high-priority request: the queue's size bounds memory and waiting.
            await shedder.acquire(EP, 1, HIGH, queue_size=1, max_wait=30)
        assert info.value.reason == "queue_full"
        held.release()
        (await waiter).release()
        assert shedder.in_flight(EP) == 0 and served == ["w"]

    run(scenario)


def test_a_cancelled_waiter_leaves_the_queue_and_never_takes_a_slot():
    async def scenario(shedder: Shedder) -> None:
        held = shedder.try_acquire(EP, 1)
        assert held is not None
        served: list[str] = []
        gone = asyncio.create_task(queued(shedder, HIGH, served, "gone"))
        later = asyncio.create_task(queued(shedder, LOW, served, "later"))
        await settle()
        gone.cancel()
        await settle()
        assert shedder.queued(EP) == 1
        held.release()
        (await later).release()
        assert served == ["later"] and gone.cancelled()
        assert shedder.in_flight(EP) == 0 and shedder.queued(EP) == 0

    run(scenario)


def test_a_waiter_granted_in_the_same_turn_it_is_cancelled_passes_the_slot_on():
    async def scenario(shedder: Shedder) -> None:
        held = shedder.try_acquire(EP, 1)
        assert held is not None
        served: list[str] = []
        first = asyncio.create_task(queued(shedder, HIGH, served, "first"))
        second = asyncio.create_task(queued(shedder, LOW, served, "second"))
        await settle()
        held.release()  # the slot is counted for "first"...
        first.cancel()  # ...which goes away before it could run
        await settle()
        assert first.cancelled()
        (await second).release()
        assert served == ["second"]
        assert shedder.in_flight(EP) == 0 and shedder.queued(EP) == 0

    run(scenario)


def test_raising_the_limit_lets_waiters_in_at_once_and_zero_means_no_limit():
    async def scenario(shedder: Shedder) -> None:
        held = shedder.try_acquire(EP, 1)
        assert held is not None
        served: list[str] = []
        waiter = asyncio.create_task(queued(shedder, NORMAL, served, "w"))
        await settle()
        more = shedder.try_acquire(EP, 3)  # the configuration now says 3
        await settle()
        assert served == ["w"] and more is not None and shedder.in_flight(EP) == 3
        unlimited = [shedder.try_acquire(EP, 0) for _ in range(50)]
        assert all(s is not None for s in unlimited)
        for s in [held, more, waiter.result(), *unlimited]:
            assert s is not None
            s.release()
        assert shedder.in_flight(EP) == 0

    run(scenario)


def test_releasing_a_slot_twice_frees_it_once():
    async def scenario(shedder: Shedder) -> None:
        a, b = shedder.try_acquire(EP, 2), shedder.try_acquire(EP, 2)
        assert a is not None and b is not None
        a.release()
        a.release()
        assert shedder.in_flight(EP) == 1
        b.release()
        assert shedder.in_flight(EP) == 0

    run(scenario)


@pytest.mark.parametrize(
    ("key", "header", "rank"),
    [
        ("normal", None, NORMAL),
        ("high", None, HIGH),
        ("high", "low", LOW),
        ("high", " Normal ", NORMAL),
        ("normal", "high", NORMAL),  # the key's priority is the ceiling
        ("low", "high", LOW),
        ("low", "low", LOW),
    ],
)
def test_the_header_may_lower_the_keys_priority_but_never_raise_it(key, header, rank):
    assert request_priority(key, header) == rank


@pytest.mark.parametrize("header", ["", "urgent", "0", "highest"])
def test_a_header_that_is_not_a_priority_is_refused(header):
    with pytest.raises(ValueError, match="x-aura-priority must be one of high, normal, low"):
        request_priority("normal", header)
