from __future__ import annotations

import random
from collections import Counter

import pytest

from routing.engine import HealthSnapshot, Policy
from routing.engine.strategies import weighted_round_robin_pick
from tests.routing import make_candidate, make_policy, make_request, route, step_keys

CATALOG = [
    make_candidate("a/best", quality={"chat": 0.95}, weight=3),
    make_candidate("b/good", quality={"chat": 0.85}, weight=2),
    make_candidate("c/ok", quality={"chat": 0.75}, weight=1),
]


def test_it_rejects_an_unknown_strategy() -> None:
    with pytest.raises(ValueError, match="random_pick"):
        make_policy(strategy="random_pick")


def test_scored_routing_picks_the_best_score() -> None:
    assert step_keys(route(CATALOG))[0] == "a/best"


def test_weighted_round_robin_follows_the_weights_over_a_cycle() -> None:
    policy = make_policy(strategy="weighted_round_robin")
    picks = Counter(step_keys(route(CATALOG, policy=policy, counter=n))[0] for n in range(600))
    assert picks == {"a/best": 300, "b/good": 200, "c/ok": 100}


def test_weighted_round_robin_interleaves_rather_than_bursts() -> None:
    # The light candidates land mid-cycle instead of after a burst of five of the heavy one.
    sequence = [weighted_round_robin_pick([5, 1, 1], n) for n in range(14)]
    assert sequence == [0, 0, 0, 1, 2, 0, 0] * 2


def test_weighted_round_robin_is_deterministic_for_a_counter() -> None:
    policy = make_policy(strategy="weighted_round_robin")
    assert route(CATALOG, policy=policy, counter=41) == route(CATALOG, policy=policy, counter=41)


def test_weighted_round_robin_handles_fractional_weights_and_huge_counters() -> None:
    weights = [0.5, 1.5]
    picks = Counter(weighted_round_robin_pick(weights, 10**12 + n) for n in range(400))
    assert picks == {1: 300, 0: 100}


def test_weighted_round_robin_never_picks_a_zero_weight() -> None:
    assert {weighted_round_robin_pick([0, 2, 1], n) for n in range(30)} == {1, 2}


def test_the_rest_of_a_round_robin_plan_is_in_score_order() -> None:
    policy = make_policy(strategy="weighted_round_robin")
    keys = [step_keys(route(CATALOG, policy=policy, counter=n)) for n in range(6)]
    for plan_keys in keys:
        rest = [k for k in ["a/best", "b/good", "c/ok"] if k != plan_keys[0]]
        assert plan_keys[1:] == rest


def test_least_in_flight_picks_the_least_busy_model() -> None:
    health = HealthSnapshot(in_flight={"a/best": 9, "b/good": 4, "c/ok": 1})
    result = route(CATALOG, policy=make_policy(strategy="least_in_flight"), health=health)
    assert step_keys(result) == ["c/ok", "a/best", "b/good"]


def test_least_in_flight_breaks_ties_by_score() -> None:
    health = HealthSnapshot(in_flight={"a/best": 3, "b/good": 1, "c/ok": 1})
    result = route(CATALOG, policy=make_policy(strategy="least_in_flight"), health=health)
    assert step_keys(result)[0] == "b/good"


def test_lowest_latency_picks_the_fastest_model() -> None:
    health = HealthSnapshot(latency_ms={"a/best": 900.0, "b/good": 300.0, "c/ok": 600.0})
    result = route(CATALOG, policy=make_policy(strategy="lowest_latency"), health=health)
    assert step_keys(result)[0] == "b/good"


def _p2c(seed: int, health: HealthSnapshot) -> str:
    policy: Policy = make_policy(strategy="power_of_two")
    return step_keys(route(CATALOG, policy=policy, health=health, seed=seed))[0]


def test_power_of_two_is_reproducible_with_the_same_seed() -> None:
    health = HealthSnapshot(in_flight={"a/best": 2, "b/good": 1, "c/ok": 0})
    assert [_p2c(s, health) for s in range(20)] == [_p2c(s, health) for s in range(20)]


def test_power_of_two_keeps_the_less_loaded_of_the_pair() -> None:
    health = HealthSnapshot(in_flight={"a/best": 10, "b/good": 5, "c/ok": 0})
    picks = Counter(_p2c(seed, health) for seed in range(300))
    # The busiest model loses every pair it is in; the idle one wins every pair it is in.
    assert picks["a/best"] == 0
    assert picks["c/ok"] > picks["b/good"] > 0


def test_power_of_two_prefers_the_better_score_when_loads_are_equal() -> None:
    picks = Counter(_p2c(seed, HealthSnapshot()) for seed in range(300))
    assert picks["c/ok"] == 0
    assert picks["a/best"] > picks["b/good"]


def test_power_of_two_draws_only_from_the_injected_rng() -> None:
    rng = random.Random(5)
    state = rng.getstate()
    from routing.engine import plan

    policy = make_policy(strategy="power_of_two")
    first = plan(make_request(), CATALOG, policy, HealthSnapshot(), rng=rng)
    rng.setstate(state)
    again = plan(make_request(), CATALOG, policy, HealthSnapshot(), rng=rng)
    assert first == again
