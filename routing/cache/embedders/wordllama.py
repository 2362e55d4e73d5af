"""WordLlama (l2_supercat, 256 dims): static token embeddings, mean-pooled.

The weights (16 MB safetensors) and the tokenizer ship inside the ``wordllama`` wheel; they
are read from the installed package, never downloaded. WordLlama's own loader looks for the
tokenizer in a folder the wheel does not have and would fall back to the Hugging Face hub,
and importing its inference module configures the root logger, so this reads the two files
directly and pools the same way (mean over tokens, then L2 normalisation).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from routing.cache.embedders.base import Embedder, EmbedderUnavailable, unit_rows

WEIGHTS = "weights/l2_supercat_256.safetensors"
TOKENIZER = "tokenizers/l2_supercat_tokenizer_config.json"
MAX_TOKENS = 512  # a prompt's tail beyond this adds little to a mean and costs time


def package_dir(package: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or spec.origin is None:
        raise EmbedderUnavailable(f"the {package!r} package is not installed")
    return Path(spec.origin).parent


class WordLlamaEmbedder(Embedder):
    name = "wordllama"
    dim = 256

    def __init__(self) -> None:
        from safetensors import safe_open
        from tokenizers import Tokenizer

        root = package_dir("wordllama")
        weights, tokenizer = root / WEIGHTS, root / TOKENIZER
        if not (weights.exists() and tokenizer.exists()):
            raise EmbedderUnavailable(f"wordllama's bundled files are missing under {root}")
        with safe_open(str(weights), framework="np") as f:
            self._table = np.ascontiguousarray(f.get_tensor("embedding.weight"), np.float32)
        self._tokenizer = Tokenizer.from_file(str(tokenizer))
        self._tokenizer.no_padding()
        self._tokenizer.enable_truncation(MAX_TOKENS)
        self.dim = int(self._table.shape[1])

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        out = np.zeros((len(texts), self.dim), np.float32)
        encodings = self._tokenizer.encode_batch(list(texts), add_special_tokens=False)
        for i, enc in enumerate(encodings):
            if enc.ids:
                ids = np.minimum(np.asarray(enc.ids, np.int64), len(self._table) - 1)
                out[i] = self._table[ids].mean(axis=0)
        return unit_rows(out)
