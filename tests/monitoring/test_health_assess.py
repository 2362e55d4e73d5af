"""The health state machine (monitoring.health.assess): hysteresis, traffic, scores."""

from __future__ import annotations

from monitoring.health import Passive, ProbeResult, Thresholds, Verdict, assess

LIMITS = Thresholds(down_after=3, up_after=2, latency_warn_ms=5000, latency_crit_ms=15000)
OK = ProbeResult(ok=True, latency_ms=20)
FAIL = ProbeResult(ok=False, latency_ms=1, error_kind="connection", message="refused")


def run(
    probes: list[ProbeResult | None], *, passive: Passive | None = None, probing: bool = True
) -> list[Verdict]:
    status, ever, failures, successes = "unknown", False, 0, 0
    out = []
    for probe in probes:
        v = assess(
            status=status,
            ever_healthy=ever,
            failures=failures,
            successes=successes,
            probe=probe,
            passive=passive,
            limits=LIMITS,
            probing=probing,
        )
        status, ever, failures, successes = v.status, v.ever_healthy, v.failures, v.successes
        out.append(v)
    return out


def test_a_first_good_probe_makes_an_unknown_endpoint_healthy() -> None:
    (v,) = run([OK])
    assert (v.status, v.score, v.ever_healthy) == ("healthy", 1.0, True)


def test_it_takes_three_failures_in_a_row_to_go_down() -> None:
    statuses = [v.status for v in run([OK, FAIL, FAIL, FAIL])]
    assert statuses == ["healthy", "degraded", "degraded", "down"]


def test_a_good_probe_between_failures_resets_the_count() -> None:
    statuses = [v.status for v in run([OK, FAIL, FAIL, OK, FAIL, FAIL])]
    assert "down" not in statuses


def test_a_down_endpoint_needs_two_good_probes_to_come_back() -> None:
    verdicts = run([FAIL, FAIL, FAIL, OK, OK])
    assert [v.status for v in verdicts] == ["degraded", "degraded", "down", "down", "healthy"]
    assert verdicts[3].score == 0.0
    assert "recovering: 1/2" in verdicts[3].reason


def test_a_round_without_a_probe_keeps_a_down_endpoint_down() -> None:
    verdicts = run([FAIL, FAIL, FAIL, None, None])
    assert [v.status for v in verdicts][-2:] == ["down", "down"]


def test_an_endpoint_that_never_answered_is_not_marked_ever_healthy() -> None:
    verdicts = run([FAIL, FAIL])
    assert not verdicts[-1].ever_healthy
    assert verdicts[-1].score < 0.5


def test_traffic_errors_degrade_a_probing_endpoint_but_do_not_take_it_down() -> None:
    bad = Passive(attempts=40, failures=38, p95_ms=300)
    (v,) = run([OK], passive=bad)
    assert v.status == "degraded"
    assert v.score < 0.1
    assert "error rate 95%" in v.reason


def test_without_probes_traffic_alone_can_take_it_down() -> None:
    bad = Passive(attempts=40, failures=38, p95_ms=300)
    (v,) = run([None], passive=bad, probing=False)
    assert v.status == "down"


def test_without_probes_or_traffic_the_state_is_unknown() -> None:
    (v,) = run([None], probing=False)
    assert v.status == "unknown"
    assert not v.ever_healthy


def test_slow_traffic_scores_down_in_proportion_to_its_p95() -> None:
    (warn,) = run([OK], passive=Passive(attempts=10, failures=0, p95_ms=10_000))
    (crit,) = run([OK], passive=Passive(attempts=10, failures=0, p95_ms=20_000))
    assert warn.status == crit.status == "degraded"
    assert 0.7 < warn.score < 0.8
    assert crit.score == 0.5


def test_an_open_breaker_degrades_and_scores_down() -> None:
    (v,) = run([OK], passive=Passive(attempts=0, failures=0, p95_ms=None, breaker_open=True))
    assert v.status == "degraded"
    assert v.score == 0.3


def test_a_few_failed_requests_are_not_enough_to_judge() -> None:
    (v,) = run([OK], passive=Passive(attempts=3, failures=3, p95_ms=None))
    assert v.status == "healthy"
    assert v.score == 1.0
