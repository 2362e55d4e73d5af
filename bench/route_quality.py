"""Learned routing's quality/cost trade-off through the real API (issue 12, "Measured").

    .venv/bin/python bench/route_quality.py                  # all three datasets
    .venv/bin/python bench/route_quality.py --dataset gsm8k  # one

Reads ../shared/data/routing/ (see its README: RouteLLM's GSM8K and MMLU pairs, AlpacaEval
with 9 models; train/test splits fixed there) from where it lies; nothing is copied.

Per dataset, on AURA's own embedded Postgres + Redis (var/route-quality), one uvicorn
worker and one Celery worker:

1. a tenant whose catalog is the dataset's models at the README's prices, each model's
   per-category catalog quality the mean of its train outcomes in that category (the
   engine's classifier assigns categories), learning on;
2. the train split's outcomes imported through ``POST /api/v1/router/outcomes/import``
   (JSON lines, a Celery job polled at ``.../import/<id>``);
3. every test prompt routed through ``POST /api/v1/route/batch`` under each objective,
   a sweep of ``quality_target`` and a sweep of weights, with learning on and off.

A decision's quality and cost are the dataset's for that prompt and model. "Cost at 95 %"
is the least cost at which the router's curve (mixing two neighbouring points of a sweep,
as a random split of traffic would) reaches 0.95 x the best single model's mean test
quality, relative to that model's cost. Baselines beside it: the zero router (the
cheapest mix of single models), a TF-IDF kNN router (k=20, the same target sweep, fitted
on the train split) and the per-prompt oracle.
"""

from __future__ import annotations

import argparse
import collections
import csv
import json
import math
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("ROUTING_DATA", ROOT.parent / "shared" / "data" / "routing"))
PY = sys.executable
DATASETS = {
    "gsm8k": ("routellm_gsm8k_mmlu.csv", "gsm8k"),
    "mmlu": ("routellm_gsm8k_mmlu.csv", "mmlu"),
    "alpaca_eval": ("alpaca_eval.csv", "alpaca_eval"),
}
TARGETS = [round(x, 3) for x in np.linspace(0.3, 1.0, 36)]
WEIGHT_SWEEP = [round(x, 3) for x in np.linspace(0.0, 1.0, 21)]
OBJECTIVES = ("balanced", "minimize_cost", "maximize_quality", "minimize_latency")


# --------------------------------------------------------------------------- data


class Dataset:
    def __init__(self, name: str) -> None:
        fname, ds = DATASETS[name]
        rows = [r for r in csv.DictReader(open(DATA / fname)) if r["dataset"] == ds]
        self.name = name
        self.models = sorted({r["model"] for r in rows})
        self.prices = {
            r["model"]: (float(r["input_price_per_mtok"]), float(r["output_price_per_mtok"]))
            for r in rows
        }
        ids = sorted({r["prompt_id"] for r in rows})
        index = {p: i for i, p in enumerate(ids)}
        col = {m: j for j, m in enumerate(self.models)}
        self.quality = np.full((len(ids), len(self.models)), np.nan)
        self.cost = np.full_like(self.quality, np.nan)
        self.text = [""] * len(ids)
        split = [""] * len(ids)
        for r in rows:
            i, j = index[r["prompt_id"]], col[r["model"]]
            self.quality[i, j] = float(r["quality"])
            self.cost[i, j] = float(r["cost_usd"])
            self.text[i] = r["prompt"]
            split[i] = r["split"]
        self.ids = ids
        self.train = np.array([s == "train" for s in split])
        self.test = ~self.train

    def test_figures(self) -> tuple[float, float, int]:
        q = self.quality[self.test].mean(axis=0)
        best = int(q.argmax())
        return float(q[best]), float(self.cost[self.test][:, best].sum()), best


def cost_at(points: list[tuple[float, float]], target: float) -> float:
    """Least cost reaching ``target`` quality, mixing two points of a curve linearly."""
    best = math.inf
    for c, q in points:
        if q >= target:
            best = min(best, c)
    for c1, q1 in points:
        for c2, q2 in points:
            if q1 < target < q2:
                best = min(best, c1 + (c2 - c1) * (target - q1) / (q2 - q1))
    return best


def evaluate(ds: Dataset, choices: np.ndarray) -> tuple[float, float]:
    rows = np.arange(len(choices))
    q = ds.quality[ds.test][rows, choices]
    c = ds.cost[ds.test][rows, choices]
    return float(c.sum()), float(q.mean())


def target_curve(ds: Dataset, predicted: np.ndarray) -> list[tuple[float, float]]:
    """The router "cheapest model within t of the best predicted" for t in TARGETS."""
    est = np.array([ds.prices[m][0] + ds.prices[m][1] for m in ds.models])
    points = []
    best = predicted.max(axis=1, keepdims=True)
    for t in [*TARGETS, 0.0]:
        ok = predicted >= t * best - 1e-12
        choice = np.where(ok, est[None, :], np.inf).argmin(axis=1)
        points.append(evaluate(ds, choice))
    return points


def tfidf_knn(ds: Dataset, k: int = 20) -> np.ndarray:
    def tokens(t: str) -> list[str]:
        return re.findall(r"[a-z0-9]+", t.lower())

    train = [t for t, m in zip(ds.text, ds.train, strict=True) if m]
    test = [t for t, m in zip(ds.text, ds.test, strict=True) if m]
    df: collections.Counter[str] = collections.Counter()
    for t in train:
        df.update(set(tokens(t)))
    vocab = {w: i for i, w in enumerate(df)}
    idf = np.array([math.log((1 + len(train)) / (1 + df[w])) + 1 for w in vocab])

    def matrix(texts: list[str]) -> np.ndarray:
        m = np.zeros((len(texts), len(vocab)), np.float32)
        for i, t in enumerate(texts):
            for w, c in collections.Counter(tokens(t)).items():
                if w in vocab:
                    m[i, vocab[w]] = c
        m *= idf
        n = np.linalg.norm(m, axis=1, keepdims=True)
        n[n == 0] = 1
        return m / n

    sims = matrix(test) @ matrix(train).T
    nearest = np.argsort(-sims, axis=1)[:, :k]
    return np.nanmean(ds.quality[ds.train][nearest], axis=1)


# --------------------------------------------------------------------------- servers


SETUP = """
import json, collections
from routing.engine import classify
from routing.models import CatalogModel, Provider, ProviderEndpoint, RoutingPolicy
from tenants.auth import hash_secret, parse_key
from tenants.models import ApiKey, Tenant
from tenants.services import tenant_create
from routing.learning.models import OutcomeMemory, OutcomeImport
spec = json.loads(open({spec!r}).read())
Provider.objects.exclude(slug="bench").update(enabled=False)
p, _ = Provider.objects.update_or_create(slug="bench", defaults=dict(name="bench",
    wire_format="openai", requires_api_key=False, enabled=True))
ProviderEndpoint.objects.update_or_create(provider=p, tenant=None, name="main",
    defaults=dict(base_url="http://127.0.0.1:9/v1"))
for model, (inp, out, quality) in spec["models"].items():
    CatalogModel.objects.update_or_create(provider=p, model_id=model, defaults=dict(
        tier="balanced", capabilities=["chat"], quality=quality, context_window=200000,
        max_output_tokens=4096, input_price_per_mtok=inp, output_price_per_mtok=out,
        enabled=True))
CatalogModel.objects.filter(provider=p).exclude(model_id__in=list(spec["models"])).update(enabled=False)
slug = spec["tenant"]
tenant = Tenant.objects.filter(slug=slug).first() or tenant_create(name=slug, slug=slug)
OutcomeMemory.objects.filter(tenant=tenant).delete()
OutcomeImport.objects.filter(tenant=tenant).delete()
prefix, secret = parse_key(spec["key"])
ApiKey.objects.filter(prefix=prefix).delete()
ApiKey.objects.create(tenant=tenant, name="bench", prefix=prefix, secret_hash=hash_secret(secret),
    can_manage=True)
pol, _ = RoutingPolicy.objects.get_or_create(tenant=tenant)
pol.allowed_providers = ["bench"]; pol.learning = {{"enabled": True}}; pol.objective = "balanced"
pol.quality_target = None; pol.version += 1; pol.save()
from routing.changes import config_changed; config_changed()
from aura.redis import sync_client
for k in sync_client().scan_iter("aura:learning:v1:*:%d" % tenant.pk):
    sync_client().delete(k)
"""


def catalog_quality(ds: Dataset) -> dict[str, dict[str, float]]:
    """Each model's mean train quality per category (the engine's classifier's)."""
    sys.path.insert(0, str(ROOT))
    from routing.engine import classify

    cats = [classify.classify_text(t) if ds.train[i] else None for i, t in enumerate(ds.text)]
    out: dict[str, dict[str, float]] = {}
    for j, m in enumerate(ds.models):
        by: dict[str, list[float]] = collections.defaultdict(list)
        for i, cat in enumerate(cats):
            if cat is not None and not math.isnan(ds.quality[i, j]):
                by[cat].append(ds.quality[i, j])
        out[m] = {c: round(float(np.mean(v)), 4) for c, v in by.items()}
        out[m]["chat"] = round(float(np.nanmean(ds.quality[ds.train, j])), 4)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--dataset", choices=[*DATASETS, "all"], default="all")
    ap.add_argument("--port", type=int, default=8071)
    a = ap.parse_args()

    import httpx

    env = {**os.environ, "AURA_DATA_DIR": str(ROOT / "var" / "route-quality")}
    started = subprocess.run(
        [PY, "-m", "aura.embedded", "start"],
        cwd=ROOT,
        env=env,
        check=True,
        text=True,
        capture_output=True,
    )
    for line in started.stdout.splitlines():
        if "=" in line:
            k, _, v = line.partition("=")
            env[k.strip()] = v.strip().strip("'\"")
    env.update(AURA_EMBEDDED_DB="1", LOG_LEVEL="ERROR")
    subprocess.run(
        [PY, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=env, check=True
    )
    procs = [
        subprocess.Popen(
            [
                PY,
                "-m",
                "uvicorn",
                "aura.asgi:application",
                "--port",
                str(a.port),
                "--no-access-log",
                "--log-level",
                "error",
            ],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        ),
        subprocess.Popen(
            [
                PY,
                "-m",
                "celery",
                "-A",
                "aura",
                "worker",
                "-c",
                "1",
                "-P",
                "solo",
                "--loglevel",
                "WARNING",
            ],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        ),
    ]
    base = f"http://127.0.0.1:{a.port}"
    try:
        for _ in range(300):
            try:
                if httpx.get(base + "/healthz", timeout=1).status_code < 500:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        names = list(DATASETS) if a.dataset == "all" else [a.dataset]
        summary = [run_dataset(Dataset(n), base, env) for n in names]
        print("\n## Summary: cost at 95 % of the best single model's quality (vs that model)\n")
        print(
            "| dataset | zero router | TF-IDF kNN (k=20) | AURA catalog only | AURA learned | oracle quality |"
        )
        print("|---|---:|---:|---:|---:|---:|")
        for row in summary:
            print("| {name} | {zero} | {knn} | {catalog} | {learned} | {oracle} |".format(**row))
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(timeout=30)
        subprocess.run([PY, "-m", "aura.embedded", "stop"], cwd=ROOT, env=env, check=False)


def optimizer_step(ds: Dataset, client: Any, decide: Any, best_cost: float) -> str:
    """POST /api/v1/router/optimize on the imported outcomes (goal balanced: 95 % of the
    best single model's quality, cheapest), applied; then the test split routed on the
    weights it chose, with no override."""
    for start in ("balanced", "maximize_quality"):
        client.patch(
            "/api/v1/router/policy",
            json={"objective": start, "optimization": {"goal": "balanced", "window_days": 7}},
        )
        began = time.perf_counter()
        r = client.post("/api/v1/router/optimize", json={"dry_run": False})
        took = time.perf_counter() - began
        assert r.status_code == 201, r.text
        run = r.json()
        f = run["figures"]
        print(
            f"\noptimizer from {start}: {run['status']} in {took:.1f} s; {run['message']}\n"
            f"  held-out test half ({f.get('after', {}).get('cases')} prompts): "
            f"before q={f.get('before', {}).get('quality')} ${f.get('before', {}).get('cost_usd')}"
            f"/req, after q={f.get('after', {}).get('quality')} "
            f"${f.get('after', {}).get('cost_usd')}/req, bar {f.get('quality_bar')}"
        )
        time.sleep(1.2)
        c, q = evaluate(ds, decide({}))
        print(
            f"| test split on the policy after the optimizer (from {start}) | {q:.4f} | "
            f"${c:.4f} | {c / best_cost - 1:+.1%} |"
        )
        if run["status"] == "applied":
            client.post(f"/api/v1/router/optimizations/{run['id']}/revert", json={})
    return f"q {q:.4f}, {c / best_cost - 1:+.1%}"


def pct(cost: float, reference: float) -> str:
    return "unreached" if math.isinf(cost) else f"{cost / reference - 1:+.1%}"


def run_dataset(ds: Dataset, base: str, env: dict[str, str]) -> dict[str, str]:
    import httpx

    key = f"aura-rq{abs(hash(ds.name)) % 10**6:06d}." + "e" * 32
    spec_path = ROOT / "var" / "route-quality" / f"{ds.name}.json"
    quality = catalog_quality(ds)
    spec = {
        "tenant": f"rq-{ds.name.replace('_', '-')}",
        "key": key,
        "models": {m: [*ds.prices[m], quality[m]] for m in ds.models},
    }
    spec_path.write_text(json.dumps(spec))
    subprocess.run(
        [PY, "manage.py", "shell", "--no-imports", "-c", SETUP.format(spec=str(spec_path))],
        cwd=ROOT,
        env=env,
        check=True,
    )
    client = httpx.Client(base_url=base, headers={"authorization": f"Bearer {key}"}, timeout=300)
    best_q, best_cost, best_j = ds.test_figures()
    target = 0.95 * best_q
    print(
        f"\n# {ds.name}: {int(ds.train.sum())} train / {int(ds.test.sum())} test prompts, "
        f"{len(ds.models)} models; best single {ds.models[best_j]} q={best_q:.4f} "
        f"${best_cost:.4f}; target q >= {target:.4f}"
    )

    lines = []
    for i in np.flatnonzero(ds.train):
        for j, m in enumerate(ds.models):
            if not math.isnan(ds.quality[i, j]):
                lines.append(
                    json.dumps(
                        {
                            "prompt": ds.text[i],
                            "model": f"bench/{m}",
                            "quality": ds.quality[i, j],
                            "cost_usd": ds.cost[i, j],
                            "external_id": f"{ds.ids[i]}:{m}",
                        }
                    )
                )
    started = time.perf_counter()
    r = client.post(
        "/api/v1/router/outcomes/import",
        content="\n".join(lines),
        headers={"content-type": "application/x-ndjson"},
    )
    assert r.status_code == 202, r.text
    job = r.json()
    deadline = time.monotonic() + 900
    while job["status"] in ("queued", "running"):
        if time.monotonic() > deadline:
            raise SystemExit(f"the import did not finish: {job}")
        time.sleep(0.5)
        job = client.get(f"/api/v1/router/outcomes/import/{job['id']}").json()
    took = time.perf_counter() - started
    print(
        f"import: {job['imported']} outcomes in {took:.1f} s ({job['imported'] / took:.0f}/s), "
        f"status {job['status']}, {job['failed']} failed"
    )
    time.sleep(1.2)  # the API process notices the new predictor within a second

    col = {f"bench/{m}": j for j, m in enumerate(ds.models)}
    test_idx = np.flatnonzero(ds.test)

    def decide(extra: dict[str, Any]) -> np.ndarray:
        choices = []
        for start in range(0, len(test_idx), 100):
            batch = [
                {"model": "auto", "messages": [{"role": "user", "content": ds.text[i]}], **extra}
                for i in test_idx[start : start + 100]
            ]
            out = client.post("/api/v1/route/batch", json={"requests": batch})
            assert out.status_code == 200, out.text
            choices += [col[x["model"]] for x in out.json()["results"]]
        return np.asarray(choices)

    results: dict[str, str] = {}
    for mode in ("learned", "catalog"):
        if mode == "catalog":
            client.patch("/api/v1/router/policy", json={"learning": {"enabled": False}})
            time.sleep(1.2)
        print(f"\n## {mode}\n\n| router | quality | cost | vs best single |\n|---|---:|---:|---:|")
        for obj in OBJECTIVES:
            c, q = evaluate(ds, decide({"objective": obj}))
            print(f"| objective {obj} | {q:.4f} | ${c:.4f} | {c / best_cost - 1:+.1%} |")
        t_points = []
        for t in TARGETS:
            c, q = evaluate(ds, decide({"quality_target": t}))
            t_points.append((c, q))
        w_points = []
        for w in WEIGHT_SWEEP:
            weights = {"quality": w, "cost": round(1 - w, 3), "latency": 0.0}
            w_points.append(evaluate(ds, decide({"weights": weights})))
        at_t, at_w = cost_at(t_points, target), cost_at(w_points, target)
        print(f"| quality_target sweep, cost at 95 % | | ${at_t:.4f} | {pct(at_t, best_cost)} |")
        print(f"| weights sweep, cost at 95 % | | ${at_w:.4f} | {pct(at_w, best_cost)} |")
        results[mode] = f"{pct(at_t, best_cost)} (weights {pct(at_w, best_cost)})"
        if mode == "learned":
            results["optimizer"] = optimizer_step(ds, client, decide, best_cost)

    singles = [
        (float(ds.cost[ds.test][:, j].sum()), float(np.nanmean(ds.quality[ds.test][:, j])))
        for j in range(len(ds.models))
    ]
    zero = cost_at(singles, target)
    knn = cost_at(target_curve(ds, tfidf_knn(ds)), target)
    oracle_q = float(ds.quality[ds.test].max(axis=1).mean())
    print(
        f"\nbaselines: zero router {pct(zero, best_cost)}, TF-IDF kNN {pct(knn, best_cost)}, "
        f"oracle quality {oracle_q:.4f}"
    )
    return {
        "name": ds.name,
        "zero": pct(zero, best_cost),
        "knn": pct(knn, best_cost),
        "catalog": results["catalog"],
        "learned": results["learned"],
        "oracle": f"{oracle_q:.4f}",
    }


if __name__ == "__main__":
    main()
