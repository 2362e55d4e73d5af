"""bootstrap_demo (run by `make run` on every start): the first run prints the secrets once."""

from __future__ import annotations

import re
from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from tenants.models import ApiKey, Membership, Tenant
from tests.conftest import key_client

pytestmark = pytest.mark.django_db


def run() -> str:
    out = StringIO()
    call_command("bootstrap_demo", stdout=out)
    return out.getvalue()


def _counts() -> tuple[int, int, int, int]:
    return (
        Tenant.objects.count(),
        get_user_model().objects.count(),
        Membership.objects.count(),
        ApiKey.objects.count(),
    )


def test_the_first_run_creates_a_demo_tenant_an_admin_and_a_working_key():
    out = run()
    key = re.search(r"demo key:\s+(aura-\S+)", out).group(1)
    password = re.search(r"password:\s+(\S+)\s+\(shown once", out).group(1)

    admin = get_user_model().objects.get(username="admin")
    assert admin.is_superuser
    assert admin.check_password(password)
    assert Membership.objects.get(user=admin, tenant__slug="demo").role == "owner"
    assert key_client(key).get("/api/v1/tenant").json()["slug"] == "demo"


def test_a_second_run_creates_nothing_and_prints_no_secret():
    first = run()
    key = re.search(r"demo key:\s+(aura-\S+)", first).group(1)
    password = re.search(r"password:\s+(\S+)\s+\(shown once", first).group(1)
    before = _counts()

    second = run()

    assert _counts() == before
    assert "aura-" not in second
    assert key not in second
    assert password not in second
    assert "shown once" not in second
    assert key_client(key).get("/api/v1/tenant").status_code == 200


def test_it_keeps_an_existing_admin_and_does_not_reset_the_password(django_user_model):
    django_user_model.objects.create_superuser("admin", "admin@example.com", "my-own-pw")
    out = run()
    assert django_user_model.objects.get(username="admin").check_password("my-own-pw")
    assert "(shown once; reset" not in out
    assert re.search(r"demo key:\s+aura-", out)


def test_the_demo_tenant_caches_and_a_rerun_keeps_what_its_admin_chose():
    from routing.models import RoutingPolicy

    run()
    policy = RoutingPolicy.objects.get(tenant__slug="demo")
    assert policy.cache["mode"] == "semantic"
    policy.cache = {**policy.cache, "mode": "off"}
    policy.save()
    run()
    assert RoutingPolicy.objects.get(tenant__slug="demo").cache["mode"] == "off"
