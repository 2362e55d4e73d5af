"""Scoring and primary-selection strategies for the routing engine.

``score_rows`` normalises quality, cost and latency across the eligible set and scores it;
the weighted sum is multiplied by the endpoint's health score (1 when healthy or unknown).
The pick functions choose the index of the primary among an already-ordered list of
eligible candidates (best first for the engine's preference), so the engine can keep the
rest of the plan in its own order. They are pure: the counter, the session id and the random generator
come from the caller, never from a clock or global state.
"""

from __future__ import annotations

import heapq
import math
import random
from collections.abc import Sequence
from typing import TYPE_CHECKING

from routing.engine.types import stable_hash64

if TYPE_CHECKING:
    from routing.engine.types import Candidate, HealthSnapshot, Policy, RouteRequest, Row, Weights


_MASK64 = (1 << 64) - 1
_TWO64 = float(1 << 64)

# A cost ratio of 10**COST_DECADES to the cheapest eligible model scores 0; each decade
# in between costs 1/COST_DECADES. Log scaling keeps a 100x price gap from flattening every
# other difference: with 3 decades a model 10x the cheapest still scores 0.67, 100x 0.33.
COST_DECADES = 3.0
# Free (local) models would make log(cost) undefined; costs are floored at this many USD.
COST_FLOOR_USD = 1e-6
# Scoring compares models at the same output length: the request's max tokens, else this.
# (The worst case with each model's own max_output is used for budgets and max cost only;
# using it for scoring would penalise models merely for allowing long outputs.)
SCORING_OUTPUT_TOKENS = 1024
# Quality multiplier for eco-tier models on premium-tier requests (see engine docstring).
ECO_PENALTY_ON_PREMIUM = 0.7


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


def score_rows(
    elig: list[tuple[Candidate, float, float]],
    request: RouteRequest,
    health: HealthSnapshot,
    weights: Weights,
) -> list[Row]:
    """Normalise quality/cost/latency across the eligible set and score every candidate."""
    prompt = request.prompt_tokens
    embeddings = request.kind == "embeddings"
    out = 0 if embeddings else (request.max_output_tokens or SCORING_OUTPUT_TOKENS)
    latency_seen = health.latency_ms
    log = math.log
    floor = COST_FLOOR_USD

    log_costs = []
    latencies = []
    for c, _, _ in elig:
        o = out if out <= c.max_output or embeddings else c.max_output
        cost = (prompt * c.input_price + o * c.output_price) / 1_000_000
        log_costs.append(log(cost if cost > floor else floor))
        lat = latency_seen.get(c.key)
        latencies.append(c.latency_prior_ms if lat is None or lat <= 0 else lat)
    min_log_cost = min(log_costs)
    fastest = min(latencies)
    cost_scale = 1.0 / (COST_DECADES * math.log(10.0))

    premium_cap = 2.0  # no cap
    if request.tier == "eco":
        others = [q for c, q, _ in elig if c.tier_rank < 2]
        if others:
            premium_cap = max(others)
    premium_request = request.tier == "premium"

    wq, wc, wl = weights.quality, weights.cost, weights.latency
    loads = health.in_flight
    learned = health.learned_quality
    scores = health.health_scores
    rows: list[Row] = []
    for i, (c, q_raw, worst) in enumerate(elig):
        qn = q_raw
        if learned and c.key in learned:
            pass  # a per-prompt prediction already knows how hard the prompt is
        elif premium_request and c.tier_rank == 0:
            qn = q_raw * ECO_PENALTY_ON_PREMIUM
        elif c.tier_rank == 2 and q_raw > premium_cap:
            qn = premium_cap
        cn = 1.0 - (log_costs[i] - min_log_cost) * cost_scale
        if cn < 0.0:
            cn = 0.0
        lat = latencies[i]
        ln = fastest / lat
        score = wq * qn + wc * cn + wl * ln
        h = scores.get(c.endpoint, 1.0) if scores else 1.0
        if h != 1.0:
            score *= h
        rows.append((c, score, q_raw, worst, lat, qn, cn, ln, loads.get(c.key, 0), h))
    return rows


def choose_primary(
    preferred: list[Row],
    policy: Policy,
    request: RouteRequest,
    rng: random.Random,
    counter: int,
) -> int:
    strategy = policy.strategy
    if len(preferred) < 2 or strategy in ("scored", "hedge"):
        return 0
    if strategy == "weighted_round_robin":
        return weighted_round_robin_pick([r[0].weight for r in preferred], counter)
    if strategy == "least_in_flight":
        return argmin_pick([r[8] for r in preferred])
    if strategy == "lowest_latency":
        return argmin_pick([r[4] for r in preferred])
    if strategy == "power_of_two":
        return power_of_two_pick([r[8] for r in preferred], rng)
    # consistent_hash: without a session there is nothing to keep stable.
    if request.session_id is None:
        return 0
    return rendezvous_pick(
        request.session_id,
        [r[0].key_hash for r in preferred],
        [r[0].weight for r in preferred],
    )
