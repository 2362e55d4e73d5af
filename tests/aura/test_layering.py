"""The layout's rules, checked on the real import graph (tests/imports.py reads every
import, including those inside functions and under TYPE_CHECKING).

Layers, bottom to top; a module may import its own layer and the ones below, never above:

0. ``aura``'s shared library: HTTP seam, crypto, netguard, redis, text, money, ...
1. ``tenants``: tenants, users, API keys
2. routing's catalog, providers and policy rules, and the pure engine
3. ``billing``: budgets, usage, spend, alerts, reports; the Prometheus instruments
4. the gateway and the APIs and commands that serve or orchestrate all of the above
5. ``aura``'s wiring: settings, urls, asgi, the Celery app, the launcher
"""

from __future__ import annotations

import pytest

from tests.imports import cycles, graph

LAYERS: dict[str, int] = {
    "aura": 0,
    "tenants": 1,
    "routing.models": 2,
    "routing.admin": 2,
    "routing.apps": 2,
    "routing.changes": 2,
    "routing.providers": 2,
    "routing.engine": 2,
    "routing.catalog": 2,
    "routing.policy": 2,
    "routing.cache": 2,
    "routing.cache.api": 4,  # stats read billing's usage records; lookups use the gateway's key
    "routing.cache.urls": 4,
    "routing.learning": 2,
    # Feedback reads billing's usage records; imports and refits are Celery work.
    "routing.learning.services": 4,
    "routing.learning.tasks": 4,
    # Optimizer runs read the gateway's routing context and billing's usage records.
    "routing.learning.optimization": 4,
    "routing.learning.api": 4,
    "routing.learning.urls": 4,
    "billing": 3,
    "routing": 4,  # the gateway, the router API and selectors, policy services and views
    "routing.policy.services": 4,  # a policy write also writes its budgets (billing)
    "routing.policy.api": 4,
    "monitoring": 4,
    # The Prometheus instruments: anything from billing up may count into them.
    "monitoring.metrics": 3,
    # /metrics: the instruments plus breaker and health state read at scrape time.
    "monitoring.scrape": 4,
    "tenants.management": 4,
    "routing.management": 4,
    "billing.management": 4,
    "monitoring.management": 4,
}
WIRING = frozenset(
    {"aura", "aura.settings", "aura.urls", "aura.asgi", "aura.wsgi", "aura.celery", "aura.run"}
)
# Celery tasks register on AURA's own app (see billing/tasks.py for why not shared_task), and
# the readiness probe asks the app's broker.
MAY_IMPORT_CELERY_APP = frozenset(
    {
        "billing.tasks",
        "tenants.tasks",
        "routing.cache.tasks",
        "routing.learning.tasks",
        "monitoring.views",
        "monitoring.tasks",
    }
)


def layer(module: str) -> int:
    if module in WIRING:
        return 5
    parts = module.split(".")
    for n in range(len(parts), 0, -1):
        found = LAYERS.get(".".join(parts[:n]))
        if found is not None:
            return found
    raise AssertionError(f"{module} has no layer: add it to LAYERS in {__file__}")


@pytest.fixture(scope="module")
def edges() -> dict[str, set[str]]:
    return graph()


def test_every_module_has_a_layer(edges: dict[str, set[str]]) -> None:
    for module in edges:
        layer(module)


def test_imports_point_down(edges: dict[str, set[str]]) -> None:
    upward = sorted(
        f"{source} (layer {layer(source)}) imports {target} (layer {layer(target)})"
        for source, targets in edges.items()
        for target in targets
        if layer(target) > layer(source)
        and not (target == "aura.celery" and source in MAY_IMPORT_CELERY_APP)
    )
    assert upward == []


def test_no_import_circles_but_a_tasks_module_and_its_services(
    edges: dict[str, set[str]],
) -> None:
    """A Celery ``tasks`` module imports the services it wraps and they enqueue it, inside
    one app (or one sub-package of it, such as ``routing.learning``); any other circle is
    a layering mistake."""
    wrong = []
    for component in cycles(edges):
        apps = {m.split(".")[0] for m in component}
        packages = {m.rsplit(".", 1)[0] for m in component}
        tasks = (
            f"{next(iter(packages))}.tasks" if len(packages) == 1 else f"{next(iter(apps))}.tasks"
        )
        rest = {m: edges[m] & set(component) - {tasks} for m in component if m != tasks}
        if len(apps) != 1 or tasks not in component or cycles(rest):
            wrong.append(component)
    assert wrong == []


def test_the_checks_see_a_circle_and_an_upward_import() -> None:
    """The graph walk itself: a planted circle is found, a planted upward edge is caught."""
    planted = {"a.x": {"a.y"}, "a.y": {"a.z"}, "a.z": {"a.x"}, "a.w": set()}
    assert cycles(planted) == [["a.x", "a.y", "a.z"]]
    assert layer("billing.usage") > layer("routing.catalog.services")
    assert layer("routing.gateway.chat") > layer("billing.usage")
