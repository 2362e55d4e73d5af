"""The router workflow: set weights, pick a model, record outcomes, read metrics."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from routing import engine
from routing.gateway import context
from routing.models import CatalogModel, Provider, RoutingOutcome, RoutingPolicy, WeightHistory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _weighted_balanced(monkeypatch: pytest.MonkeyPatch) -> None:
    """The decisions here were worked out for the weighted score (the docstring's table):
    ``balanced`` is scored by its weights alone. Its default order (within 80 % of the best
    quality, cheapest first) is tested in tests/learning/test_learning_api.py."""
    from routing.engine import types

    monkeypatch.setattr(types, "BALANCED_QUALITY_TARGET", None)


WEIGHTS = "/api/v1/router/weights"
HISTORY = "/api/v1/router/weights/history"
RECORD = "/api/v1/router/record"
METRICS = "/api/v1/router/metrics"
SELECT = "/api/v1/router/select"


@pytest.fixture
def catalog(db: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        "routing.gateway.breaker.health_snapshot_sync", lambda ctx=None: engine.HealthSnapshot()
    )
    for slug, model_id, quality, price_in, price_out, tier in [
        ("alpha", "small", 0.6, 0.1, 0.2, "eco"),
        ("gamma", "mid", 0.8, 1, 2, "balanced"),
        ("delta", "mid", 0.8, 1, 2, "balanced"),  # the same model id from a second provider
    ]:
        provider = Provider.objects.create(
            slug=slug, name=slug, wire_format="ollama", default_base_url="http://127.0.0.1:9"
        )
        CatalogModel.objects.create(
            provider=provider,
            model_id=model_id,
            quality={"chat": quality},
            input_price_per_mtok=price_in,
            output_price_per_mtok=price_out,
            tier=tier,
            capabilities=["chat"],
        )
    context.cache.clear()


# --------------------------------------------------------------------------- weights


def test_weights_read_as_the_objectives_until_set(alice):
    body = alice.client.get(WEIGHTS).json()
    assert body == {
        "objective": "balanced",
        "weights": {"quality": 0.4, "cost": 0.3, "latency": 0.3},
        "version": 1,
    }


def test_setting_weights_makes_the_objective_custom_and_keeps_history(alice):
    resp = alice.client.put(
        WEIGHTS,
        {"quality": 0.5, "cost": 0.5, "latency": 0, "note": "cheap but good"},
        format="json",
    )
    assert resp.status_code == 200
    assert resp.json() == {
        "objective": "custom",
        "weights": {"quality": 0.5, "cost": 0.5, "latency": 0.0},
        "version": 2,
    }
    alice.client.put(
        WEIGHTS, {"weights": {"quality": 0.2, "cost": 0.2, "latency": 0.6}}, format="json"
    )
    history = alice.client.get(HISTORY).json()
    assert history["count"] == 2
    newest, oldest = history["results"]
    assert newest["weights"] == {"quality": 0.2, "cost": 0.2, "latency": 0.6}
    assert newest["version"] == 3
    assert oldest["note"] == "cheap but good"
    assert oldest["source"] == "manual"
    assert oldest["created_by"] == "alice"


def test_weights_that_do_not_sum_to_one_are_refused_with_the_sum(alice):
    resp = alice.client.put(WEIGHTS, {"quality": 0.5, "cost": 0.4, "latency": 0.3}, format="json")
    assert resp.status_code == 400
    assert resp.json()["field"] == "weights"
    assert "sum to 1" in resp.json()["detail"]
    assert "1.2" in resp.json()["detail"]
    assert not WeightHistory.objects.exists()
    assert not RoutingPolicy.objects.filter(objective="custom").exists()


def test_weights_within_a_millionth_of_one_are_accepted(alice):
    resp = alice.client.put(
        WEIGHTS, {"quality": 0.3333333, "cost": 0.3333333, "latency": 0.3333333}, format="json"
    )
    assert resp.status_code == 200
    stored = alice.client.get(WEIGHTS).json()
    assert stored["objective"] == "custom"
    assert stored["weights"] == {"quality": 0.3333333, "cost": 0.3333333, "latency": 0.3333333}


def test_the_history_is_paginated(alice):
    for i in range(3):
        w = round(0.1 * (i + 1), 1)
        alice.client.put(
            WEIGHTS, {"quality": w, "cost": round(1 - w, 1), "latency": 0}, format="json"
        )
    page = alice.client.get(HISTORY).json()
    assert (page["count"], page["next"], page["previous"]) == (3, None, None)
    assert [r["version"] for r in page["results"]] == [4, 3, 2]
    assert alice.client.get(f"{HISTORY}?page=2").status_code == 404  # 50 per page


# --------------------------------------------------------------------------- select


def test_select_returns_the_pick_and_its_fallbacks(alice, catalog):
    resp = alice.client.get(SELECT, {"prompt": "Hello there", "max_tokens": 100})
    assert resp.status_code == 200
    body = resp.json()
    assert body["model"] == "alpha/small"
    assert body["provider"] == "alpha"
    assert 0 < body["score"] <= 1
    assert body["fallbacks"] == ["delta/mid", "gamma/mid"]
    assert body["error"] is None


def test_select_honours_a_named_model(alice, catalog):
    body = alice.client.get(SELECT, {"prompt": "hi", "model": "gamma/mid"}).json()
    assert body["model"] == "gamma/mid"
    body = alice.client.get(SELECT, {"prompt": "hi", "model": "nope"}).json()
    assert body["model"] is None
    assert body["error"]["status"] == 404


def test_select_needs_a_prompt(alice, catalog):
    resp = alice.client.get(SELECT, {"model": "auto"})
    assert resp.status_code == 400
    assert resp.json()["field"] == "prompt"


def test_select_refuses_a_bad_max_tokens(alice, catalog):
    for value in ("many", "0"):
        resp = alice.client.get(SELECT, {"prompt": "hi", "max_tokens": value})
        assert resp.status_code == 400
        assert resp.json()["field"] == "max_tokens"


# --------------------------------------------------------------------------- record


def test_recording_an_outcome_stores_it_for_the_tenant(alice, catalog):
    resp = alice.client.post(
        RECORD,
        {
            "model": "gamma/mid",
            "latency_ms": 420,
            "cost_usd": "0.0125",
            "success": True,
            "quality_score": 0.9,
            "request_id": "req-1",
        },
        format="json",
    )
    assert resp.status_code == 201, resp.json()
    assert resp.json()["model"] == "gamma/mid"
    row = RoutingOutcome.objects.get()
    assert row.tenant == alice.tenant
    assert row.source == "api"
    assert row.cost_usd == Decimal("0.0125")
    assert row.request_id == "req-1"


def test_a_model_id_served_once_is_recorded_under_its_key(alice, catalog):
    body = {"model": "small", "latency_ms": 1, "cost_usd": 0, "success": False}
    resp = alice.client.post(RECORD, body, format="json")
    assert resp.status_code == 201
    assert RoutingOutcome.objects.get().model_key == "alpha/small"


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"model": "nope/nothing"}, "model"),
        ({"model": "mid"}, "model"),  # served by gamma and delta: ambiguous
        ({"latency_ms": -1}, "latency_ms"),
        ({"cost_usd": -0.01}, "cost_usd"),
        ({"quality_score": 1.5}, "quality_score"),
        ({"success": None}, "success"),
    ],
)
def test_bad_outcomes_are_refused_by_field(alice, catalog, changes, field):
    body = {"model": "gamma/mid", "latency_ms": 10, "cost_usd": 0.001, "success": True, **changes}
    resp = alice.client.post(RECORD, body, format="json")
    assert resp.status_code == 400
    assert field in resp.json()
    assert not RoutingOutcome.objects.exists()


# --------------------------------------------------------------------------- metrics


def _record(
    client: APIClient,
    model: str,
    latency: float,
    cost: float,
    ok: bool,
    quality: float | None = None,
) -> None:
    body = {"model": model, "latency_ms": latency, "cost_usd": cost, "success": ok}
    if quality is not None:
        body["quality_score"] = quality
    assert client.post(RECORD, body, format="json").status_code == 201


def test_metrics_aggregate_recorded_outcomes_per_model(alice, catalog):
    c = alice.client
    _record(c, "gamma/mid", 100, 0.01, True, 0.5)
    _record(c, "gamma/mid", 200, 0.02, True, 0.7)
    _record(c, "gamma/mid", 300, 0.03, False)
    _record(c, "gamma/mid", 400, 0.04, True, 0.9)
    _record(c, "alpha/small", 50, 0, True)
    resp = c.get(METRICS)
    assert resp.status_code == 200
    by_model = {m["model"]: m for m in resp.json()["models"]}
    mid = by_model["gamma/mid"]
    assert mid["requests"] == 4
    assert mid["successes"] == 3
    assert mid["success_rate"] == 0.75
    assert mid["mean_latency_ms"] == 250
    # percentile_cont: position 0.95 * (4 - 1) = 2.85 -> 300 + 0.85 * (400 - 300)
    assert mid["p95_latency_ms"] == pytest.approx(385)
    assert mid["mean_cost_usd"] == pytest.approx(0.025)
    assert mid["mean_quality"] == pytest.approx(0.7)
    small = by_model["alpha/small"]
    assert small["mean_quality"] is None
    assert small["p95_latency_ms"] == 50


def test_metrics_scores_use_the_observed_latency(alice, catalog):
    # gamma/mid and delta/mid are identical except that gamma was observed to be fast.
    _record(alice.client, "gamma/mid", 100, 0.001, True)
    _record(alice.client, "delta/mid", 2400, 0.001, True)
    by_model = {m["model"]: m for m in alice.client.get(METRICS).json()["models"]}
    assert by_model["gamma/mid"]["score"] > by_model["delta/mid"]["score"]
    # latency is the only difference: 0.3 * (1 - 100/2400) apart under balanced weights
    gap = by_model["gamma/mid"]["score"] - by_model["delta/mid"]["score"]
    assert gap == pytest.approx(0.3 * (1 - 100 / 2400), abs=1e-5)


def test_a_model_the_policy_excludes_has_no_score(alice, catalog):
    _record(alice.client, "gamma/mid", 100, 0.001, True)
    alice.client.patch("/api/v1/router/policy", {"denied_providers": ["gamma"]}, format="json")
    context.cache.clear()  # config_changed() waits for a commit that a db test never makes
    by_model = {m["model"]: m for m in alice.client.get(METRICS).json()["models"]}
    assert by_model["gamma/mid"]["score"] is None
    assert by_model["gamma/mid"]["requests"] == 1


def test_metrics_default_to_the_last_seven_days(alice, catalog):
    _record(alice.client, "gamma/mid", 100, 0.001, True)
    _record(alice.client, "alpha/small", 100, 0.001, True)
    old = timezone.now() - timedelta(days=8)
    RoutingOutcome.objects.filter(model_key="alpha/small").update(created_at=old)
    models = [m["model"] for m in alice.client.get(METRICS).json()["models"]]
    assert models == ["gamma/mid"]
    since = (old - timedelta(days=1)).isoformat()
    until = (old + timedelta(days=1)).isoformat()
    models = [
        m["model"]
        for m in alice.client.get(METRICS, {"since": since, "until": until}).json()["models"]
    ]
    assert models == ["alpha/small"]


def test_metrics_accept_an_unencoded_utc_offset(alice, catalog):
    resp = alice.client.get(f"{METRICS}?since=2025-01-01T00:00:00+00:00")
    assert resp.status_code == 200
    assert resp.json()["since"].startswith("2025-01-01T00:00:00")


def test_metrics_refuse_bad_dates(alice, catalog):
    resp = alice.client.get(METRICS, {"since": "last tuesday"})
    assert resp.status_code == 400
    assert resp.json()["field"] == "since"
    resp = alice.client.get(METRICS, {"since": "2025-02-01", "until": "2025-01-01"})
    assert resp.status_code == 400


def test_metrics_never_include_another_tenants_outcomes(alice, charlie, catalog):
    _record(alice.client, "gamma/mid", 100, 0.001, True)
    assert charlie.client.get(METRICS).json()["models"] == []


# --------------------------------------------------------------------------- who may


def test_bob_may_read_but_not_write(bob, catalog):
    assert bob.client.get(WEIGHTS).status_code == 200
    assert bob.client.get(HISTORY).status_code == 200
    assert bob.client.get(METRICS).status_code == 200
    assert bob.client.get(SELECT, {"prompt": "hi"}).status_code == 200
    body = {"quality": 0.5, "cost": 0.5, "latency": 0}
    assert bob.client.put(WEIGHTS, body, format="json").status_code == 403
    outcome = {"model": "gamma/mid", "latency_ms": 1, "cost_usd": 0, "success": True}
    assert bob.client.post(RECORD, outcome, format="json").status_code == 403
    assert not RoutingOutcome.objects.exists()
    assert not WeightHistory.objects.exists()


def test_charlie_sees_his_own_weights_and_history(alice, charlie):
    alice.client.put(WEIGHTS, {"quality": 0.5, "cost": 0.5, "latency": 0}, format="json")
    assert charlie.client.get(WEIGHTS).json()["objective"] == "balanced"
    assert charlie.client.get(HISTORY).json()["count"] == 0


@pytest.mark.parametrize(
    ("method", "path", "data"),
    [
        ("get", WEIGHTS, None),
        ("put", WEIGHTS, {"quality": 0.5, "cost": 0.5, "latency": 0}),
        ("get", HISTORY, None),
        ("post", RECORD, {"model": "gamma/mid", "latency_ms": 1, "cost_usd": 0, "success": True}),
        ("get", METRICS, None),
        ("get", f"{SELECT}?prompt=hi", None),
    ],
)
def test_charlie_naming_acme_gets_404(alice, charlie, catalog, method, path, data):
    resp = getattr(charlie.client, method)(path, data, format="json", HTTP_X_AURA_TENANT="acme")
    assert resp.status_code == 404
    assert not RoutingOutcome.objects.exists()
    assert not WeightHistory.objects.exists()


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", WEIGHTS),
        ("put", WEIGHTS),
        ("get", HISTORY),
        ("post", RECORD),
        ("get", METRICS),
        ("get", SELECT),
    ],
)
def test_anonymous_callers_are_refused(db, method, path):
    assert getattr(APIClient(), method)(path).status_code in (401, 403)
