"""create_tenant and add_member: what an operator types and sees."""

from __future__ import annotations

from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command

from tenants.models import Membership, Tenant

pytestmark = pytest.mark.django_db


def run(*args: str) -> str:
    out = StringIO()
    call_command(*args, stdout=out, stderr=StringIO())
    return out.getvalue()


def test_create_tenant_creates_it_with_a_slug_zone_and_contacts():
    out = run(
        "create_tenant",
        "Initech Labs",
        "--timezone",
        "Europe/Paris",
        "--email",
        "a@initech.test",
        "--email",
        "b@initech.test",
    )
    tenant = Tenant.objects.get(slug="initech-labs")
    assert f"created tenant initech-labs (id {tenant.pk})" in out
    assert tenant.name == "Initech Labs"
    assert tenant.timezone == "Europe/Paris"
    assert tenant.contact_emails == ["a@initech.test", "b@initech.test"]
    assert tenant.is_active


def test_create_tenant_accepts_an_explicit_slug():
    run("create_tenant", "Initech", "--slug", "itk")
    assert Tenant.objects.filter(slug="itk", name="Initech").exists()


def test_create_tenant_with_an_unknown_zone_names_the_zone_and_creates_nothing():
    with pytest.raises(CommandError) as err:
        run("create_tenant", "Initech", "--timezone", "Mars/Olympus_Mons")
    assert "Mars/Olympus_Mons" in str(err.value)
    assert "timezone" in str(err.value)
    assert not Tenant.objects.exists()


def test_create_tenant_with_a_bad_email_names_it():
    with pytest.raises(CommandError) as err:
        run("create_tenant", "Initech", "--email", "not-an-email")
    assert "not-an-email" in str(err.value)
    assert not Tenant.objects.exists()


def test_create_tenant_refuses_a_taken_slug(acme):
    with pytest.raises(CommandError) as err:
        run("create_tenant", "Acme")
    assert "slug" in str(err.value)
    assert Tenant.objects.count() == 1


def test_add_member_creates_the_user_without_a_usable_password(acme):
    out = run("add_member", "acme", "dora", "--email", "dora@acme.test", "--role", "admin")
    user = get_user_model().objects.get(username="dora")
    assert user.email == "dora@acme.test"
    assert not user.has_usable_password()
    assert Membership.objects.get(tenant=acme, user=user).role == "admin"
    assert "dora is admin of acme" in out
    # The one-time link lets her choose a password and sign in to the console.
    import re

    from django.test import Client

    found = re.search(r"https?://[^/\s]+(/password-reset/\S+/)", out)
    assert found is not None, out
    path = found.group(1)
    client = Client()
    form = client.get(path, follow=True)
    assert "Choose a new password" in form.content.decode()
    new = "Dora-chooses-a-long-passphrase-7"
    done = client.post(form.redirect_chain[-1][0], {"new_password1": new, "new_password2": new})
    assert done.status_code == 302
    assert client.login(username="dora", password=new)
    assert client.get("/").status_code == 200
    # Used once: the same link no longer works.
    again = Client().get(path, follow=True)
    assert "This link has expired" in again.content.decode()


def test_add_member_defaults_to_the_member_role(acme):
    run("add_member", "acme", "dora")
    assert Membership.objects.get(tenant=acme, user__username="dora").role == "member"


def test_add_member_changes_the_role_of_an_existing_member(bob):
    out = run("add_member", "acme", "bob", "--role", "viewer")
    assert Membership.objects.get(tenant=bob.tenant, user=bob.user).role == "viewer"
    assert Membership.objects.filter(user=bob.user).count() == 1
    assert bob.user.__class__.objects.get(pk=bob.user.pk).check_password("pw-bob")
    assert "changepassword" not in out


def test_add_member_to_an_unknown_tenant_is_an_error_naming_it(db):
    with pytest.raises(CommandError) as err:
        run("add_member", "nowhere", "dora")
    assert "nowhere" in str(err.value)
    assert not get_user_model().objects.filter(username="dora").exists()


@pytest.mark.parametrize(
    ("args", "field"),
    [
        (["bad user!"], "username"),
        (["u" * 151], "username"),
        (["dora", "--email", "not-an-email"], "email"),
    ],
)
def test_add_member_with_bad_user_details_names_the_field_and_creates_nothing(acme, args, field):
    with pytest.raises(CommandError) as err:
        run("add_member", "acme", *args)
    assert field in str(err.value)
    assert not get_user_model().objects.exists()
    assert not Membership.objects.exists()


def test_add_member_rejects_an_unknown_role(acme):
    with pytest.raises(CommandError) as err:
        run("add_member", "acme", "dora", "--role", "emperor")
    assert "emperor" in str(err.value)
    assert not Membership.objects.exists()
