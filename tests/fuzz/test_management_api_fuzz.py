"""The outside fuzzer's kind of test for the management API (/api/v1), kept in the suite.

Charlie (admin of globex, signed in) sends seeded mutations of a valid body to every
writable endpoint, over real HTTP to the live server. Invariants, for every case:

* never a 5xx; the status is the one wanted where one is (NaN -> 400, 3 MB -> 413);
* every error is DRF's shape (``{"detail": ...}`` or ``{"<field>": [...]}``) as JSON, and a
  400 caused by one field names it (as a key, or as ``"field"``);
* nothing half-written: a refused request leaves charlie's rows exactly as they were (a
  refused PUT keeps the policy version, a refused create adds no row);
* nothing cross-tenant: no request of charlie's ever changes a row of alice's (acme);
* the server stays up.

One test per family (wrong types per endpoint, the rest across all endpoints), each listing
all its violations with method, path, body bytes and response.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from routing.models import Credential, ProviderEndpoint
from tenants.models import ApiKey
from tests.fuzz.api_cases import FAMILIES
from tests.fuzz.api_endpoints import BY_NAME, valid_bodies
from tests.fuzz.api_specific_cases import duplicate_names
from tests.fuzz.cases import Case, Outcome, Violation, report, rng_for
from tests.fuzz.conftest import ApiWorld
from tests.fuzz.state import Tracker

pytestmark = pytest.mark.django_db


def _field_errors(value: Any) -> bool:
    if isinstance(value, list):
        return bool(value) and all(isinstance(v, str) or _field_errors(v) for v in value)
    if isinstance(value, dict):
        return bool(value) and all(_field_errors(v) for v in value.values())
    return False


def drf_error_problems(o: Outcome) -> list[str]:
    if o.status is None:
        return [f"no response ({(o.error or '?').split(':')[0]})"]
    problems = []
    if "x-aura-request-id" not in o.headers:
        problems.append("no x-aura-request-id header")
    if o.status < 400 or o.case.method == "HEAD":
        return problems
    if not o.headers.get("content-type", "").startswith("application/json"):
        return [*problems, "error is not JSON (content type)"]
    try:
        body = o.json()
    except ValueError:
        return [*problems, "error body is not JSON"]
    if not isinstance(body, dict) or not body:
        problems.append("error is not DRF's shape")
    elif "detail" in body:
        if not isinstance(body["detail"], str):
            problems.append("error detail is not a string")
    elif not all(_field_errors(v) for v in body.values()):
        problems.append("error is not DRF's shape")
    return problems


def named_fields(body: Any) -> set[str]:
    if not isinstance(body, dict):
        return set()
    names = {k for k in body if k not in ("detail", "code")}
    if isinstance(body.get("field"), str):
        names.add(body["field"])
    return names


def names_field(body: Any, field: str) -> bool:
    """``field`` is named as a key, or as a (possibly prefixed) path: ``tenants.x.field``,
    ``field.sub``, ``field[0]``."""
    for name in named_fields(body):
        parts = name.replace("[", ".").split(".")
        if field in parts:
            return True
    return False


def status_problems(o: Outcome) -> list[str]:
    c = o.case
    if o.status is None:
        return []
    if o.status >= 500:
        return [f"{o.status} for bad input"]
    if c.want_status is not None and o.status != c.want_status:
        return [f"want {c.want_status}, got {o.status}"]
    if c.field_name and o.status == 400:
        try:
            body = o.json()
        except ValueError:
            return []
        named = named_fields(body) - {"non_field_errors"}
        if c.any_field and not named:
            return [f"a 400 that names no field — want {c.field_name!r}"]
        if not c.any_field and not names_field(body, c.field_name):
            return [
                f"a 400 that does not name the field — want {c.field_name!r}, named {sorted(named)}"
            ]
    return []


def run_family(w: ApiWorld, cases: list[Case]) -> tuple[int, list[Violation]]:
    violations = []
    rows = Tracker([w.alice, w.charlie])
    for case in cases:
        o = w.sender.send(case)
        changes = rows.changes()
        problems = status_problems(o) + drf_error_problems(o)
        if (o.status is None or o.status >= 400) and w.charlie.pk in changes:
            problems.append(f"a refused request changed charlie's rows — {changes[w.charlie.pk]}")
        if w.alice.pk in changes:
            problems.append(f"charlie's request changed alice's rows — {changes[w.alice.pk]}")
        if problems:
            violations.append(Violation(case, o, problems))
    alive = w.sender.send(
        Case("the API after the family", None, method="GET", path="/api/v1/tenant")
    )
    if alive.status != 200:
        violations.append(Violation(alive.case, alive, ["the server no longer answers"]))
    return len(cases), violations


def _endpoint_of(v: Violation) -> str:
    return f"{v.case.method} {v.case.path.split('?')[0]}"


def test_every_valid_body_the_fuzzer_starts_from_is_accepted(fuzz_api: ApiWorld) -> None:
    """The mutations start from these bodies, so they must work; and the row tracker that
    judges "nothing half-written" must see the writes they make."""
    refused, unseen = [], []
    rows = Tracker([fuzz_api.alice, fuzz_api.charlie])
    for case in valid_bodies(fuzz_api):
        o = fuzz_api.sender.send(case)
        changes = rows.changes()
        if o.status not in (200, 201):
            refused.append(
                f"{case.label}: {case.method} {case.path} -> {o.status} {o.content[:300]!r}"
            )
        if case.method in ("POST", "PUT", "PATCH") and "route" not in case.path:
            if fuzz_api.charlie.pk not in changes:
                unseen.append(case.label)
        assert fuzz_api.alice.pk not in changes, changes
    assert not refused, "\n".join(refused)
    assert not unseen, f"writes the tracker did not see: {unseen}"


@pytest.mark.parametrize("family", list(FAMILIES))
def test_fuzzed_management_api_requests_get_a_drf_4xx_and_change_nothing(
    fuzz_api: ApiWorld, family: str
) -> None:
    total, violations = run_family(fuzz_api, FAMILIES[family](rng_for(family), fuzz_api))
    if violations:
        pytest.fail(report(family, total, violations, where=_endpoint_of), pytrace=False)


def test_duplicate_names_are_a_400_naming_the_field_and_add_or_change_no_row(
    fuzz_api: ApiWorld,
) -> None:
    w = fuzz_api
    names = {
        "credential2": Credential.objects.get(pk=w.charlie_credentials[1]).name,
        "endpoint2": ProviderEndpoint.objects.get(pk=w.charlie_endpoints[1]).name,
        "alice_credential": Credential.objects.get(pk=w.alice_credential).name,
        "key": ApiKey.objects.get(pk=w.charlie_key).name,
    }
    total, violations = run_family(w, duplicate_names(rng_for("duplicate-names"), w, names))
    if violations:
        pytest.fail(report("duplicate-names", total, violations, where=_endpoint_of), pytrace=False)


def test_outcomes_recorded_with_huge_latencies_never_break_the_metrics_read(
    fuzz_api: ApiWorld,
) -> None:
    """router/record stores what it accepts; router/metrics aggregates it for a week. Values
    the first accepts must not make the second fail for the tenant from then on."""
    w = fuzz_api
    record = BY_NAME["POST router/record"]
    cases = [
        Case(
            f"POST router/record: latency_ms = {latency!r}",
            json.dumps(dict(record.body(w, i), latency_ms=latency)).encode(),
            path="/api/v1/router/record",
        )
        for i, latency in enumerate((1e308, 1.7976931348623157e308))
    ]
    cases.append(
        Case("GET router/metrics afterwards", None, method="GET", path="/api/v1/router/metrics")
    )
    total, violations = run_family(w, cases)
    if violations:
        pytest.fail(
            report("huge recorded latencies", total, violations, where=_endpoint_of), pytrace=False
        )
