"""Management API fuzz cases aimed at one thing each: policy YAML documents, query strings of
the read endpoints, methods and paths, duplicate names, and charlie aiming at alice's rows."""

from __future__ import annotations

import json
import random
from typing import Any

from tests.fuzz.api_endpoints import (
    ENDPOINTS,
    PUBLIC_URL,
    Ids,
    endpoint_case,
    policy_yaml,
)
from tests.fuzz.cases import Case
from tests.fuzz.jsonbytes import dumps
from tests.fuzz.mutations import (
    sample,
)

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
            endpoint_case(
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
