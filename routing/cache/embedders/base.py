"""The embedder contract: texts in, L2-normalised vectors of a fixed dimension out."""

from __future__ import annotations

import abc
from collections.abc import Sequence
from typing import ClassVar

import numpy as np
import numpy.typing as npt


class EmbedderUnavailable(RuntimeError):
    """The embedder cannot run here (its package or model files are not installed)."""


class Embedder(abc.ABC):
    """``name`` is stored with every cache entry: vectors of different embedders are never
    compared. ``dim`` is fixed per instance."""

    name: str
    dim: int
    local: ClassVar[bool] = True  # runs in-process (no network), cheap enough for the hot path

    @abc.abstractmethod
    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        """One unit-length vector of ``dim`` floats per text, in order (a text with no
        tokens may give the zero vector, which matches nothing)."""

    async def aembed(self, texts: Sequence[str]) -> list[list[float]]:
        """The same, for async callers. Local embedders answer in well under a millisecond,
        so they run inline; remote ones override this and never block the loop."""
        return self.embed(texts)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name} dim={self.dim}>"


def unit_rows(matrix: npt.NDArray[np.float32]) -> list[list[float]]:
    """Rows scaled to unit length (zero rows stay zero), as plain lists for pgvector."""
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    np.divide(matrix, norms, out=matrix, where=norms > 0)
    return matrix.astype(np.float32).tolist()
