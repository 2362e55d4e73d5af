"""GET/PUT/PATCH /api/v1/router/policy, its YAML export/import, and who may do what."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from rest_framework.test import APIClient

from billing.selectors import budgets_policy_map
from routing.gateway import context
from routing.models import RoutingPolicy, WeightHistory
from tests.conftest import key_client

pytestmark = pytest.mark.django_db

POLICY = "/api/v1/router/policy"
EXPORT = "/api/v1/router/policy/export"
IMPORT = "/api/v1/router/policy/import"


def _unchanged(tenant: Any) -> bool:
    return not RoutingPolicy.objects.filter(tenant=tenant, version__gt=1).exists()


STARTUP_YAML = """\
tenants:
  acme:
    objective: minimize_cost
    budgets: {per_request: 0.05, per_day: 50.0}
    allowed_providers: [together, ollama]
"""


def test_the_first_read_creates_the_default_policy(alice):
    resp = alice.client.get(POLICY)
    assert resp.status_code == 200
    body = resp.json()
    assert body["objective"] == "balanced"
    assert body["weights"] == {"quality": 0.4, "cost": 0.3, "latency": 0.3}
    assert body["allowed_providers"] is None
    assert body["fallback_depth"] == 2
    assert body["budgets"] == {}
    assert body["version"] == 1
    assert RoutingPolicy.objects.filter(tenant=alice.tenant).count() == 1


def test_alice_replaces_the_policy_with_put_and_the_version_goes_up(alice):
    resp = alice.client.put(
        POLICY,
        {
            "objective": "minimize_cost",
            "denied_providers": ["openai"],
            "allowed_models": ["mistral/small", "local/llama"],
            "local_only": True,
            "max_cost_per_request": 0.25,
            "min_quality": 0.5,
            "fallback_depth": 4,
            "strategy": "hedge",
            "hedge_k": 3,
            "aliases": {"fast": ["local/llama", "mistral/small"]},
            "budgets": {"per_request": 0.05, "per_month": 100},
        },
        format="json",
    )
    assert resp.status_code == 200, resp.json()
    body = resp.json()
    assert body["version"] == 2
    assert body["updated_by"] == "alice"
    assert body["effective_weights"] == {"quality": 0.2, "cost": 0.7, "latency": 0.1}
    row = RoutingPolicy.objects.get(tenant=alice.tenant)
    assert row.objective == "minimize_cost"
    assert row.denied_providers == ["openai"]
    assert row.local_only is True
    assert float(row.max_cost_per_request) == 0.25
    assert row.strategy == "hedge" and row.hedge_k == 3 and row.fallback_depth == 4
    assert row.aliases == {"fast": ["local/llama", "mistral/small"]}
    assert budgets_policy_map(tenant_id=alice.tenant.pk) == {
        "per_request": 0.05,
        "per_month": 100.0,
    }


def test_put_resets_the_keys_it_leaves_out_and_patch_keeps_them(alice):
    alice.client.put(POLICY, {"denied_providers": ["openai"], "hedge_k": 3}, format="json")
    alice.client.patch(POLICY, {"hedge_k": 4}, format="json")
    row = RoutingPolicy.objects.get(tenant=alice.tenant)
    assert row.denied_providers == ["openai"] and row.hedge_k == 4
    alice.client.put(POLICY, {"hedge_k": 1}, format="json")
    row.refresh_from_db()
    assert row.denied_providers == [] and row.hedge_k == 1
    assert row.version == 4


def test_weights_without_an_objective_make_the_policy_custom(alice):
    resp = alice.client.patch(
        POLICY, {"weights": {"quality": 0.6, "cost": 0.2, "latency": 0.2}}, format="json"
    )
    assert resp.status_code == 200
    assert resp.json()["objective"] == "custom"
    assert resp.json()["effective_weights"] == {"quality": 0.6, "cost": 0.2, "latency": 0.2}


@pytest.mark.parametrize(
    ("weights", "fragment", "field"),
    [
        ({"quality": 0.5, "cost": 0.3, "latency": 0.3}, "= 1.1", "weights"),
        ({"quality": 0.5, "cost": 0.3, "latency": 0.1}, "= 0.9", "weights"),
        ({"quality": 1.5, "cost": -0.3, "latency": -0.2}, "between 0 and 1", "weights.quality"),
        ({"quality": 0.5, "cost": 0.5}, "weights.latency is required", "weights.latency"),
        ({"quality": 0.5, "cost": 0.5, "latency": 0, "speed": 0}, "unknown weight", "weights"),
    ],
)
def test_bad_weights_are_refused_naming_weights_and_nothing_changes(
    alice, weights, fragment, field
):
    resp = alice.client.put(POLICY, {"objective": "custom", "weights": weights}, format="json")
    assert resp.status_code == 400
    assert resp.json()["field"] == field
    assert fragment in resp.json()["detail"]
    assert _unchanged(alice.tenant)
    assert not WeightHistory.objects.filter(tenant=alice.tenant).exists()


def test_a_custom_objective_on_put_needs_weights(alice):
    resp = alice.client.put(POLICY, {"objective": "custom"}, format="json")
    assert resp.status_code == 400
    assert resp.json()["field"] == "weights"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"objective": "cheapest"}, "objective"),
        ({"strategy": "random"}, "strategy"),
        ({"hedge_k": 5}, "hedge_k"),
        ({"hedge_k": 0}, "hedge_k"),
        ({"fallback_depth": 6}, "fallback_depth"),
        ({"min_quality": 1.2}, "min_quality"),
        ({"max_cost_per_request": -1}, "max_cost_per_request"),
        ({"allowed_providers": "openai"}, "allowed_providers"),
        ({"denied_models": None}, "denied_models"),
        ({"local_only": "yes"}, "local_only"),
        ({"aliases": {"auto": ["a/b"]}}, "aliases"),
        ({"aliases": {"fast": []}}, "aliases"),
        ({"budgets": {"per_year": 10}}, "budgets.per_year"),
        ({"budgets": {"per_day": -1}}, "budgets.per_day"),
        ({"colour": "blue"}, "colour"),
    ],
)
def test_invalid_policy_fields_are_refused_by_name(alice, body, field):
    resp = alice.client.patch(POLICY, body, format="json")
    assert resp.status_code == 400
    assert resp.json()["field"] == field
    assert _unchanged(alice.tenant)


def test_the_auto_alias_is_refused_with_a_reason(alice):
    resp = alice.client.patch(POLICY, {"aliases": {"auto": ["a/b"]}}, format="json")
    assert "'auto' is reserved" in resp.json()["detail"]


def test_allow_private_base_urls_is_read_only_through_the_api(alice):
    resp = alice.client.patch(POLICY, {"allow_private_base_urls": True}, format="json")
    assert resp.status_code == 200
    assert resp.json()["allow_private_base_urls"] is False
    assert RoutingPolicy.objects.get(tenant=alice.tenant).allow_private_base_urls is False


def test_a_get_body_can_be_put_back_unchanged(alice):
    alice.client.patch(POLICY, {"denied_providers": ["openai"]}, format="json")
    body = alice.client.get(POLICY).json()
    resp = alice.client.put(POLICY, body, format="json")
    assert resp.status_code == 200
    assert resp.json()["denied_providers"] == ["openai"]


def test_changing_the_objective_records_the_new_weights_in_history(alice):
    alice.client.patch(POLICY, {"objective": "maximize_quality"}, format="json")
    alice.client.patch(POLICY, {"hedge_k": 3}, format="json")  # weights unchanged: no row
    rows = list(WeightHistory.objects.filter(tenant=alice.tenant))
    assert len(rows) == 1
    assert rows[0].weights == {"quality": 0.8, "cost": 0.1, "latency": 0.1}
    assert rows[0].source == "manual"
    assert rows[0].version == 2
    assert rows[0].created_by == alice.user


def test_a_policy_write_publishes_the_change_on_commit(alice, django_capture_on_commit_callbacks):
    stale = context.cache.get(alice.tenant.pk)
    assert stale.policy.denied_providers == frozenset()
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        alice.client.patch(POLICY, {"denied_providers": ["openai"]}, format="json")
    assert len(callbacks) == 1
    fresh = context.cache.get(alice.tenant.pk)
    assert fresh.policy.denied_providers == frozenset({"openai"})


def test_a_manage_key_may_write_the_policy_without_an_author(alice_manage_key):
    _, plaintext = alice_manage_key
    resp = key_client(plaintext).patch(POLICY, {"hedge_k": 3}, format="json")
    assert resp.status_code == 200
    assert resp.json()["updated_by"] is None


# --------------------------------------------------------------------------- who may


def test_bob_may_read_but_not_change_the_policy(bob):
    assert bob.client.get(POLICY).status_code == 200
    assert bob.client.get(EXPORT).status_code == 200
    assert bob.client.put(POLICY, {"hedge_k": 3}, format="json").status_code == 403
    assert bob.client.patch(POLICY, {"hedge_k": 3}, format="json").status_code == 403
    resp = bob.client.post(IMPORT, {"yaml": STARTUP_YAML}, format="json")
    assert resp.status_code == 403
    assert RoutingPolicy.objects.get(tenant=bob.tenant).hedge_k == 2


def test_charlie_reads_and_writes_only_his_own_tenants_policy(alice, charlie):
    alice.client.patch(POLICY, {"denied_providers": ["openai"]}, format="json")
    body = charlie.client.get(POLICY).json()
    assert body["denied_providers"] == []
    charlie.client.patch(POLICY, {"hedge_k": 4}, format="json")
    assert RoutingPolicy.objects.get(tenant=alice.tenant).hedge_k == 2
    assert RoutingPolicy.objects.get(tenant=charlie.tenant).hedge_k == 4
    assert "acme" not in charlie.client.get(EXPORT).content.decode()


@pytest.mark.parametrize(
    ("method", "path", "data"),
    [
        ("get", POLICY, None),
        ("put", POLICY, {"hedge_k": 3}),
        ("patch", POLICY, {"hedge_k": 3}),
        ("get", EXPORT, None),
        ("post", IMPORT, {"yaml": STARTUP_YAML}),
    ],
)
def test_charlie_naming_acme_gets_404(alice, charlie, method, path, data):
    alice.client.get(POLICY)
    resp = getattr(charlie.client, method)(path, data, format="json", HTTP_X_AURA_TENANT="acme")
    assert resp.status_code == 404
    assert _unchanged(alice.tenant)


@pytest.mark.parametrize(
    ("method", "path"),
    [("get", POLICY), ("put", POLICY), ("patch", POLICY), ("get", EXPORT), ("post", IMPORT)],
)
def test_anonymous_callers_are_refused(db, method, path):
    resp = getattr(APIClient(), method)(path, {}, format="json")
    assert resp.status_code in (401, 403)


# --------------------------------------------------------------------------- YAML


def test_export_writes_only_non_default_keys_as_yaml(alice):
    alice.client.put(
        POLICY,
        {
            "objective": "minimize_cost",
            "budgets": {"per_request": 0.05, "per_day": 50},
            "allowed_providers": ["together", "ollama"],
        },
        format="json",
    )
    resp = alice.client.get(EXPORT)
    assert resp.status_code == 200
    assert resp["Content-Type"].startswith("application/yaml")
    assert resp.content.decode() == STARTUP_YAML


def test_a_policy_survives_an_export_import_round_trip(alice):
    original = {
        "weights": {"quality": 0.5, "cost": 0.25, "latency": 0.25},
        "denied_models": ["openai/gpt-4o"],
        "max_cost_per_request": 0.125,
        "min_quality": 0.6,
        "strategy": "consistent_hash",
        "aliases": {"smart": ["anthropic/claude", "openai/gpt-4o"]},
        "budgets": {"per_hour": 2, "per_week": 100},
    }
    alice.client.put(POLICY, original, format="json")
    before = alice.client.get(POLICY).json()
    exported = alice.client.get(EXPORT).content.decode()
    alice.client.put(POLICY, {}, format="json")  # back to defaults
    resp = alice.client.post(IMPORT, exported, content_type="application/yaml")
    assert resp.status_code == 200, resp.json()
    after = alice.client.get(POLICY).json()
    for key in ("version", "updated_at"):
        before.pop(key), after.pop(key)
    assert after == before
    assert after["objective"] == "custom"


def test_import_accepts_yaml_inside_json_and_as_text_yaml(alice):
    resp = alice.client.post(IMPORT, {"yaml": STARTUP_YAML}, format="json")
    assert resp.status_code == 200
    assert resp.json()["policy"]["objective"] == "minimize_cost"
    other = STARTUP_YAML.replace("minimize_cost", "minimize_latency")
    resp = alice.client.post(IMPORT, other, content_type="text/yaml")
    assert resp.status_code == 200
    row = RoutingPolicy.objects.get(tenant=alice.tenant)
    assert row.objective == "minimize_latency"
    assert row.allowed_providers == ["together", "ollama"]
    assert budgets_policy_map(tenant_id=alice.tenant.pk) == {"per_request": 0.05, "per_day": 50.0}


def test_import_records_weight_history_with_source_import(alice):
    alice.client.post(IMPORT, {"yaml": STARTUP_YAML}, format="json")
    row = WeightHistory.objects.get(tenant=alice.tenant)
    assert row.source == "import"
    assert row.weights == {"quality": 0.2, "cost": 0.7, "latency": 0.1}


def test_import_refuses_another_tenants_entry_naming_its_slug(alice, charlie):
    text = STARTUP_YAML + "  globex:\n    objective: maximize_quality\n"
    resp = alice.client.post(IMPORT, {"yaml": text}, format="json")
    assert resp.status_code == 400
    assert "'globex'" in resp.json()["detail"]
    assert resp.json()["field"] == "tenants.globex"
    assert _unchanged(alice.tenant)
    assert not RoutingPolicy.objects.filter(tenant=charlie.tenant).exists()


def test_import_needs_an_entry_for_the_callers_tenant(alice):
    resp = alice.client.post(IMPORT, {"yaml": "tenants:\n  globex: {}\n"}, format="json")
    assert resp.status_code == 400
    assert "globex" in resp.json()["detail"]


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("tenants:\n  acme:\n    speed: fast\n", "tenants.acme.speed"),
        ("tenants:\n  acme:\n    budgets: {per_year: 1}\n", "tenants.acme.budgets.per_year"),
        (
            "tenants:\n  acme:\n    allow_private_base_urls: true\n",
            "tenants.acme.allow_private_base_urls",
        ),
        ("policies:\n  acme: {}\n", "policies"),
        ("tenants: [acme]\n", "tenants"),
        ("tenants:\n  acme: {objective: [\n", "yaml"),
        ("tenants:\n  acme:\n    objective: custom\n", "tenants.acme.weights"),
    ],
)
def test_import_refuses_bad_documents_naming_the_key(alice, text, field):
    resp = alice.client.post(IMPORT, text, content_type="application/yaml")
    assert resp.status_code == 400
    assert resp.json()["field"] == field
    assert _unchanged(alice.tenant)


@pytest.mark.parametrize(
    ("depth", "field"),
    [(3_000, "yaml"), (100, "tenants.acme.aliases" + "[0]" * 29)],  # 32 levels deep
)
def test_import_refuses_a_document_nested_too_deep(alice, depth, field):
    text = "tenants:\n  acme:\n    aliases: " + "[" * depth + "]" * depth + "\n"
    resp = alice.client.post(IMPORT, text, content_type="application/yaml")
    assert resp.status_code == 400
    assert resp.json()["field"] == field
    assert "nested deeper" in resp.json()["detail"]
    assert _unchanged(alice.tenant)


def test_import_refuses_a_lone_surrogate_naming_where_it_is(alice):
    text = 'tenants:\n  acme:\n    aliases: {fast: ["\\ud800"]}\n'
    resp = alice.client.post(IMPORT, text, content_type="application/yaml")
    assert resp.status_code == 400
    assert resp.json()["field"] == "tenants.acme.aliases.fast[0]"
    assert _unchanged(alice.tenant)


def test_import_never_runs_yaml_tags(alice):
    text = "tenants:\n  acme: !!python/object/apply:os.system ['true']\n"
    resp = alice.client.post(IMPORT, text, content_type="application/yaml")
    assert resp.status_code == 400
    assert resp.json()["field"] == "yaml"


def test_a_dry_run_import_validates_and_writes_nothing(alice):
    resp = alice.client.post(f"{IMPORT}?dry_run=1", STARTUP_YAML, content_type="application/yaml")
    assert resp.status_code == 200
    body: dict[str, Any] = resp.json()
    assert body["dry_run"] is True
    assert body["policy"]["objective"] == "minimize_cost"
    assert body["policy"]["budgets"] == {"per_request": 0.05, "per_day": 50.0}
    assert not RoutingPolicy.objects.filter(tenant=alice.tenant).exists()
    assert not WeightHistory.objects.filter(tenant=alice.tenant).exists()


def test_a_dry_run_still_reports_errors(alice):
    resp = alice.client.post(
        f"{IMPORT}?dry_run=1",
        "tenants:\n  acme:\n    hedge_k: 9\n",
        content_type="application/yaml",
    )
    assert resp.status_code == 400
    assert resp.json()["field"] == "tenants.acme.hedge_k"


def test_the_exported_document_is_valid_yaml_for_defaults(alice):
    doc = yaml.safe_load(alice.client.get(EXPORT).content)
    assert doc == {"tenants": {"acme": {"objective": "balanced"}}}


def test_rate_limits_are_validated_and_stored(alice):
    ok = alice.client.patch(
        "/api/v1/router/policy", {"rate_limits": {"rpm": 60, "key_tpm": 1000}}, format="json"
    )
    assert ok.status_code == 200, ok.content
    assert ok.json()["rate_limits"] == {"rpm": 60, "key_tpm": 1000}
    bad = alice.client.patch("/api/v1/router/policy", {"rate_limits": {"rpd": 5}}, format="json")
    assert bad.status_code == 400
    assert "rpd" in str(bad.json())


# --------------------------------------------------------------------------- model_fallback


def test_a_named_model_falls_back_to_the_same_model_only_by_default(alice):
    assert alice.client.get(POLICY).json()["model_fallback"] == "same_model"
    context.cache.clear()
    assert context.cache.get(alice.tenant.pk).policy.fallback_to_any is False


def test_alice_lets_named_models_fall_back_to_any_model(alice):
    resp = alice.client.patch(POLICY, {"model_fallback": "any_model"}, format="json")
    assert resp.status_code == 200, resp.json()
    assert resp.json()["model_fallback"] == "any_model"
    assert RoutingPolicy.objects.get(tenant=alice.tenant).model_fallback == "any_model"
    context.cache.clear()
    assert context.cache.get(alice.tenant.pk).policy.fallback_to_any is True
    # A PUT without it goes back to the default, like every other key.
    alice.client.put(POLICY, {"objective": "balanced"}, format="json")
    assert RoutingPolicy.objects.get(tenant=alice.tenant).model_fallback == "same_model"


@pytest.mark.parametrize("value", ["any", "", None, 1, ["any_model"]])
def test_a_bad_model_fallback_is_a_400_naming_the_field(alice, value):
    resp = alice.client.patch(POLICY, {"model_fallback": value}, format="json")
    assert resp.status_code == 400
    assert resp.json()["field"] == "model_fallback"
    assert "same_model, any_model" in resp.json()["detail"]
    assert _unchanged(alice.tenant)


def test_model_fallback_round_trips_through_yaml(alice):
    alice.client.patch(POLICY, {"model_fallback": "any_model"}, format="json")
    text = alice.client.get(EXPORT).content.decode()
    assert yaml.safe_load(text)["tenants"]["acme"]["model_fallback"] == "any_model"
    alice.client.put(POLICY, {}, format="json")
    assert alice.client.post(IMPORT, text, content_type="application/yaml").status_code == 200
    assert RoutingPolicy.objects.get(tenant=alice.tenant).model_fallback == "any_model"
    bad = text.replace("any_model", "every_model")
    resp = alice.client.post(IMPORT, bad, content_type="application/yaml")
    assert resp.status_code == 400
    assert resp.json()["field"] == "tenants.acme.model_fallback"
