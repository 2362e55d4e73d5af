"""What the outcome memory knows of a prompt: its text's embedding and hashed words.

The dense part is the registry's default embedder (wordllama, 256 dims); the lexical part
is the set of the prompt's words and numbers hashed into ``LEXICAL_BUCKETS`` buckets
(crc32), which the ridge prior sees as a bag of words. Measured by bench/route_quality.py:
on GSM8K the words (numbers, units) carry most of what predicts a weak model's failure,
on MMLU the embedding does; together they beat either alone. Neither keeps the text.
"""

from __future__ import annotations

import hashlib
import re
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

LEXICAL_BUCKETS = 1024
EMBEDDER = "wordllama"
DIM = 256
_WORDS = re.compile(r"[a-z]+|[0-9]+")
MAX_PROMPT_CHARS = 8000  # the embedder reads 512 tokens; the words of the head are enough


def prompt_text(messages: Any) -> str:
    """The text learning keys on: the last user turn (as the semantic cache does)."""
    if not isinstance(messages, Sequence) or isinstance(messages, str):
        return ""
    for message in reversed(messages):
        if isinstance(message, Mapping) and message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, str):
                return content
            if isinstance(content, list):
                parts = [
                    p.get("text", "")
                    for p in content
                    if isinstance(p, Mapping) and p.get("type") == "text"
                ]
                return "\n".join(x for x in parts if isinstance(x, str))
    return ""


def lexical_buckets(text: str) -> list[int]:
    """Sorted distinct buckets of the text's words (lower-cased letters or digits runs)."""
    words = set(_WORDS.findall(text[:MAX_PROMPT_CHARS].lower()))
    return sorted({zlib.crc32(w.encode()) % LEXICAL_BUCKETS for w in words})


def lexical_matrix(rows: Sequence[Sequence[int]]) -> npt.NDArray[np.float32]:
    """Unit-length bag-of-buckets rows (a bucket counts once)."""
    out = np.zeros((len(rows), LEXICAL_BUCKETS), np.float32)
    for i, buckets in enumerate(rows):
        if buckets:
            out[i, list(buckets)] = 1.0 / np.sqrt(len(buckets))
    return out


def ridge_features(
    dense: npt.NDArray[np.float32], lexical: npt.NDArray[np.float32]
) -> npt.NDArray[np.float32]:
    """The ridge prior's input: both parts side by side, scaled so the row stays unit."""
    return np.hstack([dense, lexical]) * np.float32(1.0 / np.sqrt(2.0))


def embed(texts: Sequence[str]) -> list[list[float]]:
    from routing.cache.embedders import get_embedder

    return get_embedder(EMBEDDER).embed([t[:MAX_PROMPT_CHARS] for t in texts])


def prompt_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class PromptFeatures:
    """One prompt as the memory and the predictor see it."""

    embedding: list[float]
    lexical: list[int]
    prompt_hash: str

    def ridge_vector(self) -> npt.NDArray[np.float32]:
        dense = np.asarray([self.embedding], np.float32)
        return ridge_features(dense, lexical_matrix([self.lexical]))[0]


def prompt_features(text: str) -> PromptFeatures:
    return PromptFeatures(embed([text])[0], lexical_buckets(text), prompt_hash(text))


def base_key(candidate_key: str) -> str:
    """The catalog key outcomes are stored under: a candidate key without its endpoint."""
    return candidate_key.partition("@")[0]
