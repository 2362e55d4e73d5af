"""The semantic layer on the real Postgres + pgvector: hard partitions, threshold, guards,
expiry, caps and purge."""

from __future__ import annotations

import math
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection
from django.utils import timezone
from django_celery_beat.models import PeriodicTask

from aura.celery import app as celery_app
from routing.cache.embedders import get_embedder
from routing.cache.models import CacheEntry
from routing.cache.semantic import (
    MAX_PROMPT_CHARS,
    semantic_expire,
    semantic_hit_record,
    semantic_lookup,
    semantic_purge,
    semantic_store,
)
from routing.cache.tasks import expire_semantic_cache
from tenants.models import Tenant

pytestmark = pytest.mark.django_db


def unit(*head: float, dim: int = 256) -> list[float]:
    values = [*head, *([0.0] * (dim - len(head)))]
    norm = math.sqrt(sum(v * v for v in values))
    return [v / norm for v in values]


def answer(text: str = "cached", finish: str = "stop") -> dict[str, Any]:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": finish}
        ],
    }


def store(tenant: Tenant, prompt: str, embedding: list[float], **kw: Any) -> CacheEntry:
    kw.setdefault("partition", "p" * 64)
    kw.setdefault("model", "openai/gpt-4.1-mini")
    kw.setdefault("embedder", "wordllama")
    kw.setdefault("ttl_seconds", 3600)
    entry = semantic_store(
        tenant_id=tenant.pk, prompt=prompt, embedding=embedding, response=answer(prompt), **kw
    )
    assert entry is not None
    return entry


def lookup(tenant: Tenant, prompt: str, embedding: list[float], **kw: Any) -> Any:
    kw.setdefault("partition", "p" * 64)
    kw.setdefault("embedder", "wordllama")
    kw.setdefault("threshold", 0.9)
    return semantic_lookup(tenant_id=tenant.pk, prompt=prompt, embedding=embedding, **kw)


def test_an_entry_is_never_returned_outside_its_tenant_partition_and_embedder(
    acme: Tenant, globex: Tenant
) -> None:
    v = unit(1.0, 0.5)
    entry = store(acme, "What is our refund policy?", v, partition="P")

    same = lookup(acme, "What is our refund policy?", v, partition="P")
    assert same.entry == entry and same.similarity == pytest.approx(1.0)
    # An identical vector and prompt elsewhere: not even a candidate (a dry run shows nothing).
    for other in (
        lookup(globex, "What is our refund policy?", v, partition="P"),
        lookup(acme, "What is our refund policy?", v, partition="Q"),
        lookup(acme, "What is our refund policy?", v, partition="P", embedder="other"),
    ):
        assert (other.entry, other.candidate, other.similarity) == (None, None, None)


def test_a_hit_needs_the_threshold(acme: Tenant) -> None:
    entry = store(acme, "How do I reset my password?", unit(1.0, 0.0))
    near = unit(1.0, 0.4)  # cosine 0.928

    miss = lookup(acme, "How can I reset my password?", near, threshold=0.95)
    hit = lookup(acme, "How can I reset my password?", near, threshold=0.9)

    assert (miss.entry, miss.refused_by, miss.candidate) == (None, "threshold", entry)
    assert miss.similarity == pytest.approx(1 / math.sqrt(1.16))
    assert hit.entry == entry and hit.refused_by is None


def test_a_guard_refuses_the_nearest_entry_and_names_itself(acme: Tenant) -> None:
    wrong = store(acme, "How do I convert USD to EUR?", unit(1.0, 0.1))
    right = store(acme, "Convert EUR to USD, how?", unit(1.0, 0.3))
    prompt, vector = "How do I convert EUR to USD?", unit(1.0, 0.1)

    refused = lookup(acme, prompt, vector)
    unguarded = lookup(acme, prompt, vector, guards=False)
    further = lookup(acme, prompt, vector, candidates=2)

    # By default only the nearest may answer: refused, nothing further away is served.
    assert (refused.entry, refused.refused_by, refused.candidate) == (None, "unit", wrong)
    assert refused.similarity == pytest.approx(1.0)
    assert unguarded.entry == wrong
    assert further.entry == right and further.candidate == wrong


def test_expired_entries_are_not_served_and_the_beat_task_deletes_them(acme: Tenant) -> None:
    now = timezone.now()
    store(acme, "old", unit(1.0), ttl_seconds=60, now=now - timedelta(seconds=61))
    live = store(acme, "new", unit(1.0, 0.01), ttl_seconds=60)

    assert lookup(acme, "new", unit(1.0)).entry == live
    assert semantic_expire(now=now) == {"expired": 1, "capped": 0}
    assert semantic_expire(now=now) == {"expired": 0, "capped": 0}
    assert list(CacheEntry.objects.values_list("prompt", flat=True)) == ["new"]
    later = timezone.now() + timedelta(seconds=61)
    assert lookup(acme, "new", unit(1.0), now=later).entry is None
    CacheEntry.objects.update(expires_at=now)
    assert expire_semantic_cache() == {"expired": 1, "capped": 0}


def test_the_cap_keeps_each_tenants_newest_entries(acme: Tenant, globex: Tenant) -> None:
    for i in range(5):
        store(acme, f"acme {i}", unit(1.0, i))
    for i in range(2):
        store(globex, f"globex {i}", unit(1.0, i))

    assert semantic_expire(max_entries_per_tenant=3) == {"expired": 0, "capped": 2}
    assert semantic_expire(max_entries_per_tenant=3, caps={globex.pk: 1}) == {
        "expired": 0,
        "capped": 1,
    }
    left = sorted(CacheEntry.objects.values_list("prompt", flat=True))
    assert left == ["acme 2", "acme 3", "acme 4", "globex 1"]


def test_purge_deletes_one_tenants_entries_all_or_by_model(acme: Tenant, globex: Tenant) -> None:
    store(acme, "a", unit(1.0), model="m1")
    store(acme, "b", unit(1.0), model="m2")
    store(globex, "c", unit(1.0), model="m1")

    assert semantic_purge(tenant_id=acme.pk, model="m1") == 1
    assert semantic_purge(tenant_id=acme.pk) == 1
    assert list(CacheEntry.objects.values_list("prompt", flat=True)) == ["c"]


def test_only_complete_answers_are_stored_and_a_prompt_is_stored_once(acme: Tenant) -> None:
    base: dict[str, Any] = {
        "tenant_id": acme.pk, "partition": "P", "model": "m", "prompt": "hi",
        "embedding": unit(1.0), "embedder": "wordllama",
    }  # fmt: skip
    assert semantic_store(**base, response=answer(finish="length"), ttl_seconds=60) is None
    assert semantic_store(**base, response={"choices": []}, ttl_seconds=60) is None
    assert semantic_store(**base, response=answer(), ttl_seconds=0) is None
    assert not CacheEntry.objects.exists()

    first = semantic_store(
        **base, response=answer("one"), ttl_seconds=60, prompt_tokens=12,
        completion_tokens=30, cost_usd=Decimal("0.0004"),
    )  # fmt: skip
    second = semantic_store(**base, response=answer("two", "tool_calls"), ttl_seconds=60)
    assert first is not None and second is not None
    assert list(CacheEntry.objects.values_list("pk", flat=True)) == [second.pk]


def test_long_prompts_are_neither_stored_nor_matched(acme: Tenant) -> None:
    long = "Summarise this: " + "lorem ipsum " * 200
    assert len(long) > MAX_PROMPT_CHARS
    assert semantic_store(
        tenant_id=acme.pk, partition="P", model="m", prompt=long, embedding=unit(1.0),
        embedder="wordllama", response=answer(), ttl_seconds=60,
    ) is None  # fmt: skip
    store(acme, "short", unit(1.0), partition="P")
    miss = lookup(acme, long, unit(1.0), partition="P")
    assert (miss.entry, miss.refused_by) == (None, "length")


def test_vectors_of_each_size_go_to_their_column_and_are_found(acme: Tenant) -> None:
    for dim, column in ((256, "embedding"), (384, "embedding_384"), (8, "embedding_1536")):
        v = unit(1.0, 0.2, dim=dim)
        entry = store(acme, f"q{dim}", v, embedder=f"e{dim}")
        row = CacheEntry.objects.get(pk=entry.pk)
        assert getattr(row, column) is not None
        assert lookup(acme, f"q{dim}", v, embedder=f"e{dim}").entry == entry
    with pytest.raises(ValueError, match="at most 1536"):
        store(acme, "too wide", unit(1.0, dim=3072))


def test_a_served_hit_is_counted(acme: Tenant) -> None:
    entry = store(acme, "hi", unit(1.0))
    semantic_hit_record(entry_id=entry.pk)
    semantic_hit_record(entry_id=entry.pk)
    entry.refresh_from_db()
    assert entry.hits == 2 and entry.last_hit_at is not None


def test_the_default_embedder_end_to_end(acme: Tenant) -> None:
    embedder = get_embedder()
    cached = "How do I convert 100 USD to EUR?"
    store(acme, cached, embedder.embed([cached])[0], embedder=embedder.name)

    def ask(text: str) -> Any:
        return lookup(acme, text, embedder.embed([text])[0], embedder=embedder.name, threshold=0.8)

    assert ask("how do i convert 100 usd to eur").hit
    # Same words, the other way: the embedding cannot tell, the guard does.
    swapped = ask("How do I convert 100 EUR to USD?")
    assert not swapped.hit and swapped.refused_by == "unit" and swapped.similarity > 0.99


def test_the_embeddings_have_cosine_hnsw_indexes_and_the_beat_schedule_exists() -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT indexdef FROM pg_indexes WHERE tablename = 'routing_cacheentry'"
            " AND indexdef LIKE '%%hnsw%%'"
        )
        defs = sorted(row[0] for row in cursor.fetchall())
    assert len(defs) == 3 and all("vector_cosine_ops" in d for d in defs)
    task = PeriodicTask.objects.get(task="routing.cache.tasks.expire_semantic_cache")
    assert task.interval is not None and (task.interval.every, task.interval.period) == (
        10,
        "minutes",
    )
    celery_app.loader.import_default_modules()
    assert task.task in celery_app.tasks
