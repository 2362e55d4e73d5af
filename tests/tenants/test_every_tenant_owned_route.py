"""Every route that names a tenant-owned row answers 404 to an outsider, for every method.

The URLconf is walked: a new route with an id in its path fails this test until it is
listed in ``OWNED`` below (how to make alice's row for it), so no endpoint ships without
its charlie-gets-404 check.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.forms.models import model_to_dict
from django.urls import URLPattern, URLResolver, get_resolver
from django.utils import timezone

from billing.models import Budget
from monitoring.models import Alert
from routing.catalog.services import credential_create, endpoint_create
from routing.models import Provider
from tenants.services import api_key_create
from tests.conftest import Persona

pytestmark = pytest.mark.django_db

METHODS = ("get", "post", "put", "patch", "delete")
# Routes whose path parameter is not a tenant-owned row (signed per user, checked there).
# Signed tokens, not rows: a forged or foreign token is refused by its signature.
NOT_TENANT_ROWS = {
    "reports/weekly/opt-out/<str:token>/",
    "password-reset/<uidb64>/<token>/",
}


def _provider() -> Provider:
    return Provider.objects.get_or_create(
        slug="openai", defaults={"name": "OpenAI", "wire_format": "openai"}
    )[0]


def _key(alice: Persona) -> Any:
    return api_key_create(tenant=alice.tenant, name="alice-app")[0]


def _credential(alice: Persona) -> Any:
    return credential_create(
        provider=_provider(), name="alices", secret="sk-alice-0000000000", tenant=alice.tenant
    )


def _endpoint(alice: Persona) -> Any:
    return endpoint_create(
        provider=_provider(),
        name="alices",
        base_url="https://93.184.216.34/v1",
        tenant=alice.tenant,
    )


def _budget(alice: Persona) -> Any:
    return Budget.objects.create(tenant=alice.tenant, period="day", limit_usd=5)


def _alert(alice: Persona) -> Any:
    now = timezone.now()
    return Alert.objects.create(
        dedupe_key="sla:success_rate:endpoint:ep1",
        kind="sla",
        subject="endpoint ep1",
        tenant=alice.tenant,
        severity="warning",
        message="alice's endpoint is failing",
        opened_at=now,
        last_seen_at=now,
    )


def _import(alice: Persona) -> Any:
    from routing.learning.models import OutcomeImport

    return OutcomeImport.objects.create(tenant=alice.tenant, format="jsonl", payload="")


def _optimization(alice: Persona) -> Any:
    from django.utils import timezone

    from routing.learning.models import WeightOptimization

    now = timezone.now()
    weights = {"quality": 0.4, "cost": 0.3, "latency": 0.3}
    return WeightOptimization.objects.create(
        tenant=alice.tenant,
        trigger="api",
        method="outcome",
        goal="balanced",
        status="proposed",
        window_start=now,
        window_end=now,
        objective_before="balanced",
        weights_before=weights,
        policy_version_before=1,
        weights_after={"quality": 0.5, "cost": 0.5, "latency": 0.0},
    )


def _membership(alice: Persona) -> Any:
    from django.contrib.auth import get_user_model

    from tenants.models import Membership

    user = get_user_model().objects.create_user("dora", "dora@example.test", "pw")
    return Membership.objects.create(tenant=alice.tenant, user=user, role="viewer")


def _usage(alice: Persona) -> Any:
    from billing.models import UsageRecord

    return UsageRecord.objects.create(
        tenant=alice.tenant, created_at=timezone.now(), request_id="alice-req",
        provider="openai", model="gpt-small", status="ok",
    )  # fmt: skip


# Path parameter -> how to make a row of alice's it can name.
OWNED: dict[str, Callable[[Persona], Any]] = {
    "key_id": _key,
    "credential_id": _credential,
    "endpoint_id": _endpoint,
    "budget_id": _budget,
    "alert_id": _alert,
    "import_id": _import,
    "optimization_id": _optimization,
    "membership_id": _membership,
    "record_id": _usage,
}


def _routes() -> Iterator[tuple[str, Any]]:
    def walk(patterns: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
        for p in patterns:
            if isinstance(p, URLResolver):
                yield from walk(p.url_patterns, prefix + str(p.pattern))
            elif isinstance(p, URLPattern):
                yield prefix + str(p.pattern), p

    for path, pattern in walk(get_resolver().url_patterns):
        if "<" in path and not path.startswith("admin/") and path not in NOT_TENANT_ROWS:
            yield path, pattern


ROUTES = sorted(_routes(), key=lambda r: r[0])


def test_every_route_with_an_id_is_covered() -> None:
    params = {name for path, _ in ROUTES for name in re.findall(r"<\w+:(\w+)>", path)}
    missing = params - set(OWNED)
    assert not missing, f"add a row factory for {missing} to OWNED (and see it 404 for charlie)"
    assert len(ROUTES) >= 5  # keys, keys/revoke, credentials, endpoints, budgets


@pytest.mark.parametrize(("path", "pattern"), ROUTES, ids=[r[0] for r in ROUTES])
def test_charlie_gets_404_on_every_method_of(
    path: str, pattern: Any, alice: Persona, charlie: Persona
) -> None:
    (param,) = re.findall(r"<\w+:(\w+)>", path)
    row = OWNED[param](alice)
    before = model_to_dict(type(row).objects.get(pk=row.pk))
    url = "/" + re.sub(r"<\w+:\w+>", str(row.pk), path)
    view = getattr(pattern.callback, "view_class", None)
    methods = [m for m in METHODS if view is None or hasattr(view, m)]
    assert methods
    for method in methods:
        resp = getattr(charlie.client, method)(url, {"name": "charlie was here"}, format="json")
        assert resp.status_code == 404, (method, url, resp.status_code, resp.content[:200])
        assert "alice" not in resp.content.decode().lower()
    # Nothing of alice's changed, whatever charlie sent.
    assert model_to_dict(type(row).objects.get(pk=row.pk)) == before
