"""The management API's writable endpoints (/api/v1) as the fuzzer sees them: each with a
valid body, built per case (``Endpoint.body(ids, n)``) so that names stay unique and one
case's success never makes the next one a duplicate."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from tests.fuzz.cases import Case
from tests.fuzz.jsonbytes import dumps
from tests.fuzz.mutations import (
    Path,
    number_paths,
    string_paths,
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
        endpoint_case(ep, ids, "valid body", ep.body(ids, 10_000 + i))
        for i, ep in enumerate(ENDPOINTS)
    ]


def endpoint_case(ep: Endpoint, ids: Ids, label: str, body: Any, **kw: Any) -> Case:
    data = body if isinstance(body, bytes) else dumps(body)
    return Case(f"{ep.name}: {label}", data, method=ep.method, path=ep.path(ids), **kw)


def first_items(paths: list[Path]) -> list[Path]:
    """Paths through the first item of every list only: the first stands for the others."""
    return [p for p in paths if not any(isinstance(part, int) and part > 0 for part in p)]


def strings_of(body: Any) -> list[Path]:
    return first_items(string_paths(body))


def numbers_of(body: Any) -> list[Path]:
    return first_items(number_paths(body))


def top_field(path: tuple[Any, ...]) -> str | None:
    return path[0] if path and isinstance(path[0], str) else None
