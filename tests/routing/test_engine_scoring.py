from __future__ import annotations

import math

import pytest

from routing.engine import HealthSnapshot, Weights
from tests.routing import make_candidate, make_policy, make_request, route, step_keys


def _parts_by_key(result: object) -> dict[str, dict[str, float]]:
    return {s.candidate.key: s.parts for s in result.scored}  # type: ignore[attr-defined]


def test_the_cheapest_model_scores_one_and_price_gaps_are_log_scaled() -> None:
    cheap = make_candidate("a/cheap", input_price=0.1, output_price=0.1)
    tenx = make_candidate("b/tenx", input_price=1, output_price=1)
    hundredx = make_candidate("c/hundredx", input_price=10, output_price=10)
    parts = _parts_by_key(route([cheap, tenx, hundredx]))
    assert parts["a/cheap"]["c"] == pytest.approx(1.0)
    assert parts["b/tenx"]["c"] == pytest.approx(2 / 3)
    assert parts["c/hundredx"]["c"] == pytest.approx(1 / 3)


def test_a_thousandfold_price_gap_scores_zero_not_negative() -> None:
    cheap = make_candidate("a/cheap", input_price=0.01, output_price=0.01)
    lux = make_candidate("b/lux", input_price=100, output_price=100)
    assert _parts_by_key(route([cheap, lux]))["b/lux"]["c"] == 0.0


def test_the_fastest_model_scores_one_and_others_by_latency_ratio() -> None:
    health = HealthSnapshot(latency_ms={"a/fast": 200.0, "b/slow": 800.0})
    parts = _parts_by_key(
        route([make_candidate("a/fast"), make_candidate("b/slow")], health=health)
    )
    assert parts["a/fast"]["l"] == 1.0
    assert parts["b/slow"]["l"] == pytest.approx(0.25)


def test_models_without_observed_latency_get_a_tier_prior() -> None:
    eco = make_candidate("a/eco", tier="eco")
    premium = make_candidate("b/premium", tier="premium")
    by_key = {s.candidate.key: s for s in route([eco, premium]).scored}
    assert by_key["a/eco"].latency_ms < by_key["b/premium"].latency_ms


def test_the_score_is_the_weighted_sum_of_normalised_parts() -> None:
    weights = Weights(quality=0.5, cost=0.3, latency=0.2)
    a = make_candidate("a/x", input_price=1, output_price=1, quality={"chat": 0.9})
    b = make_candidate("b/y", input_price=10, output_price=10, quality={"chat": 0.7})
    health = HealthSnapshot(latency_ms={"a/x": 1000.0, "b/y": 500.0})
    result = route([a, b], policy=make_policy(weights=weights), health=health)
    for s in result.scored:
        p = s.parts
        assert s.score == pytest.approx(p["wq"] + p["wc"] + p["wl"])
        assert p["wq"] == pytest.approx(0.5 * p["q"])
    scores = {s.candidate.key: s.score for s in result.scored}
    assert scores["a/x"] == pytest.approx(0.5 * 0.9 + 0.3 * 1.0 + 0.2 * 0.5)
    assert scores["b/y"] == pytest.approx(0.5 * 0.7 + 0.3 * (2 / 3) + 0.2 * 1.0)


def test_scored_lists_every_eligible_candidate_best_first() -> None:
    cands = [make_candidate(f"p/m{i}", quality={"chat": 0.5 + i / 20}) for i in range(6)]
    result = route(cands)
    scores = [s.score for s in result.scored]
    assert len(scores) == 6
    assert scores == sorted(scores, reverse=True)


def test_quality_comes_from_the_request_category() -> None:
    coder = make_candidate("a/coder", quality={"chat": 0.6, "code": 0.95})
    chatty = make_candidate("b/chatty", quality={"chat": 0.9, "code": 0.6})
    assert step_keys(route([coder, chatty], make_request(category="code")))[0] == "a/coder"
    assert step_keys(route([coder, chatty], make_request(category="chat")))[0] == "b/chatty"


def test_missing_categories_fall_back_to_chat_quality_then_the_mean() -> None:
    with_chat = make_candidate("a/x", quality={"chat": 0.7, "code": 0.9})
    without_chat = make_candidate("b/y", quality={"code": 0.9, "math": 0.5})
    request = make_request(category="creative")
    by_key = {s.candidate.key: s for s in route([with_chat, without_chat], request).scored}
    assert by_key["a/x"].quality == pytest.approx(0.7)
    assert by_key["b/y"].quality == pytest.approx(0.7)


def test_learned_quality_for_the_prompt_overrides_the_catalog() -> None:
    a = make_candidate("a/x", quality={"chat": 0.9})
    b = make_candidate("b/y", quality={"chat": 0.6})
    health = HealthSnapshot(learned_quality={"a/x": 0.2, "b/y": 0.95})
    result = route([a, b], health=health)
    assert step_keys(result)[0] == "b/y"
    assert result.steps[0].quality == 0.95


def test_premium_requests_penalise_eco_models() -> None:
    eco = make_candidate("a/eco", tier="eco", quality={"chat": 0.8})
    normal = make_candidate("b/bal", tier="balanced", quality={"chat": 0.8})
    result = route([eco, normal], make_request(tier="premium"))
    by_key = {s.candidate.key: s for s in result.scored}
    assert by_key["a/eco"].q_norm == pytest.approx(0.8 * 0.7)
    assert by_key["a/eco"].quality == 0.8  # the raw quality is still reported
    assert by_key["b/bal"].q_norm == pytest.approx(0.8)


def test_eco_requests_give_premium_models_no_quality_advantage() -> None:
    premium = make_candidate("a/premium", tier="premium", quality={"chat": 0.95})
    balanced = make_candidate("b/bal", tier="balanced", quality={"chat": 0.8})
    eco_request = make_request(tier="eco")
    by_key = {s.candidate.key: s for s in route([premium, balanced], eco_request).scored}
    assert by_key["a/premium"].q_norm == pytest.approx(0.8)
    by_key = {s.candidate.key: s for s in route([premium, balanced]).scored}
    assert by_key["a/premium"].q_norm == pytest.approx(0.95)


def test_eco_requests_route_a_premium_model_on_cost_once_its_edge_is_gone() -> None:
    # Same price and latency: on a normal request the premium model wins on quality; on an
    # eco request the tie goes to the key order because quality no longer separates them.
    premium = make_candidate("b/premium", tier="premium", quality={"chat": 0.95})
    balanced = make_candidate("a/bal", tier="balanced", quality={"chat": 0.8})
    health = HealthSnapshot(latency_ms={"a/bal": 500.0, "b/premium": 500.0})
    assert step_keys(route([premium, balanced], health=health))[0] == "b/premium"
    eco = route([premium, balanced], make_request(tier="eco"), health=health)
    assert math.isclose(eco.scored[0].score, eco.scored[1].score)
    assert step_keys(eco)[0] == "a/bal"


def test_free_local_models_get_the_best_cost_score_without_errors() -> None:
    local = make_candidate("ollama/llama", input_price=0, output_price=0, is_local=True)
    cloud = make_candidate("a/x", input_price=0.15, output_price=0.6)
    parts = _parts_by_key(route([local, cloud]))
    assert parts["ollama/llama"]["c"] == 1.0
    assert 0.0 <= parts["a/x"]["c"] < 1.0


def test_request_weights_win_over_its_objective_and_the_policy() -> None:
    from routing.engine import OBJECTIVES

    cheap = make_candidate("a/cheap", input_price=0.1, output_price=0.1, quality={"chat": 0.5})
    good = make_candidate("b/good", input_price=5, output_price=15, quality={"chat": 0.95})
    quality_only = Weights(quality=1.0, cost=0.0, latency=0.0)
    request = make_request(objective="minimize_cost", weights=quality_only)
    result = route([cheap, good], request)
    assert result.weights == quality_only
    assert step_keys(result)[0] == "b/good"
    assert step_keys(route([cheap, good], make_request(objective="minimize_cost")))[0] == "a/cheap"
    assert route([cheap, good]).weights == OBJECTIVES["balanced"]
