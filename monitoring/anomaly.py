"""Anomaly detection: is the last interval's figure beyond its trailing baseline?

Pure (no ORM, no clock): the selectors in ``monitoring.sla`` cut traffic into fixed
intervals (15 minutes; bucket 0 the current one, 1..96 the previous 24 hours) and the
detector compares the current bucket's figure with the mean and standard deviation of the
baseline buckets. Only an increase is an anomaly (latency and error rates get worse
upwards); a drop is good news.

No verdict (``None``) where the data cannot support one: too few requests in the current
interval, or too few baseline buckets with enough requests each. A baseline that never
moved (all-zero error rates, a perfectly steady latency) would make any change "beyond
2 sigma", so the deviation has a floor: ``min_sigma`` in the figure's own unit and
``rel_sigma`` as a fraction of the mean, whichever is larger.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class AnomalyRule:
    """How one figure is judged (see the module docstring)."""

    k: float = 2.0  # how many standard deviations above the mean is anomalous
    min_count: int = 20  # requests (or attempts) the current interval needs
    min_bucket_count: int = 5  # ... and each baseline bucket, to count
    min_buckets: int = 8  # baseline buckets needed (8 x 15 min: two hours of history)
    min_sigma: float = 0.0
    rel_sigma: float = 0.0


@dataclass(frozen=True, slots=True)
class AnomalyVerdict:
    anomalous: bool
    value: float
    mean: float
    sigma: float  # the deviation used (the baseline's, or its floor)
    threshold: float  # mean + k * sigma: beyond this is anomalous
    buckets: int  # baseline buckets that counted


def detect_anomaly(
    value: float | None,
    count: int,
    baseline: Sequence[float | None],
    baseline_counts: Sequence[int],
    rule: AnomalyRule,
) -> AnomalyVerdict | None:
    """Judge ``value`` (the current interval's figure, measured over ``count`` requests)
    against ``baseline`` (one figure per earlier interval, ``None`` where there was no
    traffic) measured over ``baseline_counts``. Population standard deviation."""
    if len(baseline) != len(baseline_counts):
        raise ValueError("baseline and baseline_counts differ in length")
    if value is None or not math.isfinite(value) or count < rule.min_count:
        return None
    usable = [
        float(v)
        for v, n in zip(baseline, baseline_counts, strict=True)
        if v is not None and math.isfinite(v) and n >= rule.min_bucket_count
    ]
    if len(usable) < max(1, rule.min_buckets):
        return None
    mean = math.fsum(usable) / len(usable)
    std = math.sqrt(math.fsum((v - mean) ** 2 for v in usable) / len(usable))
    sigma = max(std, rule.min_sigma, rule.rel_sigma * abs(mean))
    threshold = mean + rule.k * sigma
    return AnomalyVerdict(
        anomalous=value > threshold,
        value=value,
        mean=mean,
        sigma=sigma,
        threshold=threshold,
        buckets=len(usable),
    )
