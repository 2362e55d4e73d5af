"""Budgets live in one place, billing's Budget rows: drop RoutingPolicy.budgets.

The old code kept the JSON map and the tenant-wide rows in step, so normally every entry
already has its row. An entry without one (a row deleted behind the code's back, data
loaded from a dump) becomes a tenant-wide block budget with the default thresholds, as the
old sync would have made it; where a row exists it wins, since it is what was enforced.
Backwards, the map is refilled from the enabled tenant-wide rows.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.db import migrations

MICRO = Decimal("0.000001")
DEFAULT_THRESHOLDS = [50, 75, 90, 100]
POLICY_KEYS = ("per_request", "per_hour", "per_day", "per_week", "per_month")


def budgets_to_rows(apps: Any, schema_editor: Any) -> None:
    RoutingPolicy = apps.get_model("routing", "RoutingPolicy")
    Budget = apps.get_model("billing", "Budget")
    for policy in RoutingPolicy.objects.exclude(budgets={}).iterator():
        for key, amount in (policy.budgets or {}).items():
            if key not in POLICY_KEYS or amount is None:
                continue
            period = key.removeprefix("per_")
            if Budget.objects.filter(
                tenant_id=policy.tenant_id, api_key__isnull=True, period=period
            ).exists():
                continue
            Budget.objects.create(
                tenant_id=policy.tenant_id,
                api_key=None,
                period=period,
                limit_usd=Decimal(str(amount)).quantize(MICRO),
                mode="block",
                thresholds=list(DEFAULT_THRESHOLDS),
                enabled=True,
            )


def rows_to_budgets(apps: Any, schema_editor: Any) -> None:
    RoutingPolicy = apps.get_model("routing", "RoutingPolicy")
    Budget = apps.get_model("billing", "Budget")
    for policy in RoutingPolicy.objects.iterator():
        limits = dict(
            Budget.objects.filter(
                tenant_id=policy.tenant_id, api_key__isnull=True, enabled=True
            ).values_list("period", "limit_usd")
        )
        budgets = {
            key: float(limits[key.removeprefix("per_")])
            for key in POLICY_KEYS
            if key.removeprefix("per_") in limits
        }
        if budgets:
            RoutingPolicy.objects.filter(pk=policy.pk).update(budgets=budgets)


class Migration(migrations.Migration):
    dependencies = [
        ("routing", "0004_unique_names"),
        ("billing", "0004_reconcile_schedule"),
    ]

    operations = [
        migrations.RunPython(budgets_to_rows, rows_to_budgets),
        migrations.RemoveField(model_name="routingpolicy", name="budgets"),
    ]
