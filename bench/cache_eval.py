"""Quality of the semantic cache, through its real path: side ``a`` of every pair is stored
with ``semantic_store`` into Postgres/pgvector, side ``b`` is looked up with
``semantic_lookup`` (HNSW cosine inside one partition, then the guards).

    .venv/bin/python bench/cache_eval.py [--data DIR] [--embedders wordllama,minilm]

Data: ``questions.jsonl``, ``probes.jsonl`` and ``pairs.jsonl`` from ``../shared/data/cache``
(next to the repository; ``--data`` or ``AURA_CACHE_EVAL_DATA`` to point elsewhere). It is
read, never copied. Runs in a throwaway database on the embedded Postgres (or
DATABASE_URL's server), created and dropped by this script.

Two runs per file, per embedder, per threshold, guards on and off:

* own partition: each pair in a partition of its own (what one cached prompt meets).
  ``para`` = paraphrases (label 1) answered from their ``a``; ``false`` = negatives
  (label 0) answered from their ``a``, a wrong answer.
* one partition: every distinct ``a`` of the file in ONE partition, each distinct ``b``
  looked up among all of them. ``para1`` = b's with a labelled paraphrase that got the
  answer of one; ``wrong1`` = lookups answered by an entry that is neither labelled as a
  paraphrase of b nor b's own text (another entry's answer), per lookup.

Also: embedding ms per sentence (one text per call, as the gateway embeds) and the
lookup's ms p50 (one query + guards, in the one-partition run of questions.jsonl).

The guards were written while reading questions.jsonl's and probes.jsonl's negatives, so
their figures there are optimistic; pairs.jsonl (mined negatives, ~10 % of them actually
paraphrases, per its README) was not used to write them, and is the held-out check.

The last lines apply the issue's rule (false hits <= 1 % on questions and probes, the most
paraphrase hits), which picks the lowest threshold tried: below ~0.75 the guards carry all
the precision on the hand-written sets, but pairs.jsonl's false hits climb (wordllama: 1.3 %
at 0.75, 2.1 % at 0.70, 6.2 % at 0.50), the signature of guards tuned to what they were
shown. The defaults (routing.cache.embedders.THRESHOLDS) therefore also keep pairs.jsonl's
own-partition false hits near 1 %: wordllama 0.75, minilm 0.85.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "aura.settings")
os.environ.setdefault("AURA_TEST_DATABASE_NAME", f"cache_eval_{os.getpid()}")

FILES = ("questions", "probes", "pairs")
THRESHOLDS = (0.50, 0.55, 0.60, 0.65, 0.70, 0.75, 0.80, 0.85, 0.90, 0.95, 0.98)
LOW = -1.0  # threshold that lets every candidate through, to read similarities
RESPONSE = {
    "id": "chatcmpl-eval",
    "object": "chat.completion",
    "created": 0,
    "model": "eval",
    "choices": [
        {"index": 0, "message": {"role": "assistant", "content": ""}, "finish_reason": "stop"}
    ],
}
MAX_FALSE = 0.01  # the bar for false hits on questions.jsonl and probes.jsonl


@dataclass
class Result:
    """Counts for one (file, embedder, threshold, guards) cell."""

    para: int = 0
    positives: int = 0
    false: int = 0
    negatives: int = 0
    para1: int = 0
    positives1: int = 0
    wrong1: int = 0
    lookups1: int = 0
    refused: dict[str, int] = field(default_factory=lambda: defaultdict(int))

    def rate(self, n: int, d: int) -> str:
        return f"{100 * n / d:5.1f}" if d else "    -"


def load(data: Path, name: str) -> list[dict[str, Any]]:
    path = data / f"{name}.jsonl"
    with path.open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def response_for(text: str) -> dict[str, Any]:
    body = json.loads(json.dumps(RESPONSE))
    body["choices"][0]["message"]["content"] = text  # the "answer" names its prompt
    return body


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    default_data = os.environ.get("AURA_CACHE_EVAL_DATA", str(ROOT.parent / "shared/data/cache"))
    parser.add_argument("--data", default=default_data)
    parser.add_argument("--embedders", default="wordllama,minilm")
    parser.add_argument("--files", default=",".join(FILES))
    args = parser.parse_args()
    data = Path(args.data)
    if not data.is_dir():
        print(f"no data folder at {data} (use --data or AURA_CACHE_EVAL_DATA)", file=sys.stderr)
        return 2

    import django

    django.setup()
    from django.db import connection

    old_name = connection.settings_dict["NAME"]
    connection.creation.create_test_db(verbosity=0, autoclobber=True, serialize=False)
    try:
        return run(data, args.embedders.split(","), args.files.split(","))
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)


def run(data: Path, embedder_names: list[str], files: list[str]) -> int:
    from routing.cache.embedders import EmbedderUnavailable, get_embedder
    from tenants.services import tenant_create

    tenant = tenant_create(name="Cache eval", slug="cache-eval")
    datasets = {name: load(data, name) for name in files}
    summary: list[str] = []
    for embedder_name in embedder_names:
        try:
            embedder = get_embedder(embedder_name)
        except EmbedderUnavailable as exc:
            print(f"\n## {embedder_name}: unavailable ({exc})")
            continue
        texts = sorted({r[side] for rows in datasets.values() for r in rows for side in "ab"})
        sample = texts[:200]
        start = time.perf_counter()
        for text in sample:
            embedder.embed([text])
        embed_ms = (time.perf_counter() - start) / len(sample) * 1000
        vectors = dict(zip(texts, embedder.embed(texts), strict=True))
        print(f"\n## embedder {embedder.name} (dim {embedder.dim}): {embed_ms:.3f} ms/sentence")
        results: dict[tuple[str, float, bool], Result] = defaultdict(Result)
        lookup_ms: list[float] = []
        for file, rows in datasets.items():
            evaluate_own(file, rows, tenant.pk, embedder.name, vectors, results)
            evaluate_shared(file, rows, tenant.pk, embedder.name, vectors, results, lookup_ms)
        p50 = statistics.median(lookup_ms) if lookup_ms else float("nan")
        print(f"lookup (query + guards) p50 {p50:.2f} ms; with embedding {p50 + embed_ms:.2f} ms")
        print_table(results, files)
        choice = choose(results)
        if choice:
            th, r_q, r_p = choice
            summary.append(
                f"{embedder.name}: threshold {th:.2f}: questions para {r_q.para}/{r_q.positives}"
                f" ({100 * r_q.para / r_q.positives:.1f} %), false {r_q.false}/{r_q.negatives};"
                f" wrong1 {r_q.wrong1}/{r_q.lookups1};"
                f" probes para {r_p.para}/{r_p.positives}, false {r_p.false}/{r_p.negatives},"
                f" wrong1 {r_p.wrong1}/{r_p.lookups1};"
                f" embed {embed_ms:.2f} ms + lookup p50 {p50:.2f} ms"
            )
    if summary:
        print(
            "\n## best threshold per embedder (guards on; on questions and probes: false hits"
            " <= 1 % in own partitions, wrong hits <= 1 % in one partition)"
        )
        for line in summary:
            print("  " + line)
    return 0


def evaluate_own(
    file: str,
    rows: list[dict[str, Any]],
    tenant_id: int,
    embedder: str,
    vectors: dict[str, list[float]],
    results: dict[tuple[str, float, bool], Result],
) -> None:
    from routing.cache.semantic import semantic_lookup, semantic_store

    for i, row in enumerate(rows):
        partition = f"own:{file}:{embedder}:{i}"
        semantic_store(
            tenant_id=tenant_id, partition=partition, model="eval", prompt=row["a"],
            embedding=vectors[row["a"]], embedder=embedder, response=response_for(row["a"]),
            ttl_seconds=3600,
        )  # fmt: skip
        plain = semantic_lookup(
            tenant_id=tenant_id, partition=partition, prompt=row["b"],
            embedding=vectors[row["b"]], embedder=embedder, threshold=LOW, guards=False,
        )  # fmt: skip
        guarded = semantic_lookup(
            tenant_id=tenant_id, partition=partition, prompt=row["b"],
            embedding=vectors[row["b"]], embedder=embedder, threshold=LOW,
        )  # fmt: skip
        similarity = plain.similarity if plain.similarity is not None else -1.0
        for th in THRESHOLDS:
            for guards, lookup in ((False, plain), (True, guarded)):
                r = results[(file, th, guards)]
                hit = similarity >= th and lookup.hit
                if row["label"] == 1:
                    r.positives += 1
                    r.para += hit
                else:
                    r.negatives += 1
                    r.false += hit
                    if guards and similarity >= th and not lookup.hit and lookup.refused_by:
                        r.refused[lookup.refused_by] += 1


def evaluate_shared(
    file: str,
    rows: list[dict[str, Any]],
    tenant_id: int,
    embedder: str,
    vectors: dict[str, list[float]],
    results: dict[tuple[str, float, bool], Result],
    lookup_ms: list[float],
) -> None:
    from routing.cache.semantic import semantic_lookup, semantic_store

    partition = f"shared:{file}:{embedder}"
    for a in sorted({r["a"] for r in rows}):
        semantic_store(
            tenant_id=tenant_id, partition=partition, model="eval", prompt=a,
            embedding=vectors[a], embedder=embedder, response=response_for(a), ttl_seconds=3600,
        )  # fmt: skip
    stored = {r["a"] for r in rows}
    paraphrases: dict[str, set[str]] = defaultdict(set)
    for r in rows:
        paraphrases.setdefault(r["b"], set())
        if r["label"] == 1:
            paraphrases[r["b"]].add(r["a"])
        if r["b"] in stored:  # the same text was cached: its own answer is right
            paraphrases[r["b"]].add(r["b"])
    for b, good in paraphrases.items():
        for th in THRESHOLDS:
            for guards in (False, True):
                start = time.perf_counter()
                lookup = semantic_lookup(
                    tenant_id=tenant_id, partition=partition, prompt=b, embedding=vectors[b],
                    embedder=embedder, threshold=th, guards=guards,
                )  # fmt: skip
                if file == "questions" and guards:
                    lookup_ms.append((time.perf_counter() - start) * 1000)
                cell = results[(file, th, guards)]
                cell.lookups1 += 1
                answered = lookup.entry.prompt if lookup.entry is not None else None
                if good:
                    cell.positives1 += 1
                    cell.para1 += answered in good
                if answered is not None and answered not in good:
                    cell.wrong1 += 1


def print_table(results: dict[tuple[str, float, bool], Result], files: list[str]) -> None:
    for file in files:
        print(f"\n### {file}")
        print("thr   guards | own: para%  false% | one partition: para1%  wrong1% | refused by")
        for th in THRESHOLDS:
            for guards in (False, True):
                r = results[(file, th, guards)]
                top = sorted(r.refused.items(), key=lambda kv: -kv[1])[:4]
                refused = ", ".join(f"{k} {v}" for k, v in top)
                print(
                    f"{th:.2f}  {'on ' if guards else 'off'}    |"
                    f"      {r.rate(r.para, r.positives)}   {r.rate(r.false, r.negatives)} |"
                    f"                {r.rate(r.para1, r.positives1)}    "
                    f"{r.rate(r.wrong1, r.lookups1)} | {refused}"
                )


def choose(results: dict[tuple[str, float, bool], Result]) -> tuple[float, Result, Result] | None:
    best: tuple[float, Result, Result] | None = None
    for th in THRESHOLDS:
        q, p = results.get(("questions", th, True)), results.get(("probes", th, True))
        if q is None or p is None or not q.negatives or not p.negatives:
            continue
        if q.false / q.negatives > MAX_FALSE or p.false / p.negatives > MAX_FALSE:
            continue
        if q.wrong1 / q.lookups1 > MAX_FALSE or p.wrong1 / p.lookups1 > MAX_FALSE:
            continue  # another entry's answer in the one-partition runs
        if best is None or q.para > best[1].para:
            best = (th, q, p)
    return best


if __name__ == "__main__":
    sys.exit(main())
