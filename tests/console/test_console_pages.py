"""Console pages through Django's test client: who may see and do what."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from tenants.models import ApiKey, Role
from tenants.services import api_key_create, membership_add

pytestmark = pytest.mark.django_db

PAGES = ["/", "/keys/", "/budgets/", "/policy/", "/members/", "/requests/"]


@pytest.mark.parametrize("url", PAGES)
def test_signed_out_visitors_are_sent_to_sign_in(url: str) -> None:
    resp = Client().get(url)
    assert resp.status_code == 302
    assert resp["Location"] == f"/login/?next={url}"


@pytest.mark.parametrize("url", PAGES)
def test_every_page_renders_for_a_viewer(url: str, acme: Any) -> None:
    user = get_user_model().objects.create_user("vic", "vic@example.test", "pw")
    membership_add(tenant=acme, user=user, role=Role.VIEWER)
    client = Client()
    client.force_login(user)
    resp = client.get(url)
    assert resp.status_code == 200
    assert "Acme" in resp.content.decode()


def test_charlie_cannot_reach_alices_tenant_or_keys(alice: Any, charlie: Any) -> None:
    key = api_key_create(tenant=alice.tenant, name="alice-app")[0]
    client = Client()
    client.force_login(charlie.user)
    assert client.post("/switch-tenant/", {"tenant": "acme"}).status_code == 404
    for method in ("get", "post"):
        assert getattr(client, method)(f"/keys/{key.pk}/revoke/").status_code == 404
    page = client.get("/keys/").content.decode()
    assert "alice-app" not in page and "Globex" in page
    key.refresh_from_db()
    assert key.revoked_at is None


def test_a_viewer_cannot_create_keys(acme: Any) -> None:
    user = get_user_model().objects.create_user("vic", "vic@example.test", "pw")
    membership_add(tenant=acme, user=user, role=Role.VIEWER)
    client = Client()
    client.force_login(user)
    resp = client.post("/keys/", {"name": "sneaky", "priority": "normal"})
    assert resp.status_code == 403
    assert not ApiKey.objects.filter(name="sneaky").exists()


def test_a_bad_key_form_names_the_field_and_creates_nothing(alice: Any) -> None:
    client = Client()
    client.force_login(alice.user)
    resp = client.post("/keys/", {"name": "", "priority": "normal", "expires_on": "2001-01-01"})
    assert resp.status_code == 400
    html = resp.content.decode()
    assert "This field is required" in html and "The expiry date is in the past" in html
    assert not ApiKey.objects.filter(tenant=alice.tenant).exists()


def test_the_plaintext_is_shown_once_and_not_cached(alice: Any) -> None:
    client = Client()
    client.force_login(alice.user)
    resp = client.post("/keys/", {"name": "svc", "priority": "normal"})
    assert resp.status_code == 200
    secret = re.search(r'id="new-key">([^<]+)<', resp.content.decode()).group(1)  # type: ignore[union-attr]
    assert resp["Cache-Control"] == "no-store"
    assert secret not in client.get("/keys/").content.decode()


def test_someone_without_a_tenant_is_told_so() -> None:
    user = get_user_model().objects.create_user("nomad", "nomad@example.test", "pw")
    client = Client()
    client.force_login(user)
    resp = client.get("/")
    assert resp.status_code == 403
    assert "not a member of any tenant" in resp.content.decode()


def test_a_password_reset_email_leads_to_a_new_password(alice: Any, mailoutbox: Any) -> None:
    client = Client()
    resp = client.post("/password-reset/", {"email": "alice@example.test"})
    assert resp.status_code == 302 and resp["Location"] == "/password-reset/sent/"
    assert len(mailoutbox) == 1
    body = mailoutbox[0].body
    link = re.search(r"https?://[^/]+(/password-reset/[^/]+/[^/]+/)", body).group(1)  # type: ignore[union-attr]
    form = client.get(link, follow=True)
    assert form.status_code == 200 and "Choose a new password" in form.content.decode()
    done = client.post(
        form.redirect_chain[-1][0],
        {"new_password1": "A-new-long-passphrase-42", "new_password2": "A-new-long-passphrase-42"},
    )
    assert done.status_code == 302
    assert Client().login(username="alice", password="A-new-long-passphrase-42")


def test_an_admin_invites_a_new_member_who_chooses_a_password(
    alice: Any, mailoutbox: Any, django_capture_on_commit_callbacks: Any
) -> None:
    from tenants.models import Membership
    from tenants.services import invite_send

    client = Client()
    client.force_login(alice.user)
    with django_capture_on_commit_callbacks(execute=False) as queued:
        resp = client.post("/members/", {"email": "Erin@Example.test", "role": "viewer"})
    assert resp.status_code == 302, resp.content.decode()
    assert len(queued) == 1  # the email goes out from a Celery task once committed
    m = Membership.objects.get(tenant=alice.tenant, user__email__iexact="erin@example.test")
    assert m.role == "viewer" and not m.user.has_usable_password()
    assert invite_send(membership_id=m.pk, invited_by_id=alice.user.pk)
    mail = mailoutbox[-1]
    assert mail.to == ["Erin@example.test"] and "alice added you to Acme" in mail.body
    path = re.search(r"https?://[^/\s]+(/password-reset/\S+/)", mail.body).group(1)  # type: ignore[union-attr]
    form = Client().get(path, follow=True)
    assert "Choose a new password" in form.content.decode()
    # Inviting the same person twice says so and adds nothing.
    again = client.post("/members/", {"email": "erin@example.test", "role": "admin"})
    assert again.status_code == 400 and "already a member" in again.content.decode()
    bad = client.post("/members/", {"email": "not-an-address", "role": "viewer"})
    assert bad.status_code == 400 and "valid email" in bad.content.decode()


def test_roles_change_and_the_last_owner_stays(alice: Any, acme: Any) -> None:
    from tenants.models import Membership

    owner = get_user_model().objects.create_user("olga", "olga@example.test", "pw")
    om = membership_add(tenant=acme, user=owner, role=Role.OWNER)
    vic = get_user_model().objects.create_user("vic", "vic@example.test", "pw")
    vm = membership_add(tenant=acme, user=vic, role=Role.VIEWER)
    admin = Client()
    admin.force_login(alice.user)
    admin.post(f"/members/{vm.pk}/role/", {"role": "member"})
    assert Membership.objects.get(pk=vm.pk).role == "member"
    # An admin cannot touch owners; the last owner cannot be demoted or removed.
    resp = admin.post(f"/members/{om.pk}/role/", {"role": "viewer"}, follow=True)
    assert "Only an owner" in resp.content.decode()
    boss = Client()
    boss.force_login(owner)
    resp = boss.post(f"/members/{om.pk}/remove/", follow=True)
    assert "last owner cannot be removed" in resp.content.decode()
    assert Membership.objects.filter(pk=om.pk).exists()
    boss.post(f"/members/{vm.pk}/remove/")
    assert not Membership.objects.filter(pk=vm.pk).exists()
    # A viewer cannot change anything.
    viewer = get_user_model().objects.create_user("val", "val@example.test", "pw")
    membership_add(tenant=acme, user=viewer, role=Role.VIEWER)
    client = Client()
    client.force_login(viewer)
    assert client.post(f"/members/{om.pk}/remove/").status_code == 403
