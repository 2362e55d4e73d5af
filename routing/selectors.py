"""Reads for the routing API: explained routing decisions and per-model outcome metrics."""

from __future__ import annotations

import dataclasses
import random
from datetime import datetime
from typing import Any

from django.db.models import Aggregate, Avg, Count, FloatField, Q

from routing import engine
from routing.context import RoutingContext
from routing.models import RoutingOutcome

# Filter order of engine._Rules.check: when nothing is routable, the exclusion that got
# furthest through it is the one the caller can act on (a too-long prompt beats "policy
# denies the other provider"), so it decides the status reported.
_REASON_ORDER = (
    "below_requested_tier",
    "wrong_kind",
    "provider_denied",
    "provider_not_allowed",
    "model_denied",
    "model_not_allowed",
    "not_local",
    "no_credentials",
    "missing_capability",
    "context_window",
    "max_output_tokens",
    "circuit_open",
    "over_max_cost",
    "below_min_quality",
)

# The request GET router/metrics scores every model for.
METRICS_REQUEST = engine.RouteRequest(
    model="auto", prompt_tokens=500, category="chat", tier="balanced", kind="chat"
)


def health_snapshot(ctx: RoutingContext) -> engine.HealthSnapshot:
    # Imported at call time: breakers live in their own module, which reads Redis.
    from routing.breaker import health_snapshot_sync

    return health_snapshot_sync(ctx)


def _reason_rank(reason: str) -> int:
    base = reason.partition(":")[0]
    return _REASON_ORDER.index(base) if base in _REASON_ORDER else -1


def plan_error(plan: engine.Plan) -> dict[str, Any] | None:
    """``{code, status, message, reason}`` when the plan routes nowhere, else None."""
    if plan.failure is None:
        return None
    if plan.failure == "unknown_model":
        miss = plan.excluded[0]
        return {
            "code": "model_not_found",
            "status": engine.exclusion_status("unknown_model"),
            "message": f"The model {miss.key!r} does not exist or is not available to you.",
            "reason": "unknown_model",
        }
    relevant = [e for e in plan.excluded if not plan.requested or e.key in plan.requested]
    if not relevant:
        return {
            "code": "no_eligible_candidate",
            "status": 503,
            "message": "No model is configured for this request.",
            "reason": None,
        }
    nearest = max(relevant, key=lambda e: _reason_rank(e.reason))
    if plan.failure == "requested_model_excluded":
        message = f"The requested model cannot serve this request: {nearest.detail}."
    else:
        message = f"No model can serve this request; closest miss {nearest.key}: {nearest.detail}."
    return {
        "code": plan.failure,
        "status": engine.exclusion_status(nearest.reason),
        "message": message,
        "reason": nearest.reason,
    }


def _weights_dict(w: engine.Weights | None) -> dict[str, float] | None:
    if w is None:
        return None
    return {"quality": w.quality, "cost": w.cost, "latency": w.latency}


def _scored_dict(s: engine.ScoredCandidate) -> dict[str, Any]:
    c = s.candidate
    return {
        "model": c.key,
        "provider": c.provider,
        "score": round(s.score, 6),
        "quality": round(s.quality, 6),
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
) -> dict[str, Any]:
    """The decision the gateway would make for ``request``, with every candidate's score
    and every exclusion's reason. Calls no provider and changes no state."""
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
        "candidates": [_scored_dict(s) for s in plan.scored],
        "excluded": [
            {"model": e.key, "reason": e.reason, "detail": e.detail} for e in plan.excluded
        ],
        "error": plan_error(plan),
    }


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


class PercentileCont(Aggregate):
    """Postgres ``percentile_cont(f) WITHIN GROUP (ORDER BY expr)`` (interpolated)."""

    function = "PERCENTILE_CONT"
    name = "PercentileCont"
    output_field = FloatField()
    template = "%(function)s(%(fraction)s) WITHIN GROUP (ORDER BY %(expressions)s)"

    def __init__(self, expression: str, fraction: float, **extra: Any) -> None:
        if not 0.0 <= fraction <= 1.0:
            raise ValueError("fraction must be between 0 and 1")
        # Inlined as a float literal: it is ours, never user input.
        super().__init__(expression, fraction=repr(float(fraction)), **extra)


def outcome_metrics(*, tenant_id: int, since: datetime, until: datetime) -> list[dict[str, Any]]:
    """Per-model aggregates of the tenant's outcomes in [since, until], one GROUP BY query
    (served by the (tenant, model_key, -created_at) index)."""
    rows = (
        RoutingOutcome.objects.for_tenant(tenant_id)
        .filter(created_at__gte=since, created_at__lte=until)
        .values("model_key")
        .annotate(
            requests=Count("id"),
            successes=Count("id", filter=Q(success=True)),
            mean_latency_ms=Avg("latency_ms"),
            p95_latency_ms=PercentileCont("latency_ms", 0.95),
            mean_cost_usd=Avg("cost_usd"),
            mean_quality=Avg("quality_score"),
        )
        .order_by("model_key")
    )
    return [
        {
            "model": r["model_key"],
            "requests": r["requests"],
            "successes": r["successes"],
            "success_rate": r["successes"] / r["requests"],
            "mean_latency_ms": float(r["mean_latency_ms"]),
            "p95_latency_ms": float(r["p95_latency_ms"]),
            "mean_cost_usd": float(r["mean_cost_usd"]),
            "mean_quality": float(r["mean_quality"]) if r["mean_quality"] is not None else None,
        }
        for r in rows
    ]
