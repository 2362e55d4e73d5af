"""Cache API: stats, a dry-run lookup, and purges.

- ``GET /api/v1/cache/stats?since=&until=`` (ISO dates or times; default the last 7 days):
  entries, chat requests, hits by kind, hit rate and savings, in total and by model.
- ``POST /api/v1/cache/lookup`` takes a chat request and says whether it would be answered
  from the cache and by which entry, calling nobody and writing nothing.
- ``DELETE /api/v1/cache[?model=NAME]`` purges the tenant's entries (of one model).

Reads need the viewer role, purges admin.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

from django.db.models import Count, Q, Sum
from django.utils import timezone
from rest_framework.request import Request
from rest_framework.response import Response

from aura.errors import DomainError
from aura.money import plain_decimal
from aura.redis import sync_client
from billing.models import UsageRecord
from routing.api import parse_instant
from routing.cache import exact
from routing.cache.models import CacheEntry
from routing.cache.semantic import semantic_lookup, semantic_purge
from routing.gateway import caching
from routing.gateway.context import cache as contexts
from routing.gateway.requests import InvalidRequest, validate_chat
from tenants.models import Role
from tenants.scoping import TenantScopedAPIView

STATS_DEFAULT_WINDOW = timedelta(days=7)


def _figures(rows: Any) -> dict[str, Any]:
    requests = rows["requests"] or 0
    hits = (rows["exact"] or 0) + (rows["semantic"] or 0)
    return {
        "requests": requests,
        "hits": {"exact": rows["exact"] or 0, "semantic": rows["semantic"] or 0},
        "hit_rate": round(hits / requests, 4) if requests else 0.0,
        "savings_usd": plain_decimal(rows["savings"] or Decimal(0)),
    }


class CacheStatsView(TenantScopedAPIView):
    def get(self, request: Request) -> Response:
        until = parse_instant(request.query_params.get("until"), "until") or timezone.now()
        since = parse_instant(request.query_params.get("since"), "since") or (
            until - STATS_DEFAULT_WINDOW
        )
        if since > until:
            raise DomainError("'since' must not be after 'until'.", param="since")
        records = self.scoped(UsageRecord).filter(
            kind="chat", status="ok", created_at__gte=since, created_at__lt=until
        )
        measures = {
            "requests": Count("id"),
            "exact": Count("id", filter=Q(cache_status="exact")),
            "semantic": Count("id", filter=Q(cache_status="semantic")),
            "savings": Sum("cache_savings_usd"),
        }
        total = records.aggregate(**measures)
        by_model = [
            {"provider": row["provider"], "model": row["model"], **_figures(row)}
            for row in records.values("provider", "model").annotate(**measures).order_by("model")
        ]
        return Response(
            {
                "since": since,
                "until": until,
                "entries": {
                    "exact": exact.entries(sync_client(), self.tenant.pk),
                    "semantic": self.scoped(CacheEntry)
                    .filter(expires_at__gt=timezone.now())
                    .count(),
                },
                **_figures(total),
                "by_model": by_model,
            }
        )


class CacheLookupView(TenantScopedAPIView):
    def post(self, request: Request) -> Response:
        body = request.data
        try:
            validate_chat(body)
        except InvalidRequest as exc:
            raise DomainError(exc.message, param=exc.param) from None
        ctx = contexts.get(self.tenant.pk)
        answer: dict[str, Any] = {"mode": ctx.cache.mode, "hit": None, "entry": None}
        key = caching.key_for(ctx, dict(body))
        if key is None:
            reason = "caching is off" if not ctx.cache.enabled else "n > 1 is never cached"
            return Response({**answer, "cacheable": False, "reason": reason})
        answer.update(cacheable=True, partition=key.partition, key=key.exact, model=key.model)
        entry = exact.lookup_sync(sync_client(), self.tenant.pk, key.exact)
        if entry is not None:
            answer["hit"] = "exact"
            answer["entry"] = {
                "provider": entry.get("provider"),
                "model": entry.get("model_id"),
                "stored_at": entry.get("stored_at"),
                "cost_usd": entry.get("cost_usd"),
                "response": entry.get("response"),
            }
            return Response(answer)
        if ctx.cache.mode == "semantic" and key.prompt:
            from routing.cache.embedders import get_embedder  # numpy: only when needed

            embedder = get_embedder(ctx.cache.embedder)
            found = semantic_lookup(
                tenant_id=self.tenant.pk,
                partition=key.partition,
                prompt=key.prompt,
                embedding=embedder.embed([key.prompt])[0],
                embedder=embedder.name,
                threshold=ctx.cache.similarity_threshold,
            )
            nearest = found.entry or found.candidate
            answer["semantic"] = {
                "similarity": found.similarity,
                "threshold": ctx.cache.similarity_threshold,
                "refused_by": found.refused_by,
                "nearest": None
                if nearest is None
                else {"id": nearest.pk, "prompt": nearest.prompt, "provider": nearest.provider},
            }
            if found.entry is not None:
                answer["hit"] = "semantic"
                answer["entry"] = {
                    "provider": found.entry.provider,
                    "model": (found.entry.response or {}).get("model"),
                    "stored_at": found.entry.created_at,
                    "cost_usd": plain_decimal(found.entry.cost_usd),
                    "response": found.entry.response,
                }
        return Response(answer)


class CachePurgeView(TenantScopedAPIView):
    required_role = Role.ADMIN

    def delete(self, request: Request) -> Response:
        model = request.query_params.get("model") or None
        deleted = {
            "exact": exact.purge(sync_client(), self.tenant.pk, model),
            "semantic": semantic_purge(tenant_id=self.tenant.pk, model=model),
        }
        return Response({"deleted": deleted, "model": model})
