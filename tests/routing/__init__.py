"""Builders shared by the routing engine tests (plain pytest, no database)."""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence

from routing.engine import (
    OBJECTIVES,
    Candidate,
    HealthSnapshot,
    Plan,
    Policy,
    RouteRequest,
    plan,
)


def make_candidate(
    key: str,
    *,
    input_price: float = 1.0,
    output_price: float = 2.0,
    quality: Mapping[str, float] | None = None,
    tier: str = "balanced",
    capabilities: Sequence[str] = ("chat", "tools", "json", "streaming"),
    context_window: int = 128_000,
    max_output: int = 4_096,
    is_local: bool = False,
    has_credentials: bool = True,
    weight: float = 1.0,
    aliases: tuple[str, ...] = (),
    endpoint: str | None = None,
) -> Candidate:
    provider, _, model_id = key.partition("/")
    return Candidate(
        key=key,
        provider=provider,
        endpoint=endpoint or f"{provider}-main",
        model_id=model_id,
        aliases=aliases,
        input_price=input_price,
        output_price=output_price,
        context_window=context_window,
        max_output=max_output,
        capabilities=frozenset(capabilities),
        quality=dict(quality) if quality is not None else {"chat": 0.8},
        tier=tier,
        is_local=is_local,
        has_credentials=has_credentials,
        weight=weight,
    )


def make_policy(**overrides: object) -> Policy:
    fields: dict[str, object] = {"weights": OBJECTIVES["balanced"]}
    fields.update(overrides)
    return Policy(**fields)  # type: ignore[arg-type]


def make_request(model: str = "auto", **overrides: object) -> RouteRequest:
    fields: dict[str, object] = {"model": model, "prompt_tokens": 100, "max_output_tokens": 100}
    fields.update(overrides)
    return RouteRequest(**fields)  # type: ignore[arg-type]


def route(
    candidates: Sequence[Candidate],
    request: RouteRequest | None = None,
    policy: Policy | None = None,
    health: HealthSnapshot | None = None,
    *,
    seed: int = 0,
    counter: int = 0,
) -> Plan:
    return plan(
        request or make_request(),
        candidates,
        policy or make_policy(),
        health or HealthSnapshot(),
        rng=random.Random(seed),
        counter=counter,
    )


def step_keys(result: Plan) -> list[str]:
    return [s.candidate.key for s in result.steps]


def excluded_reasons(result: Plan) -> dict[str, str]:
    return {e.key: e.reason for e in result.excluded}
