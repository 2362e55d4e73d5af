from __future__ import annotations

from routing.engine import HealthSnapshot
from tests.routing import (
    excluded_reasons,
    make_candidate,
    make_policy,
    make_request,
    route,
    step_keys,
)


def test_it_excludes_providers_the_policy_denies() -> None:
    result = route(
        [make_candidate("openai/a"), make_candidate("anthropic/b")],
        policy=make_policy(denied_providers=frozenset({"openai"})),
    )
    assert excluded_reasons(result) == {"openai/a": "provider_denied"}
    assert step_keys(result) == ["anthropic/b"]


def test_it_excludes_providers_outside_the_allow_list() -> None:
    result = route(
        [make_candidate("openai/a"), make_candidate("anthropic/b")],
        policy=make_policy(allowed_providers=frozenset({"anthropic"})),
    )
    assert excluded_reasons(result) == {"openai/a": "provider_not_allowed"}


def test_it_excludes_models_the_policy_denies_by_key_or_model_id() -> None:
    result = route(
        [make_candidate("openai/a"), make_candidate("openai/b"), make_candidate("x/c")],
        policy=make_policy(denied_models=frozenset({"openai/a", "b"})),
    )
    assert excluded_reasons(result) == {"openai/a": "model_denied", "openai/b": "model_denied"}


def test_it_excludes_models_outside_the_allow_list() -> None:
    result = route(
        [make_candidate("openai/a"), make_candidate("openai/b"), make_candidate("x/c")],
        policy=make_policy(allowed_models=frozenset({"openai/a", "c"})),
    )
    assert excluded_reasons(result) == {"openai/b": "model_not_allowed"}


def test_local_only_policies_exclude_remote_models() -> None:
    result = route(
        [make_candidate("openai/a"), make_candidate("ollama/llama", is_local=True)],
        policy=make_policy(local_only=True),
    )
    assert excluded_reasons(result) == {"openai/a": "not_local"}
    assert step_keys(result) == ["ollama/llama"]


def test_it_excludes_models_without_a_required_capability() -> None:
    result = route(
        [make_candidate("a/plain", capabilities=("chat",)), make_candidate("b/tools")],
        make_request(needs=frozenset({"tools"})),
    )
    assert excluded_reasons(result) == {"a/plain": "missing_capability:tools"}


def test_it_excludes_models_whose_context_window_is_too_small() -> None:
    result = route(
        [make_candidate("a/small", context_window=8_000), make_candidate("b/big")],
        make_request(prompt_tokens=7_000, max_output_tokens=2_000),
    )
    assert excluded_reasons(result) == {"a/small": "context_window"}
    assert "9000" in result.excluded[0].detail


def test_it_excludes_models_that_cannot_produce_the_requested_output_length() -> None:
    result = route(
        [make_candidate("a/short", max_output=4_096), make_candidate("b/long", max_output=32_000)],
        make_request(max_output_tokens=8_000),
    )
    assert excluded_reasons(result) == {"a/short": "max_output_tokens"}


def test_it_excludes_providers_without_credentials() -> None:
    result = route([make_candidate("a/x", has_credentials=False), make_candidate("b/y")])
    assert excluded_reasons(result) == {"a/x": "no_credentials"}


def test_it_excludes_endpoints_whose_circuit_is_open() -> None:
    result = route(
        [make_candidate("a/x", endpoint="ep-1"), make_candidate("b/y", endpoint="ep-2")],
        health=HealthSnapshot(open_endpoints=frozenset({"ep-1"})),
    )
    assert excluded_reasons(result) == {"a/x": "circuit_open"}


def test_it_excludes_models_whose_worst_case_exceeds_the_policy_cost_cap() -> None:
    # 1000 in at $10/M + 1000 out at $30/M = $0.04 worst case; the cheap one is $0.0003.
    pricey = make_candidate("a/pricey", input_price=10, output_price=30)
    cheap = make_candidate("b/cheap", input_price=0.1, output_price=0.2)
    result = route(
        [pricey, cheap],
        make_request(prompt_tokens=1000, max_output_tokens=1000),
        make_policy(max_cost_per_request=0.01),
    )
    assert excluded_reasons(result) == {"a/pricey": "over_max_cost"}


def test_the_stricter_of_request_and_policy_cost_caps_applies() -> None:
    pricey = make_candidate("a/pricey", input_price=10, output_price=30)  # $0.04
    mid = make_candidate("b/mid", input_price=1, output_price=3)  # $0.004
    request = make_request(prompt_tokens=1000, max_output_tokens=1000, max_cost=0.001)
    result = route([pricey, mid], request, make_policy(max_cost_per_request=0.1))
    assert excluded_reasons(result) == {"a/pricey": "over_max_cost", "b/mid": "over_max_cost"}
    assert result.failure == "no_eligible_candidate"


def test_it_excludes_models_below_the_minimum_quality_for_the_category() -> None:
    coder = make_candidate("a/coder", quality={"chat": 0.6, "code": 0.9})
    chatty = make_candidate("b/chatty", quality={"chat": 0.9, "code": 0.5})
    result = route([coder, chatty], make_request(category="code"), make_policy(min_quality=0.7))
    assert excluded_reasons(result) == {"b/chatty": "below_min_quality"}


def test_learned_quality_is_what_the_minimum_quality_checks() -> None:
    a = make_candidate("a/x", quality={"chat": 0.9})
    health = HealthSnapshot(learned_quality={"a/x": 0.3})
    result = route([a], policy=make_policy(min_quality=0.5), health=health)
    assert excluded_reasons(result) == {"a/x": "below_min_quality"}


def test_chat_requests_exclude_embedding_models_and_vice_versa() -> None:
    chat = make_candidate("a/chat")
    embed = make_candidate("a/embed", capabilities=("embeddings",), max_output=0)
    assert excluded_reasons(route([chat, embed])) == {"a/embed": "wrong_kind"}
    result = route([chat, embed], make_request(kind="embeddings", max_output_tokens=None))
    assert excluded_reasons(result) == {"a/chat": "wrong_kind"}
    assert step_keys(result) == ["a/embed"]


def test_when_nothing_is_eligible_the_plan_is_empty_with_every_reason() -> None:
    result = route(
        [make_candidate("a/x", has_credentials=False), make_candidate("b/y", endpoint="e")],
        health=HealthSnapshot(open_endpoints=frozenset({"e"})),
    )
    assert result.steps == ()
    assert result.primary is None
    assert result.hedge == 0
    assert result.failure == "no_eligible_candidate"
    assert excluded_reasons(result) == {"a/x": "no_credentials", "b/y": "circuit_open"}
