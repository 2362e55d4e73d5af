from __future__ import annotations

from tests.routing import make_candidate, make_policy, route, step_keys

CATALOG = [make_candidate(f"p{i}/m", quality={"chat": 0.9 - i / 20}) for i in range(6)]


def test_the_plan_has_a_primary_and_fallback_depth_fallbacks() -> None:
    result = route(CATALOG, policy=make_policy(fallback_depth=2))
    assert len(result.steps) == 3
    assert result.primary is result.steps[0]
    assert step_keys(result) == ["p0/m", "p1/m", "p2/m"]


def test_a_fallback_depth_of_zero_plans_only_the_primary() -> None:
    assert step_keys(route(CATALOG, policy=make_policy(fallback_depth=0))) == ["p0/m"]


def test_the_plan_is_shorter_when_fewer_models_are_eligible() -> None:
    assert len(route(CATALOG[:2], policy=make_policy(fallback_depth=5)).steps) == 2


def test_non_hedged_plans_fire_one_step_at_a_time() -> None:
    assert route(CATALOG).hedge == 1


def test_hedged_plans_fire_the_top_k_together_then_fall_back() -> None:
    result = route(CATALOG, policy=make_policy(strategy="hedge", hedge_k=3, fallback_depth=1))
    assert result.hedge == 3
    assert step_keys(result) == ["p0/m", "p1/m", "p2/m", "p3/m"]
    assert result.strategy == "hedge"


def test_hedging_is_capped_by_the_number_of_eligible_models() -> None:
    result = route(CATALOG[:2], policy=make_policy(strategy="hedge", hedge_k=4))
    assert result.hedge == 2


def test_the_same_inputs_give_the_same_plan() -> None:
    assert route(CATALOG) == route(CATALOG)
    assert route(CATALOG, seed=1).scored == route(CATALOG, seed=2).scored


def test_ties_are_broken_by_key_whatever_the_input_order() -> None:
    same = [make_candidate(k) for k in ("c/x", "a/x", "b/x")]
    assert step_keys(route(same)) == ["a/x", "b/x", "c/x"]
    assert step_keys(route(list(reversed(same)))) == ["a/x", "b/x", "c/x"]
