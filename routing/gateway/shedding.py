"""Load shedding: an in-flight limit per provider endpoint, and a bounded priority queue in
front of it.

Each endpoint (``Candidate.endpoint``: ``ep<id>``, ``ep<id>:t<tenant>`` for a tenant's own
key on a shared endpoint, ``<provider>-default``) admits at most ``limit`` calls at once
(``ProviderEndpoint.max_in_flight``; empty: ``SHED_MAX_IN_FLIGHT``; 0: no limit). A call
beyond it waits in that endpoint's queue: high before normal before low, first come first
served within a priority, at most ``SHED_QUEUE_SIZE`` waiting, each for at most
``SHED_QUEUE_TIMEOUT`` seconds. A released slot is handed straight to the best waiter (its
future is resolved with the slot already counted), so nobody races for it and a newcomer
never overtakes the queue.

The limit is **per gateway process**: N uvicorn workers admit up to N x limit calls. A
shared (Redis) semaphore would cost a round trip on every call, and leases that outlive a
killed worker; per process costs a dict lookup and an integer compare.

A call holds its slot for its whole plan step (retries and their backoff included: the
step is still the endpoint's work); a stream holds it until the stream ends.

Cost when not overloaded: ``try_acquire`` is a dict lookup, two compares and an increment;
``release`` a decrement and one compare. No lock (one event loop per process), no await.
"""

from __future__ import annotations

import asyncio
import math
from collections import deque
from collections.abc import Callable

PRIORITIES = ("high", "normal", "low")
RANK = {name: rank for rank, name in enumerate(PRIORITIES)}
HIGH, NORMAL, LOW = 0, 1, 2
PRIORITY_HEADER = "x-aura-priority"
RETRY_AFTER_MIN, RETRY_AFTER_MAX = 1, 60


def request_priority(key_priority: str, header: str | None) -> int:
    """The request's rank: its key's priority, or lower if the header asks for it.

    The key's priority is also the ceiling: asking for more than the key has is served at
    the key's priority (not refused: the header is a hint, the key the entitlement).
    Raises ValueError for a value that is not a priority."""
    ceiling = RANK.get(key_priority, NORMAL)
    if header is None:
        return ceiling
    asked = RANK.get(header.strip().lower())
    if asked is None:
        raise ValueError(f"{PRIORITY_HEADER} must be one of {', '.join(PRIORITIES)}")
    return max(asked, ceiling)


class Shed(Exception):
    """Refused for lack of room: the queue was full, or the wait timed out."""

    def __init__(self, endpoint: str, reason: str, retry_after: int, limit: int) -> None:
        super().__init__(f"{endpoint}: {reason}")
        self.endpoint = endpoint
        self.reason = reason  # "queue_full" | "queue_timeout"
        self.retry_after = retry_after
        self.limit = limit


class EndpointSlots:
    """One endpoint's counter and its three FIFO queues (one per priority)."""

    __slots__ = ("in_flight", "limit", "name", "queues", "waiting")

    def __init__(self, name: str) -> None:
        self.name = name
        self.limit = 0
        self.in_flight = 0
        self.waiting = 0  # futures in the queues, counted by whoever takes one out
        self.queues: tuple[deque[asyncio.Future[None]], ...] = (deque(), deque(), deque())

    def release(self) -> None:
        self.in_flight -= 1
        if self.waiting:
            self.grant()

    def grant(self) -> None:
        """Hand free slots to the best waiters, counting each slot before its waiter wakes."""
        for queue in self.queues:
            while queue and (not self.limit or self.in_flight < self.limit):
                fut = queue.popleft()
                self.waiting -= 1
                if fut.done():  # cancelled; its waiter is on its way out
                    continue
                self.in_flight += 1
                fut.set_result(None)
            if self.limit and self.in_flight >= self.limit:
                return


class Slot:
    """One admitted call. ``release()`` is idempotent, so every exit path may call it."""

    __slots__ = ("_endpoint",)

    def __init__(self, endpoint: EndpointSlots) -> None:
        self._endpoint: EndpointSlots | None = endpoint

    def release(self) -> None:
        endpoint, self._endpoint = self._endpoint, None
        if endpoint is not None:
            endpoint.release()


class Shedder:
    """Every endpoint's slots in this process (one event loop: no locks needed)."""

    def __init__(self) -> None:
        self._endpoints: dict[str, EndpointSlots] = {}
        # Called with the endpoint name whenever a queue changes (never on the fast path):
        # for metrics, and for tests that wait for a request to be queued.
        self.listeners: list[Callable[[str], None]] = []

    def _slots(self, name: str, limit: int) -> EndpointSlots:
        slots = self._endpoints.get(name)
        if slots is None:
            slots = self._endpoints[name] = EndpointSlots(name)
        if slots.limit != limit:
            slots.limit = limit  # the configuration changed: a raised limit frees room now
            if slots.waiting:
                slots.grant()
        return slots

    def try_acquire(self, name: str, limit: int) -> Slot | None:
        """A slot if the endpoint has room and nobody is waiting for one, else None."""
        slots = self._endpoints.get(name)
        if slots is None or slots.limit != limit:
            slots = self._slots(name, limit)
        if slots.waiting or (limit and slots.in_flight >= limit):
            return None
        slots.in_flight += 1
        return Slot(slots)

    async def acquire(
        self,
        name: str,
        limit: int,
        rank: int,
        *,
        queue_size: int,
        max_wait: float,
        typical_ms: float | None = None,
    ) -> Slot:
        """Wait in the endpoint's queue for a slot; raise Shed when the queue is full or
        ``max_wait`` seconds pass. ``typical_ms`` (a call's usual duration) sizes Retry-After."""
        slots = self._slots(name, limit)
        if not slots.waiting and (not limit or slots.in_flight < limit):
            slots.in_flight += 1
            return Slot(slots)
        if slots.waiting >= queue_size:
            raise Shed(name, "queue_full", self._retry_after(slots, typical_ms), limit)
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        queue = slots.queues[rank]
        queue.append(fut)
        slots.waiting += 1
        self._changed(name)
        try:
            async with asyncio.timeout(max_wait):
                await fut
        except BaseException as exc:
            if fut.done() and not fut.cancelled():
                # Granted just as it gave up (timeout or client gone in the same loop
                # turn): the slot was counted for it, so pass it on.
                slots.release()
            else:
                fut.cancel()
                try:
                    queue.remove(fut)
                    slots.waiting -= 1
                except ValueError:  # grant() already took it out (and counted that)
                    pass
            self._changed(name)
            if isinstance(exc, TimeoutError):
                retry_after = self._retry_after(slots, typical_ms)
                raise Shed(name, "queue_timeout", retry_after, limit) from None
            raise
        self._changed(name)
        return Slot(slots)

    @staticmethod
    def _retry_after(slots: EndpointSlots, typical_ms: float | None) -> int:
        """Seconds until a newcomer would likely get a slot: the queue ahead of it drained
        ``limit`` at a time, each call taking about ``typical_ms``."""
        per_call = (typical_ms or 1000.0) / 1000
        rounds = slots.waiting / slots.limit + 1 if slots.limit else 1
        return min(RETRY_AFTER_MAX, max(RETRY_AFTER_MIN, math.ceil(rounds * per_call)))

    def _changed(self, name: str) -> None:
        for listener in self.listeners:
            listener(name)

    # ----------------------------------------------------------------- reading

    def in_flight(self, name: str) -> int:
        slots = self._endpoints.get(name)
        return slots.in_flight if slots is not None else 0

    def queued(self, name: str) -> int:
        slots = self._endpoints.get(name)
        return slots.waiting if slots is not None else 0

    def snapshot(self) -> dict[str, tuple[int, int, int]]:
        """{endpoint: (in flight, waiting, limit)} for every endpoint seen (metrics)."""
        return {n: (s.in_flight, s.waiting, s.limit) for n, s in self._endpoints.items()}

    def clear(self) -> None:
        """Forget every endpoint (tests; a live process never needs it)."""
        self._endpoints.clear()


shedder = Shedder()
