"""Migration routing 0005 carries RoutingPolicy.budgets into Budget rows before dropping it."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from billing.models import Budget

BEFORE = [("routing", "0004_unique_names"), ("billing", "0004_reconcile_schedule")]


def _migrate(targets: list[tuple[str, str]] | None) -> Any:
    """Migrate to ``targets`` (None: the latest state); the historical apps there."""
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    targets = targets or executor.loader.graph.leaf_nodes()
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


@pytest.mark.django_db(transaction=True)
def test_policy_budgets_become_budget_rows_and_existing_rows_win(acme: Any) -> None:
    old = _migrate(BEFORE)
    try:
        old.get_model("routing", "RoutingPolicy").objects.create(
            tenant_id=acme.pk, budgets={"per_day": 50.0, "per_month": 900, "per_request": 0.05}
        )
        old.get_model("billing", "Budget").objects.create(
            tenant_id=acme.pk, period="month", limit_usd=Decimal("1000"), mode="alert_only"
        )
    finally:
        _migrate(None)
    rows = {b.period: b for b in Budget.objects.filter(tenant=acme)}
    assert set(rows) == {"day", "month", "request"}
    assert (rows["day"].limit_usd, rows["day"].mode) == (Decimal("50"), "block")
    assert rows["day"].api_key_id is None and rows["day"].thresholds == [50, 75, 90, 100]
    assert rows["request"].limit_usd == Decimal("0.05")
    assert (rows["month"].limit_usd, rows["month"].mode) == (Decimal("1000"), "alert_only")
