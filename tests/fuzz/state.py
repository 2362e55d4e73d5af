"""Everything a tenant owns, as plain rows: compared before and after fuzzed requests to show
that a refused request wrote nothing and that one tenant's requests never touch another's."""

from __future__ import annotations

import functools
from typing import Any

from django.apps import apps
from django.db import connection, models

from routing.models import ProviderEndpoint
from tenants.models import Tenant

# Written by reads and by the gateway's bookkeeping, not by the request being judged.
VOLATILE = frozenset({"last_used_at"})


@functools.cache
def _tenant_models() -> list[type[models.Model]]:
    found = []
    for model in apps.get_models():
        try:
            field = model._meta.get_field("tenant")
        except Exception:  # noqa: S112 - most models have no tenant
            continue
        if isinstance(field, models.ForeignKey) and field.related_model is Tenant:
            found.append(model)
    return sorted(found, key=lambda m: m._meta.label)


Snapshot = dict[str, list[dict[str, Any]]]


def tenant_snapshots(tenants: list[Tenant]) -> dict[int, Snapshot]:
    """Each tenant's rows, one query per table for all of them (this runs per fuzz case)."""
    ids = [t.pk for t in tenants]
    snaps: dict[int, Snapshot] = {i: {} for i in ids}
    for tenant_row in Tenant.objects.filter(pk__in=ids).values():
        snaps[tenant_row["id"]]["tenant"] = [dict(tenant_row)]
    for model in _tenant_models():
        label = model._meta.label
        for snap in snaps.values():
            snap[label] = []
        row: dict[str, Any]
        for row in model._default_manager.filter(tenant_id__in=ids).order_by("pk").values():
            snaps[row["tenant_id"]][label].append(
                {k: v for k, v in row.items() if k not in VOLATILE}
            )
    through: Any = ProviderEndpoint.served_models.through
    for snap in snaps.values():
        snap["served_models"] = []
    for row in (
        through.objects.filter(providerendpoint__tenant_id__in=ids)
        .order_by("pk")
        .values("providerendpoint__tenant_id", "providerendpoint_id", "catalogmodel_id")
    ):
        tenant_id = row.pop("providerendpoint__tenant_id")
        snaps[tenant_id]["served_models"].append(row)
    return snaps


def tenant_snapshot(tenant: Tenant) -> Snapshot:
    return tenant_snapshots([tenant])[tenant.pk]


def diff(before: Snapshot, after: Snapshot) -> str:
    """What changed, table by table (empty when nothing did)."""
    out = []
    for table in sorted(set(before) | set(after)):
        old, new = before.get(table, []), after.get(table, [])
        if old == new:
            continue
        old_ids = {r.get("id"): r for r in old}
        new_ids = {r.get("id"): r for r in new}
        added = [new_ids[i] for i in new_ids if i not in old_ids]
        removed = [old_ids[i] for i in old_ids if i not in new_ids]
        changed = [
            {k: (old_ids[i].get(k), v) for k, v in new_ids[i].items() if old_ids[i].get(k) != v}
            for i in new_ids
            if i in old_ids and old_ids[i] != new_ids[i]
        ]
        parts = []
        if added:
            parts.append(f"added {ascii(added)[:300]}")
        if removed:
            parts.append(f"removed {ascii(removed)[:300]}")
        if changed:
            parts.append(f"changed {ascii(changed)[:300]}")
        out.append(f"{table}: {'; '.join(parts)}")
    return "; ".join(out)


def _fingerprint_sql(tenant_ids: list[int]) -> tuple[str, list[Any]]:
    """One query: an md5 of every tenant-owned table's rows, per tenant and table. Table
    and column names come from the models' meta, values are parameters."""
    parts, params = [], []
    for model in _tenant_models():
        field: Any = model._meta.get_field("tenant")
        column = field.column
        parts.append(
            f"SELECT %s, x.{column}, md5(string_agg((to_jsonb(x) - 'last_used_at')::text, ',' "  # noqa: S608
            f"ORDER BY x.{model._meta.pk.column})) FROM {model._meta.db_table} x "
            f"WHERE x.{column} = ANY(%s) GROUP BY x.{column}"
        )
        params += [model._meta.label, tenant_ids]
    parts.append(
        "SELECT 'tenant', x.id, md5(to_jsonb(x)::text) FROM tenants_tenant x WHERE x.id = ANY(%s)"
    )
    params.append(tenant_ids)
    through = ProviderEndpoint.served_models.through._meta.db_table
    endpoints = ProviderEndpoint._meta.db_table
    parts.append(
        f"SELECT 'served_models', e.tenant_id, md5(string_agg(s.providerendpoint_id || ':' || "  # noqa: S608
        f"s.catalogmodel_id, ',' ORDER BY s.id)) FROM {through} s JOIN {endpoints} e "
        f"ON e.id = s.providerendpoint_id WHERE e.tenant_id = ANY(%s) GROUP BY e.tenant_id"
    )
    params.append(tenant_ids)
    return " UNION ALL ".join(parts), params


class Tracker:
    """What changed in the tenants' rows since the last ``changes()``: one query per call,
    plus one per table that did change (to say how)."""

    def __init__(self, tenants: list[Tenant]) -> None:
        self.tenants = tenants
        self.rows = tenant_snapshots(tenants)
        self.prints = self._prints()

    def _prints(self) -> dict[tuple[str, int], str]:
        sql, params = _fingerprint_sql([t.pk for t in self.tenants])
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            return {(table, tenant_id): digest for table, tenant_id, digest in cursor.fetchall()}

    def changes(self) -> dict[int, str]:
        """{tenant id: description} for every tenant whose rows changed."""
        prints = self._prints()
        if prints == self.prints:
            return {}
        self.prints = prints
        fresh = tenant_snapshots(self.tenants)
        out = {}
        for tenant_id, snap in fresh.items():
            changed = diff(self.rows[tenant_id], snap)
            if changed:
                out[tenant_id] = changed
        self.rows = fresh
        return out
