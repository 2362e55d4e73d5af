"""Per-prompt quality prediction from an outcome memory: plain functions over numpy arrays.

The memory is a set of *points* (a prompt's unit embedding, or a centroid of several once
a tenant's memory outgrows ``MAX_POINTS``), each with per-model sums of observed quality
and counts. A model's predicted quality for a new prompt is its neighbours' (the ``k``
most similar points, weighted by cosine similarity) shrunk toward the model's *prior*:

    q = (sum_i w_i * qsum_ij + m * prior_j(x)) / (sum_i w_i * n_ij + m)

``prior_j(x)`` is a ridge regression of model j's quality on the embedding, fitted on the
whole memory (its strength chosen by cross-validation on the memory itself), so a prompt
with few close neighbours still gets a prompt-specific estimate, and the neighbours
correct it where the memory holds similar prompts. ``confidence = mass / (mass + m)``.

Measured on ../shared/data/routing by bench/route_quality.py. Nothing here reads the
database, a clock or global randomness: the seed is an argument.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]

K_NEIGHBOURS = 20
SHRINK = 20.0  # pseudo-outcomes of the prior in every estimate
RIDGE_LAMBDAS = (1.0, 3.0, 10.0, 30.0, 100.0)
CV_FOLDS = 5
MAX_POINTS = 8192  # beyond this the memory is summarised by k-means centroids
KMEANS_ROUNDS = 8
RIDGE_MAX_POINTS = 4000  # the ridge prior is fitted on a seeded sample of this many points
# A model needs this many outcomes before its prediction replaces the catalog's quality.
MIN_OUTCOMES = 20


@dataclass(frozen=True, slots=True)
class Prediction:
    quality: float
    confidence: float
    neighbours: int  # points among the k nearest that hold an outcome of this model
    mass: float  # similarity-weighted outcomes behind the neighbour estimate
    prior: float


@dataclass(frozen=True, slots=True)
class Predictor:
    """Everything a prediction needs, fitted once per memory version."""

    models: tuple[str, ...]
    points: F32  # (N, D), unit rows: the neighbour search's embeddings
    qsum: F32  # (N, M) summed quality per point and model
    count: F32  # (N, M) outcomes per point and model
    ridge: F64  # (F + 1, M) over the ridge features, last row the intercept
    outcomes: F64  # (M,) outcomes per model in the whole memory
    mean: F64  # (M,) mean quality per model
    ridge_lambda: float
    k: int = K_NEIGHBOURS
    shrink: float = SHRINK
    index: dict[str, int] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "index", {m: j for j, m in enumerate(self.models)})

    @property
    def size(self) -> int:
        return int(self.points.shape[0])

    def nbytes(self) -> int:
        return int(self.points.nbytes + self.qsum.nbytes + self.count.nbytes + self.ridge.nbytes)

    def predict(
        self, vector: Sequence[float] | F32, features: Sequence[float] | F32
    ) -> dict[str, Prediction]:
        """Each model's prediction for one prompt: its unit embedding (neighbours) and its
        ridge features (prior)."""
        v = np.asarray(vector, np.float32)
        if self.size == 0:
            return {}
        x = np.asarray(features, np.float64)
        prior = np.clip(x @ self.ridge[:-1] + self.ridge[-1], 0.0, 1.0)
        sims = self.points @ v
        k = min(self.k, self.size)
        nearest = np.argpartition(-sims, k - 1)[:k] if k < self.size else np.arange(self.size)
        w = np.maximum(sims[nearest], 0.0).astype(np.float64)
        mass = w @ self.count[nearest]
        qsum = w @ self.qsum[nearest]
        present = (self.count[nearest] > 0).sum(axis=0)
        q = (qsum + self.shrink * prior) / (mass + self.shrink)
        conf = mass / (mass + self.shrink)
        out: dict[str, Prediction] = {}
        for j, model in enumerate(self.models):
            if self.outcomes[j] < MIN_OUTCOMES:
                continue
            out[model] = Prediction(
                float(min(1.0, max(0.0, q[j]))),
                float(conf[j]),
                int(present[j]),
                float(mass[j]),
                float(prior[j]),
            )
        return out


def group_points(
    models: Sequence[str], qualities: Sequence[float], keys: Sequence[str]
) -> tuple[npt.NDArray[np.int64], F32, F32, tuple[str, ...]]:
    """Outcome rows -> points: rows with the same prompt key share one point. Returns each
    point's first row (to take its embedding from), the sums, the counts, the models."""
    names = tuple(sorted(set(models)))
    col = {m: j for j, m in enumerate(names)}
    point_of: dict[str, int] = {}
    rows_of_point: list[int] = []
    for i, key in enumerate(keys):
        if key not in point_of:
            point_of[key] = len(rows_of_point)
            rows_of_point.append(i)
    n, m = len(rows_of_point), len(names)
    qsum = np.zeros((n, m), np.float32)
    count = np.zeros((n, m), np.float32)
    for key, model, q in zip(keys, models, qualities, strict=True):
        p, j = point_of[key], col[model]
        qsum[p, j] += q
        count[p, j] += 1
    return np.asarray(rows_of_point, np.int64), qsum, count, names


def summarise(
    points: F32, qsum: F32, count: F32, *, max_points: int, seed: int
) -> tuple[F32, F32, F32]:
    """At most ``max_points`` points: k-means centroids carrying their members' sums."""
    n = points.shape[0]
    if n <= max_points:
        return points, qsum, count
    rng = np.random.default_rng(seed)
    centroids = points[rng.choice(n, max_points, replace=False)].copy()
    assign = np.zeros(n, np.int64)
    for _ in range(KMEANS_ROUNDS):
        for start in range(0, n, 4096):  # bounded memory: (4096, max_points) at a time
            assign[start : start + 4096] = np.argmax(points[start : start + 4096] @ centroids.T, 1)
        sums = np.zeros_like(centroids)
        np.add.at(sums, assign, points)
        norms = np.linalg.norm(sums, axis=1, keepdims=True)
        keep = norms[:, 0] > 0
        centroids[keep] = sums[keep] / norms[keep]
    q = np.zeros((max_points, qsum.shape[1]), np.float32)
    c = np.zeros_like(q)
    np.add.at(q, assign, qsum)
    np.add.at(c, assign, count)
    used = c.sum(axis=1) > 0
    return np.ascontiguousarray(centroids[used]), q[used], c[used]


def _ridge_fits(x: F64, y: F64, cnt: F64, lambdas: Sequence[float]) -> list[F64]:
    """Ridge coefficients (F, M) for each penalty. Models whose outcome counts are the same
    column (the usual case: every prompt answered by every model) share one Gram matrix,
    so the cost is one (F x F) product per distinct column, not one per model."""
    groups: dict[bytes, list[int]] = {}
    for j in range(cnt.shape[1]):
        groups.setdefault(cnt[:, j].tobytes(), []).append(j)
    out = [np.zeros((x.shape[1], cnt.shape[1])) for _ in lambdas]
    for cols in groups.values():
        weight = cnt[:, cols[0]]
        if weight.sum() == 0:
            continue
        xw = x * weight[:, None]
        gram = x.T @ xw
        rhs = xw.T @ y[:, cols]
        for coef, lam in zip(out, lambdas, strict=True):
            a = gram.copy()
            a[np.diag_indices_from(a)] += lam
            a[-1, -1] -= lam  # the intercept is not penalised
            coef[:, cols] = np.linalg.solve(a, rhs)
    return out


def fit_ridge(
    features: F32, qsum: F32, count: F32, *, lambdas: Sequence[float], folds: int, seed: int
) -> tuple[F64, float]:
    """Per-model ridge of mean quality on the features (points weighted by outcomes);
    the penalty with the lowest cross-validated squared error wins. At most
    ``RIDGE_MAX_POINTS`` points (a seeded sample) take part, which bounds a refit."""
    n = count.shape[0]
    rng = np.random.default_rng(seed)
    rows = np.arange(n) if n <= RIDGE_MAX_POINTS else rng.choice(n, RIDGE_MAX_POINTS, False)
    x = np.hstack([features[rows].astype(np.float64), np.ones((len(rows), 1))])
    cnt = count[rows].astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        y = np.where(cnt > 0, qsum[rows] / np.maximum(cnt, 1e-12), 0.0)
    best_lam = lambdas[0]
    if len(lambdas) > 1 and len(rows) >= folds * 4:
        fold = rng.integers(0, folds, len(rows))
        errors = np.zeros(len(lambdas))
        for f in range(folds):
            tr, te = fold != f, fold == f
            for i, coef in enumerate(_ridge_fits(x[tr], y[tr], cnt[tr], lambdas)):
                errors[i] += float((cnt[te] * (x[te] @ coef - y[te]) ** 2).sum())
        best_lam = lambdas[int(errors.argmin())]
    return _ridge_fits(x, y, cnt, [best_lam])[0], float(best_lam)


def fit(
    points: F32,
    features: F32,
    qsum: F32,
    count: F32,
    models: Sequence[str],
    *,
    seed: int = 0,
    max_points: int = MAX_POINTS,
    lambdas: Sequence[float] = RIDGE_LAMBDAS,
    k: int = K_NEIGHBOURS,
    shrink: float = SHRINK,
) -> Predictor:
    outcomes = count.sum(axis=0).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(outcomes > 0, qsum.sum(axis=0) / np.maximum(outcomes, 1e-12), 0.0)
    ridge, lam = fit_ridge(features, qsum, count, lambdas=lambdas, folds=CV_FOLDS, seed=seed)
    p, q, c = summarise(points, qsum, count, max_points=max_points, seed=seed)
    return Predictor(tuple(models), p, q, c, ridge, outcomes, mean, lam, k, shrink)
