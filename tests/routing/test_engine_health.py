"""Health steers routing: down endpoints are out, degraded ones score down, endpoints never
seen healthy come after those that were."""

from __future__ import annotations

from routing.engine import HealthSnapshot, exclusion_status
from tests.routing import (
    excluded_reasons,
    make_candidate,
    make_policy,
    make_request,
    route,
    step_keys,
)

# Ollama-like local models: free and good, so they win every objective on paper.
CATALOG = [
    make_candidate(
        "ollama/llama",
        input_price=0,
        output_price=0,
        endpoint="ollama-default",
        quality={"chat": 0.85},
    ),
    make_candidate(
        "ollama/qwen",
        input_price=0,
        output_price=0,
        endpoint="ollama-default",
        quality={"chat": 0.8},
    ),
    make_candidate("openai/mini", input_price=0.15, output_price=0.6, endpoint="ep1"),
    make_candidate("anthropic/haiku", input_price=0.8, output_price=4, endpoint="ep2"),
]


def test_without_health_data_the_catalog_decides() -> None:
    assert step_keys(route(CATALOG))[0] == "ollama/llama"


def test_a_down_endpoint_is_excluded_as_unhealthy_with_every_model_on_it() -> None:
    health = HealthSnapshot(down_endpoints=frozenset({"ollama-default"}))
    result = route(CATALOG, health=health)
    assert step_keys(result)[0] == "openai/mini"
    reasons = excluded_reasons(result)
    assert reasons["ollama/llama"] == reasons["ollama/qwen"] == "unhealthy"
    detail = {e.key: e.detail for e in result.excluded}["ollama/llama"]
    assert "ollama-default is down" in detail
    assert all(s.candidate.endpoint != "ollama-default" for s in result.steps)


def test_a_named_model_on_a_down_endpoint_falls_back_like_an_open_circuit() -> None:
    health = HealthSnapshot(down_endpoints=frozenset({"ollama-default"}))
    result = route(CATALOG, make_request("ollama/llama"), health=health)
    assert result.failure is None
    assert "ollama/llama" not in step_keys(result)
    assert exclusion_status("unhealthy") == 503


def test_a_named_model_whose_only_endpoint_is_down_fails_with_503() -> None:
    health = HealthSnapshot(down_endpoints=frozenset({"ep1"}))
    result = route(
        CATALOG, make_request("openai/mini"), make_policy(fallback_to_any=False), health=health
    )
    assert result.steps == ()
    assert excluded_reasons(result)["openai/mini"] == "unhealthy"


def test_an_endpoint_never_seen_healthy_is_not_preferred_over_one_that_was() -> None:
    health = HealthSnapshot(unproven=frozenset({"ollama-default"}))
    for objective in ("balanced", "minimize_cost", "maximize_quality", "minimize_latency"):
        result = route(CATALOG, make_request(objective=objective), health=health)
        keys = step_keys(result)
        assert keys[0] == "openai/mini", objective
    result = route(CATALOG, policy=make_policy(fallback_depth=3), health=health)
    assert step_keys(result)[-2:] == ["ollama/llama", "ollama/qwen"]


def test_unproven_endpoints_are_still_used_when_nothing_is_proven() -> None:
    health = HealthSnapshot(unproven=frozenset({"ollama-default", "ep1", "ep2"}))
    assert step_keys(route(CATALOG, health=health))[0] == "ollama/llama"


def test_load_spreading_strategies_pick_among_proven_endpoints() -> None:
    health = HealthSnapshot(
        unproven=frozenset({"ollama-default"}), in_flight={"openai/mini": 5, "anthropic/haiku": 9}
    )
    for strategy in ("least_in_flight", "power_of_two", "weighted_round_robin"):
        for seed in range(20):
            result = route(
                CATALOG,
                policy=make_policy(strategy=strategy),
                health=health,
                seed=seed,
                counter=seed,
            )
            assert not step_keys(result)[0].startswith("ollama/"), (strategy, seed)


def test_a_degraded_endpoint_scores_down_by_its_health_score() -> None:
    healthy = route(CATALOG)
    degraded = route(CATALOG, health=HealthSnapshot(health_scores={"ollama-default": 0.4}))
    before = {s.candidate.key: s for s in healthy.scored}
    after = {s.candidate.key: s for s in degraded.scored}
    assert after["ollama/llama"].score == before["ollama/llama"].score * 0.4
    assert after["ollama/llama"].parts["health"] == 0.4
    assert after["openai/mini"].score == before["openai/mini"].score
    assert step_keys(degraded)[0] != "ollama/llama"
