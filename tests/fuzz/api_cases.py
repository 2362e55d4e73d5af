"""The fuzz families for the management API (/api/v1): every writable endpoint, its valid
body, and the mutations sent to it by charlie.

Bodies are built per case (``Endpoint.body(world, n)``) so that names stay unique and one
case's success never makes the next one a duplicate.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from tests.fuzz.cases import OMIT, Case
from tests.fuzz.jsonbytes import Pairs, Raw, dumps, nested
from tests.fuzz.mutations import (
    HUGE_NUMBERS,
    LONE_SURROGATES,
    NON_FINITE,
    Path,
    dict_paths,
    extended,
    fmt,
    key_paths,
    number_paths,
    renamed,
    replaced,
    sample,
    string_paths,
    walk,
    wrong_types_for,
)

PUBLIC_URL = "https://93.184.216.34/v1"  # a public address literal: no DNS is needed


class Ids(Protocol):
    """The ids of the rows the world holds (see conftest.api_world)."""

    charlie_key: int
    charlie_credentials: tuple[int, int]
    charlie_endpoints: tuple[int, int]
    charlie_budget: int
    alice_key: int
    alice_credential: int
    alice_endpoint: int
    alice_budget: int


def policy_yaml(slug: str) -> str:
    return (
        f"tenants:\n  {slug}:\n    objective: minimize_cost\n"
        "    budgets: {per_request: 0.05, per_day: 50.0}\n"
        "    denied_models: [gpt-x-mini]\n    aliases: {fast: [gpt-x]}\n"
        "    rate_limits: {rpm: 600}\n"
    )


ROUTE_BODY: dict[str, Any] = {
    "model": "auto",
    "messages": [{"role": "user", "content": "hello there"}],
    "max_tokens": 16,
    "temperature": 0.5,
    "aura": {"objective": "balanced", "tier": "eco", "max_cost": 0.5, "session_id": "s-1"},
}
ROUTE_EMBEDDINGS_BODY: dict[str, Any] = {
    "kind": "embeddings",
    "model": "auto",
    "input": ["a b", "c"],
}


@dataclass(frozen=True)
class Endpoint:
    name: str
    method: str
    path: Callable[[Ids], str]
    body: Callable[[Ids, int], Any]
    session_only: bool = False


ENDPOINTS: tuple[Endpoint, ...] = (
    Endpoint(
        "POST keys",
        "POST",
        lambda w: "/api/v1/keys",
        lambda w, n: {
            "name": f"fuzz-key-{n}",
            "expires_at": "2099-01-01T00:00:00Z",
            "can_manage": False,
        },
    ),
    Endpoint(
        "PATCH tenant/preferences",
        "PATCH",
        lambda w: "/api/v1/tenant/preferences",
        lambda w, n: {"weekly_report_opt_out": n % 2 == 1},
    ),
    Endpoint(
        "PUT router/policy",
        "PUT",
        lambda w: "/api/v1/router/policy",
        lambda w, n: {
            "objective": "custom",
            "weights": {"quality": 0.5, "cost": 0.3, "latency": 0.2},
            "allowed_providers": ["openai", "anthropic"],
            "denied_providers": [],
            "allowed_models": None,
            "denied_models": ["gpt-x-mini"],
            "local_only": False,
            "max_cost_per_request": 0.5,
            "min_quality": 0.1,
            "fallback_depth": 2,
            "strategy": "scored",
            "hedge_k": 2,
            "aliases": {"fast": ["gpt-x"]},
            "budgets": {"per_request": 0.05, "per_day": 50.0},
            "rate_limits": {"rpm": 600, "tpm": 100000},
        },
    ),
    Endpoint(
        "PATCH router/policy",
        "PATCH",
        lambda w: "/api/v1/router/policy",
        lambda w, n: {"objective": "minimize_cost", "denied_models": ["gpt-x-mini"], "hedge_k": 3},
    ),
    Endpoint(
        "POST router/policy/import",
        "POST",
        lambda w: "/api/v1/router/policy/import",
        lambda w, n: {"yaml": policy_yaml("globex")},
    ),
    Endpoint(
        "PUT router/weights",
        "PUT",
        lambda w: "/api/v1/router/weights",
        lambda w, n: {"quality": 0.5, "cost": 0.3, "latency": 0.2, "note": f"fuzz {n}"},
    ),
    Endpoint(
        "POST router/record",
        "POST",
        lambda w: "/api/v1/router/record",
        lambda w, n: {
            "model": "claude-x",  # gpt-x is served by the tenant's endpoints too: ambiguous
            "latency_ms": 120.5,
            "cost_usd": "0.0012",
            "success": True,
            "quality_score": 0.8,
            "request_id": f"req_fuzz_{n}",
        },
    ),
    Endpoint("POST route", "POST", lambda w: "/api/v1/route", lambda w, n: dict(ROUTE_BODY)),
    Endpoint(
        "POST route (embeddings)",
        "POST",
        lambda w: "/api/v1/route",
        lambda w, n: dict(ROUTE_EMBEDDINGS_BODY),
    ),
    Endpoint(
        "POST route/batch",
        "POST",
        lambda w: "/api/v1/route/batch",
        lambda w, n: {"requests": [dict(ROUTE_BODY), dict(ROUTE_EMBEDDINGS_BODY)]},
    ),
    Endpoint(
        "POST credentials",
        "POST",
        lambda w: "/api/v1/credentials",
        lambda w, n: {
            "provider": "openai",
            "name": f"fuzz-cred-{n}",
            "secret": "sk-fuzz-0123456789abcdef",
            "endpoint": w.charlie_endpoints[0],
            "enabled": True,
        },
    ),
    Endpoint(
        "PATCH credentials/<id>",
        "PATCH",
        lambda w: f"/api/v1/credentials/{w.charlie_credentials[0]}",
        lambda w, n: {
            "name": f"c-one-{n}",
            "secret": f"sk-rotated-{n:08d}-abcdef",
            "enabled": True,
        },
    ),
    Endpoint(
        "POST endpoints",
        "POST",
        lambda w: "/api/v1/endpoints",
        lambda w, n: {
            "provider": "openai",
            "name": f"fuzz-ep-{n}",
            "base_url": PUBLIC_URL,
            "api_version": "",
            "deployments": {"gpt-x": "dep-1"},
            "models": ["gpt-x"],
            "connect_timeout": 2,
            "first_byte_timeout": 5,
            "total_timeout": 30,
            "max_retries": 1,
            "enabled": True,
        },
    ),
    Endpoint(
        "PATCH endpoints/<id>",
        "PATCH",
        lambda w: f"/api/v1/endpoints/{w.charlie_endpoints[0]}",
        lambda w, n: {
            "name": f"c-ep-{n}",
            "models": ["gpt-x", "gpt-x-mini"],
            "total_timeout": 20,
            "enabled": True,
        },
    ),
    Endpoint(
        "POST budgets",
        "POST",
        lambda w: "/api/v1/budgets",
        lambda w, n: {
            "api_key": w.charlie_key,
            "period": ("hour", "day", "week", "month")[n % 4],
            "limit_usd": "50.5",
            "mode": "block",
            "thresholds": [50, 80, 100],
            "webhook_url": "https://93.184.216.34/hook",
            "enabled": True,
        },
    ),
    Endpoint(
        "PATCH budgets/<id>",
        "PATCH",
        lambda w: f"/api/v1/budgets/{w.charlie_budget}",
        lambda w, n: {
            "limit_usd": f"{20 + n % 7}",
            "thresholds": [90],
            "mode": "alert_only",
            "webhook_url": "",
        },
    ),
)
BY_NAME = {e.name: e for e in ENDPOINTS}


class Counter:
    def __init__(self) -> None:
        self.n = 0

    def __call__(self) -> int:
        self.n += 1
        return self.n


def valid_bodies(ids: Ids) -> list[Case]:
    """Each endpoint's valid body as is: all must be accepted, or the mutations mean little."""
    return [
        _case(ep, ids, "valid body", ep.body(ids, 10_000 + i)) for i, ep in enumerate(ENDPOINTS)
    ]


def _case(ep: Endpoint, ids: Ids, label: str, body: Any, **kw: Any) -> Case:
    data = body if isinstance(body, bytes) else dumps(body)
    return Case(f"{ep.name}: {label}", data, method=ep.method, path=ep.path(ids), **kw)


def _firsts(paths: list[Path]) -> list[Path]:
    """Paths through the first item of every list only: the first stands for the others."""
    return [p for p in paths if not any(isinstance(part, int) and part > 0 for part in p)]


def _strings(body: Any) -> list[Path]:
    return _firsts(string_paths(body))


def _numbers(body: Any) -> list[Path]:
    return _firsts(number_paths(body))


def _top(path: tuple[Any, ...]) -> str | None:
    return path[0] if path and isinstance(path[0], str) else None


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
                    _case(ep, ids, label, body, field_name=_top(path), any_field=not exact)
                )
        return cases

    return family


def lone_surrogates(rng: random.Random, ids: Ids) -> list[Case]:
    n, cases = Counter(), []
    for ep in ENDPOINTS:
        body = ep.body(ids, 0)
        for path in _strings(body):
            s = rng.choice(LONE_SURROGATES)
            cases.append(
                _case(ep, ids, f"{fmt(path)} = {s!r}", replaced(ep.body(ids, n()), path, s))
            )
        for path in sample(rng, _firsts(key_paths(body)), 1):
            s = rng.choice(LONE_SURROGATES)
            cases.append(
                _case(ep, ids, f"key {fmt(path)} -> {s!r}", renamed(ep.body(ids, n()), path, s))
            )
        cases.append(
            _case(
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
        for path in _strings(ep.body(ids, 0)):
            for s in (
                ("a\u0000b",)
                if rng.random() < 0.8
                else ("a\u0000b", rng.choice(CONTROL_STRINGS[1:]))
            ):
                value = s if path[-1] not in ("name",) else f"{s}-{n.n}"
                cases.append(
                    _case(
                        ep,
                        ids,
                        f"{fmt(path)} = {value!r}",
                        replaced(ep.body(ids, n()), path, value),
                    )
                )
        cases.append(
            _case(
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
        for path in _numbers(body) + sample(rng, _strings(body), 1):
            bad = rng.choice(NON_FINITE)
            cases.append(
                _case(
                    ep,
                    ids,
                    f"{fmt(path)} = {bad.data.decode()}",
                    replaced(ep.body(ids, n()), path, bad),
                    want_status=400,
                )
            )
        bad = rng.choice(NON_FINITE)
        cases.append(
            _case(
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
        for path in _numbers(body) + sample(rng, _strings(body), 1):
            for big in sample(rng, HUGE_NUMBERS, 2 if len(path) == 1 else 1):
                cases.append(
                    _case(
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
        cases.append(_case(BY_NAME[name], ids, label, data))
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
        for path in _strings(ep.body(ids, 0)):
            for s in sample(rng, ODD_STRINGS, 1):
                cases.append(
                    _case(
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
            cases.append(_case(ep, ids, f"body nested {depth} deep", nested(depth).data))
            cases.append(
                _case(
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
                _case(
                    ep, ids, f"3 MB {fmt(path)}", replaced(body, path, "x" * BIG), want_status=413
                )
            )
        cases.append(
            _case(
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
            cases.append(_case(ep, ids, f"body {raw[:30]!r}", raw))
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
                _case(ep, ids, f"content-type {ctype!r}", valid, headers={"content-type": ctype})
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
            cases.append(_case(ep, ids, label, data, headers=headers))
    return cases


# --------------------------------------------------------------------------- specific


YAML_CASES: tuple[tuple[str, bytes | str, str], ...] = (
    (
        "flow lists nested 3,000 deep",
        "tenants:\n  globex:\n    aliases: {a: " + "[" * 3000 + "]" * 3000 + "}\n",
        "application/yaml",
    ),
    (
        "flow maps nested 3,000 deep",
        "tenants: " + "{a: " * 3000 + "1" + "}" * 3000 + "\n",
        "application/yaml",
    ),
    (
        "block lists nested 3,000 deep",
        "tenants:\n  globex:\n    denied_models: " + "- " * 3000 + "x\n",
        "application/yaml",
    ),
    (
        "nested 500 deep",
        "tenants:\n  globex:\n    aliases: {a: " + "[" * 500 + "]" * 500 + "}\n",
        "application/yaml",
    ),
    (
        "anchors and aliases",
        "a: &a [x, x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\ntenants:\n  globex:\n    denied_models: *c\n",
        "application/yaml",
    ),
    (
        "alias used as a key",
        "x: &k globex\ntenants:\n  *k : {objective: balanced}\n",
        "application/yaml",
    ),
    ("python tag", "tenants: !!python/object/apply:os.system ['true']\n", "application/yaml"),
    (
        "an impossible date (February 30)",
        "tenants:\n  globex:\n    objective: 2024-02-30\n",
        "application/yaml",
    ),
    (
        "binary, set and timestamp values",
        "tenants:\n  globex:\n    denied_models: !!binary aGVsbG8=\n    aliases: !!set {a, b}\n    objective: 2001-12-14t21:59:43.10-05:00\n",
        "application/yaml",
    ),
    (
        "non-string keys",
        "tenants:\n  globex:\n    budgets: {1: 2, null: 3, true: 4}\n",
        "application/yaml",
    ),
    ("a list as a key", "tenants:\n  ? [a, b]\n  : {objective: balanced}\n", "application/yaml"),
    (
        "a list as a tenant slug's policy key",
        "tenants:\n  globex:\n    ? [objective]\n    : balanced\n",
        "application/yaml",
    ),
    (
        ".nan and .inf",
        "tenants:\n  globex:\n    budgets: {per_day: .nan, per_hour: .inf}\n    min_quality: -.inf\n",
        "application/yaml",
    ),
    (
        "a 400-digit integer",
        "tenants:\n  globex:\n    budgets: {per_day: 1" + "0" * 400 + "}\n",
        "application/yaml",
    ),
    (
        "a 400-digit max cost",
        "tenants:\n  globex:\n    max_cost_per_request: 1" + "0" * 400 + "\n",
        "application/yaml",
    ),
    (
        "a 400-digit weight",
        "tenants:\n  globex:\n    weights: {quality: 1" + "0" * 400 + ", cost: 0, latency: 0}\n",
        "application/yaml",
    ),
    ("1e400", "tenants:\n  globex:\n    budgets: {per_day: 1e400}\n", "application/yaml"),
    (
        "duplicate keys",
        "tenants:\n  globex: {objective: balanced}\n  globex: {objective: nonsense}\n",
        "application/yaml",
    ),
    ("two documents", "tenants: {globex: {}}\n---\ntenants: {globex: {}}\n", "application/yaml"),
    ("empty document", "", "application/yaml"),
    ("null document", "~\n", "application/yaml"),
    ("a list document", "- a\n- b\n", "application/yaml"),
    ("tenants null", "tenants: ~\n", "application/yaml"),
    ("policy a number", "tenants: {globex: 5}\n", "application/yaml"),
    (
        "another tenant's policy (alice's acme)",
        "tenants:\n  acme: {objective: minimize_cost, denied_models: [gpt-x]}\n",
        "application/yaml",
    ),
    (
        "both tenants",
        "tenants:\n  globex: {objective: balanced}\n  acme: {objective: minimize_cost}\n",
        "application/yaml",
    ),
    (
        "lone surrogate escape",
        'tenants:\n  globex:\n    denied_models: ["\\ud800"]\n',
        "application/yaml",
    ),
    (
        "lone surrogate in an alias name",
        'tenants:\n  globex:\n    aliases: {"\\udfff": [gpt-x]}\n',
        "application/yaml",
    ),
    ("NUL escape", 'tenants:\n  globex:\n    denied_models: ["a\\0b"]\n', "application/yaml"),
    ("raw NUL byte", b"tenants:\n  globex:\n    denied_models: [a\x00b]\n", "application/yaml"),
    ("invalid UTF-8", b"tenants:\n  globex:\n    denied_models: [\xff\xfe]\n", "application/yaml"),
    ("tabs for indentation", "tenants:\n\tglobex:\n\t\tobjective: balanced\n", "application/yaml"),
    ("unclosed quote", 'tenants:\n  globex:\n    objective: "balanced\n', "application/yaml"),
    (
        "1.2 MB document",
        "tenants:\n  globex:\n    denied_models: [" + ", ".join(["m"] * 400_000) + "]\n",
        "application/yaml",
    ),
    ("text/yaml", policy_yaml("globex"), "text/yaml"),
    ("application/x-yaml", policy_yaml("globex"), "application/x-yaml"),
    (
        "charset latin-1",
        policy_yaml("globex").encode("latin-1"),
        "application/yaml; charset=latin-1",
    ),
    ("charset utf-16 of utf-8 bytes", policy_yaml("globex"), "application/yaml; charset=utf-16"),
    ("charset nonsense", policy_yaml("globex"), "application/yaml; charset=nonsense"),
    ("JSON with yaml a list", json.dumps({"yaml": ["tenants:"]}), "application/json"),
    (
        "JSON with yaml nested 3,000 deep",
        json.dumps({"yaml": "tenants: " + "[" * 3000 + "]" * 3000}),
        "application/json",
    ),
)


def _yaml_cases(rng: random.Random, nesting: bool) -> list[Case]:
    cases = []
    for label, text, ctype in YAML_CASES:
        if ("nested" in label) != nesting:
            continue
        data = text.encode() if isinstance(text, str) else text
        # A dry run validates without saving: worth a second case where validation breaks.
        dry = "400-digit" in label or "date" in label
        for query in ("", "?dry_run=1") if dry else ("",):
            cases.append(
                Case(
                    f"import {label}{query}",
                    data,
                    path=f"/api/v1/router/policy/import{query}",
                    headers={"content-type": ctype},
                )
            )
    return cases


def policy_yaml_nesting(rng: random.Random, ids: Ids) -> list[Case]:
    """YAML (and JSON carrying YAML) nested 500 to 3,000 deep."""
    return _yaml_cases(rng, nesting=True)


def policy_yaml_documents(rng: random.Random, ids: Ids) -> list[Case]:
    """Every other odd policy document: tags, aliases, odd keys and values, encodings."""
    return _yaml_cases(rng, nesting=False)


QUERY_VALUES = (
    "",
    "%00",
    "%ff",
    "%ed%a0%80",
    "x" * 3000,
    "-1",
    "0",
    "9" * 30,
    "1e400",
    "NaN",
    "2024-13-45",
    "9999-12-31",
    "0000-01-01",
    "2024-01-01T25:00:00",
    "2024-01-01T00:00:00%2B99:00",
    "[]",
    "true",
)
QUERY_READS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("/api/v1/keys", ("status", "page")),
    (
        "/api/v1/usage",
        (
            "since",
            "until",
            "model",
            "provider",
            "api_key",
            "status",
            "kind",
            "cursor",
            "page_size",
            "format",
        ),
    ),
    ("/api/v1/spend/summary", ("since", "until")),
    ("/api/v1/router/metrics", ("since", "until")),
    ("/api/v1/router/select", ("prompt", "model", "max_tokens")),
    ("/api/v1/router/weights/history", ("page",)),
    ("/api/v1/reports/weekly.csv", ("week",)),
    ("/api/v1/alerts", ("page", "budget")),
    ("/api/v1/credentials", ("page",)),
    ("/api/v1/endpoints", ("page",)),
    ("/api/v1/budgets", ("page",)),
    ("/api/v1/operator/usage", ("tenant",)),
)


def odd_query_strings(rng: random.Random, ids: Ids) -> list[Case]:
    """Read endpoints with garbage in every query parameter."""
    cases = []
    for path, params in QUERY_READS:
        for param in params:
            for value in sample(rng, QUERY_VALUES, 2):
                extra = "&prompt=hi" if path.endswith("select") and param != "prompt" else ""
                cases.append(
                    Case(
                        f"GET {path}?{param}={value[:30]}",
                        None,
                        method="GET",
                        path=f"{path}?{param}={value}{extra}",
                    )
                )
        cases.append(
            Case(
                f"GET {path} with every parameter twice",
                None,
                method="GET",
                path=path + "?" + "&".join(f"{p}=a&{p}=b" for p in params),
            )
        )
    return cases


def odd_methods(rng: random.Random, ids: Ids) -> list[Case]:
    """Every endpoint path with every method (none that would delete charlie's rows)."""
    cases = []
    paths = sorted(
        {ep.path(ids) for ep in ENDPOINTS}
        | {"/api/v1/tenant", "/api/v1/providers", "/api/v1/router/policy/export", "/api/v1/usage"}
    )
    for path in paths:
        for method in sample(
            rng, ("GET", "POST", "PUT", "PATCH", "OPTIONS", "HEAD", "TRACE", "PROPFIND"), 2
        ):
            cases.append(Case(f"{method} {path}", b'{"a": 1}', method=method, path=path))
    for path in (
        "/api/v1/keys/0",
        "/api/v1/keys/" + "9" * 30,
        "/api/v1/credentials/99999999999",
        "/api/v1/budgets/" + "9" * 25,
        "/api/v1/endpoints/0",
        "/api/v1/keys/1/revoke/",
        "/api/v1/route/",
        "/api/v1//route",
        "/api/v1/%00",
        "/api/v1/%ff",
        "/api/v1/" + "a" * 5000,
    ):
        for method in sample(rng, ("GET", "PATCH", "DELETE", "POST"), 2):
            cases.append(Case(f"{method} {path[:60]}", b'{"name": "x"}', method=method, path=path))
    return cases


def duplicate_names(rng: random.Random, ids: Ids, names: dict[str, str]) -> list[Case]:
    """Creating or renaming onto a name that is taken: a 400 naming the field, no row."""
    c1, c2 = ids.charlie_credentials
    e1 = ids.charlie_endpoints[0]
    return [
        Case(
            "PATCH credentials/<id>: rename onto the other credential's name",
            json.dumps({"name": names["credential2"]}).encode(),
            method="PATCH",
            path=f"/api/v1/credentials/{c1}",
            field_name="name",
        ),
        Case(
            "POST credentials: a name taken on the same provider",
            json.dumps(
                {
                    "provider": "openai",
                    "name": names["credential2"],
                    "secret": "sk-dup-0123456789abc",
                }
            ).encode(),
            path="/api/v1/credentials",
            field_name="name",
        ),
        Case(
            "PATCH endpoints/<id>: rename onto the other endpoint's name",
            json.dumps({"name": names["endpoint2"]}).encode(),
            method="PATCH",
            path=f"/api/v1/endpoints/{e1}",
            field_name="name",
        ),
        Case(
            "POST endpoints: a name taken on the same provider",
            json.dumps(
                {"provider": "openai", "name": names["endpoint2"], "base_url": PUBLIC_URL}
            ).encode(),
            path="/api/v1/endpoints",
            field_name="name",
        ),
        Case(
            "POST budgets: a second tenant-wide day budget",
            json.dumps({"period": "day", "limit_usd": "5"}).encode(),
            path="/api/v1/budgets",
            field_name="period",
        ),
        Case(
            "PATCH credentials/<id>: rename onto alice's credential name",
            json.dumps({"name": names["alice_credential"]}).encode(),
            method="PATCH",
            path=f"/api/v1/credentials/{c2}",
        ),
        Case(
            "POST keys: a name taken by another key",
            json.dumps({"name": names["key"]}).encode(),
            path="/api/v1/keys",
        ),
    ]


def cross_tenant(rng: random.Random, ids: Ids) -> list[Case]:
    """Charlie aims at alice's rows: by id in the path, by id in a body, by tenant header."""
    cases = []
    targets = {
        "keys": ids.alice_key,
        "credentials": ids.alice_credential,
        "endpoints": ids.alice_endpoint,
        "budgets": ids.alice_budget,
    }
    bodies: dict[str, dict[str, Any]] = {
        "keys": {"name": "stolen"},
        "credentials": {"name": "stolen", "secret": "sk-stolen-0123456789", "enabled": False},
        "endpoints": {"name": "stolen", "base_url": PUBLIC_URL, "enabled": False},
        "budgets": {"limit_usd": "0.01", "enabled": False},
    }
    for kind, pk in targets.items():
        for method in ("GET", "PATCH", "DELETE", "POST"):
            for body in (
                (bodies[kind], {"tenant": "acme", **bodies[kind]}) if method != "GET" else ({},)
            ):
                cases.append(
                    Case(
                        f"{method} alice's {kind}/{pk} with {json.dumps(body)[:40]}",
                        dumps(body),
                        method=method,
                        path=f"/api/v1/{kind}/{pk}",
                    )
                )
    cases.append(
        Case("POST alice's keys/<id>/revoke", b"{}", path=f"/api/v1/keys/{ids.alice_key}/revoke")
    )
    cases.append(
        Case(
            "POST credentials bound to alice's endpoint",
            json.dumps(
                {
                    "provider": "openai",
                    "name": "x-alice-ep",
                    "secret": "sk-0123456789abcdef",
                    "endpoint": ids.alice_endpoint,
                }
            ).encode(),
            path="/api/v1/credentials",
            field_name="endpoint",
        )
    )
    cases.append(
        Case(
            "POST budgets for alice's key",
            json.dumps({"api_key": ids.alice_key, "period": "day", "limit_usd": "1"}).encode(),
            path="/api/v1/budgets",
            field_name="api_key",
        )
    )
    for ep in ENDPOINTS:
        cases.append(
            _case(
                ep,
                ids,
                "with X-Aura-Tenant: acme",
                ep.body(ids, 900 + len(cases)),
                headers={"x-aura-tenant": "acme"},
            )
        )
        if ep.method != "PATCH" or "/preferences" in ep.path(ids):
            q = "&" if "?" in ep.path(ids) else "?"
            cases.append(
                Case(
                    f"{ep.name}: with ?tenant=acme",
                    dumps(ep.body(ids, 950 + len(cases))),
                    method=ep.method,
                    path=ep.path(ids) + q + "tenant=acme",
                )
            )
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
