"""Choosing a tenant's routing weights from its outcomes: pure functions, no ORM, no clock.

A *case* is one held-out prompt: the quality predicted for it per model (by a predictor
fitted without it) and what was observed when models answered it (quality, cost, latency).
``replay`` runs the engine's own ``plan`` over the cases, with the predictions as its
learned quality, among the models observed for each prompt, and averages what the chosen
model really did there: the figures a policy would have reached on that traffic.

Two methods propose weights:

- ``outcome``: every weight triple on a 0.1 grid, then on a 0.02 grid around the best of
  those, is replayed on one half of the held-out cases; the one that best meets the goal
  (``goal_key``, its quality bar raised by one standard error) is proposed, and judged
  against the current policy on the *other* half, so the figures reported are not the
  ones the choice was fitted on.
- ``variance`` (the seeds' re-weighting): each signal's weight moves toward its share of
  the spread between models (standard deviation across models of the engine's normalised
  quality, cost and latency scores): a signal on which the models hardly differ cannot
  tell them apart and loses weight. Half the step is taken each run, and no weight falls
  below ``VARIANCE_FLOOR``.

Goals (what "best" means, the tenant's objective): ``maximize_quality`` (highest quality,
cost breaking near-ties), ``balanced`` (cheapest that keeps ``target`` of the best single
model's quality), ``minimize_cost`` (cheapest above an absolute quality floor, if any),
``minimize_latency`` (fastest that keeps ``target`` of the best single model's quality).
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from routing.engine import (
    Candidate,
    HealthSnapshot,
    Policy,
    RouteRequest,
    Weights,
    estimate_cost,
    plan,
)
from routing.learning.features import base_key

WEIGHT_KEYS = ("quality", "cost", "latency")
GRID_STEP = 0.1
FINE_STEP = 0.02
# The request size replayed (the memory keeps no token counts): it sets the worst-case cost
# the engine compares, and the cost of an outcome recorded without one.
REPLAY_PROMPT_TOKENS = 500
REPLAY_OUTPUT_TOKENS = 300
# A change must win by this much on the goal's measure to be proposed (no churn on noise).
MIN_GAIN = 0.02
QUALITY_EPSILON = 0.005
VARIANCE_FLOOR = 0.05
VARIANCE_STEP = 0.5


@dataclass(frozen=True, slots=True)
class Observed:
    quality: float
    cost_usd: float | None = None
    latency_ms: float | None = None


@dataclass(frozen=True, slots=True)
class Case:
    predicted: Mapping[str, float]  # model (base key) -> predicted quality
    observed: Mapping[str, Observed]  # model (base key) -> what it did on this prompt


@dataclass(frozen=True, slots=True)
class Figures:
    cases: int
    quality: float
    cost_usd: float  # mean per request
    latency_ms: float  # mean
    cost_estimated: int = 0  # cases whose cost came from catalog prices, not the outcome
    picks: Mapping[str, int] | None = None  # model -> cases routed to it

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "cases": self.cases,
            "quality": round(self.quality, 4),
            "cost_usd": round(self.cost_usd, 10),
            "latency_ms": round(self.latency_ms, 1),
        }
        if self.cost_estimated:
            out["cost_estimated_cases"] = self.cost_estimated
        if self.picks is not None:
            out["models"] = dict(sorted(self.picks.items(), key=lambda kv: (-kv[1], kv[0])))
        return out


def weights_dict(w: Weights) -> dict[str, float]:
    return {"quality": w.quality, "cost": w.cost, "latency": w.latency}


def grid(step: float = GRID_STEP) -> list[Weights]:
    """Every (quality, cost, latency) on the simplex at ``step`` (66 triples at 0.1)."""
    n = round(1 / step)
    out = []
    for i in range(n + 1):
        for j in range(n + 1 - i):
            q, c = round(i * step, 6), round(j * step, 6)
            out.append(Weights(q, c, max(0.0, round(1.0 - q - c, 6))))
    return out


def _restricted(candidates: Sequence[Candidate], case: Case) -> list[Candidate]:
    return [c for c in candidates if base_key(c.key) in case.observed]


def replay(
    cases: Sequence[Case],
    candidates: Sequence[Candidate],
    policy: Policy,
    *,
    latency_ms: Mapping[str, float] | None = None,
    pools: Sequence[Sequence[Candidate]] | None = None,
) -> Figures:
    """What ``policy`` would have reached on ``cases`` (see the module docstring)."""
    latency_ms = latency_ms or {}
    request = RouteRequest(
        model="auto", prompt_tokens=REPLAY_PROMPT_TOKENS, max_output_tokens=REPLAY_OUTPUT_TOKENS
    )
    rng = random.Random(0)
    if pools is None:
        pools = [_restricted(candidates, case) for case in cases]
    n = 0
    quality = cost = latency = 0.0
    estimated = 0
    picks: dict[str, int] = {}
    for case, pool in zip(cases, pools, strict=True):
        if not pool:
            continue
        learned = {
            c.key: case.predicted[b] for c in pool if (b := base_key(c.key)) in case.predicted
        }
        health = HealthSnapshot(latency_ms=latency_ms, learned_quality=learned)
        decision = plan(request, pool, policy, health, rng=rng, counter=n)
        if decision.primary is None:
            continue
        chosen = decision.primary.candidate
        model = base_key(chosen.key)
        seen = case.observed[model]
        n += 1
        picks[model] = picks.get(model, 0) + 1
        quality += seen.quality
        if seen.cost_usd is None:
            estimated += 1
            cost += estimate_cost(chosen, REPLAY_PROMPT_TOKENS, REPLAY_OUTPUT_TOKENS)
        else:
            cost += seen.cost_usd
        if seen.latency_ms is None:
            latency += latency_ms.get(chosen.key, chosen.latency_prior_ms)
        else:
            latency += seen.latency_ms
    if n == 0:
        return Figures(0, 0.0, 0.0, 0.0)
    return Figures(n, quality / n, cost / n, latency / n, estimated, picks)


def best_single(
    cases: Sequence[Case], candidates: Sequence[Candidate]
) -> tuple[str, Figures] | None:
    """The single model with the best observed quality among those that answered at least
    half of the cases (the bar the ``balanced`` goal is relative to)."""
    prices = {base_key(c.key): c for c in candidates}
    stats: dict[str, list[float]] = {}
    for case in cases:
        for model, seen in case.observed.items():
            if model not in prices:
                continue
            s = stats.setdefault(model, [0, 0.0, 0.0, 0.0, 0])
            c = prices[model]
            s[0] += 1
            s[1] += seen.quality
            if seen.cost_usd is None:
                s[2] += estimate_cost(c, REPLAY_PROMPT_TOKENS, REPLAY_OUTPUT_TOKENS)
                s[4] += 1
            else:
                s[2] += seen.cost_usd
            s[3] += seen.latency_ms if seen.latency_ms is not None else c.latency_prior_ms
    eligible = [(m, s) for m, s in stats.items() if s[0] * 2 >= len(cases)]
    if not eligible:
        return None
    model, s = max(eligible, key=lambda ms: (ms[1][1] / ms[1][0], -ms[1][2] / ms[1][0], ms[0]))
    n = int(s[0])
    return model, Figures(n, s[1] / n, s[2] / n, s[3] / n, int(s[4]), {model: n})


def quality_bar(goal: str, target: float, best: Figures | None, min_quality: float | None) -> float:
    """The mean quality a goal insists on before it looks at cost or latency."""
    if goal == "minimize_cost":
        return min_quality or 0.0
    if goal in ("balanced", "minimize_latency") and best is not None:
        return target * best.quality
    return 0.0


def goal_key(f: Figures, goal: str, bar: float) -> tuple[float, ...]:
    """Sort key: lower is better for ``goal``."""
    if goal == "maximize_quality":
        return (-round(f.quality / QUALITY_EPSILON), f.cost_usd, f.latency_ms)
    measure = f.latency_ms if goal == "minimize_latency" else f.cost_usd
    if f.quality + 1e-12 >= bar:
        return (0.0, measure, -f.quality)
    return (1.0, -f.quality, measure)


def better(after: Figures, before: Figures, goal: str, bar: float) -> bool:
    """Does ``after`` beat ``before`` on ``goal`` by a margin worth a change?"""
    if after.cases == 0:
        return False
    if goal == "maximize_quality":
        if after.quality >= before.quality + QUALITY_EPSILON:
            return True
        near = abs(after.quality - before.quality) < QUALITY_EPSILON
        return near and after.cost_usd <= before.cost_usd * (1 - MIN_GAIN)
    meets_after = after.quality + 1e-12 >= bar
    meets_before = before.quality + 1e-12 >= bar
    if meets_after and not meets_before:
        return True
    if not meets_after:
        return not meets_before and after.quality >= before.quality + QUALITY_EPSILON
    measure = (lambda f: f.latency_ms) if goal == "minimize_latency" else (lambda f: f.cost_usd)
    return measure(after) <= measure(before) * (1 - MIN_GAIN)


@dataclass(frozen=True, slots=True)
class Choice:
    weights: Weights
    selection: Figures  # on the half it was chosen on
    ranked: list[tuple[Weights, Figures]]  # the best few, for the evidence
    tried: int = 0
    inert: tuple[str, ...] = ()  # signals alike for every candidate: given no weight


def neighbourhood(w: Weights, step: float = FINE_STEP, radius: float = GRID_STEP) -> list[Weights]:
    """The simplex points at ``step`` within ``radius`` of ``w`` in every weight."""
    n = round(1 / step)
    out = []
    for i in range(n + 1):
        for j in range(n + 1 - i):
            q, c = round(i * step, 6), round(j * step, 6)
            lat = max(0.0, round(1.0 - q - c, 6))
            near = (abs(q - w.quality), abs(c - w.cost), abs(lat - w.latency))
            if max(near) <= radius + 1e-9:
                out.append(Weights(q, c, lat))
    return out


def _centre(tied: Sequence[Weights]) -> Weights:
    """Of weights that do equally well, the one nearest all the others (the medoid): the
    middle of the region, not an edge where a small change in traffic flips decisions."""

    def spread(w: Weights) -> float:
        return sum(
            abs(w.quality - o.quality) + abs(w.cost - o.cost) + abs(w.latency - o.latency)
            for o in tied
        )

    return min(tied, key=lambda w: (round(spread(w), 9), tied.index(w)))


def selection_margin(cases: int, quality: float) -> float:
    """One standard error of a mean quality over ``cases`` prompts: the margin a choice
    must clear on the half it is chosen on, since the cheapest point that barely passes
    there tends to fall short on new traffic (regression to the mean)."""
    if cases == 0:
        return 0.0
    q = min(max(quality, 0.0), 1.0)
    return math.sqrt(max(q * (1 - q), 0.01) / cases)


def inert_signals(
    pools: Sequence[Sequence[Candidate]], latency_ms: Mapping[str, float]
) -> frozenset[str]:
    """Signals on which the candidates of every case are alike (cost: same prices;
    latency: same observed latency or prior). Weight on them only dilutes the others, and
    would steer traffic once they do differ, so the optimizer gives them none."""
    inert = {"cost", "latency"}
    for pool in pools:
        if len({(c.input_price, c.output_price) for c in pool}) > 1:
            inert.discard("cost")
        if len({latency_ms.get(c.key, c.latency_prior_ms) for c in pool}) > 1:
            inert.discard("latency")
        if not inert:
            break
    return frozenset(inert)


def choose_weights(
    cases: Sequence[Case],
    candidates: Sequence[Candidate],
    policy: Policy,
    *,
    goal: str,
    bar: float,
    latency_ms: Mapping[str, float] | None = None,
    weight_grid: Iterable[Weights] | None = None,
    keep: int = 5,
) -> Choice | None:
    """The weights that best meet ``goal`` on ``cases`` (the policy's other rules kept:
    filters, strategy, quality target): the 0.1 grid, then the 0.02 grid around its best,
    with no weight on ``inert_signals``; of weights that do equally well, the middle one
    (``_centre``). A quality bar is raised by ``selection_margin`` here (not when judging)."""
    pools = [_restricted(candidates, case) for case in cases]
    inert = inert_signals(pools, latency_ms or {})

    def allowed(points: Iterable[Weights]) -> list[Weights]:
        return [w for w in points if all(getattr(w, name) == 0 for name in inert)]

    if bar > 0:
        bar = min(1.0, bar + selection_margin(len(cases), bar))
    scored: dict[Weights, tuple[tuple[float, ...], float, Figures]] = {}

    def trial(points: Iterable[Weights]) -> None:
        for w in points:
            if w in scored:
                continue
            f = replay(
                cases, candidates, replace(policy, weights=w, objective=None),
                latency_ms=latency_ms, pools=pools,
            )  # fmt: skip
            if f.cases:
                scored[w] = (goal_key(f, goal, bar), len(scored), f)

    trial(allowed(weight_grid or grid()))
    if not scored:
        return None
    if weight_grid is None:
        trial(allowed(neighbourhood(min(scored, key=lambda w: scored[w][:2]))))
    ranked = sorted(scored, key=lambda w: scored[w][:2])
    best = _centre([w for w in ranked if scored[w][0] == scored[ranked[0]][0]])
    ranked = [best, *(w for w in ranked if w != best)]
    top = [(w, scored[w][2]) for w in ranked[:keep]]
    return Choice(best, scored[best][2], top, len(scored), tuple(sorted(inert)))


@dataclass(frozen=True, slots=True)
class ModelStats:
    quality: float | None
    cost_usd: float | None
    latency_ms: float | None
    outcomes: int


def variance_weights(
    stats: Mapping[str, ModelStats],
    candidates: Sequence[Candidate],
    policy: Policy,
) -> tuple[Weights, dict[str, Any]] | None:
    """The variance re-weighting of ``policy.weights`` from per-model figures (see the
    module docstring); None when fewer than two of the tenant's models have figures."""
    pool = [c for c in candidates if base_key(c.key) in stats]
    if len({base_key(c.key) for c in pool}) < 2:
        return None
    learned = {c.key: q for c in pool if (q := stats[base_key(c.key)].quality) is not None}
    latency = {c.key: v for c in pool if (v := stats[base_key(c.key)].latency_ms) is not None}
    request = RouteRequest(
        model="auto", prompt_tokens=REPLAY_PROMPT_TOKENS, max_output_tokens=REPLAY_OUTPUT_TOKENS
    )
    scored_policy = replace(policy, objective=None, quality_target=None, min_quality=None)
    decision = plan(
        request,
        pool,
        scored_policy,
        HealthSnapshot(latency_ms=latency, learned_quality=learned),
        rng=random.Random(0),
    )
    rows = decision.scored
    if len(rows) < 2:
        return None
    spread = {
        "quality": _std([r.q_norm for r in rows]),
        "cost": _std([r.c_norm for r in rows]),
        "latency": _std([r.l_norm for r in rows]),
    }
    total = sum(spread.values())
    current = weights_dict(policy.weights)
    if total <= 0:
        return None
    moved = {
        k: max(VARIANCE_FLOOR, (1 - VARIANCE_STEP) * current[k] + VARIANCE_STEP * spread[k] / total)
        for k in current
    }
    evidence = {
        "spread": {k: round(v, 4) for k, v in spread.items()},
        "models": {
            m: {
                "quality": s.quality,
                "cost_usd": s.cost_usd,
                "latency_ms": s.latency_ms,
                "outcomes": s.outcomes,
            }
            for m, s in sorted(stats.items())
        },
    }
    return normalised(moved), evidence


def normalised(raw: Mapping[str, float]) -> Weights:
    """Weights summing to exactly 1 at two decimals (the largest one takes the rounding)."""
    total = sum(raw.values())
    rounded = {k: round(v / total, 2) for k, v in raw.items()}
    top = max(rounded, key=lambda k: (rounded[k], k))
    rounded[top] = round(1.0 - sum(v for k, v in rounded.items() if k != top), 2)
    return Weights(rounded["quality"], rounded["cost"], rounded["latency"])


def _std(values: Sequence[float]) -> float:
    mean = sum(values) / len(values)
    return math.sqrt(sum((v - mean) ** 2 for v in values) / len(values))
