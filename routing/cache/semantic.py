"""The semantic layer of the response cache: store an answer with the embedding of the last
user turn, and find one for a new prompt inside the same hard partition.

Isolation is a filter, never a distance: every query has ``tenant_id = %s AND partition =
%s AND embedder = %s`` in its WHERE clause, so an entry of another tenant, another
partition (model, system prompt, earlier turns, tools, parameters) or another embedder's
vector space cannot be returned however close its vector is. Within the partition the
nearest entry (or the nearest ``candidates``) above the threshold is checked by the guards
(``guards.py``); the first that passes is the hit.

These are synchronous ORM calls: the gateway runs them off the event loop (a thread, or
after the response is sent for writes), as it does its other database work.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db import connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from aura.text import storable_json, storable_text
from routing.cache.guards import guard_refusal
from routing.cache.models import VECTOR_COLUMNS, CacheEntry, vector_column

# The default embedder's (wordllama) threshold; each embedder's is in
# routing.cache.embedders.THRESHOLDS. Chosen with bench/cache_eval.py (see its docstring).
DEFAULT_THRESHOLD = 0.75
# Only the nearest entry may be served by default: when the guards refuse it, the next ones
# are further away and differ more, and the guards (built to spot small, answer-changing
# differences) pass many of them: in bench/cache_eval.py's one-partition runs, falling
# through to the 2nd..5th nearest turned refusals into wrong answers.
CANDIDATES = 1
DEFAULT_MAX_ENTRIES_PER_TENANT = 20_000
CACHEABLE_FINISH = frozenset({"stop", "tool_calls"})
# Longer last turns (pasted documents, code) are not matched semantically: one changed line
# in a long text barely moves a mean-pooled embedding, and the guards' cost grows with the
# text. The exact layer still serves them.
MAX_PROMPT_CHARS = 2000
_VECTOR_FIELDS = tuple(VECTOR_COLUMNS.values())


@dataclass(frozen=True, slots=True)
class Lookup:
    """``entry`` is the hit (None on a miss). ``candidate`` is the nearest entry whatever
    happened to it, ``similarity`` its cosine (of the hit, on a hit), and ``refused_by``
    why the nearest candidate was not served: a guard's name, "threshold", or "length"
    (the prompt is longer than MAX_PROMPT_CHARS)."""

    entry: CacheEntry | None
    similarity: float | None
    refused_by: str | None
    candidate: CacheEntry | None = None

    @property
    def hit(self) -> bool:
        return self.entry is not None


def cacheable_response(body: Mapping[str, Any]) -> bool:
    """A complete answer worth replaying: choices present, each finished by stop/tool_calls."""
    choices = body.get("choices")
    if not isinstance(choices, list) or not choices:
        return False
    return all(isinstance(c, dict) and c.get("finish_reason") in CACHEABLE_FINISH for c in choices)


def _vector(embedding: Sequence[float]) -> tuple[str, list[float]]:
    column, size = vector_column(len(embedding))
    values = [float(x) for x in embedding]
    return column, values + [0.0] * (size - len(values))


def semantic_store(
    *,
    tenant_id: int,
    partition: str,
    model: str,
    prompt: str,
    embedding: Sequence[float],
    embedder: str,
    response: Mapping[str, Any],
    ttl_seconds: int,
    prompt_tokens: int = 0,
    completion_tokens: int = 0,
    cost_usd: Decimal = Decimal(0),
    provider: str = "",
    now: datetime | None = None,
) -> CacheEntry | None:
    """Store one answer; None (nothing written) when the response is not cacheable or the
    TTL is not positive. An entry with the same prompt in the same partition is replaced."""
    if ttl_seconds <= 0 or len(prompt) > MAX_PROMPT_CHARS or not cacheable_response(response):
        return None
    now = now or timezone.now()
    column, vector = _vector(embedding)
    prompt = storable_text(prompt)
    with transaction.atomic():
        CacheEntry.objects.filter(
            tenant_id=tenant_id, partition=partition, embedder=embedder, prompt=prompt
        ).delete()
        entry = CacheEntry(
            tenant_id=tenant_id,
            partition=partition,
            model=storable_text(model, 260),
            provider=storable_text(provider, 64),
            prompt=prompt,
            embedder=embedder,
            response=storable_json(dict(response)),
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            cost_usd=cost_usd,
            expires_at=now + timedelta(seconds=ttl_seconds),
        )
        setattr(entry, column, vector)
        entry.save()
    return entry


def semantic_lookup(
    *,
    tenant_id: int,
    partition: str,
    prompt: str,
    embedding: Sequence[float],
    embedder: str,
    threshold: float = DEFAULT_THRESHOLD,
    guards: bool | Iterable[str] = True,
    candidates: int = CANDIDATES,
    now: datetime | None = None,
) -> Lookup:
    """The best entry of (tenant, partition, embedder) whose cosine similarity to
    ``embedding`` is at least ``threshold`` and that no guard refuses. Reads only (a
    dry run can call it as is); count a served hit with ``semantic_hit_record``."""
    if len(prompt) > MAX_PROMPT_CHARS:
        return Lookup(None, None, "length")
    if not any(embedding):
        return Lookup(None, None, "threshold")
    now = now or timezone.now()
    column, vector = _vector(embedding)
    # Raw SQL: the ORM's query compilation cost more than the query itself (~1.5 ms vs
    # ~0.2 ms for a partition of a few hundred entries). The (tenant, partition, embedder,
    # expires_at) index finds the partition; HNSW serves when a partition grows large.
    with connection.cursor() as cursor:
        cursor.execute(
            _LOOKUP_SQL[column],
            ["[" + ",".join(map(repr, vector)) + "]", tenant_id, partition, embedder, now,
             candidates],
        )  # fmt: skip
        rows = [_entry(tenant_id, partition, embedder, row) for row in cursor.fetchall()]
    if not rows:
        return Lookup(None, None, None)
    best, best_similarity = rows[0]
    refused_by: str | None = None
    names = None if guards is True else (() if guards is False else tuple(guards))
    for row, similarity in rows:
        if similarity < threshold:
            break
        refusal = guard_refusal(row.prompt, prompt, guards=names) if names != () else None
        if refusal is None:
            return Lookup(row, similarity, None, best)
        refused_by = refused_by or refusal
    if best_similarity < threshold:
        refused_by = "threshold"
    return Lookup(None, best_similarity, refused_by, best)


_FIELDS = ("id", "prompt", "model", "provider", "response", "prompt_tokens", "completion_tokens",
           "cost_usd", "created_at", "expires_at", "hits", "last_hit_at")  # fmt: skip
_LOOKUP_SQL = {
    column: f"""
        SELECT {", ".join(_FIELDS)}, {column} <=> %s::vector AS distance
        FROM {CacheEntry._meta.db_table}
        WHERE tenant_id = %s AND partition = %s AND embedder = %s AND expires_at > %s
          AND {column} IS NOT NULL
        ORDER BY distance, created_at DESC
        LIMIT %s"""  # noqa: S608 - table and column names are constants
    for column in _VECTOR_FIELDS
}


def _entry(
    tenant_id: int, partition: str, embedder: str, row: Sequence[Any]
) -> tuple[CacheEntry, float]:
    values = dict(zip(_FIELDS, row, strict=False))
    if isinstance(values["response"], str | bytes):
        values["response"] = json.loads(values["response"])
    entry = CacheEntry(tenant_id=tenant_id, partition=partition, embedder=embedder, **values)
    entry._state.adding = False
    entry._state.db = "default"
    return entry, 1.0 - float(row[len(_FIELDS)])


def semantic_hit_record(*, entry_id: int, now: datetime | None = None) -> None:
    """Count a served hit (one UPDATE; safe to run after the response is sent)."""
    CacheEntry.objects.filter(pk=entry_id).update(
        hits=F("hits") + 1, last_hit_at=now or timezone.now()
    )


def semantic_purge(*, tenant_id: int, model: str | None = None) -> int:
    """Delete a tenant's entries (of one model only, when given); returns how many."""
    qs = CacheEntry.objects.filter(tenant_id=tenant_id)
    if model is not None:
        # A name the policy resolves is stored with its policy version (routing.cache.keys).
        qs = qs.filter(Q(model=model) | Q(model__startswith=f"{model}@policy-v"))
    deleted, _ = qs.delete()
    return deleted


def semantic_expire(
    *,
    now: datetime | None = None,
    max_entries_per_tenant: int = DEFAULT_MAX_ENTRIES_PER_TENANT,
    caps: Mapping[int, int] | None = None,
) -> dict[str, int]:
    """Delete expired entries, then each tenant's oldest beyond its cap (``caps`` by tenant
    id, else ``max_entries_per_tenant``). Idempotent: running it twice deletes nothing more."""
    now = now or timezone.now()
    expired, _ = CacheEntry.objects.filter(expires_at__lte=now).delete()
    capped = 0
    with connection.cursor() as cursor:
        # One pass over (tenant, created_at desc) with the tenant_created index; a tenant
        # with its own cap is handled separately so the default applies to the rest.
        overrides = dict(caps or {})
        params: list[Any] = [max_entries_per_tenant]
        where = ""
        if overrides:
            where = "WHERE tenant_id <> ALL(%s)"
            params.insert(0, list(overrides))
        cursor.execute(
            f"""
            DELETE FROM routing_cacheentry WHERE id IN (
              SELECT id FROM (
                SELECT id, row_number() OVER (
                  PARTITION BY tenant_id ORDER BY created_at DESC, id DESC) AS n
                FROM routing_cacheentry {where}
              ) ranked WHERE n > %s
            )""",  # noqa: S608 - only placeholders are interpolated
            params,
        )
        capped += cursor.rowcount
        for tenant_id, cap in overrides.items():
            cursor.execute(
                """
                DELETE FROM routing_cacheentry WHERE id IN (
                  SELECT id FROM routing_cacheentry WHERE tenant_id = %s
                  ORDER BY created_at DESC, id DESC OFFSET %s
                )""",
                [tenant_id, max(cap, 0)],
            )
            capped += cursor.rowcount
    return {"expired": expired, "capped": capped}
