"""Writes for routing policies, weights and recorded outcomes."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction

from billing.selectors import budgets_policy_map
from billing.services import budgets_sync_from_policy
from routing.changes import config_changed
from routing.models import RoutingOutcome, RoutingPolicy, WeightHistory
from routing.policy import document
from tenants.models import Tenant

_PLAIN_FIELDS = (
    "objective",
    "allowed_providers",
    "denied_providers",
    "allowed_models",
    "denied_models",
    "local_only",
    "min_quality",
    "quality_target",
    "fallback_depth",
    "model_fallback",
    "strategy",
    "hedge_k",
    "aliases",
    "rate_limits",
    "cache",
    "learning",
    "optimization",
    "allow_private_base_urls",
)


def policy_get_or_create(*, tenant: Tenant) -> RoutingPolicy:
    # No config_changed(): a fresh row holds the defaults routing already uses without one.
    policy, _ = RoutingPolicy.objects.get_or_create(tenant=tenant)
    return policy


def policy_state(policy: RoutingPolicy) -> dict[str, Any]:
    """The row as a policy_yaml state (plain JSON-able values).

    ``budgets`` is read from the tenant-wide Budget rows (billing's, the one place budgets
    live), so an export shows them and re-importing it gives them back.
    """
    state = {name: getattr(policy, name) for name in _PLAIN_FIELDS}
    state["weights"] = dict(policy.weights)
    cap = policy.max_cost_per_request
    state["max_cost_per_request"] = float(cap) if cap is not None else None
    state["denied_providers"] = list(state["denied_providers"] or [])
    state["denied_models"] = list(state["denied_models"] or [])
    state["aliases"] = dict(state["aliases"] or {})
    state["cache"] = {**document.DEFAULTS["cache"], **(policy.cache or {})}
    state["learning"] = {**document.DEFAULTS["learning"], **(policy.learning or {})}
    state["optimization"] = {**document.DEFAULTS["optimization"], **(policy.optimization or {})}
    state["budgets"] = budgets_policy_map(tenant_id=policy.tenant_id)
    return state


def _current_state(tenant: Tenant) -> dict[str, Any]:
    policy = RoutingPolicy.objects.filter(tenant=tenant).first()
    if policy is not None:
        return policy_state(policy)
    state = document.default_state()
    state["budgets"] = budgets_policy_map(tenant_id=tenant.pk)
    return state


def _assign(policy: RoutingPolicy, state: Mapping[str, Any]) -> None:
    for name in _PLAIN_FIELDS:
        setattr(policy, name, state[name])
    weights = state["weights"]
    policy.weight_quality = weights["quality"]
    policy.weight_cost = weights["cost"]
    policy.weight_latency = weights["latency"]
    cap = state["max_cost_per_request"]
    policy.max_cost_per_request = Decimal(str(cap)) if cap is not None else None


def policy_preview(
    *,
    tenant: Tenant,
    changes: Mapping[str, Any],
    replace: bool,
    operator: bool = False,
    prefix: str = "",
) -> dict[str, Any]:
    """The state a write would produce, without saving (dry runs). Raises PolicyError."""
    before = _current_state(tenant)
    return document.merge_policy(before, changes, replace=replace, operator=operator, prefix=prefix)


def policy_update(
    *,
    tenant: Tenant,
    changes: Mapping[str, Any],
    replace: bool = False,
    user: AbstractBaseUser | None = None,
    source: str = "manual",
    note: str = "",
    operator: bool = False,
    prefix: str = "",
) -> RoutingPolicy:
    """Apply already-cleaned ``changes`` (document.clean_policy) to the tenant's policy.

    Bumps the version, records a WeightHistory row when the weights routing uses changed,
    and publishes the change on commit. Raises PolicyError (nothing saved) when the
    merged policy is inconsistent. ``budgets`` in ``changes`` is applied to the tenant-wide
    Budget rows (billing.services.budgets_sync_from_policy); without it, even when
    replacing, budgets are left alone.
    """
    with transaction.atomic():
        policy_get_or_create(tenant=tenant)
        # Row lock: two concurrent writers must not both read version N and write N + 1.
        policy = RoutingPolicy.objects.select_for_update().get(tenant=tenant)
        before = policy_state(policy)
        after = document.merge_policy(
            before, changes, replace=replace, operator=operator, prefix=prefix
        )
        _assign(policy, after)
        policy.version += 1
        policy.updated_by_id = user.pk if user is not None else None
        policy.save()
        if "budgets" in changes:
            budgets_sync_from_policy(tenant=tenant, budgets=after["budgets"])
        if document.weights_changed(before, after):
            WeightHistory.objects.create(
                tenant=tenant,
                version=policy.version,
                weights=document.effective_weights(after),
                source=source,
                note=note or f"objective {after['objective']}",
                created_by_id=user.pk if user is not None else None,
            )
        config_changed()
    return policy


def policies_import(
    *,
    entries: Mapping[Tenant, Mapping[str, Any]],
    user: AbstractBaseUser | None = None,
    operator: bool = False,
) -> list[RoutingPolicy]:
    """Replace several tenants' policies, all or nothing (the import command)."""
    with transaction.atomic():
        return [
            policy_update(
                tenant=tenant,
                changes=changes,
                replace=True,
                user=user,
                source="import",
                operator=operator,
                prefix=f"tenants.{tenant.slug}.",
            )
            for tenant, changes in entries.items()
        ]


def routing_outcome_record(
    *,
    tenant: Tenant,
    model_key: str,
    success: bool,
    latency_ms: float,
    cost_usd: Decimal,
    quality_score: float | None = None,
    request_id: str = "",
    source: str = "api",
) -> RoutingOutcome:
    return RoutingOutcome.objects.create(
        tenant=tenant,
        model_key=model_key,
        success=success,
        latency_ms=latency_ms,
        cost_usd=cost_usd,
        quality_score=quality_score,
        request_id=request_id,
        source=source,
    )
