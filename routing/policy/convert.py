"""A tenant's RoutingPolicy row as the engine's Policy."""

from __future__ import annotations

from typing import Any

from routing import engine


def policy_to_engine(row: Any) -> engine.Policy:
    """engine.Policy from a RoutingPolicy row (or None for the defaults)."""
    if row is None:
        return engine.Policy(
            weights=engine.OBJECTIVES["balanced"], fallback_to_any=False, objective="balanced"
        )
    if row.objective == "custom":
        weights = engine.Weights(row.weight_quality, row.weight_cost, row.weight_latency)
    else:
        weights = engine.OBJECTIVES[row.objective]
    return engine.Policy(
        weights=weights,
        allowed_providers=frozenset(row.allowed_providers)
        if row.allowed_providers is not None
        else None,
        denied_providers=frozenset(row.denied_providers or ()),
        allowed_models=frozenset(row.allowed_models) if row.allowed_models is not None else None,
        denied_models=frozenset(row.denied_models or ()),
        local_only=row.local_only,
        max_cost_per_request=float(row.max_cost_per_request)
        if row.max_cost_per_request is not None
        else None,
        min_quality=row.min_quality,
        fallback_depth=row.fallback_depth,
        strategy=row.strategy,
        hedge_k=row.hedge_k,
        aliases={k: tuple(v) for k, v in (row.aliases or {}).items()},
        # same_model (the default): a named model falls back only to itself elsewhere.
        fallback_to_any=row.model_fallback == "any_model",
        objective=None if row.objective == "custom" else row.objective,
        quality_target=row.quality_target,
    )
