from __future__ import annotations

from collections import Counter

from routing.engine import Candidate, HealthSnapshot
from routing.engine.strategies import stable_hash64
from tests.routing import make_candidate, make_policy, make_request, route, step_keys

CATALOG = [
    make_candidate(f"p{i}/m{i}", quality={"chat": 0.9 - i / 100}, endpoint=f"ep{i}")
    for i in range(8)
]
POLICY = make_policy(strategy="consistent_hash")
SESSIONS = [f"session-{n}" for n in range(1000)]


def _primary(
    session: str | None,
    catalog: list[Candidate] = CATALOG,
    health: HealthSnapshot | None = None,
) -> str:
    request = make_request(session_id=session)
    return step_keys(route(catalog, request, POLICY, health))[0]


def test_the_same_session_always_gets_the_same_model() -> None:
    assert {_primary("user-42") for _ in range(20)} == {_primary("user-42")}


def test_the_mapping_is_pinned_across_processes_and_releases() -> None:
    # blake2b, not the salted hash(): a change here would move every live session at deploy.
    assert stable_hash64("alpha") == 0x5306_D220_EAC8_089A
    assert [_primary(s) for s in ("alpha", "beta", "gamma", "delta")] == [
        "p2/m2",
        "p6/m6",
        "p3/m3",
        "p1/m1",
    ]


def test_sessions_spread_across_the_eligible_models() -> None:
    counts = Counter(_primary(s) for s in SESSIONS)
    assert len(counts) == len(CATALOG)
    assert min(counts.values()) > 1000 / len(CATALOG) / 2


def test_removing_an_unrelated_model_moves_only_its_own_sessions() -> None:
    before = {s: _primary(s) for s in SESSIONS}
    smaller = [c for c in CATALOG if c.key != "p3/m3"]
    after = {s: _primary(s, smaller) for s in SESSIONS}
    moved = [s for s in SESSIONS if before[s] != after[s]]
    assert all(before[s] == "p3/m3" for s in moved)
    assert len(moved) < len(SESSIONS) * 0.25


def test_an_open_circuit_moves_only_the_sessions_on_that_model() -> None:
    before = {s: _primary(s) for s in SESSIONS}
    health = HealthSnapshot(open_endpoints=frozenset({"ep5"}))
    after = {s: _primary(s, health=health) for s in SESSIONS}
    assert all(before[s] == after[s] for s in SESSIONS if before[s] != "p5/m5")
    assert all(after[s] != "p5/m5" for s in SESSIONS)


def test_without_a_session_it_uses_the_scored_order() -> None:
    assert _primary(None) == "p0/m0"


def test_fallbacks_after_the_sticky_model_follow_the_score() -> None:
    keys = step_keys(route(CATALOG, make_request(session_id="s-1"), POLICY))
    rest = [c.key for c in CATALOG if c.key != keys[0]][:2]
    assert keys[1:] == rest
