"""The outside fuzzer's kind of test for /v1, kept in the suite (issue 7).

Seeded, deterministic mutations of valid chat-completions and embeddings bodies, headers,
methods and paths, sent by charlie over real HTTP (httpx, so the bytes are ours) to the live
gateway in front of the fake upstreams. Invariants, for every case:

* never a 5xx caused by the input: 502/503 only when the request was valid and the fake
  upstream was told to fail;
* every error is OpenAI's error object ``{"error": {"message", "type", "param", "code"}}``
  with a JSON content type, and every response has an ``x-aura-request-id``;
* NaN/Infinity (not JSON), invalid UTF-8 and bodies that are not a JSON object are a 400;
* an upstream only ever receives strict JSON (no NaN/Infinity, valid UTF-8);
* a 200 stream ends with ``data: [DONE]``;
* the server stays up, and alice's data (acme) is never touched by charlie's requests.

One test per mutation family: all its violations are collected and shown together, each
with the method, path, body bytes and response needed to reproduce it.
"""

from __future__ import annotations

import json
import re
import socket
from typing import Any

import httpx
import pytest

from tests.fuzz.cases import Case, Check, Outcome, Violation, report, rng_for
from tests.fuzz.conftest import GatewayFuzz, UpstreamLog
from tests.fuzz.gateway_bodies import valid_bodies
from tests.fuzz.gateway_cases import FAMILIES
from tests.fuzz.state import diff, tenant_snapshot

# The world is built once per module (conftest.gateway_world); the marker makes pytest-django
# create the test database and lets each test read it.
pytestmark = pytest.mark.django_db

ERROR_FIELDS = {"message", "type", "param", "code"}


def openai_error_problems(o: Outcome) -> list[str]:
    if o.status is None:
        return [f"no response ({o.error.split(':')[0] if o.error else '?'})"]
    problems = []
    if "x-aura-request-id" not in o.headers:
        problems.append("no x-aura-request-id header")
    if o.status < 400 or o.case.method == "HEAD":
        return problems
    if not o.headers.get("content-type", "").startswith("application/json"):
        problems.append("error is not JSON (content type)")
        return problems
    try:
        body: Any = o.json()
    except ValueError:
        return [*problems, "error body is not JSON"]
    err = body.get("error") if isinstance(body, dict) else None
    if not (isinstance(body, dict) and list(body) == ["error"] and isinstance(err, dict)):
        problems.append("error is not OpenAI's error object")
    elif set(err) != ERROR_FIELDS:
        problems.append("error object lacks or adds fields")
    elif not (isinstance(err["message"], str) and err["message"] and isinstance(err["type"], str)):
        problems.append("error message/type are not strings")
    elif not all(err[k] is None or isinstance(err[k], str) for k in ("param", "code")):
        problems.append("error param/code are neither null nor strings")
    return problems


def status_problems(o: Outcome) -> list[str]:
    c = o.case
    if o.status is None:
        return []
    if o.status >= 500 and not (c.upstream_fails and o.status in (502, 503)):
        return [
            f"{o.status} for bad input"
            if not c.upstream_fails
            else f"{o.status} when an upstream failed"
        ]
    if c.want_status is not None and o.status != c.want_status:
        return [f"want {c.want_status}, got {o.status}"]
    return []


def stream_problems(o: Outcome) -> list[str]:
    if o.status != 200 or not o.headers.get("content-type", "").startswith("text/event-stream"):
        return []
    if o.content.endswith(b"data: [DONE]\n\n"):
        return []
    if o.case.upstream_fails and b'"code":"upstream_stream_error"' in o.content[-600:]:
        return []
    return ["a 200 stream ends without data: [DONE] (or an error event)"]


def upstream_problems(log: UpstreamLog) -> Check:
    """New entries of the strict upstreams' log belong to the case just sent."""
    seen = {"n": len(log.invalid_json)}

    def check(o: Outcome) -> list[str]:
        new = log.invalid_json[seen["n"] :]
        seen["n"] = len(log.invalid_json)
        return [f"an upstream received invalid JSON — {p[:160]}" for p in new]

    return check


def _target(v: Violation) -> str:
    """Where a case went: the path and the model named in its body (so a wire format that
    fails alone shows)."""
    found = re.search(rb'"model":\s*"([^"]{0,40})', v.case.body or b"")
    return f"{v.case.path} {found.group(1).decode('utf-8', 'replace') if found else '-'}"


def run_family(fz: GatewayFuzz, cases: list[Case]) -> tuple[int, list[Violation]]:
    checks: list[Check] = [
        status_problems,
        openai_error_problems,
        stream_problems,
        upstream_problems(fz.log),
    ]
    violations = []
    scenario: str | None = None
    for case in cases:
        if case.scenario != scenario:
            scenario = case.scenario
            fz.set_scenario(scenario)
        outcome = fz.sender.send(case)
        problems = [p for check in checks for p in check(outcome)]
        if problems:
            violations.append(Violation(case, outcome, problems))
    return len(cases), violations


def test_every_valid_body_the_fuzzer_starts_from_is_answered(fuzz_gateway: GatewayFuzz) -> None:
    """The mutations start from these bodies, so they must work; and a request of alice's
    own shows in her rows (so the check that charlie's never do can fail)."""
    alice_before = tenant_snapshot(fuzz_gateway.alice)
    own = Case(
        "alice's own request",
        valid_bodies()[0].body,
        headers={"authorization": f"Bearer {fuzz_gateway.alice_key}"},
    )
    assert fuzz_gateway.sender.send(own).status == 200
    fuzz_gateway.drain()
    assert "UsageRecord" in diff(alice_before, tenant_snapshot(fuzz_gateway.alice))
    refused = []
    for case in valid_bodies():
        o = fuzz_gateway.sender.send(case)
        problems = stream_problems(o) + upstream_problems(fuzz_gateway.log)(o)
        if o.status != 200 or problems:
            refused.append(f"{case.label}: {o.status} {problems} {o.content[:300]!r}")
    assert not refused, "\n".join(refused)
    assert not fuzz_gateway.log.crashes, fuzz_gateway.log.crashes


@pytest.mark.parametrize("family", list(FAMILIES))
def test_fuzzed_v1_requests_get_a_4xx_in_openais_shape_never_a_5xx(
    fuzz_gateway: GatewayFuzz, family: str
) -> None:
    alice_before = tenant_snapshot(fuzz_gateway.alice)

    total, violations = run_family(fuzz_gateway, FAMILIES[family](rng_for(family)))
    violations += fuzz_gateway.health_violations()

    fuzz_gateway.drain()  # usage records land before alice's data is compared
    alice_changes = diff(alice_before, tenant_snapshot(fuzz_gateway.alice))
    if alice_changes:
        family_case = Case(f"all '{family}' cases, as charlie")
        nothing = Outcome(family_case, None, httpx.Headers(), b"", "-")
        violations.append(
            Violation(family_case, nothing, [f"alice's rows changed — {alice_changes}"])
        )
    if violations:
        pytest.fail(report(family, total, violations, where=_target), pytrace=False)


# --------------------------------------------------------------------------- framing


def _raw_exchange(url: str, data: bytes, *, half_close: bool) -> bytes:
    """Write ``data`` on a fresh connection (then optionally close our side) and read until
    the server closes, or 3 s pass."""
    host, port = url.removeprefix("http://").split(":")
    chunks = []
    with socket.create_connection((host, int(port)), timeout=3) as s:
        s.sendall(data)
        if half_close:
            s.shutdown(socket.SHUT_WR)
        try:
            while chunk := s.recv(65536):
                chunks.append(chunk)
        except (TimeoutError, ConnectionResetError):
            pass
    return b"".join(chunks)


def _responses(raw: bytes) -> list[Outcome]:
    """The HTTP/1.1 responses in ``raw`` (bodies framed by content-length)."""
    out = []
    while raw.startswith(b"HTTP/1."):
        head, _, rest = raw.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        pairs = [line.split(":", 1) for line in lines[1:] if ":" in line]
        headers = httpx.Headers([(name.strip(), value.strip()) for name, value in pairs])
        length = int(headers.get("content-length", "0") or 0)
        body, raw = rest[:length], rest[length:]
        out.append(Outcome(Case("framing"), status, headers, body))
    return out


def _framings(key: str) -> list[tuple[str, bytes, bool]]:
    body = json.dumps(
        {"model": "fake-ok", "messages": [{"role": "user", "content": "hi"}]}
    ).encode()
    head = f"POST /v1/chat/completions HTTP/1.1\r\nhost: 127.0.0.1\r\nauthorization: Bearer {key}\r\ncontent-type: application/json\r\nconnection: close\r\n".encode()
    chunked = (
        b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in (body[:10], body[10:30], body[30:]))
        + b"0\r\n\r\n"
    )
    return [
        (
            "body shorter than content-length, then EOF",
            head + b"content-length: 500\r\n\r\n" + body,
            True,
        ),
        ("body longer than content-length", head + b"content-length: 10\r\n\r\n" + body, False),
        ("content-length: abc", head + b"content-length: abc\r\n\r\n" + body, True),
        ("content-length: -1", head + b"content-length: -1\r\n\r\n" + body, True),
        (
            "two different content-lengths",
            head + b"content-length: 10\r\ncontent-length: %d\r\n\r\n" % len(body) + body,
            True,
        ),
        (
            "content-length of 17 MiB declared, 60 bytes sent",
            head + b"content-length: 17825792\r\n\r\n" + body,
            True,
        ),
        (
            "content-length of 10**30 declared",
            head + b"content-length: " + b"9" * 30 + b"\r\n\r\n" + body,
            True,
        ),
        (
            "chunked body in three chunks",
            head + b"transfer-encoding: chunked\r\n\r\n" + chunked,
            False,
        ),
        (
            "chunked body cut mid-chunk, then EOF",
            head + b"transfer-encoding: chunked\r\n\r\n" + chunked[:25],
            True,
        ),
        (
            "chunk size not hex",
            head + b"transfer-encoding: chunked\r\n\r\nzz\r\n" + body + b"\r\n0\r\n\r\n",
            True,
        ),
        (
            "chunked and content-length",
            head + b"transfer-encoding: chunked\r\ncontent-length: 5\r\n\r\n" + chunked,
            True,
        ),
        ("transfer-encoding: gzip", head + b"transfer-encoding: gzip\r\n\r\n" + body, True),
        (
            "header line without a colon",
            head + b"this is not a header\r\ncontent-length: %d\r\n\r\n" % len(body) + body,
            True,
        ),
        (
            "NUL in a header value",
            head + b"x-aura-tier: eco\x00\r\ncontent-length: %d\r\n\r\n" % len(body) + body,
            True,
        ),
        (
            "32 KB header",
            head
            + b"x-aura-session-id: "
            + b"s" * 32_000
            + b"\r\ncontent-length: %d\r\n\r\n" % len(body)
            + body,
            True,
        ),
        ("garbage request line", b"GARBAGE\r\n\r\n", True),
        (
            "HTTP/1.0 without host",
            b"POST /v1/chat/completions HTTP/1.0\r\nauthorization: Bearer "
            + key.encode()
            + b"\r\ncontent-length: %d\r\n\r\n" % len(body)
            + body,
            True,
        ),
        ("HTTP/2 preface", b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", True),
        (
            "absolute-form target",
            head.replace(b"POST /v1/", b"POST http://127.0.0.1/v1/")
            + b"content-length: %d\r\n\r\n" % len(body)
            + body,
            True,
        ),
        ("connection closed inside the headers", head[:40], True),
        (
            "two pipelined requests",
            head.replace(b"connection: close\r\n", b"")
            + b"content-length: %d\r\n\r\n" % len(body)
            + body
            + head
            + b"content-length: %d\r\n\r\n" % len(body)
            + body,
            False,
        ),
    ]


def test_broken_http_framing_never_gets_a_5xx_nor_takes_the_gateway_down(
    fuzz_gateway: GatewayFuzz,
) -> None:
    """Bytes no HTTP client library would send. The HTTP server may answer a framing error
    itself (then not in OpenAI's shape: AURA never saw a request); whatever AURA answers
    obeys the usual invariants, and a valid request afterwards still works."""
    violations = []
    framings = _framings(fuzz_gateway.charlie_key)
    valid = Case(
        "a valid request afterwards",
        json.dumps({"model": "fake-ok", "messages": [{"role": "user", "content": "hi"}]}).encode(),
    )
    # Statuses that show the raw exchange works at all (so this test can fail).
    expected = {
        "chunked body in three chunks": [200],
        "two pipelined requests": [200, 200],
        "content-length of 17 MiB declared, 60 bytes sent": [413],
    }
    for label, data, half_close in framings:
        case = Case(label, data, method="RAW", path="/v1/chat/completions")
        responses = _responses(_raw_exchange(fuzz_gateway.url, data, half_close=half_close))
        got = [o.status for o in responses]
        if label in expected and got != expected[label]:
            empty = Outcome(case, None, httpx.Headers(), b"", f"statuses {got}")
            violations.append(Violation(case, empty, [f"want statuses {expected[label]}"]))
        for o in responses:
            o.case = case
            problems = [] if o.status is None or o.status < 500 else [f"{o.status} for bad input"]
            if "x-aura-request-id" in o.headers:
                problems += openai_error_problems(o)
            if problems:
                violations.append(Violation(case, o, problems))
        after = fuzz_gateway.sender.send(valid)
        if after.status != 200:
            violations.append(
                Violation(case, after, ["the gateway no longer answers a valid request"])
            )
    if violations:
        pytest.fail(report("framing", len(framings), violations), pytrace=False)
