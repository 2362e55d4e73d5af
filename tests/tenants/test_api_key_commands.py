"""create_api_key and revoke_api_key: an operator's way to mint and kill keys."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from tenants.models import ApiKey
from tests.conftest import key_client

pytestmark = pytest.mark.django_db


def run(*args: str) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command(*args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_create_api_key_prints_a_working_key_alone_on_stdout(acme):
    out, err = run("create_api_key", "acme", "deploy", "--can-manage")
    plaintext = out.strip()
    assert out.count("aura-") == 1
    assert plaintext.startswith("aura-")
    assert "shown only once" in err
    assert plaintext not in err
    resp = key_client(plaintext).get("/api/v1/tenant")
    assert resp.status_code == 200
    assert resp.json()["slug"] == "acme"


def test_create_api_key_without_can_manage_makes_a_gateway_only_key(acme):
    out, _ = run("create_api_key", "acme", "gw")
    assert key_client(out.strip()).get("/api/v1/tenant").status_code == 403
    assert ApiKey.objects.get(name="gw").can_manage is False


def test_create_api_key_can_set_an_expiry(acme):
    run("create_api_key", "acme", "temp", "--expires-in-days", "7")
    key = ApiKey.objects.get(name="temp")
    assert key.expires_at is not None
    assert 6.9 < (key.expires_at - key.created_at).total_seconds() / 86400 < 7.1


@pytest.mark.parametrize("days", ["0", "-3"])
def test_create_api_key_refuses_a_non_positive_expiry(acme, days):
    with pytest.raises(CommandError) as err:
        run("create_api_key", "acme", "temp", "--expires-in-days", days)
    assert "--expires-in-days" in str(err.value)
    assert not ApiKey.objects.exists()


def test_create_api_key_with_a_too_long_name_names_the_field(acme):
    with pytest.raises(CommandError) as err:
        run("create_api_key", "acme", "x" * 101)
    assert "name" in str(err.value)
    assert "100" in str(err.value)
    assert not ApiKey.objects.exists()


def test_create_api_key_for_an_unknown_tenant_names_it(db):
    with pytest.raises(CommandError) as err:
        run("create_api_key", "nowhere", "x")
    assert "nowhere" in str(err.value)
    assert not ApiKey.objects.exists()


def test_create_api_key_with_a_blank_name_is_an_error(acme):
    with pytest.raises(CommandError) as err:
        run("create_api_key", "acme", "   ")
    assert "name" in str(err.value)
    assert not ApiKey.objects.exists()


@pytest.mark.parametrize("form", ["prefix", "aura-prefix", "full key"])
def test_revoke_api_key_revokes_by_prefix_or_whole_key(alice_manage_key, form):
    key, plaintext = alice_manage_key
    client = key_client(plaintext)
    assert client.get("/api/v1/tenant").status_code == 200
    arg = {"prefix": key.prefix, "aura-prefix": f"aura-{key.prefix}", "full key": plaintext}[form]

    out, _ = run("revoke_api_key", arg)

    assert out.startswith("revoked alice-admin")
    key.refresh_from_db()
    assert key.revoked_at is not None
    assert client.get("/api/v1/tenant").status_code == 401


def test_revoke_api_key_says_when_it_already_was(alice_key):
    key, _ = alice_key
    run("revoke_api_key", key.prefix)
    out, _ = run("revoke_api_key", key.prefix)
    assert "already revoked" in out


def test_revoke_api_key_with_an_unknown_prefix_names_it(db):
    with pytest.raises(CommandError) as err:
        run("revoke_api_key", "deadbeef0000")
    assert "deadbeef0000" in str(err.value)
