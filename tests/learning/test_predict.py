"""The predictor alone: neighbours shrunk toward a ridge prior, on synthetic memories."""

from __future__ import annotations

import numpy as np

from routing.learning import features, predict, store


def _memory(n: int = 400, seed: int = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Two clusters of prompts: on cluster A the weak model fails, on B it is as good."""
    rng = np.random.default_rng(seed)
    a, b = np.zeros(8, np.float32), np.zeros(8, np.float32)
    a[0], b[1] = 1, 1
    centres = np.where(rng.random(n)[:, None] < 0.5, a, b)
    points = centres + 0.1 * rng.standard_normal((n, 8)).astype(np.float32)
    points /= np.linalg.norm(points, axis=1, keepdims=True)
    in_a = centres[:, 0] == 1
    qsum = np.stack([np.ones(n), np.where(in_a, 0.0, 1.0)], axis=1).astype(np.float32)
    count = np.ones_like(qsum)
    return points.astype(np.float32), qsum, count, a


def test_it_predicts_each_models_quality_from_similar_prompts() -> None:
    points, qsum, count, a = _memory()
    p = predict.fit(points, points, qsum, count, ["strong", "weak"])
    near_a = p.predict(a, a)
    b = np.roll(a, 1)
    near_b = p.predict(b, b)
    assert near_a["weak"].quality < 0.2 < 0.8 < near_b["weak"].quality
    assert near_a["strong"].quality > 0.9
    assert near_a["weak"].neighbours == predict.K_NEIGHBOURS
    assert 0.3 < near_a["weak"].confidence < 1.0


def test_a_model_with_too_few_outcomes_gets_no_prediction() -> None:
    points, qsum, count, a = _memory()
    count[:, 1] = 0
    count[: predict.MIN_OUTCOMES - 1, 1] = 1
    p = predict.fit(points, points, qsum, count, ["strong", "weak"])
    assert set(p.predict(a, a)) == {"strong"}


def test_a_large_memory_is_summarised_and_keeps_its_outcomes() -> None:
    points, qsum, count, a = _memory(n=3000)
    p = predict.fit(points, points, qsum, count, ["strong", "weak"], max_points=64)
    assert p.size <= 64
    assert p.count.sum() == count.sum()
    assert p.predict(a, a)["weak"].quality < 0.3


def test_outcomes_of_one_prompt_share_a_point() -> None:
    first, qsum, count, models = predict.group_points(
        ["m1", "m2", "m1"], [1.0, 0.0, 0.5], ["h1", "h1", "h2"]
    )
    assert list(first) == [0, 2]
    assert models == ("m1", "m2")
    assert qsum.tolist() == [[1.0, 0.0], [0.5, 0.0]]
    assert count.tolist() == [[1.0, 1.0], [1.0, 0.0]]


def test_a_predictor_survives_the_trip_through_redis_bytes() -> None:
    points, qsum, count, a = _memory()
    p = predict.fit(points, points, qsum, count, ["strong", "weak"])
    q = store.loads(store.dumps(p))
    assert q.models == p.models and q.ridge_lambda == p.ridge_lambda
    assert q.predict(a, a) == p.predict(a, a)


def test_prompt_features_keep_no_text_and_hash_words_into_buckets() -> None:
    f = features.prompt_features("Natalia sold 48 clips in April")
    assert len(f.embedding) == features.DIM
    assert all(0 <= b < features.LEXICAL_BUCKETS for b in f.lexical)
    assert f.lexical == sorted(set(f.lexical)) and len(f.lexical) == 6
    assert features.prompt_features("natalia SOLD 48 clips in april").lexical == f.lexical
    assert (
        features.prompt_text(
            [
                {"role": "user", "content": "first"},
                {"role": "assistant", "content": "x"},
                {"role": "user", "content": [{"type": "text", "text": "last"}]},
            ]
        )
        == "last"
    )
