"""POST /api/v1/route and /api/v1/route/batch: explained decisions, no provider called.

The catalog is three local (ollama wire format, so no credential is needed) providers and
one OpenAI model without a credential. Tiers are chosen so no tier nudge applies to a
balanced request. Worked scores for a short chat prompt (~10 tokens, 1024 scored output
tokens; latency priors eco 600 ms, balanced 1200 ms):

=============  =======  ==========  ===========  ==================  =================
model          quality  cost (USD)  latency      balanced .4/.3/.3   max quality .8/.1/.1
=============  =======  ==========  ===========  ==================  =================
alpha/small    0.6      0.00020     600 -> 1.0   0.24+0.30+0.30=.84  0.48+0.10+0.10=.68
gamma/mid      0.8      0.0021      1200 -> .5   0.32+0.20+0.15=.67  0.64+0.07+0.05=.76
beta/big       0.9      0.0154      1200 -> .5   0.36+0.11+0.15=.62  0.72+0.04+0.05=.81
=============  =======  ==========  ===========  ==================  =================
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import httpx
import pytest
from rest_framework.test import APIClient

from routing.gateway import context
from routing.models import CatalogModel, Provider, RoutingPolicy
from tests.conftest import key_client
from tests.gateway.conftest import reset_health

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _weighted_balanced(monkeypatch: pytest.MonkeyPatch) -> None:
    """The decisions here were worked out for the weighted score (the docstring's table):
    ``balanced`` is scored by its weights alone. Its default order (within 80 % of the best
    quality, cheapest first) is tested in tests/learning/test_learning_api.py."""
    from routing.engine import types

    monkeypatch.setattr(types, "BALANCED_QUALITY_TARGET", None)


ROUTE = "/api/v1/route"
POLICY = "/api/v1/router/policy"
BATCH = "/api/v1/route/batch"


def _provider(slug: str, wire_format: str = "ollama") -> Provider:
    return Provider.objects.create(
        slug=slug, name=slug, wire_format=wire_format, default_base_url="http://127.0.0.1:9"
    )


@pytest.fixture
def catalog(db: Any) -> Iterator[None]:
    """The catalog above, with health as the gateway sees it: no breaker open, no latency
    observed yet (Redis and this process's view of it start empty)."""
    reset_health()

    def model(provider: Provider, model_id: str, **fields: Any) -> None:
        fields.setdefault("capabilities", ["chat", "tools", "json", "streaming"])
        fields.setdefault("max_output_tokens", 16_384)
        CatalogModel.objects.create(provider=provider, model_id=model_id, **fields)

    model(
        _provider("alpha"),
        "small",
        quality={"chat": 0.6},
        input_price_per_mtok=0.1,
        output_price_per_mtok=0.2,
        context_window=4096,
        max_output_tokens=4096,
        tier="eco",
    )
    model(
        _provider("beta"),
        "big",
        quality={"chat": 0.9},
        input_price_per_mtok=3,
        output_price_per_mtok=15,
        context_window=128_000,
    )
    model(
        _provider("gamma"),
        "mid",
        quality={"chat": 0.8},
        input_price_per_mtok=1,
        output_price_per_mtok=2,
        context_window=32_000,
        aliases=["middle"],
    )
    model(_provider("openai", "openai"), "gpt", quality={"chat": 0.95})
    model(
        _provider("embedco"),
        "embed",
        kind=CatalogModel.Kind.EMBEDDINGS,
        capabilities=[],
        input_price_per_mtok=0.02,
        output_price_per_mtok=0,
    )
    context.cache.clear()
    yield
    reset_health()


def chat(content: str = "Hello, how are you?", model: str = "auto", **extra: Any) -> dict:
    return {"model": model, "messages": [{"role": "user", "content": content}], **extra}


def _set_policy(tenant: Any, **fields: Any) -> None:
    RoutingPolicy.objects.update_or_create(tenant=tenant, defaults=fields)
    context.cache.clear()  # config_changed() runs on commit, which a db test never reaches


def test_it_routes_auto_to_the_best_scored_model_with_ordered_fallbacks(alice, catalog):
    resp = alice.client.post(ROUTE, chat(), format="json")
    assert resp.status_code == 200, resp.json()
    body = resp.json()
    assert body["error"] is None
    assert body["model"] == "alpha/small"
    assert body["provider"] == "alpha"
    assert body["fallbacks"] == ["gamma/mid", "beta/big"]
    assert body["strategy"] == "scored"
    assert body["weights"] == {"quality": 0.4, "cost": 0.3, "latency": 0.3}
    assert body["request"]["category"] == "chat"
    assert body["request"]["prompt_tokens"] > 0
    assert body["request"]["needs"] == []


def test_every_eligible_candidate_is_explained_best_first(alice, catalog):
    body = alice.client.post(ROUTE, chat(), format="json").json()
    candidates = body["candidates"]
    assert [c["model"] for c in candidates] == ["alpha/small", "gamma/mid", "beta/big"]
    scores = [c["score"] for c in candidates]
    assert scores == sorted(scores, reverse=True)
    small = candidates[0]
    assert small["quality"] == 0.6
    assert small["latency_ms"] == 600.0
    assert set(small["parts"]) == {"q", "c", "l", "wq", "wc", "wl", "health"}
    assert small["parts"]["c"] == 1.0  # the cheapest model
    assert small["score"] == pytest.approx(
        small["parts"]["wq"] + small["parts"]["wc"] + small["parts"]["wl"], abs=1e-5
    )
    assert abs(candidates[2]["score"] - 0.62) < 0.02


def test_models_that_cannot_serve_are_listed_with_a_reason(alice, catalog):
    excluded = {
        e["model"]: e for e in alice.client.post(ROUTE, chat(), format="json").json()["excluded"]
    }
    assert excluded["openai/gpt"]["reason"] == "no_credentials"
    assert excluded["embedco/embed"]["reason"] == "wrong_kind"
    assert "openai" in excluded["openai/gpt"]["detail"]


def test_the_objective_header_changes_the_primary(alice, catalog):
    resp = alice.client.post(ROUTE, chat(), format="json", HTTP_X_AURA_OBJECTIVE="maximize_quality")
    body = resp.json()
    assert body["model"] == "beta/big"
    assert body["fallbacks"] == ["gamma/mid", "alpha/small"]
    assert body["weights"] == {"quality": 0.8, "cost": 0.1, "latency": 0.1}


def test_the_aura_body_object_wins_over_headers(alice, catalog):
    body = chat(aura={"objective": "maximize_quality"})
    resp = alice.client.post(ROUTE, body, format="json", HTTP_X_AURA_OBJECTIVE="minimize_cost")
    assert resp.json()["model"] == "beta/big"


def test_the_tenant_policy_is_applied(alice, catalog):
    _set_policy(alice.tenant, denied_providers=["alpha"], fallback_depth=1)
    body = alice.client.post(ROUTE, chat(), format="json").json()
    assert body["model"] == "gamma/mid"
    assert body["fallbacks"] == ["beta/big"]
    reasons = {e["model"]: e["reason"] for e in body["excluded"]}
    assert reasons["alpha/small"] == "provider_denied"


def test_a_prompt_too_long_for_a_model_excludes_it_for_its_context_window(alice, catalog):
    body = alice.client.post(ROUTE, chat(max_tokens=5000), format="json").json()
    reasons = {e["model"]: e for e in body["excluded"]}
    assert reasons["alpha/small"]["reason"] == "context_window"
    assert "window is 4096" in reasons["alpha/small"]["detail"]
    assert body["model"] == "gamma/mid"


def test_a_named_model_comes_first_then_fallbacks_of_its_tier_or_above(alice, catalog):
    _set_policy(alice.tenant, model_fallback="any_model")
    body = alice.client.post(ROUTE, chat(model="gamma/mid"), format="json").json()
    assert body["model"] == "gamma/mid"
    assert body["fallbacks"] == ["beta/big"]
    reasons = {e["model"]: e["reason"] for e in body["excluded"]}
    assert reasons["alpha/small"] == "below_requested_tier"


def test_by_default_a_named_model_has_no_other_model_as_fallback(alice, catalog):
    body = alice.client.post(ROUTE, chat(model="gamma/mid"), format="json").json()
    assert body["model"] == "gamma/mid"
    assert body["fallbacks"] == []
    reasons = {e["model"]: e["reason"] for e in body["excluded"]}
    assert reasons["beta/big"] == reasons["alpha/small"] == "other_model"


def test_a_model_is_found_by_its_catalog_alias(alice, catalog):
    assert alice.client.post(ROUTE, chat(model="middle"), format="json").json()["model"] == (
        "gamma/mid"
    )


def test_an_unknown_model_is_a_404_error_in_a_200_answer(alice, catalog):
    resp = alice.client.post(ROUTE, chat(model="no-such-model"), format="json")
    assert resp.status_code == 200
    body = resp.json()
    assert body["model"] is None
    assert body["fallbacks"] == []
    assert body["error"]["code"] == "model_not_found"
    assert body["error"]["status"] == 404


def test_a_named_model_ruled_out_by_policy_reports_403(alice, catalog):
    _set_policy(alice.tenant, denied_models=["beta/big"])
    body = alice.client.post(ROUTE, chat(model="beta/big"), format="json").json()
    assert body["model"] is None
    # The same code the gateway answers with for this request.
    assert body["error"]["code"] == "model_not_allowed"
    assert body["error"]["status"] == 403
    assert body["error"]["reason"] == "model_denied"


def test_when_nothing_fits_the_status_follows_the_closest_miss(alice, catalog):
    body = alice.client.post(ROUTE, chat(max_tokens=200_000), format="json").json()
    assert body["model"] is None
    assert body["error"]["code"] == "context_length_exceeded"
    assert body["error"]["status"] == 413


@pytest.mark.django_db(transaction=True)  # the live gateway must see the catalog
def test_a_circuit_opened_by_real_failures_is_reported_and_skipped(
    alice, alice_key, catalog, live_gateway
):
    # alpha's base URL (127.0.0.1:9) refuses connections. A request makes 3 attempts (no
    # endpoint row: 2 retries), each a failure for the breaker, which opens at 5 failures
    # out of 5 or more (BreakerConfig): the second request opens it.
    _, plaintext = alice_key
    try:
        for _ in range(2):
            failed = httpx.post(
                f"{live_gateway.url}/v1/chat/completions",
                json=chat(model="alpha/small"),
                headers={"authorization": f"Bearer {plaintext}"},
                timeout=20,
            )
            assert failed.status_code == 502, failed.text
    finally:
        live_gateway.drain()  # its usage records, before the tables are emptied

    body = alice.client.post(ROUTE, chat(), format="json").json()
    assert body["model"] == "gamma/mid"
    assert {e["model"]: e["reason"] for e in body["excluded"]}["alpha/small"] == "circuit_open"


def test_an_embeddings_request_routes_to_an_embeddings_model(alice, catalog):
    body = {"kind": "embeddings", "model": "auto", "input": ["one", "two"]}
    resp = alice.client.post(ROUTE, body, format="json")
    assert resp.status_code == 200, resp.json()
    assert resp.json()["model"] == "embedco/embed"
    assert resp.json()["request"]["kind"] == "embeddings"
    reasons = {e["model"]: e["reason"] for e in resp.json()["excluded"]}
    assert reasons["alpha/small"] == "wrong_kind"


def test_routing_changes_nothing(alice, catalog):
    before = context.cache.get(alice.tenant.pk).counter
    alice.client.post(ROUTE, chat(), format="json")
    assert context.cache.get(alice.tenant.pk).counter == before


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"messages": [{"role": "user", "content": "hi"}]}, "model"),
        ({"model": "auto", "messages": []}, "messages"),
        ({"model": "auto", "messages": [{"role": "robot", "content": "x"}]}, "messages[0].role"),
        (chat(temperature=3), "temperature"),
        (chat(aura={"objective": "fastest"}), "x-aura-objective"),
        (chat(aura={"colour": "red"}), "aura.colour"),
        (chat(aura={"max_cost": -1}), "x-aura-max-cost"),
        ({"kind": "embeddings", "model": "auto", "input": ""}, "input"),
        ({"kind": "images", "model": "auto"}, "kind"),
    ],
)
def test_invalid_bodies_are_a_400_naming_the_field(alice, catalog, body, field):
    resp = alice.client.post(ROUTE, body, format="json")
    assert resp.status_code == 400
    assert resp.json()["field"] == field


def test_a_bad_objective_header_is_a_400(alice, catalog):
    resp = alice.client.post(ROUTE, chat(), format="json", HTTP_X_AURA_OBJECTIVE="fastest")
    assert resp.status_code == 400
    assert resp.json()["field"] == "x-aura-objective"


# --------------------------------------------------------------------------- batch


def test_a_batch_answers_every_item_and_reports_a_bad_one_in_place(alice, catalog):
    requests = [chat(), {"model": "auto", "messages": []}, chat(model="gamma/mid")]
    resp = alice.client.post(BATCH, {"requests": requests}, format="json")
    assert resp.status_code == 200
    results = resp.json()["results"]
    assert len(results) == 3
    assert results[0]["model"] == "alpha/small"
    assert results[1] == {"error": {"field": "messages", "message": results[1]["error"]["message"]}}
    assert "messages" in results[1]["error"]["message"]
    assert results[2]["model"] == "gamma/mid"


def test_a_batch_of_more_than_100_is_refused(alice, catalog):
    resp = alice.client.post(BATCH, {"requests": [chat()] * 101}, format="json")
    assert resp.status_code == 400
    assert resp.json()["field"] == "requests"


def test_a_batch_of_exactly_100_is_answered(alice, catalog):
    resp = alice.client.post(BATCH, {"requests": [chat()] * 100}, format="json")
    assert resp.status_code == 200
    assert len(resp.json()["results"]) == 100


def test_a_batch_needs_a_requests_array(alice, catalog):
    resp = alice.client.post(BATCH, {"requests": "all"}, format="json")
    assert resp.status_code == 400
    assert resp.json()["field"] == "requests"


# --------------------------------------------------------------------------- who may


def test_bob_may_ask_for_decisions(bob, catalog):
    assert bob.client.post(ROUTE, chat(), format="json").json()["model"] == "alpha/small"
    assert bob.client.post(BATCH, {"requests": [chat()]}, format="json").status_code == 200


def test_charlie_gets_decisions_under_his_own_policy(alice, charlie, catalog):
    _set_policy(alice.tenant, denied_providers=["alpha"])
    assert charlie.client.post(ROUTE, chat(), format="json").json()["model"] == "alpha/small"


@pytest.mark.parametrize("path", [ROUTE, BATCH])
def test_charlie_naming_acme_gets_404(alice, charlie, catalog, path):
    body = chat() if path == ROUTE else {"requests": [chat()]}
    resp = charlie.client.post(path, body, format="json", HTTP_X_AURA_TENANT="acme")
    assert resp.status_code == 404


@pytest.mark.parametrize("path", [ROUTE, BATCH])
def test_anonymous_callers_are_refused(catalog, path):
    assert APIClient().post(path, chat(), format="json").status_code in (401, 403)


def test_a_gateway_only_key_may_not_use_the_management_api(alice_key, catalog):
    _, plaintext = alice_key
    assert key_client(plaintext).post(ROUTE, chat(), format="json").status_code == 403


def test_a_manage_key_gets_decisions(alice_manage_key, catalog):
    _, plaintext = alice_manage_key
    resp = key_client(plaintext).post(ROUTE, chat(), format="json")
    assert resp.json()["model"] == "alpha/small"


def test_a_tiny_cost_cap_is_kept_and_shown_with_its_digits(alice, catalog):
    resp = alice.client.patch(POLICY, {"max_cost_per_request": 1e-7}, format="json")
    assert resp.status_code == 200, resp.json()
    assert resp.json()["max_cost_per_request"] == 1e-7
    assert RoutingPolicy.objects.get(tenant=alice.tenant).max_cost_per_request == Decimal("1e-7")
    context.cache.clear()
    body = alice.client.post(ROUTE, chat(), format="json").json()
    details = {e["detail"] for e in body["excluded"] if e["reason"] == "over_max_cost"}
    assert details and all(d.endswith("exceeds cap $0.0000001") for d in details), details


def test_a_cost_cap_too_small_to_store_is_a_400(alice):
    resp = alice.client.patch(POLICY, {"max_cost_per_request": 1e-11}, format="json")
    assert resp.status_code == 400
    assert resp.json()["field"] == "max_cost_per_request"


# --------------------------------------------------------------------------- dry-run overrides


def test_weights_in_the_body_override_the_policy_for_this_decision_only(alice, catalog):
    quality_first = {"quality": 0.8, "cost": 0.1, "latency": 0.1}
    body = alice.client.post(ROUTE, chat(weights=quality_first), format="json").json()
    assert body["model"] == "beta/big"  # .81 vs .76 vs .68 (module docstring)
    assert body["weights"] == quality_first
    # The policy did not change: the next decision is the balanced one again.
    assert alice.client.post(ROUTE, chat(), format="json").json()["model"] == "alpha/small"
    assert not RoutingPolicy.objects.filter(tenant=alice.tenant, weight_quality=0.8).exists()


def test_an_objective_in_the_body_picks_its_weights(alice, catalog):
    body = alice.client.post(ROUTE, chat(objective="maximize_quality"), format="json").json()
    assert body["model"] == "beta/big"
    assert body["weights"] == {"quality": 0.8, "cost": 0.1, "latency": 0.1}


def test_a_weight_sweep_is_one_batch_call(alice, catalog):
    sweep = [{"quality": q, "cost": round(1 - q, 2), "latency": 0.0} for q in (0.2, 0.6, 1.0)]
    resp = alice.client.post(BATCH, {"requests": [chat(weights=w) for w in sweep]}, format="json")
    assert resp.status_code == 200, resp.json()
    picks = [r["model"] for r in resp.json()["results"]]
    assert picks[0] == "alpha/small" and picks[-1] == "beta/big"


@pytest.mark.parametrize(
    ("weights", "says"),
    [
        ({"quality": 0.5, "cost": 0.5, "latency": 0.5}, "sum to 1"),
        ({"quality": 1.0, "cost": 0.0}, "quality, cost and latency"),
        ({"quality": "1", "cost": 0, "latency": 0}, "numbers"),
        ({"quality": 1.5, "cost": -0.5, "latency": 0}, "between 0 and 1"),
        ([1, 0, 0], "quality, cost and latency"),
    ],
)
def test_bad_override_weights_are_a_400_naming_weights(alice, catalog, weights, says):
    resp = alice.client.post(ROUTE, chat(weights=weights), format="json")
    assert resp.status_code == 400
    assert resp.json()["field"] == "weights"
    assert says in resp.json()["detail"]
    batch = alice.client.post(BATCH, {"requests": [chat(weights=weights)]}, format="json")
    assert batch.json()["results"][0]["error"]["field"] == "weights"


def test_an_unknown_objective_is_a_400_naming_objective(alice, catalog):
    resp = alice.client.post(ROUTE, chat(objective="cheapest"), format="json")
    assert resp.status_code == 400 and resp.json()["field"] == "objective"
