"""The fuzz families for the management API (/api/v1): the valid body of every writable
endpoint (api_endpoints), mutated by kind: wrong types, odd strings and numbers, nesting,
size and malformed bodies. FAMILIES lists them with those of api_specific_cases.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from typing import Any

from tests.fuzz.api_endpoints import (
    BY_NAME,
    ENDPOINTS,
    Counter,
    Endpoint,
    Ids,
    endpoint_case,
    first_items,
    numbers_of,
    strings_of,
    top_field,
)
from tests.fuzz.api_specific_cases import (
    cross_tenant,
    odd_methods,
    odd_query_strings,
    policy_yaml_documents,
    policy_yaml_nesting,
)
from tests.fuzz.cases import OMIT, Case
from tests.fuzz.jsonbytes import Pairs, Raw, dumps, nested
from tests.fuzz.mutations import (
    HUGE_NUMBERS,
    LONE_SURROGATES,
    NON_FINITE,
    dict_paths,
    extended,
    fmt,
    key_paths,
    renamed,
    replaced,
    sample,
    string_paths,
    walk,
    wrong_types_for,
)

# --------------------------------------------------------------------------- families


def wrong_types(ep: Endpoint) -> Callable[[random.Random, Ids], list[Case]]:
    """Every node of the endpoint's body with wrong JSON types; a 400 must name the field."""

    def family(rng: random.Random, ids: Ids) -> list[Case]:
        n = Counter()
        cases = []
        for path, value in walk(ep.body(ids, 0)):
            if any(isinstance(part, int) and part > 0 for part in path):
                continue  # the first item of a list stands for the others
            if ep.name == "POST route/batch" and len(path) > 3:
                continue  # an item is validated as POST route is (fuzzed there)
            wrong = wrong_types_for(value)
            if len(path) == 1:  # containers, null, two more, and the surely-wrong value
                picked = [w for w in wrong if w in ([], {}, None)] + sample(rng, wrong, 2)
                picked.append({} if isinstance(value, list) else [])
            else:  # the containers (the classic unhashable / not-a-dict crashes) and one more
                picked = [w for w in wrong if w in ([], {})] + sample(rng, wrong, 1)
            for w in dict.fromkeys(json.dumps(x) for x in picked):
                body = replaced(ep.body(ids, n()), path, json.loads(w))
                # Some of these values are valid (null for a nullable field, "" for an
                # optional key), and then another check may speak: the error must name
                # a field, and exactly this one only when the value is surely wrong.
                exact = len(path) == 1 and w == ("{}" if isinstance(value, list) else "[]")
                label = f"{fmt(path)} = {w}"
                cases.append(
                    endpoint_case(
                        ep, ids, label, body, field_name=top_field(path), any_field=not exact
                    )
                )
        return cases

    return family


def lone_surrogates(rng: random.Random, ids: Ids) -> list[Case]:
    n, cases = Counter(), []
    for ep in ENDPOINTS:
        body = ep.body(ids, 0)
        for path in strings_of(body):
            s = rng.choice(LONE_SURROGATES)
            cases.append(
                endpoint_case(ep, ids, f"{fmt(path)} = {s!r}", replaced(ep.body(ids, n()), path, s))
            )
        for path in sample(rng, first_items(key_paths(body)), 1):
            s = rng.choice(LONE_SURROGATES)
            cases.append(
                endpoint_case(
                    ep, ids, f"key {fmt(path)} -> {s!r}", renamed(ep.body(ids, n()), path, s)
                )
            )
        cases.append(
            endpoint_case(
                ep,
                ids,
                "extra field '\\ud800'",
                extended(ep.body(ids, n()), (), "\ud800", "\udfff"),
            )
        )
    return cases


CONTROL_STRINGS = (
    "a\u0000b",
    "\u0000",
    "\u0001\u001f",
    "line\nbreak",
    "\u2028\u2029",
    "\ufeff",
    "\u202eevil",
    "\U0001f600",
)


def control_characters(rng: random.Random, ids: Ids) -> list[Case]:
    """NUL (which Postgres cannot store in text), other control and odd Unicode characters."""
    n, cases = Counter(), []
    for ep in ENDPOINTS:
        for path in strings_of(ep.body(ids, 0)):
            for s in (
                ("a\u0000b",)
                if rng.random() < 0.8
                else ("a\u0000b", rng.choice(CONTROL_STRINGS[1:]))
            ):
                value = s if path[-1] not in ("name",) else f"{s}-{n.n}"
                cases.append(
                    endpoint_case(
                        ep,
                        ids,
                        f"{fmt(path)} = {value!r}",
                        replaced(ep.body(ids, n()), path, value),
                    )
                )
        cases.append(
            endpoint_case(
                ep,
                ids,
                "extra field with NUL",
                extended(ep.body(ids, n()), (), "x\u0000", "y\u0000"),
            )
        )
    return cases


def non_finite_numbers(rng: random.Random, ids: Ids) -> list[Case]:
    """NaN / Infinity are not JSON: the parser refuses them, 400."""
    n, cases = Counter(), []
    for ep in ENDPOINTS:
        body = ep.body(ids, 0)
        for path in numbers_of(body) + sample(rng, strings_of(body), 1):
            bad = rng.choice(NON_FINITE)
            cases.append(
                endpoint_case(
                    ep,
                    ids,
                    f"{fmt(path)} = {bad.data.decode()}",
                    replaced(ep.body(ids, n()), path, bad),
                    want_status=400,
                )
            )
        bad = rng.choice(NON_FINITE)
        cases.append(
            endpoint_case(
                ep,
                ids,
                f"extra x = {bad.data.decode()}",
                extended(ep.body(ids, n()), (), "x", bad),
                want_status=400,
            )
        )
    return cases


def huge_numbers(rng: random.Random, ids: Ids) -> list[Case]:
    n, cases = Counter(), []
    for ep in ENDPOINTS:
        body = ep.body(ids, 0)
        for path in numbers_of(body) + sample(rng, strings_of(body), 1):
            for big in sample(rng, HUGE_NUMBERS, 2 if len(path) == 1 else 1):
                cases.append(
                    endpoint_case(
                        ep,
                        ids,
                        f"{fmt(path)} = {big.data[:24].decode()}",
                        replaced(ep.body(ids, n()), path, big),
                    )
                )
    # Numbers a column cannot hold though the validators pass them, and ids that are not
    # integers at all.
    explicit = [
        (
            "PATCH router/policy",
            "budgets.per_day = 100000000",
            {"budgets": {"per_day": 100_000_000}},
        ),
        (
            "PATCH router/policy",
            "budgets.per_hour = 1.8e308",
            {"budgets": {"per_hour": 1.7976931348623157e308}},
        ),
        (
            "PATCH router/policy",
            "max_cost_per_request = 1000000 (the maximum it allows)",
            {"max_cost_per_request": 1_000_000},
        ),
        (
            "POST budgets",
            "api_key = 1e400",
            dict(BY_NAME["POST budgets"].body(ids, 0), api_key=Raw(b"1e400")),
        ),
        (
            "POST budgets",
            "limit_usd = 1e400",
            dict(BY_NAME["POST budgets"].body(ids, 1), limit_usd=Raw(b"1e400")),
        ),
    ]
    for name, label, data in explicit:
        cases.append(endpoint_case(BY_NAME[name], ids, label, data))
    return cases


ODD_STRINGS = (
    "",
    " ",
    "-1",
    "0",
    "1e400",
    "NaN",
    "Infinity",
    "-0",
    "0x10",
    "1_000",
    "9999-12-31T23:59:59-23:59",
    "0001-01-01T00:00:00+23:59",
    "2024-02-30T00:00:00Z",
    "http://[::1",
    "https://93.184.216.34:99999/",
    "https://user:pw@93.184.216.34/",
    "https://unresolvable.invalid/v1",
    "javascript:alert(1)",
    "x" * 300,
    "../../etc/passwd",
    "<script>alert(1)</script>",
)


def odd_values(rng: random.Random, ids: Ids) -> list[Case]:
    """Strings of the right type but odd content: dates, URLs, decimals, huge lengths."""
    n, cases = Counter(), []
    for ep in ENDPOINTS:
        for path in strings_of(ep.body(ids, 0)):
            for s in sample(rng, ODD_STRINGS, 1):
                cases.append(
                    endpoint_case(
                        ep, ids, f"{fmt(path)} = {s[:40]!r}", replaced(ep.body(ids, n()), path, s)
                    )
                )
    return cases


def deep_nesting(rng: random.Random, ids: Ids) -> list[Case]:
    """JSON nested 500 to 100,000 deep, as the body and as a field's value."""
    n, cases = Counter(), []
    for ep in ENDPOINTS:
        first = next(iter(ep.body(ids, 0)))
        for depth in (500, 2_000) if rng.random() < 0.5 else (2_000, 100_000):
            cases.append(endpoint_case(ep, ids, f"body nested {depth} deep", nested(depth).data))
            cases.append(
                endpoint_case(
                    ep,
                    ids,
                    f"{first} nested {depth} deep",
                    replaced(ep.body(ids, n()), (first,), nested(depth, kind="object")),
                )
            )
    return cases


BIG = 3 * 1024 * 1024


def oversized_bodies(rng: random.Random, ids: Ids) -> list[Case]:
    """Bodies over Django's 2.5 MB limit: 413."""
    n, cases = Counter(), []
    for ep in ENDPOINTS:
        body = ep.body(ids, n())
        path = string_paths(body)[0] if string_paths(body) else None
        if path is not None:
            cases.append(
                endpoint_case(
                    ep, ids, f"3 MB {fmt(path)}", replaced(body, path, "x" * BIG), want_status=413
                )
            )
        cases.append(
            endpoint_case(
                ep,
                ids,
                "3 MB of whitespace after the body",
                dumps(ep.body(ids, n())) + b" " * BIG,
                want_status=413,
            )
        )
    return cases


FORM = "application/x-www-form-urlencoded"


def malformed_bodies(rng: random.Random, ids: Ids) -> list[Case]:
    """Not an object, not JSON, not UTF-8, cut short, under another content type."""
    n, cases = Counter(), []
    for ep in ENDPOINTS:
        valid = dumps(ep.body(ids, n()))
        raws = [
            b"",
            b"null",
            b"[]",
            b'"text"',
            b"1",
            b"[{}]",
            b"{",
            valid[: len(valid) // 2],
            valid + b"x",
            b'{"a":"\xff"}',
            b"\xef\xbb\xbf" + valid,
        ]
        for raw in sample(rng, raws, 2):
            cases.append(endpoint_case(ep, ids, f"body {raw[:30]!r}", raw))
        ctypes = (
            "text/plain",
            "application/x-www-form-urlencoded",
            "multipart/form-data; boundary=x",
            "application/yaml",
            "application/json; charset=utf-16",
            "application/json; charset=nonsense",
            OMIT,
        )
        for ctype in sample(rng, ctypes, 2):
            cases.append(
                endpoint_case(
                    ep, ids, f"content-type {ctype!r}", valid, headers={"content-type": ctype}
                )
            )
        body = ep.body(ids, n())
        first = next(iter(body))
        pairs = tuple(body.items())
        odd: list[tuple[str, Any, dict[str, Any]]] = [
            ("form body", b"name=x&provider=openai", {"content-type": FORM}),
            (f"duplicate key {first} (wrong type last)", Pairs((*pairs, (first, []))), {}),
            ("empty key", Pairs((*pairs, ("", "x"))), {}),
            ("unknown fields", extended(body, (), "unknown_field", {"a": [1, None]}), {}),
        ]
        odd += [
            (f"unknown field in {fmt(path)}", extended(body, path, "zz", 1), {})
            for path in dict_paths(body)[1:2]
        ]
        for label, data, headers in sample(rng, odd, 2):
            cases.append(endpoint_case(ep, ids, label, data, headers=headers))
    return cases


FAMILIES: dict[str, Callable[[random.Random, Ids], list[Case]]] = {
    **{f"wrong-types {ep.name}": wrong_types(ep) for ep in ENDPOINTS},
    "lone-surrogates": lone_surrogates,
    "control-characters": control_characters,
    "non-finite-numbers": non_finite_numbers,
    "huge-numbers": huge_numbers,
    "odd-values": odd_values,
    "deep-nesting": deep_nesting,
    "oversized-bodies": oversized_bodies,
    "malformed-bodies": malformed_bodies,
    "policy-yaml-nesting": policy_yaml_nesting,
    "policy-yaml-documents": policy_yaml_documents,
    "odd-query-strings": odd_query_strings,
    "odd-methods-and-paths": odd_methods,
    "cross-tenant": cross_tenant,
}
