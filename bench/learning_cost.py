"""What learned routing adds to a request, and what a big memory costs a worker.

    .venv/bin/python bench/learning_cost.py

1. Per request (concurrency 1, in-process, warm): the prompt's features (wordllama
   embedding + hashed words) and the prediction for every model, on the GSM8K + MMLU
   train split of ../shared/data/routing as the memory; p50 / p95 over the test prompts.
2. A tenant with 1M outcomes: 100,000 synthetic prompts x 10 models (clustered unit
   vectors), fitted as the refit task fits them: fit time, the predictor's size in memory
   (what each worker holds), the bytes in Redis, and the prediction time.
"""

from __future__ import annotations

import csv
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DATA = Path(os.environ.get("ROUTING_DATA", ROOT.parent / "shared" / "data" / "routing"))

from routing.learning import features, predict, store  # noqa: E402


def percentiles(xs: list[float]) -> str:
    a = np.asarray(xs) * 1e6
    return f"p50 {np.percentile(a, 50):.0f} us, p95 {np.percentile(a, 95):.0f} us"


def real_memory() -> None:
    rows = list(csv.DictReader(open(DATA / "routellm_gsm8k_mmlu.csv")))
    train = [r for r in rows if r["split"] == "train"]
    test = sorted({r["prompt"] for r in rows if r["split"] == "test"})
    texts = [r["prompt"] for r in train]
    dense = np.asarray(features.embed(texts), np.float32)
    hashes = [features.prompt_hash(t) for t in texts]
    first, qsum, count, models = predict.group_points(
        [r["model"] for r in train], [float(r["quality"]) for r in train], hashes
    )
    lex = features.lexical_matrix([features.lexical_buckets(texts[i]) for i in first])
    p = predict.fit(dense[first], features.ridge_features(dense[first], lex), qsum, count, models)
    feats, preds, total = [], [], []
    for t in test[:1000] * 2:
        t0 = time.perf_counter()
        f = features.prompt_features(t)
        t1 = time.perf_counter()
        p.predict(f.embedding, f.ridge_vector())
        t2 = time.perf_counter()
        feats.append(t1 - t0)
        preds.append(t2 - t1)
        total.append(t2 - t0)
    print(f"memory: {len(train)} outcomes, {p.size} points, {len(models)} models")
    print(f"features: {percentiles(feats)}")
    print(f"prediction: {percentiles(preds)}")
    print(f"features + prediction: {percentiles(total)}")


def million() -> None:
    rng = np.random.default_rng(0)
    n, m, d, lex_d = 100_000, 10, features.DIM, features.LEXICAL_BUCKETS
    centres = rng.standard_normal((500, d)).astype(np.float32)
    dense = centres[rng.integers(0, 500, n)] + 0.3 * rng.standard_normal((n, d)).astype(np.float32)
    dense /= np.linalg.norm(dense, axis=1, keepdims=True)
    lex = features.lexical_matrix([rng.integers(0, lex_d, 12).tolist() for _ in range(n)])
    qsum = (rng.random((n, m)) < 0.7).astype(np.float32)
    count = np.ones((n, m), np.float32)
    t0 = time.perf_counter()
    p = predict.fit(
        dense, features.ridge_features(dense, lex), qsum, count, [f"m{j}" for j in range(m)]
    )
    fit_s = time.perf_counter() - t0
    blob = store.dumps(p)
    times = []
    for i in range(2000):
        v = dense[i]
        x = features.ridge_features(dense[i : i + 1], lex[i : i + 1])[0]
        t = time.perf_counter()
        p.predict(v, x)
        times.append(time.perf_counter() - t)
    print(
        f"1M outcomes ({n} prompts x {m} models): fit {fit_s:.1f} s, {p.size} points; "
        f"per worker {p.nbytes() / 2**20:.1f} MiB; Redis blob {len(blob) / 2**20:.1f} MiB; "
        f"prediction {percentiles(times)}"
    )


if __name__ == "__main__":
    real_memory()
    million()
