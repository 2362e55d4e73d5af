"""Primary-selection strategies for the routing engine.

Each function picks the index of the primary among an already-ordered list of eligible
candidates (best first for the engine's preference), so the engine can keep the rest of the
plan in its own order. They are pure: the counter, the session id and the random generator
come from the caller, never from a clock or global state.
"""

from __future__ import annotations

import hashlib
import heapq
import math
import random
from collections.abc import Sequence

_MASK64 = (1 << 64) - 1
_TWO64 = float(1 << 64)


def stable_hash64(text: str) -> int:
    """A 64-bit hash that is the same in every process (unlike ``hash()``, which is salted)."""
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big")


def _mix64(x: int) -> int:
    # splitmix64 finaliser: turns session-hash XOR key-hash into an independent-looking
    # draw per (session, candidate) without a blake2b call per candidate.
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK64
    return x ^ (x >> 31)


def weighted_round_robin_pick(weights: Sequence[float], counter: int) -> int:
    """Index chosen at step ``counter`` of a smooth weighted round robin over ``weights``.

    Stateless stride scheduling: candidate ``i`` owns the virtual times ``(k + 0.5) / w_i``
    for k = 0, 1, 2...; step ``t`` goes to the owner of the t-th smallest time (ties by
    index). Over any window of ``sum(weights)`` steps with integer weights each candidate is
    picked exactly ``w_i`` times, interleaved (5:1:1 gives A A A B C A A) rather than in
    bursts. The t-th time is found from a close guess plus a few heap pops, so the cost is
    O(n log n) whatever the counter. Zero weights are never picked unless all are zero
    (then index 0).
    """
    active = [(i, float(w)) for i, w in enumerate(weights) if w > 0]
    if not active:
        return 0
    if len(active) == 1:
        return active[0][0]
    total = math.fsum(w for _, w in active)
    t = counter
    if all(w.is_integer() for _, w in active):
        # Integer weights repeat with period sum(w); reducing keeps the float times small.
        t %= int(total)
    guess = (t + 0.5) / total
    counts = [math.floor(guess * w + 0.5) for _, w in active]
    seen = sum(counts)  # number of virtual times <= guess
    last = active[0][0]
    if seen > t:
        # The t-th time is at or before the guess: walk back from the latest ones.
        back = [(-(m - 0.5) / w, -i, m, w) for (i, w), m in zip(active, counts, strict=True) if m]
        heapq.heapify(back)
        for _ in range(seen - t):
            _, neg_i, m, w = heapq.heappop(back)
            last = -neg_i
            if m > 1:
                heapq.heappush(back, (-(m - 1.5) / w, neg_i, m - 1, w))
        return last
    ahead = [((m + 0.5) / w, i, m, w) for (i, w), m in zip(active, counts, strict=True)]
    heapq.heapify(ahead)
    for _ in range(t - seen + 1):
        _, i, m, w = heapq.heappop(ahead)
        last = i
        heapq.heappush(ahead, ((m + 1.5) / w, i, m + 1, w))
    return last


def rendezvous_pick(session_id: str, key_hashes: Sequence[int], weights: Sequence[float]) -> int:
    """Index that session ``session_id`` maps to by weighted rendezvous (HRW) hashing.

    Each (session, candidate) pair gets a uniform draw ``u``; the winner maximises
    ``w / -ln(u)``. Removing or adding a candidate only moves the sessions that were (or
    become) mapped to it, which is what keeps a session's model stable while it stays
    eligible. Hashes are blake2b-derived, so the mapping is identical across processes.
    """
    seed = stable_hash64(session_id)
    best = 0
    best_score = -1.0
    for idx, (key_hash, weight) in enumerate(zip(key_hashes, weights, strict=True)):
        if weight <= 0:
            continue
        u = (_mix64(seed ^ key_hash) + 0.5) / _TWO64
        score = weight / -math.log(u)
        if score > best_score:
            best, best_score = idx, score
    return best


def power_of_two_pick(in_flight: Sequence[int], rng: random.Random) -> int:
    """Sample two distinct indices with ``rng`` and keep the less loaded one.

    Ties go to the lower index, which the engine orders by preference (score), so an idle
    system still favours the better model of the pair.
    """
    n = len(in_flight)
    if n < 2:
        return 0
    a = rng.randrange(n)
    b = rng.randrange(n - 1)
    if b >= a:
        b += 1
    if a > b:
        a, b = b, a
    return b if in_flight[b] < in_flight[a] else a


def argmin_pick(values: Sequence[float]) -> int:
    """Index of the smallest value, the earliest (most preferred) one on ties."""
    best = 0
    best_value = math.inf
    for idx, value in enumerate(values):
        if value < best_value:
            best, best_value = idx, value
    return best
