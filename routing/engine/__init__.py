"""Deciding: the pure routing engine (no ORM, no HTTP, no clock reads).

- ``types``      the vocabulary: RouteRequest, Candidate, Policy, HealthSnapshot, Plan, ...
- ``planner``    request + candidates + policy + health -> Plan (name resolution, filters,
                 scoring, ordering, fallbacks)
- ``strategies`` scoring and the primary-pick strategies (round robin, consistent hash, ...)
- ``classify``   prompt category, complexity tier and local token estimates
- ``failures``   why a plan routes nowhere, one answer for the gateway and the routing API

The package re-exports the engine's public surface, so callers write ``engine.plan(...)``
and ``engine.RouteRequest``; the modules import each other one way only (types <-
strategies <- planner).
"""

from __future__ import annotations

from routing.engine.planner import estimate_cost, exclusion_status, plan, resolve_model
from routing.engine.types import (
    BALANCED_QUALITY_TARGET,
    CATEGORIES,
    KINDS,
    LATENCY_PRIOR_MS,
    LOCAL_LATENCY_PRIOR_MS,
    OBJECTIVES,
    STRATEGIES,
    TIERS,
    UNKNOWN_QUALITY,
    Candidate,
    Exclusion,
    HealthSnapshot,
    Plan,
    Policy,
    RouteRequest,
    ScoredCandidate,
    Weights,
    ordering,
)

__all__ = [
    "BALANCED_QUALITY_TARGET",
    "CATEGORIES",
    "KINDS",
    "LATENCY_PRIOR_MS",
    "LOCAL_LATENCY_PRIOR_MS",
    "OBJECTIVES",
    "STRATEGIES",
    "TIERS",
    "UNKNOWN_QUALITY",
    "Candidate",
    "Exclusion",
    "HealthSnapshot",
    "Plan",
    "Policy",
    "RouteRequest",
    "ScoredCandidate",
    "Weights",
    "estimate_cost",
    "exclusion_status",
    "ordering",
    "plan",
    "resolve_model",
]
