"""The health board read by every gateway process: parsing, staleness, what the engine gets."""

from __future__ import annotations

import json

from monitoring.state import BoardEntry, HealthBoard


def entry(status: str, score: float, ever: bool = True, expires: float = 1_000.0) -> bytes:
    return BoardEntry(status, score, "p", ever, expires).as_json().encode()


def test_the_engines_sets_come_from_the_entries() -> None:
    board = HealthBoard(clock=lambda: 100.0)
    board.apply(
        {
            b"ep1": entry("healthy", 1.0),
            b"ep2": entry("degraded", 0.4),
            b"ep3": entry("down", 0.0),
            b"ep4": entry("unknown", 1.0, ever=False),
        }
    )
    assert board.down == frozenset({"ep3"})
    assert board.scores == {"ep2": 0.4, "ep3": 0.0}
    assert board.unproven == frozenset({"ep4"})


def test_a_stale_entry_counts_as_unknown_so_a_stopped_checker_cannot_keep_an_endpoint_out() -> None:
    board = HealthBoard(clock=lambda: 2_000.0)
    board.apply({b"ep3": entry("down", 0.0, expires=1_999.0)})
    assert board.down == frozenset() and board.entries == {}


def test_malformed_entries_are_skipped_and_scores_clamped() -> None:
    board = HealthBoard(clock=lambda: 0.0)
    board.apply(
        {
            b"bad-json": b"{nope",
            b"bad-status": json.dumps({"status": "dead", "score": 0, "expires": 9}).encode(),
            b"no-score": json.dumps({"status": "down", "expires": 9}).encode(),
            b"big": json.dumps({"status": "healthy", "score": 7, "expires": 9}).encode(),
        }
    )
    assert set(board.entries) == {"big"}
    assert board.entries["big"].score == 1.0


def test_refreshing_at_most_once_a_second() -> None:
    now = [0.0]
    board = HealthBoard(clock=lambda: now[0])
    assert board.needs_refresh()
    board.apply({})
    now[0] = 0.5
    assert not board.needs_refresh()
    now[0] = 1.0
    assert board.needs_refresh()
