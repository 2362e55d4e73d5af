from __future__ import annotations

from dataclasses import replace

from routing.engine import HealthSnapshot, resolve_model
from tests.routing import (
    excluded_reasons,
    make_candidate,
    make_policy,
    make_request,
    route,
    step_keys,
)

CATALOG = [
    make_candidate("openai/gpt-4o", tier="premium", quality={"chat": 0.9}, aliases=("gpt4",)),
    make_candidate("openai/gpt-4o-mini", tier="eco", input_price=0.15, output_price=0.6),
    make_candidate("anthropic/claude-sonnet", tier="premium", quality={"chat": 0.92}),
    make_candidate("groq/llama-70b", tier="balanced", endpoint="groq"),
    make_candidate("together/llama-70b", tier="balanced", endpoint="together"),
]


def test_a_model_named_by_key_is_the_primary() -> None:
    result = route(CATALOG, make_request("openai/gpt-4o-mini"))
    assert step_keys(result)[0] == "openai/gpt-4o-mini"
    assert result.requested == ("openai/gpt-4o-mini",)


def test_a_model_named_by_model_id_matches_every_provider_serving_it() -> None:
    result = route(CATALOG, make_request("llama-70b"), make_policy(fallback_to_any=False))
    assert sorted(step_keys(result)) == ["groq/llama-70b", "together/llama-70b"]


def test_a_catalog_alias_resolves_to_its_model() -> None:
    assert step_keys(route(CATALOG, make_request("gpt4")))[0] == "openai/gpt-4o"


def test_a_tenant_alias_keeps_its_targets_in_order() -> None:
    policy = make_policy(
        aliases={"smart": ("anthropic/claude-sonnet", "openai/gpt-4o")}, fallback_to_any=False
    )
    result = route(CATALOG, make_request("smart"), policy)
    assert step_keys(result) == ["anthropic/claude-sonnet", "openai/gpt-4o"]


def test_a_tenant_alias_wins_over_a_catalog_name() -> None:
    policy = make_policy(aliases={"gpt4": ("anthropic/claude-sonnet",)})
    assert step_keys(route(CATALOG, make_request("gpt4"), policy))[0] == "anthropic/claude-sonnet"


def test_an_unknown_model_is_reported_as_unknown() -> None:
    result = route(CATALOG, make_request("gpt-9"))
    assert result.steps == ()
    assert result.failure == "unknown_model"
    assert excluded_reasons(result) == {"gpt-9": "unknown_model"}
    assert resolve_model("gpt-9", CATALOG, make_policy()) == ([], "unknown_model")


def test_resolve_model_tells_known_names_from_unknown_ones() -> None:
    found, error = resolve_model("llama-70b", CATALOG, make_policy())
    assert error is None
    assert {c.key for c in found} == {"groq/llama-70b", "together/llama-70b"}
    everything, error = resolve_model("auto", CATALOG, make_policy())
    assert error is None and len(everything) == len(CATALOG)


def test_a_named_model_the_policy_denies_is_refused_not_substituted() -> None:
    policy = make_policy(denied_providers=frozenset({"anthropic"}))
    result = route(CATALOG, make_request("anthropic/claude-sonnet"), policy)
    assert result.steps == ()
    assert result.failure == "requested_model_excluded"
    assert excluded_reasons(result) == {"anthropic/claude-sonnet": "provider_denied"}


def test_a_named_model_too_small_for_the_prompt_is_refused() -> None:
    small = make_candidate("a/small", context_window=4_000)
    result = route([small, make_candidate("b/big")], make_request("a/small", prompt_tokens=5_000))
    assert result.failure == "requested_model_excluded"
    assert excluded_reasons(result) == {"a/small": "context_window"}


def test_a_named_model_with_an_open_circuit_fails_over_to_others() -> None:
    health = HealthSnapshot(open_endpoints=frozenset({"groq"}))
    result = route(CATALOG, make_request("groq/llama-70b"), health=health)
    assert result.steps
    assert "groq/llama-70b" not in step_keys(result)
    assert excluded_reasons(result)["groq/llama-70b"] == "circuit_open"


def test_fallbacks_for_a_named_model_are_never_of_a_lower_tier() -> None:
    result = route(CATALOG, make_request("openai/gpt-4o"), make_policy(fallback_depth=4))
    assert step_keys(result) == ["openai/gpt-4o", "anthropic/claude-sonnet"]
    reasons = excluded_reasons(result)
    assert reasons["openai/gpt-4o-mini"] == "below_requested_tier"
    assert reasons["groq/llama-70b"] == "below_requested_tier"


def test_a_named_model_falls_back_to_other_eligible_models_by_score() -> None:
    result = route(CATALOG, make_request("groq/llama-70b"), make_policy(fallback_depth=3))
    keys = step_keys(result)
    assert keys[0] == "groq/llama-70b"
    assert set(keys[1:]) == {"together/llama-70b", "openai/gpt-4o", "anthropic/claude-sonnet"}
    fallback_scores = [s.score for s in result.steps[1:]]
    assert fallback_scores == sorted(fallback_scores, reverse=True)


def test_without_auto_fallback_only_the_named_models_are_planned() -> None:
    result = route(CATALOG, make_request("openai/gpt-4o"), make_policy(fallback_to_any=False))
    assert step_keys(result) == ["openai/gpt-4o"]


def test_policy_filters_still_apply_to_alias_targets() -> None:
    policy = make_policy(
        aliases={"smart": ("anthropic/claude-sonnet", "openai/gpt-4o")},
        denied_models=frozenset({"claude-sonnet"}),
    )
    result = route(CATALOG, make_request("smart"), policy)
    assert step_keys(result)[0] == "openai/gpt-4o"
    assert excluded_reasons(result)["anthropic/claude-sonnet"] == "model_denied"


# --------------------------------------------------------------------------- same model only

SAME_MODEL = make_policy(fallback_to_any=False, fallback_depth=4)


def test_with_same_model_a_named_model_falls_back_to_itself_on_another_provider() -> None:
    health = HealthSnapshot(open_endpoints=frozenset({"groq"}))
    result = route(CATALOG, make_request("groq/llama-70b"), SAME_MODEL, health=health)
    assert step_keys(result) == ["together/llama-70b"]


def test_with_same_model_the_other_providers_of_the_model_follow_the_named_one() -> None:
    result = route(CATALOG, make_request("groq/llama-70b"), SAME_MODEL)
    assert step_keys(result) == ["groq/llama-70b", "together/llama-70b"]


def test_with_same_model_another_endpoint_of_the_same_model_is_a_fallback() -> None:
    # Two endpoints of one provider model: keys carry the endpoint, the model id does not.
    catalog = [
        replace(make_candidate("openai/gpt-4o@east", endpoint="east"), model_id="gpt-4o"),
        replace(make_candidate("openai/gpt-4o@west", endpoint="west"), model_id="gpt-4o"),
        make_candidate("anthropic/claude-sonnet", quality={"chat": 0.99}),
    ]
    health = HealthSnapshot(open_endpoints=frozenset({"east"}))
    result = route(catalog, make_request("openai/gpt-4o@east"), SAME_MODEL, health=health)
    assert step_keys(result) == ["openai/gpt-4o@west"]


def test_with_same_model_a_model_with_every_endpoint_open_fails_instead_of_being_swapped() -> None:
    health = HealthSnapshot(open_endpoints=frozenset({"openai-main"}))
    result = route(CATALOG, make_request("openai/gpt-4o"), SAME_MODEL, health=health)
    assert result.steps == ()
    assert result.failure == "requested_model_excluded"
    assert excluded_reasons(result) == {"openai/gpt-4o": "circuit_open"}
    # The same request under any_model is served by another premium model.
    anything = make_policy(fallback_to_any=True, fallback_depth=4)
    assert step_keys(route(CATALOG, make_request("openai/gpt-4o"), anything, health=health)) == [
        "anthropic/claude-sonnet"
    ]


def test_with_same_model_an_alias_falls_back_through_its_targets_only() -> None:
    policy = make_policy(
        aliases={"smart": ("anthropic/claude-sonnet",)}, fallback_to_any=False, fallback_depth=4
    )
    health = HealthSnapshot(open_endpoints=frozenset({"anthropic-main"}))
    result = route(CATALOG, make_request("smart"), policy, health=health)
    assert result.failure == "requested_model_excluded"
    with_two = make_policy(
        aliases={"smart": ("anthropic/claude-sonnet", "gpt-4o-mini")},
        fallback_to_any=False,
        fallback_depth=4,
    )
    assert step_keys(route(CATALOG, make_request("smart"), with_two, health=health)) == [
        "openai/gpt-4o-mini"  # a target, even of a lower tier: the tenant listed it
    ]


def test_a_provider_qualified_name_matches_each_of_its_endpoints() -> None:
    catalog = [
        make_candidate("groq/llama-70b@us", endpoint="groq-us"),
        make_candidate("groq/llama-70b@eu", endpoint="groq-eu"),
        make_candidate("together/llama-70b", endpoint="together"),
    ]
    result = route(catalog, make_request("groq/llama-70b"), make_policy(fallback_to_any=False))
    assert sorted(result.requested) == ["groq/llama-70b@eu", "groq/llama-70b@us"]
    assert step_keys(result)[0].startswith("groq/llama-70b@")
