from __future__ import annotations

import pytest

from routing.engine import OBJECTIVES, Weights
from tests.routing import make_candidate, make_policy, make_request, route, step_keys


def test_it_accepts_weights_that_sum_to_one() -> None:
    w = Weights(quality=0.5, cost=0.25, latency=0.25)
    assert (w.quality, w.cost, w.latency) == (0.5, 0.25, 0.25)


def test_it_rejects_weights_that_do_not_sum_to_one() -> None:
    with pytest.raises(ValueError, match="sum to 1"):
        Weights(quality=0.5, cost=0.5, latency=0.5)


def test_it_rejects_a_negative_weight_by_name() -> None:
    with pytest.raises(ValueError, match="cost"):
        Weights(quality=0.6, cost=-0.2, latency=0.6)


def test_it_rejects_a_weight_above_one_by_name() -> None:
    with pytest.raises(ValueError, match="latency"):
        Weights(quality=0.0, cost=0.0, latency=1.5)


def test_it_tolerates_float_rounding_in_the_sum() -> None:
    Weights(quality=0.1, cost=0.2, latency=0.7000000001)


def test_every_objective_is_valid_and_named() -> None:
    assert set(OBJECTIVES) == {"balanced", "minimize_cost", "maximize_quality", "minimize_latency"}
    for name, weights in OBJECTIVES.items():
        assert Weights.for_objective(name) is weights


def test_each_objective_favours_its_own_signal() -> None:
    assert Weights.for_objective("minimize_cost").cost > 0.5
    assert Weights.for_objective("maximize_quality").quality > 0.5
    assert Weights.for_objective("minimize_latency").latency > 0.5


def test_it_names_the_unknown_objective() -> None:
    with pytest.raises(ValueError, match="cheapest"):
        Weights.for_objective("cheapest")


def test_a_request_objective_overrides_the_policy_weights() -> None:
    cheap = make_candidate("a/cheap", input_price=0.1, output_price=0.2, quality={"chat": 0.6})
    smart = make_candidate("b/smart", input_price=10, output_price=30, quality={"chat": 0.95})
    policy = make_policy(weights=Weights.for_objective("minimize_cost"))

    assert step_keys(route([cheap, smart], policy=policy))[0] == "a/cheap"
    quality_first = make_request(objective="maximize_quality")
    result = route([cheap, smart], quality_first, policy)
    assert step_keys(result)[0] == "b/smart"
    assert result.weights == Weights.for_objective("maximize_quality")
