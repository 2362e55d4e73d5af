from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from aura.errors import DomainError
from routing.policy import document
from routing.policy.services import policies_import, policy_preview
from tenants.models import Tenant


class Command(BaseCommand):
    help = (
        "Replace the routing policies of every tenant named in a YAML file "
        "(all or nothing; keys left out return to their defaults)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", help="YAML document ('-' reads standard input)")
        parser.add_argument(
            "--dry-run", action="store_true", help="validate everything, save nothing"
        )

    def handle(self, *args: Any, **opts: Any) -> None:
        path = opts["file"]
        try:
            text = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise CommandError(f"cannot read {path}: {exc}") from exc
        try:
            entries = document.parse_document(text, operator=True)
        except DomainError as exc:
            raise CommandError(exc.message) from exc
        tenants = {t.slug: t for t in Tenant.objects.filter(slug__in=list(entries))}
        unknown = [slug for slug in entries if slug not in tenants]
        if unknown:
            raise CommandError(f"unknown tenant slug(s): {', '.join(unknown)}; nothing imported")
        by_tenant = {tenants[slug]: changes for slug, changes in entries.items()}
        try:
            if opts["dry_run"]:
                for tenant, changes in by_tenant.items():
                    policy_preview(
                        tenant=tenant,
                        changes=changes,
                        replace=True,
                        operator=True,
                        prefix=f"tenants.{tenant.slug}.",
                    )
            else:
                policies_import(entries=by_tenant, operator=True)
        except DomainError as exc:
            raise CommandError(f"{exc.message} Nothing imported.") from exc
        verb = "would import" if opts["dry_run"] else "imported"
        self.stdout.write(f"{verb} {len(by_tenant)} policies: {', '.join(entries)}")
