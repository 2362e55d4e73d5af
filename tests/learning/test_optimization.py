"""The weight optimizer: pure choices (routing.learning.optimize) and its runs through the
real API (dry run, apply, revert, weekly schedule).

The memory is the one of test_learning_api: arithmetic problems the cheap model
(alpha/small) gets wrong and the expensive one (beta/big) right, greetings both get right.
A tenant on ``maximize_quality`` pays for beta/big on every prompt; with the ``balanced``
goal (95 % of the best single model's quality, as cheap as possible) the optimizer should
find weights that send greetings to alpha/small and arithmetic to beta/big.
"""

from __future__ import annotations

import zoneinfo
from datetime import datetime, timedelta
from typing import Any

import pytest
from django.utils import timezone

from routing import engine
from routing.learning import optimize
from routing.learning.config import OptimizationSettings
from routing.learning.models import WeightOptimization
from routing.learning.optimization import (
    last_slot,
    optimization_run_scheduled,
    optimizations_due,
)
from routing.models import RoutingPolicy, WeightHistory
from tenants.models import Role
from tenants.services import membership_add
from tests.learning.conftest import set_policy
from tests.learning.test_learning_api import greeting, math_prompt, outcome_lines, post_import

OPTIMIZE = "/api/v1/router/optimize"
RUNS = "/api/v1/router/optimizations"


# --------------------------------------------------------------------------- pure


def _candidate(key: str, price: float, quality: float = 0.7) -> engine.Candidate:
    provider, _, model = key.partition("/")
    return engine.Candidate(
        key=key,
        provider=provider,
        endpoint=provider,
        model_id=model,
        aliases=(),
        input_price=price,
        output_price=price,
        context_window=100_000,
        max_output=4096,
        capabilities=frozenset({"chat"}),
        quality={"chat": quality},
        tier="balanced",
        is_local=False,
        has_credentials=True,
    )


CHEAP, DEAR = _candidate("a/cheap", 0.1), _candidate("b/dear", 10.0)


def test_the_grid_covers_the_simplex_and_every_point_sums_to_one() -> None:
    points = optimize.grid()
    assert len(points) == 66
    assert len(set(points)) == 66
    assert engine.Weights(1.0, 0.0, 0.0) in points and engine.Weights(0.0, 0.0, 1.0) in points
    for w in points:
        assert abs(w.quality + w.cost + w.latency - 1) < 1e-9


def test_normalised_weights_sum_to_exactly_one_at_two_decimals() -> None:
    w = optimize.normalised({"quality": 1, "cost": 1, "latency": 1})
    assert sorted((w.quality, w.cost, w.latency)) == [0.33, 0.33, 0.34]
    assert abs(w.quality + w.cost + w.latency - 1) < 1e-9


def _case(cheap_q: float, dear_q: float) -> optimize.Case:
    return optimize.Case(
        predicted={"a/cheap": cheap_q, "b/dear": dear_q},
        observed={
            "a/cheap": optimize.Observed(cheap_q, 0.001, 500.0),
            "b/dear": optimize.Observed(dear_q, 0.1, 500.0),
        },
    )


def test_replay_reads_what_the_chosen_model_really_did() -> None:
    cases = [_case(1.0, 1.0)] * 5 + [_case(0.0, 1.0)] * 5
    quality_first = engine.Policy(weights=engine.OBJECTIVES["maximize_quality"])
    f = optimize.replay(cases, [CHEAP, DEAR], quality_first)
    assert f.cases == 10
    # Quality decides where the cheap model fails; cost where both are right.
    assert f.picks == {"a/cheap": 5, "b/dear": 5}
    assert f.quality == pytest.approx(1.0)
    assert f.cost_usd == pytest.approx((5 * 0.001 + 5 * 0.1) / 10)
    cost_only = engine.Policy(weights=engine.Weights(0.0, 1.0, 0.0))
    cheap = optimize.replay(cases, [CHEAP, DEAR], cost_only)
    assert cheap.picks == {"a/cheap": 10} and cheap.quality == pytest.approx(0.5)


def test_choose_weights_keeps_the_quality_bar_as_cheaply_as_it_can() -> None:
    cases = [_case(1.0, 1.0)] * 6 + [_case(0.0, 1.0)] * 4
    best = optimize.best_single(cases, [CHEAP, DEAR])
    assert best is not None and best[0] == "b/dear" and best[1].quality == 1.0
    bar = optimize.quality_bar("balanced", 0.95, best[1], None)
    policy = engine.Policy(weights=engine.OBJECTIVES["balanced"])
    choice = optimize.choose_weights(cases, [CHEAP, DEAR], policy, goal="balanced", bar=bar)
    assert choice is not None
    assert choice.selection.quality >= bar
    assert choice.selection.picks == {"a/cheap": 6, "b/dear": 4}
    # The cheapest way to the bar beats "always the dear model", and the margin rule holds.
    always_dear = optimize.Figures(10, 1.0, 0.1, 500.0)
    assert optimize.better(choice.selection, always_dear, "balanced", bar)
    assert not optimize.better(always_dear, choice.selection, "balanced", bar)
    assert not optimize.better(choice.selection, choice.selection, "balanced", bar)


def test_signals_alike_for_every_candidate_get_no_weight() -> None:
    cases = [_case(1.0, 1.0)] * 6 + [_case(0.0, 1.0)] * 4
    pools = [[CHEAP, DEAR]] * len(cases)
    # Same tier, no observed latency: latency cannot tell them apart; prices can.
    assert optimize.inert_signals(pools, {}) == frozenset({"latency"})
    assert optimize.inert_signals(pools, {"a/cheap": 300.0, "b/dear": 900.0}) == frozenset()
    policy = engine.Policy(weights=engine.OBJECTIVES["balanced"])
    choice = optimize.choose_weights(cases, [CHEAP, DEAR], policy, goal="balanced", bar=0.9)
    assert choice is not None and choice.inert == ("latency",)
    assert choice.weights.latency == 0
    assert all(w.latency == 0 for w, _ in choice.ranked)


def test_goal_keys_rank_by_the_goal() -> None:
    good_dear = optimize.Figures(10, 0.95, 0.1, 900.0)
    ok_cheap = optimize.Figures(10, 0.80, 0.01, 300.0)
    assert optimize.goal_key(good_dear, "maximize_quality", 0) < optimize.goal_key(
        ok_cheap, "maximize_quality", 0
    )
    assert optimize.goal_key(ok_cheap, "minimize_cost", 0) < optimize.goal_key(
        good_dear, "minimize_cost", 0
    )
    # Below the bar, quality counts first: 0.80 misses 0.9, 0.95 meets it.
    assert optimize.goal_key(good_dear, "balanced", 0.9) < optimize.goal_key(
        ok_cheap, "balanced", 0.9
    )
    assert optimize.goal_key(ok_cheap, "minimize_latency", 0.5) < optimize.goal_key(
        good_dear, "minimize_latency", 0.5
    )


def test_variance_reweighting_moves_weight_to_the_signal_the_models_differ_on() -> None:
    # Same quality and latency, very different prices: only cost tells them apart.
    stats = {
        "a/cheap": optimize.ModelStats(0.8, 0.001, 500.0, 50),
        "b/dear": optimize.ModelStats(0.8, 0.1, 500.0, 50),
    }
    policy = engine.Policy(weights=engine.Weights(0.4, 0.3, 0.3))
    result = optimize.variance_weights(stats, [CHEAP, DEAR], policy)
    assert result is not None
    w, evidence = result
    assert w.cost > 0.3 and w.quality < 0.4 and w.latency < 0.3
    assert min(w.quality, w.latency) >= optimize.VARIANCE_FLOOR
    assert abs(w.quality + w.cost + w.latency - 1) < 1e-9
    assert evidence["spread"]["quality"] == 0 and evidence["spread"]["cost"] > 0
    # One model cannot be re-weighted against anything.
    assert optimize.variance_weights({"a/cheap": stats["a/cheap"]}, [CHEAP, DEAR], policy) is None


# --------------------------------------------------------------------------- API


def _learned_memory(alice: Any, n: int = 40) -> None:
    set_policy(alice.tenant, objective="maximize_quality", learning={"enabled": True})
    job = post_import(alice.client, outcome_lines(n))
    assert job["status"] == "done" and job["imported"] == 4 * n, job


@pytest.mark.django_db
def test_a_dry_run_proposes_cheaper_weights_that_keep_the_quality_and_stores_nothing(
    alice, two_models
):
    _learned_memory(alice)
    version = RoutingPolicy.objects.get(tenant=alice.tenant).version
    resp = alice.client.post(OPTIMIZE, {"goal": "balanced"}, format="json")
    assert resp.status_code == 200, resp.content
    body = resp.json()
    assert body["dry_run"] is True and body["id"] is None
    assert body["status"] == "proposed", body["message"]
    assert body["method"] == "outcome" and body["goal"] == "balanced"
    assert body["objective_before"] == "maximize_quality"
    after, before = body["figures"]["after"], body["figures"]["before"]
    # Judged on the half it was not chosen on: as good, and much cheaper.
    assert after["quality"] >= 0.95 * body["figures"]["best_single"]["quality"]
    assert after["cost_usd"] < 0.8 * before["cost_usd"]
    assert set(after["models"]) == {"alpha/small", "beta/big"}
    assert before["models"] == {"beta/big": before["cases"]}
    assert body["evidence"]["test_prompts"] >= 20 and body["evidence"]["selection_prompts"] >= 20
    assert abs(sum(body["weights_after"].values()) - 1) < 1e-9
    assert WeightOptimization.objects.count() == 0
    assert RoutingPolicy.objects.get(tenant=alice.tenant).version == version


@pytest.mark.django_db
def test_applying_changes_the_weights_routing_uses_and_revert_puts_them_back(alice, two_models):
    _learned_memory(alice)
    resp = alice.client.post(OPTIMIZE, {"dry_run": False, "goal": "balanced"}, format="json")
    assert resp.status_code == 201, resp.content
    run = resp.json()
    assert run["status"] == "applied" and run["trigger"] == "api"
    assert run["created_by"] == "alice" and run["applied_by"] == "alice"
    policy = alice.client.get("/api/v1/router/policy").json()
    assert policy["objective"] == "custom"
    assert policy["weights"] == run["weights_after"]
    assert policy["version"] == run["policy_version_after"]
    # The goal the weights serve stays written down now that the objective is custom.
    assert policy["optimization"]["goal"] == "balanced"
    history = WeightHistory.objects.filter(tenant=alice.tenant).first()
    assert history is not None and history.source == "optimizer"
    assert f"#{run['id']}" in history.note

    # Routing follows: greetings to the cheap model, arithmetic to the dear one.
    route = "/api/v1/route"
    for text, model in ((greeting(70), "alpha/small"), (math_prompt(70), "beta/big")):
        body = {"model": "auto", "messages": [{"role": "user", "content": text}]}
        assert alice.client.post(route, body, format="json").json()["model"] == model

    listed = alice.client.get(RUNS).json()
    assert listed["count"] == 1 and listed["results"][0]["id"] == run["id"]

    resp = alice.client.post(f"{RUNS}/{run['id']}/revert", {}, format="json")
    assert resp.status_code == 200, resp.content
    assert resp.json()["status"] == "reverted" and resp.json()["reverted_by"] == "alice"
    assert alice.client.get("/api/v1/router/policy").json()["objective"] == "maximize_quality"
    assert WeightHistory.objects.filter(tenant=alice.tenant, source="optimizer").count() == 2
    again = alice.client.post(f"{RUNS}/{run['id']}/revert", {}, format="json")
    assert again.status_code == 409 and again.json()["code"] == "conflict"


@pytest.mark.django_db
def test_a_weekly_proposal_is_applied_by_an_admin_unless_the_weights_moved_since(alice, two_models):
    _learned_memory(alice)
    now = timezone.now()
    row = optimization_run_scheduled(tenant=alice.tenant, scheduled_for=now.date(), now=now)
    assert row is not None and row.status == "proposed" and row.trigger == "schedule"
    # Idempotent: the slot's run exists.
    assert optimization_run_scheduled(tenant=alice.tenant, scheduled_for=now.date()) is None
    assert RoutingPolicy.objects.get(tenant=alice.tenant).objective == "maximize_quality"

    stale = WeightOptimization.objects.get(pk=row.pk)
    alice.client.put(
        "/api/v1/router/weights", {"quality": 0.5, "cost": 0.5, "latency": 0.0}, format="json"
    )
    resp = alice.client.post(f"{RUNS}/{stale.pk}/apply", {}, format="json")
    assert resp.status_code == 409 and "changed since" in resp.json()["detail"]

    set_policy(alice.tenant, objective="maximize_quality")
    resp = alice.client.post(f"{RUNS}/{row.pk}/apply", {}, format="json")
    assert resp.status_code == 200, resp.content
    assert resp.json()["status"] == "applied"
    assert RoutingPolicy.objects.get(tenant=alice.tenant).objective == "custom"
    twice = alice.client.post(f"{RUNS}/{row.pk}/apply", {}, format="json")
    assert twice.status_code == 409


@pytest.mark.django_db
def test_apply_mode_applies_the_weekly_run_and_off_mode_skips_it(alice, two_models):
    _learned_memory(alice)
    set_policy(alice.tenant, optimization={"mode": "apply", "goal": "balanced"})
    now = timezone.now()
    row = optimization_run_scheduled(tenant=alice.tenant, scheduled_for=now.date(), now=now)
    assert row is not None and row.status == "applied"
    assert RoutingPolicy.objects.get(tenant=alice.tenant).weights == row.weights_after
    set_policy(alice.tenant, optimization={"mode": "off"})
    later = now.date() + timedelta(days=7)
    assert optimization_run_scheduled(tenant=alice.tenant, scheduled_for=later) is None


@pytest.mark.django_db
def test_too_few_outcomes_say_what_is_missing(alice, two_models):
    resp = alice.client.post(OPTIMIZE, {}, format="json")
    assert resp.status_code == 200
    body = resp.json()
    assert body["status"] == "insufficient_data"
    assert "at least 40 prompts" in body["message"]
    assert body["weights_after"] is None
    variance = alice.client.post(OPTIMIZE, {"method": "variance"}, format="json").json()
    assert variance["status"] == "insufficient_data"
    assert "two or more models" in variance["message"]


@pytest.mark.django_db
def test_the_variance_method_reweights_from_the_window(alice, two_models):
    _learned_memory(alice)
    body = alice.client.post(OPTIMIZE, {"method": "variance"}, format="json").json()
    assert body["method"] == "variance"
    assert body["status"] == "proposed", body["message"]
    evidence = body["evidence"]
    assert set(evidence["models"]) == {"alpha/small", "beta/big"}
    # The models differ in quality and price, not in latency (same tier, none observed):
    # from maximize_quality (0.8/0.1/0.1) half-way toward the spreads' shares, latency at
    # the floor.
    assert evidence["spread"]["latency"] == 0
    assert evidence["spread"]["quality"] > 0 and evidence["spread"]["cost"] > 0
    assert body["weights_after"] == {"quality": 0.63, "cost": 0.32, "latency": 0.05}
    # Judged on held-out outcomes like the outcome method: as good, cheaper.
    after, before = body["figures"]["after"], body["figures"]["before"]
    assert after["quality"] >= before["quality"] - 0.005
    assert after["cost_usd"] < before["cost_usd"]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"method": "magic"}, "method"),
        ({"goal": "fastest"}, "goal"),
        ({"window_days": 0}, "window_days"),
        ({"window_days": "7"}, "window_days"),
        ({"dry_run": "no"}, "dry_run"),
        ({"apply": True}, "apply"),
    ],
)
def test_bad_options_name_the_field(alice, body, field):
    resp = alice.client.post(OPTIMIZE, body, format="json")
    assert resp.status_code == 400, resp.content
    assert resp.json()["field"] == field


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("block", "field"),
    [
        ({"mode": "sometimes"}, "optimization.mode"),
        ({"day": "funday"}, "optimization.day"),
        ({"hour": 24}, "optimization.hour"),
        ({"quality_target": 0}, "optimization.quality_target"),
        ({"window_days": 91}, "optimization.window_days"),
        ({"colour": "red"}, "optimization.colour"),
    ],
)
def test_the_policy_optimization_block_is_validated(alice, block, field):
    resp = alice.client.patch("/api/v1/router/policy", {"optimization": block}, format="json")
    assert resp.status_code == 400, resp.content
    assert resp.json()["field"] == field


@pytest.mark.django_db
def test_the_policy_shows_and_keeps_the_optimization_settings(alice):
    policy = alice.client.get("/api/v1/router/policy").json()
    assert policy["optimization"] == {
        "mode": "propose",
        "method": "outcome",
        "goal": "auto",
        "quality_target": 0.95,
        "day": "sunday",
        "hour": 2,
        "window_days": 7,
    }
    resp = alice.client.patch(
        "/api/v1/router/policy", {"optimization": {"day": "Friday", "hour": 23}}, format="json"
    )
    assert resp.status_code == 200, resp.content
    got = resp.json()["optimization"]
    assert (got["day"], got["hour"], got["mode"]) == ("friday", 23, "propose")
    exported = alice.client.get("/api/v1/router/policy/export").content.decode()
    assert "optimization:" in exported and "day: friday" in exported


@pytest.mark.django_db
def test_viewers_read_runs_but_only_admins_optimize(alice, acme, django_user_model):
    from rest_framework.test import APIClient

    viewer = django_user_model.objects.create_user("vic", "vic@example.test", "pw")
    membership_add(tenant=acme, user=viewer, role=Role.VIEWER)
    client = APIClient()
    client.force_login(viewer)
    assert client.get(RUNS).status_code == 200
    assert client.post(OPTIMIZE, {}, format="json").status_code == 403


# --------------------------------------------------------------------------- schedule


def test_the_slot_is_the_latest_scheduled_moment_in_the_tenants_time() -> None:
    s = OptimizationSettings()  # Sunday 02:00
    tz = zoneinfo.ZoneInfo("America/New_York")
    sunday_3am = datetime(2026, 12, 6, 3, 0, tzinfo=tz)
    sunday_1am = datetime(2026, 12, 6, 1, 0, tzinfo=tz)
    monday = datetime(2026, 12, 7, 9, 0, tzinfo=tz)
    assert last_slot(s, "America/New_York", sunday_3am).isoformat() == "2026-12-06"
    assert last_slot(s, "America/New_York", sunday_1am).isoformat() == "2026-11-29"
    # Beat down on Sunday: Monday still finds Sunday's slot.
    assert last_slot(s, "America/New_York", monday).isoformat() == "2026-12-06"
    friday = OptimizationSettings(day="friday", hour=23)
    assert last_slot(friday, "UTC", monday).isoformat() == "2026-12-04"


@pytest.mark.django_db
def test_due_tenants_are_those_past_their_slot_with_recent_outcomes(alice, two_models):
    _learned_memory(alice, n=3)
    RoutingPolicy.objects.filter(tenant=alice.tenant).update(
        optimization={"day": "sunday", "hour": 2}
    )
    type(alice.tenant).objects.filter(pk=alice.tenant.pk).update(
        timezone="Asia/Tokyo", created_at=timezone.now() - timedelta(days=30)
    )
    alice.tenant.refresh_from_db()
    # 2026-12-05 17:30 UTC is Sunday 02:30 in Tokyo; 16:30 UTC is 01:30 there.
    sunday_tokyo = datetime(2026, 12, 5, 17, 30, tzinfo=zoneinfo.ZoneInfo("UTC"))
    due = optimizations_due(now=sunday_tokyo)
    assert [(t.pk, s.isoformat()) for t, s in due] == [(alice.tenant.pk, "2026-12-06")]
    before = optimizations_due(now=sunday_tokyo - timedelta(hours=1))
    assert [s.isoformat() for _, s in before] == ["2026-11-29"]
    WeightOptimization.objects.create(
        tenant=alice.tenant,
        trigger="schedule",
        scheduled_for=due[0][1],
        method="outcome",
        goal="balanced",
        status="unchanged",
        window_start=sunday_tokyo,
        window_end=sunday_tokyo,
        objective_before="maximize_quality",
        weights_before={"quality": 0.8, "cost": 0.1, "latency": 0.1},
        policy_version_before=1,
    )
    assert optimizations_due(now=sunday_tokyo) == []
    RoutingPolicy.objects.filter(tenant=alice.tenant).update(optimization={"mode": "off"})
    assert optimizations_due(now=sunday_tokyo + timedelta(days=7)) == []


@pytest.mark.django_db
def test_the_variance_method_reads_served_requests_latency_and_cost(alice, two_models):
    from decimal import Decimal

    from billing.models import UsageRecord

    _learned_memory(alice)
    now = timezone.now()
    for i in range(12):
        for provider, model, latency, cost in (
            ("alpha", "small", 200.0, "0.0001"),
            ("beta", "big", 2000.0, "0.01"),
        ):
            UsageRecord.objects.create(
                tenant=alice.tenant, created_at=now - timedelta(hours=i), request_id=f"{model}{i}",
                provider=provider, model=model, status="ok", latency_ms=latency,
                cost_usd=Decimal(cost), prompt_tokens=100, completion_tokens=10,
            )  # fmt: skip
    body = alice.client.post(OPTIMIZE, {"method": "variance"}, format="json").json()
    models = body["evidence"]["models"]
    assert models["alpha/small"]["latency_ms"] == 200.0
    assert models["beta/big"]["latency_ms"] == 2000.0
    assert models["alpha/small"]["outcomes"] == 80 + 12
    # Latency now tells the models apart, so it keeps more than the floor.
    assert body["evidence"]["spread"]["latency"] > 0
    assert body["weights_after"]["latency"] > optimize.VARIANCE_FLOOR
