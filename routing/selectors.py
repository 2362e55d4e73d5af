"""Reads for the routing API: explained routing decisions and per-model outcome metrics."""

from __future__ import annotations

import dataclasses
import random
from datetime import datetime
from typing import TYPE_CHECKING, Any

from routing import engine
from routing.engine.failures import plan_failure
from routing.gateway.context import RoutingContext

if TYPE_CHECKING:
    from routing.learning.prediction import Learned

# The request GET router/metrics scores every model for.
METRICS_REQUEST = engine.RouteRequest(
    model="auto", prompt_tokens=500, category="chat", tier="balanced", kind="chat"
)


def health_snapshot(ctx: RoutingContext) -> engine.HealthSnapshot:
    # Imported at call time: breakers live in their own module, which reads Redis.
    from routing.gateway.breaker import health_snapshot_sync

    return health_snapshot_sync(ctx)


def plan_error(plan: engine.Plan, model: str = "auto") -> dict[str, Any] | None:
    """``{code, status, message, reason}`` when the plan routes nowhere, else None."""
    failure = plan_failure(plan, model)
    if failure is None:
        return None
    return {
        "code": failure.code,
        "status": failure.status,
        "message": failure.message,
        "reason": failure.reason,
    }


def _weights_dict(w: engine.Weights | None) -> dict[str, float] | None:
    if w is None:
        return None
    return {"quality": w.quality, "cost": w.cost, "latency": w.latency}


def _scored_dict(s: engine.ScoredCandidate, learned: Learned | None) -> dict[str, Any]:
    c = s.candidate
    evidence = learned.evidence(c.key) if learned is not None else None
    return {
        "model": c.key,
        "provider": c.provider,
        "score": round(s.score, 6),
        "quality": round(s.quality, 6),
        "predicted_quality": round(s.quality, 6),
        "quality_source": "catalog" if evidence is None else "learned",
        "evidence": evidence,
        "cost_usd": s.cost_usd,
        "latency_ms": s.latency_ms,
        "parts": {k: round(v, 6) for k, v in s.parts.items()},
    }


def route_explain(
    *,
    ctx: RoutingContext,
    request: engine.RouteRequest,
    health: engine.HealthSnapshot,
    rng: random.Random,
    learned: Learned | None = None,
) -> dict[str, Any]:
    """The decision the gateway would make for ``request``, with every candidate's score
    and every exclusion's reason. Calls no provider and changes no state. ``learned``:
    the prompt's predictions (the tenant has learning on), as the gateway uses them."""
    if learned is not None and learned.predictions:
        health = dataclasses.replace(
            health, learned_quality=learned.quality_by_candidate(ctx.candidates)
        )
    mode, target = engine.ordering(request, ctx.policy)
    plan = engine.plan(request, ctx.candidates, ctx.policy, health, rng=rng, counter=ctx.counter)
    primary = plan.primary
    return {
        "model": primary.candidate.key if primary else None,
        "provider": primary.candidate.provider if primary else None,
        "fallbacks": [s.candidate.key for s in plan.steps[1:]],
        "hedge": plan.hedge,
        "strategy": plan.strategy,
        "weights": _weights_dict(plan.weights),
        "request": {
            "kind": request.kind,
            "prompt_tokens": request.prompt_tokens,
            "category": request.category,
            "tier": request.tier,
            "needs": sorted(request.needs),
        },
        "ordering": {"mode": mode, "quality_target": target},
        "learning": None
        if learned is None
        else {"memory_points": learned.memory_points, "models": len(learned.predictions)},
        "candidates": [_scored_dict(s, learned) for s in plan.scored],
        "excluded": [
            {"model": e.key, "reason": e.reason, "detail": e.detail} for e in plan.excluded
        ]
        + _other_models(ctx, request, plan),
        "error": plan_error(plan, request.model),
    }


def _other_models(
    ctx: RoutingContext, request: engine.RouteRequest, plan: engine.Plan
) -> list[dict[str, Any]]:
    """Under ``model_fallback: same_model`` the engine never looks at the other models of a
    named request (the hot path pays nothing for them); the explanation names them."""
    if request.model == "auto" or ctx.policy.fallback_to_any or plan.failure == "unknown_model":
        return []
    seen = {e.key for e in plan.excluded} | {s.candidate.key for s in plan.scored}
    return [
        {
            "model": c.key,
            "reason": "other_model",
            "detail": "model_fallback is same_model: a named model falls back only to "
            "itself on another endpoint or provider",
        }
        for c in ctx.candidates
        if c.key not in seen
    ]


def model_scores(
    *,
    ctx: RoutingContext,
    health: engine.HealthSnapshot,
    observed_latency_ms: dict[str, float],
) -> dict[str, float]:
    """Engine score of each eligible model for ``METRICS_REQUEST``, observed latency first."""
    latency = {**health.latency_ms, **observed_latency_ms}
    health = dataclasses.replace(health, latency_ms=latency)
    plan = engine.plan(
        METRICS_REQUEST, ctx.candidates, ctx.policy, health, rng=random.Random(0), counter=0
    )
    return {s.candidate.key: s.score for s in plan.scored}


_METRICS_SQL = """
SELECT model_key, count(*), count(*) FILTER (WHERE success), avg(latency_ms),
       percentile_cont(0.95) WITHIN GROUP (ORDER BY latency_ms), avg(cost_usd),
       avg(quality_score)
FROM (
    SELECT model_key, success, latency_ms, cost_usd, quality_score
    FROM routing_routingoutcome
    WHERE tenant_id = %(tenant)s AND created_at >= %(since)s AND created_at <= %(until)s
    UNION ALL
    SELECT provider || '/' || model, status = 'ok', latency_ms, cost_usd, NULL
    FROM billing_usagerecord
    WHERE tenant_id = %(tenant)s AND created_at >= %(since)s AND created_at <= %(until)s
      AND kind = 'chat' AND provider <> ''
) AS outcomes
GROUP BY model_key
ORDER BY model_key
"""


def outcome_metrics(*, tenant_id: int, since: datetime, until: datetime) -> list[dict[str, Any]]:
    """Per-model aggregates in [since, until]: gateway traffic (usage records) plus outcomes
    recorded through the API, in one query. Both sides are served by tenant+time indexes."""
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute(_METRICS_SQL, {"tenant": tenant_id, "since": since, "until": until})
        rows = cur.fetchall()
    return [
        {
            "model": key,
            "requests": requests,
            "successes": successes,
            "success_rate": successes / requests,
            "mean_latency_ms": float(mean_latency),
            "p95_latency_ms": float(p95),
            "mean_cost_usd": float(mean_cost),
            "mean_quality": float(quality) if quality is not None else None,
        }
        for key, requests, successes, mean_latency, p95, mean_cost, quality in rows
    ]
