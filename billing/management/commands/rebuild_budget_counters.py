from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from billing.budgets import budget_counters_rebuild


class Command(BaseCommand):
    help = (
        "Recompute every budget's current-period spend in Redis from the usage records in "
        "Postgres (run after losing Redis; the periodic reconcile never lowers a counter)."
    )

    def handle(self, *args: Any, **opts: Any) -> None:
        count = budget_counters_rebuild()
        self.stdout.write(f"rebuilt {count} budget counter(s) from usage records")
