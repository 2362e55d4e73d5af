"""Reading a budget's live Redis counter, for tests that compare it with stored records."""

from __future__ import annotations

import time
from dataclasses import dataclass
from decimal import Decimal

from django.db.models import Sum
from django.utils import timezone

from aura.redis import sync_client
from billing.budgets import NANO, counter_key, period_bounds, rules_from_rows
from billing.models import Budget, UsageRecord


@dataclass(frozen=True)
class Counter:
    spent: Decimal  # USD
    reserved: Decimal  # USD
    live_reservations: int


def counter(budget: Budget) -> Counter:
    """The current period's counter of ``budget``, as the gateway keeps it in Redis."""
    budget.refresh_from_db()
    rule = rules_from_rows([budget])[0]
    start, _ = period_bounds(rule.period, timezone.now(), budget.tenant.timezone)
    key = counter_key(rule, start)
    raw = sync_client().hgetall(key)
    return Counter(
        spent=Decimal(int(raw.get(b"spent", 0))) / NANO,
        reserved=Decimal(int(raw.get(b"reserved", 0))) / NANO,
        live_reservations=sync_client().zcard(key + ":z"),
    )


def settled(budget: Budget, spent: Decimal, timeout: float = 5.0) -> Counter:
    """The counter once nothing is reserved and ``spent`` is reached (settlements run just
    after each response), or as it is at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        c = counter(budget)
        if (c.reserved == 0 and c.spent >= spent) or time.monotonic() > deadline:
            return c
        time.sleep(0.02)


def recorded_spend(budget: Budget) -> Decimal:
    """What the usage records say ``budget`` has spent this period (the truth)."""
    start, end = period_bounds(budget.period, timezone.now(), budget.tenant.timezone)
    rows = UsageRecord.objects.filter(
        tenant_id=budget.tenant_id, created_at__gte=start, created_at__lt=end
    )
    if budget.api_key_id:
        rows = rows.filter(api_key_id=budget.api_key_id)
    return rows.aggregate(total=Sum("cost_usd"))["total"] or Decimal(0)
