"""Budget writes. The Budget rows are the one place budgets live (the gateway enforces them).

Two ways lead to a tenant-wide budget: the budgets API and the routing policy document
(its ``budgets: {per_day: 50, ...}`` map, through the policy API or a YAML import), which
``budgets_sync_from_policy`` applies to the rows. The policy shows the rows back
(``billing.selectors.budgets_policy_map``), so an export re-imports to the same budgets;
nothing is stored on the policy, and a budget write leaves the policy (and its version)
alone. Key-scoped budgets exist only through the budgets API. Every write calls
``config_changed()`` because the gateway caches budgets with the routing context.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

from django.db import IntegrityError, transaction

from aura.errors import DomainError
from billing.models import Budget
from routing.changes import config_changed
from routing.policy.document import BUDGET_KEYS
from tenants.models import ApiKey, Tenant

# policy key -> Budget.period ("per_day" -> "day")
POLICY_PERIODS: Mapping[str, str] = {key: key.removeprefix("per_") for key in BUDGET_KEYS}
_MICRO = Decimal("0.000001")
_EDITABLE = ("api_key", "period", "limit_usd", "mode", "thresholds", "webhook_url", "enabled")


class BudgetError(DomainError):
    code = "invalid_budget"


class BudgetExists(BudgetError):
    code = "budget_exists"


def _scope(api_key: ApiKey | None) -> str:
    return f"API key {api_key.name!r}" if api_key is not None else "the whole tenant"


def _check(budget: Budget) -> None:
    if budget.api_key is not None and budget.api_key.tenant_id != budget.tenant_id:
        raise BudgetError("This API key does not belong to the tenant.", param="api_key")
    clash = Budget.objects.filter(
        tenant_id=budget.tenant_id, api_key=budget.api_key, period=budget.period
    ).exclude(pk=budget.pk)
    if clash.exists():
        raise BudgetExists(
            f"There already is a {budget.period} budget for {_scope(budget.api_key)}.",
            param="period",
        )


def _save(budget: Budget) -> None:
    _check(budget)
    try:
        # Savepoint: a concurrent twin that slipped past _check() hits the unique constraint.
        with transaction.atomic():
            budget.save()
    except IntegrityError:
        raise BudgetExists(
            f"There already is a {budget.period} budget for {_scope(budget.api_key)}.",
            param="period",
        ) from None


def budget_create(
    *,
    tenant: Tenant,
    period: str,
    limit_usd: Decimal,
    api_key: ApiKey | None = None,
    mode: str = Budget.Mode.BLOCK,
    thresholds: Sequence[int] | None = None,
    webhook_url: str = "",
    enabled: bool = True,
) -> Budget:
    budget = Budget(
        tenant=tenant,
        api_key=api_key,
        period=period,
        limit_usd=limit_usd,
        mode=mode,
        thresholds=sorted(thresholds) if thresholds else list(Budget.DEFAULT_THRESHOLDS),
        webhook_url=webhook_url,
        enabled=enabled,
    )
    with transaction.atomic():
        _save(budget)
        config_changed()
    return budget


def budget_update(*, budget: Budget, changes: Mapping[str, Any]) -> Budget:
    """Apply ``changes`` (any of api_key, period, limit_usd, mode, thresholds, webhook_url,
    enabled) to ``budget``; raises BudgetError with nothing saved when they clash."""
    unknown = set(changes) - set(_EDITABLE)
    if unknown:
        raise BudgetError(f"Unknown budget field {sorted(unknown)[0]!r}.", param=sorted(unknown)[0])
    with transaction.atomic():
        for name, value in changes.items():
            if name == "thresholds":
                value = sorted(value) if value else list(Budget.DEFAULT_THRESHOLDS)
            setattr(budget, name, value)
        _save(budget)
        config_changed()
    return budget


def budget_delete(*, budget: Budget) -> None:
    with transaction.atomic():
        budget.delete()
        config_changed()


def budgets_sync_from_policy(*, tenant: Tenant, budgets: Mapping[str, float]) -> None:
    """Make the tenant-wide Budget rows match a policy's ``budgets`` map.

    Called by routing.policy.services.policy_update inside its transaction when a policy write
    names ``budgets``, with the cleaned map (``document.BUDGET_KEYS`` -> USD). A period in the map gets a tenant-wide budget
    with that limit (created in block mode with the default thresholds; an existing one
    keeps its mode, thresholds and webhook, and is enabled). An enabled tenant-wide budget
    whose period is not in the map is deleted: the policy replaced it. Disabled ones are
    left alone, as the policy never lists them.
    """
    current = {
        b.period: b
        for b in Budget.objects.select_for_update().filter(tenant=tenant, api_key__isnull=True)
    }
    changed = False
    for key, period in POLICY_PERIODS.items():
        row = current.get(period)
        if key in budgets:
            limit = Decimal(str(budgets[key])).quantize(_MICRO)
            if row is None:
                Budget.objects.create(
                    tenant=tenant,
                    period=period,
                    limit_usd=limit,
                    mode=Budget.Mode.BLOCK,
                    thresholds=list(Budget.DEFAULT_THRESHOLDS),
                )
                changed = True
            elif row.limit_usd != limit or not row.enabled:
                row.limit_usd = limit
                row.enabled = True
                row.save(update_fields=["limit_usd", "enabled", "updated_at"])
                changed = True
        elif row is not None and row.enabled:
            row.delete()
            changed = True
    if changed:
        config_changed()
