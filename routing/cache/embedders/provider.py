"""A provider's embedding model, called through AURA's own adapters (``Adapter.embed``:
an OpenAI-shaped /v1/embeddings request and response, whatever the wire format)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from routing.cache.embedders.base import Embedder, unit_rows

if TYPE_CHECKING:
    from routing.providers.base import Adapter, ProviderTarget

# The widest vector column of CacheEntry: narrower provider vectors are zero-padded to it
# (cosine is unchanged by trailing zeros); wider ones are asked for in this size
# (OpenAI's ``dimensions``) or refused.
MAX_DIM = 1536


class ProviderEmbedder(Embedder):
    """``adapter`` + ``target`` (base URL, key, upstream model) as the executor resolves them;
    ``dim`` is the model's output size (checked on every answer). ``name`` defaults to
    ``provider:<upstream model>@<dim>`` so entries of two models are never compared."""

    local: ClassVar[bool] = False

    def __init__(
        self,
        *,
        adapter: Adapter,
        target: ProviderTarget,
        dim: int,
        name: str | None = None,
        request_dimensions: bool = False,
    ) -> None:
        if not 1 <= dim <= MAX_DIM:
            raise ValueError(f"dim must be 1..{MAX_DIM}, got {dim}")
        self.adapter = adapter
        self.target = target
        self.dim = dim
        self.request_dimensions = request_dimensions
        self.name = name or f"provider:{target.upstream_model}@{dim}"

    async def aembed(self, texts: Sequence[str]) -> list[list[float]]:
        if not texts:
            return []
        body: dict[str, Any] = {"model": self.target.upstream_model, "input": list(texts)}
        if self.request_dimensions:
            body["dimensions"] = self.dim
        answer = await self.adapter.embed(self.target, body)
        rows = sorted(answer["data"], key=lambda item: item.get("index", 0))
        if len(rows) != len(texts):
            raise ValueError(f"{self.name}: {len(rows)} embeddings for {len(texts)} texts")
        matrix = np.asarray([row["embedding"] for row in rows], np.float32)
        if matrix.ndim != 2 or matrix.shape[1] != self.dim:
            raise ValueError(f"{self.name}: expected {self.dim} dimensions, got {matrix.shape[1:]}")
        return unit_rows(matrix)

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        """For sync callers outside an event loop (eval scripts, Celery tasks)."""
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return asyncio.run(self.aembed(texts))
        raise RuntimeError("ProviderEmbedder.embed() inside an event loop: await aembed()")
