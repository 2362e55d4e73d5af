"""The anomaly detector (monitoring.anomaly.detect_anomaly): pure, over arrays."""

from __future__ import annotations

import pytest

from monitoring.anomaly import AnomalyRule, detect_anomaly

RULE = AnomalyRule(k=2.0, min_count=20, min_bucket_count=5, min_buckets=8)
# Mean 100, population standard deviation 10: anomalous above 120.
BASELINE = [90.0, 110.0] * 8
COUNTS = [50] * 16


def test_a_value_beyond_two_sigma_of_the_baseline_is_an_anomaly() -> None:
    v = detect_anomaly(121.0, 30, BASELINE, COUNTS, RULE)
    assert v is not None and v.anomalous
    assert (v.mean, v.sigma, v.threshold, v.buckets) == (100.0, 10.0, 120.0, 16)


def test_a_value_within_two_sigma_is_not() -> None:
    v = detect_anomaly(120.0, 30, BASELINE, COUNTS, RULE)
    assert v is not None and not v.anomalous


def test_a_drop_is_never_an_anomaly() -> None:
    v = detect_anomaly(10.0, 30, BASELINE, COUNTS, RULE)
    assert v is not None and not v.anomalous


def test_too_few_requests_now_give_no_verdict() -> None:
    assert detect_anomaly(500.0, 19, BASELINE, COUNTS, RULE) is None


def test_too_few_baseline_buckets_give_no_verdict() -> None:
    assert detect_anomaly(500.0, 30, BASELINE[:7], COUNTS[:7], RULE) is None


def test_thin_or_empty_baseline_buckets_do_not_count() -> None:
    baseline = [*BASELINE[:7], None, 1000.0, *[None] * 5]
    counts = [*COUNTS[:7], 0, 4, *[0] * 5]  # the 1000 came from 4 requests only
    assert detect_anomaly(500.0, 30, baseline, counts, RULE) is None
    counts[8] = 5
    v = detect_anomaly(500.0, 30, baseline, counts, RULE)
    assert v is not None and v.buckets == 8


def test_a_steady_baseline_has_a_floor_under_its_deviation() -> None:
    flat_zero = [0.0] * 12
    counts = [100] * 12
    errors = AnomalyRule(min_count=20, min_bucket_count=10, min_buckets=8, min_sigma=0.02)
    assert not detect_anomaly(0.04, 50, flat_zero, counts, errors).anomalous  # type: ignore[union-attr]
    assert detect_anomaly(0.041, 50, flat_zero, counts, errors).anomalous  # type: ignore[union-attr]
    latency = AnomalyRule(min_count=20, min_bucket_count=5, min_buckets=8, rel_sigma=0.1)
    v = detect_anomaly(1190.0, 50, [1000.0] * 12, counts, latency)
    assert v is not None and (v.sigma, v.threshold, v.anomalous) == (100.0, 1200.0, False)
    assert detect_anomaly(1201.0, 50, [1000.0] * 12, counts, latency).anomalous  # type: ignore[union-attr]


def test_mismatched_arrays_are_refused() -> None:
    with pytest.raises(ValueError):
        detect_anomaly(1.0, 30, [1.0, 2.0], [5], RULE)
