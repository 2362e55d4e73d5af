"""Fuzz cases, how they are sent, and how broken invariants are reported.

A family of cases shares one root cause more often than not, so a test runs a whole family,
collects every violation and fails once, with each violation shown in a reproducible form:
method, path, headers, the exact body bytes (shortened in the middle when long) and the
response.
"""

from __future__ import annotations

import json
import os
import random
import socket
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import httpx

# A fixed seed keeps CI reproducible; set AURA_FUZZ_SEED to explore other cases locally.
SEED = os.environ.get("AURA_FUZZ_SEED", "aura-fuzz-1")
SHOWN_PER_GROUP = 2
BODY_HEAD, BODY_TAIL = 240, 60
OMIT = object()  # a header value meaning "do not send this header at all"


def rng_for(family: str) -> random.Random:
    """One generator per family: adding a family never changes another family's cases."""
    return random.Random(f"{SEED}/{family}")


@dataclass
class Case:
    label: str  # what was mutated, e.g. "messages[0].role = []"
    body: bytes | None = None
    method: str = "POST"
    path: str = "/v1/chat/completions"
    headers: dict[str, Any] = field(default_factory=dict)
    want_status: int | None = None  # when the invariant is one exact status (NaN -> 400)
    field_name: str | None = None  # the field a 400 must name (management API)
    any_field: bool = False  # ...or, when the mutated value may be valid, just some field
    upstream_fails: bool = False  # the fake upstream was told to fail: 502/503 are fine
    scenario: str | None = None  # what every fake upstream answers during this case


@dataclass
class Outcome:
    case: Case
    status: int | None
    headers: httpx.Headers
    content: bytes
    error: str | None = None  # transport failure (connection dropped, timeout)

    def json(self) -> Any:
        return json.loads(self.content)


@dataclass
class Violation:
    case: Case
    outcome: Outcome
    problems: list[str]


def short(data: bytes | None) -> str:
    if data is None:
        return "(no body)"
    if len(data) <= BODY_HEAD + BODY_TAIL + 20:
        return repr(data)
    return (
        f"{data[:BODY_HEAD]!r} ...[{len(data) - BODY_HEAD - BODY_TAIL} bytes]... "
        f"{data[-BODY_TAIL:]!r} ({len(data)} bytes)"
    )


def show(v: Violation) -> str:
    c, o = v.case, v.outcome
    sent = {k: ("<omitted>" if val is OMIT else val) for k, val in c.headers.items()}
    if o.status is None:
        got = f"no response: {o.error}"
    else:
        ctype = o.headers.get("content-type", "-")
        rid = o.headers.get("x-aura-request-id", "-")
        got = f"{o.status} [{ctype}; x-aura-request-id={rid}] {short(o.content)}"
    label = c.label.encode("ascii", "backslashreplace").decode()
    lines = [
        f"  {label}",
        f"    broke: {'; '.join(v.problems)}",
        f"    {c.method} {c.path}" + (f"  headers={sent!a}" if sent else ""),
        f"    body: {short(c.body)}",
        f"    got:  {got}",
    ]
    return "\n".join(lines)


def report(
    family: str,
    total: int,
    violations: list[Violation],
    where: Callable[[Violation], str] | None = None,
) -> str:
    """Violations grouped by what broke (one group, one root cause more often than not),
    the smallest reproductions first, then where else the group struck."""
    groups: dict[str, list[Violation]] = {}
    for v in violations:
        # A problem reads "what broke — details"; the details do not split a group.
        key = f"{v.problems[0].split(' — ')[0]} (status {v.outcome.status})"
        groups.setdefault(key, []).append(v)
    out = [
        f"{len(violations)} of {total} '{family}' cases broke an invariant "
        f"(AURA_FUZZ_SEED={SEED}), in {len(groups)} group(s):"
    ]
    for key, items in sorted(groups.items(), key=lambda kv: (-len(kv[1]), kv[0])):
        items.sort(key=lambda v: len(v.case.body or b""))
        shown: list[Violation] = []
        seen: set[str] = set()
        for v in items:  # the smallest case of each place first
            place = where(v) if where else ""
            if place not in seen and len(shown) < SHOWN_PER_GROUP:
                shown.append(v)
                seen.add(place)
        out.append(f"- {len(items)} x {key}")
        out.extend(show(v) for v in shown)
        if where is not None:
            counts: dict[str, int] = {}
            for v in items:
                counts[where(v)] = counts.get(where(v), 0) + 1
            out.append("  on: " + ", ".join(f"{p} ({n})" for p, n in sorted(counts.items())))
        rest = [ascii(v.case.label) for v in items if v not in shown]
        if rest:
            out.append(f"  and: {', '.join(rest[:30])}" + (" ..." if len(rest) > 30 else ""))
    return "\n".join(out)


class Sender:
    """Sends cases over real HTTP with default headers (a key, a JSON content type)."""

    def __init__(self, base_url: str, default_headers: dict[str, Any]) -> None:
        self.base_url = base_url
        self.default_headers = default_headers
        self.client = self._client()

    def _client(self) -> httpx.Client:
        # Headers and body leave in separate writes: without TCP_NODELAY each request
        # stalls ~40 ms on Nagle + delayed ACK, which would make a few hundred cases slow.
        nodelay = [(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)]
        transport = httpx.HTTPTransport(socket_options=nodelay)
        return httpx.Client(base_url=self.base_url, timeout=30, transport=transport)

    def send(self, case: Case) -> Outcome:
        merged = {**self.default_headers, **case.headers}
        headers = {k: v for k, v in merged.items() if v is not OMIT}
        try:
            resp = self.client.request(case.method, case.path, content=case.body, headers=headers)
        except httpx.HTTPError as exc:
            # A dropped connection might be a dead server: start afresh for the next case.
            self.client.close()
            self.client = self._client()
            return Outcome(case, None, httpx.Headers(), b"", f"{type(exc).__name__}: {exc}")
        return Outcome(case, resp.status_code, resp.headers, resp.content)

    def close(self) -> None:
        self.client.close()


Check = Callable[[Outcome], list[str]]


def run_cases(
    sender: Sender, cases: Iterable[Case], checks: list[Check]
) -> tuple[int, list[Violation]]:
    total, violations = 0, []
    for case in cases:
        total += 1
        outcome = sender.send(case)
        problems = [p for check in checks for p in check(outcome)]
        if problems:
            violations.append(Violation(case, outcome, problems))
    return total, violations
