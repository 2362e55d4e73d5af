"""Semantic cache entries: one answer, the last user turn it answered, and its embedding."""

from __future__ import annotations

from typing import ClassVar

from django.db import models
from pgvector.django import HnswIndex, VectorField

from tenants.models import TenantOwned

# One vector column per embedding size, each with its own HNSW index (a pgvector column has
# one fixed dimension per index): 256 = wordllama (the default), 384 = MiniLM, 1536 = a
# provider's model (narrower provider vectors are zero-padded to 1536, which leaves cosine
# unchanged). A row fills exactly the column of its embedder; HNSW skips the NULLs.
VECTOR_COLUMNS: dict[int, str] = {256: "embedding", 384: "embedding_384", 1536: "embedding_1536"}


def vector_column(dim: int) -> tuple[str, int]:
    """The column that stores vectors of ``dim`` floats, and the size they are padded to."""
    if dim in VECTOR_COLUMNS:
        return VECTOR_COLUMNS[dim], dim
    if dim < 1536:
        return VECTOR_COLUMNS[1536], 1536
    raise ValueError(f"no vector column holds {dim} dimensions (at most 1536)")


class CacheEntry(TenantOwned):
    """A cached chat completion. ``partition`` is the hash of everything but the last user
    turn that changes an answer (model or "auto"+policy version, system prompt, earlier
    turns, tools, response format, sampling parameters): lookups never leave it."""

    partition = models.CharField(max_length=64)
    model = models.CharField(max_length=260)  # resolved model key, or "auto"
    provider = models.CharField(max_length=64, blank=True)  # who answered originally
    prompt = models.TextField()  # the last user turn
    embedder = models.CharField(max_length=100)
    embedding = VectorField(dimensions=256, null=True, blank=True)
    embedding_384 = VectorField(dimensions=384, null=True, blank=True)
    embedding_1536 = VectorField(dimensions=1536, null=True, blank=True)
    response = models.JSONField()  # the OpenAI chat.completion body
    prompt_tokens = models.PositiveIntegerField(default=0)
    completion_tokens = models.PositiveIntegerField(default=0)
    cost_usd = models.DecimalField(max_digits=18, decimal_places=10, default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(db_index=True)
    hits = models.PositiveIntegerField(default=0)
    last_hit_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        app_label = "routing"
        verbose_name_plural = "cache entries"
        indexes: ClassVar[list[models.Index]] = [
            # The lookup's filter, and the planner's exact path for small partitions.
            models.Index(
                fields=["tenant", "partition", "embedder", "expires_at"],
                name="cache_partition_idx",
            ),
            models.Index(fields=["tenant", "-created_at"], name="cache_tenant_created_idx"),
            models.Index(fields=["tenant", "model"], name="cache_tenant_model_idx"),
            HnswIndex(
                name="cache_embedding_hnsw",
                fields=["embedding"],
                m=16,
                ef_construction=64,
                opclasses=["vector_cosine_ops"],
            ),
            HnswIndex(
                name="cache_embedding_384_hnsw",
                fields=["embedding_384"],
                m=16,
                ef_construction=64,
                opclasses=["vector_cosine_ops"],
            ),
            HnswIndex(
                name="cache_embedding_1536_hnsw",
                fields=["embedding_1536"],
                m=16,
                ef_construction=64,
                opclasses=["vector_cosine_ops"],
            ),
        ]

    def __str__(self) -> str:
        return f"{self.model}: {self.prompt[:60]}"
