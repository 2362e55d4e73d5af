"""Run one health round now: the same code the ``check_providers`` task runs."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from monitoring.health import health_round


class Command(BaseCommand):
    help = "Probe provider endpoints now and print each one's health."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument(
            "--due-only",
            action="store_true",
            help="probe only endpoints whose interval has passed (as the scheduled task)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        report = health_round(force=not options["due_only"])
        width = max((len(n) for n in report.statuses), default=10)
        for name, status in sorted(report.statuses.items()):
            self.stdout.write(f"{name:<{width}}  {status}")
        for name, old, new in report.flips:
            self.stdout.write(f"flip: {name} {old} -> {new}")
        self.stdout.write(
            f"{report.targets} endpoint(s), {report.probed} probed, {report.failed} failed"
        )
