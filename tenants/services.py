"""Writes for tenants, memberships and API keys."""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.text import slugify

from aura.errors import DomainError
from tenants.auth import api_keys_changed, hash_secret
from tenants.models import ApiKey, Membership, Priority, Role, Tenant

KEY_PREFIX_BYTES = 6  # 12 hex chars: visible, indexed, unique
KEY_SECRET_BYTES = 24  # 32 url-safe chars, 192 bits


def tenant_create(
    *,
    name: str,
    slug: str | None = None,
    timezone_name: str = "UTC",
    contact_emails: list[str] | None = None,
) -> Tenant:
    tenant = Tenant(
        name=name,
        slug=slug or slugify(name),
        timezone=timezone_name,
        contact_emails=contact_emails or [],
    )
    tenant.full_clean()
    tenant.save()
    return tenant


def membership_add(*, tenant: Tenant, user: Any, role: str = Role.MEMBER) -> Membership:
    if role not in Role.values:
        raise DomainError(f"role must be one of {', '.join(Role.values)}", param="role")
    membership, created = Membership.objects.get_or_create(
        tenant=tenant, user=user, defaults={"role": role}
    )
    if not created and membership.role != role:
        membership.role = role
        membership.save(update_fields=["role"])
    return membership


def user_get_or_create(*, username: str, email: str = "") -> tuple[AbstractBaseUser, bool]:
    """Find a user by username or create one (without a usable password).

    Raises ValidationError naming the field when a new user's details are invalid.
    """
    user_model = get_user_model()
    user = user_model.objects.filter(username=username).first()
    if user is not None:
        return user, False
    user = user_model(username=username, email=email)
    user.set_unusable_password()
    user.full_clean(exclude=["password"])
    user.save()
    return user, True


def api_key_material() -> tuple[str, str, str]:
    """A fresh (prefix, secret, secret_hash)."""
    secret = secrets.token_urlsafe(KEY_SECRET_BYTES)
    return secrets.token_hex(KEY_PREFIX_BYTES), secret, hash_secret(secret)


def api_key_plaintext(prefix: str, secret: str) -> str:
    return f"aura-{prefix}.{secret}"


def api_key_create(
    *,
    tenant: Tenant,
    name: str,
    created_by: Any = None,
    expires_at: datetime | None = None,
    can_manage: bool = False,
    priority: str = Priority.NORMAL,
) -> tuple[ApiKey, str]:
    """Create a key; returns the row and the plaintext, which is never stored or shown again."""
    _check_priority(priority)
    if not name.strip():
        raise DomainError("name must not be blank", param="name")
    max_name = ApiKey._meta.get_field("name").max_length
    if max_name is not None and len(name.strip()) > max_name:
        raise DomainError(f"name must be at most {max_name} characters", param="name")
    if expires_at is not None and expires_at <= timezone.now():
        raise DomainError("expires_at must be in the future", param="expires_at")
    for _ in range(5):
        prefix, secret, secret_hash = api_key_material()
        key = ApiKey(
            tenant=tenant,
            name=name.strip(),
            prefix=prefix,
            secret_hash=secret_hash,
            created_by=created_by if created_by and created_by.is_authenticated else None,
            expires_at=expires_at,
            can_manage=can_manage,
            priority=priority,
        )
        try:
            with transaction.atomic():
                key.save()
        except IntegrityError:  # prefix collision: astronomically rare, just draw again
            continue
        return key, api_key_plaintext(prefix, secret)
    raise RuntimeError("could not allocate a unique API key prefix")


def _check_priority(priority: str) -> None:
    if priority not in Priority.values:
        raise DomainError(f"priority must be one of {', '.join(Priority.values)}", param="priority")


def api_key_set_priority(*, key: ApiKey, priority: str) -> ApiKey:
    """Set the key's queue priority; in force in every process within about a second."""
    _check_priority(priority)
    if key.priority != priority:
        key.priority = priority
        key.save(update_fields=["priority"])
        # The gateway caches the resolved key (and so its priority): forget it everywhere.
        api_keys_changed(prefixes=[key.prefix])
    return key


def api_key_revoke(*, key: ApiKey) -> bool:
    """Revoke; effective at once in this process, in every other within about a second."""
    changed = key.revoke()
    api_keys_changed(prefixes=[key.prefix])
    return changed


def tenant_set_status(*, tenant: Tenant, status: str) -> bool:
    """Suspend or reactivate a tenant: its keys stop (or start) working everywhere within
    about a second. Returns whether the status changed."""
    if status not in Tenant.Status.values:
        raise DomainError(
            f"status must be one of {', '.join(Tenant.Status.values)}", param="status"
        )
    changed = Tenant.objects.filter(pk=tenant.pk).exclude(status=status).update(status=status)
    tenant.status = status
    if changed:
        api_keys_changed(tenant_ids=[tenant.pk])
    return bool(changed)


def user_invite_link(*, user: Any) -> str:
    """A one-time link to the console's "choose a password" page (Django's password-reset
    token: it stops working once a password is set, or after PASSWORD_RESET_TIMEOUT)."""
    from django.conf import settings
    from django.contrib.auth.tokens import default_token_generator
    from django.urls import reverse
    from django.utils.encoding import force_bytes
    from django.utils.http import urlsafe_base64_encode

    uid = urlsafe_base64_encode(force_bytes(user.pk))
    token = default_token_generator.make_token(user)
    path = reverse("console-password-reset-confirm", args=[uid, token])
    return f"{settings.AURA_PUBLIC_URL}{path}"


def membership_invite(
    *, tenant: Tenant, email: str, role: str, invited_by: Any = None
) -> tuple[Membership, bool]:
    """Add the person with ``email`` to ``tenant`` (a new user, named by the address, when
    none has it) and queue the invitation email on commit; returns (membership, new user)."""
    from django.db import transaction

    from tenants.tasks import send_invite

    email = email.strip()
    if role not in Role.values:
        raise DomainError(f"role must be one of {', '.join(Role.values)}", param="role")
    user_model = get_user_model()
    user: Any = user_model.objects.filter(email__iexact=email).order_by("pk").first()
    created = user is None
    with transaction.atomic():
        if user is None:
            user, _ = user_get_or_create(username=email.lower()[:150], email=email)
        if Membership.objects.filter(tenant=tenant, user=user).exists():
            raise DomainError(f"{email} is already a member of {tenant.name}.", param="email")
        membership = membership_add(tenant=tenant, user=user, role=role)
        inviter = getattr(invited_by, "pk", None)
        transaction.on_commit(lambda: send_invite.delay(membership.pk, inviter))
    return membership, created


def _owners(tenant: Tenant) -> int:
    return Membership.objects.filter(tenant=tenant, role=Role.OWNER).count()


def membership_set_role(*, membership: Membership, role: str, acting_role: str) -> Membership:
    """Change a member's role. Only owners grant or take away ``owner``; the last owner
    stays one."""
    if role not in Role.values:
        raise DomainError(f"role must be one of {', '.join(Role.values)}", param="role")
    if Role.OWNER in (role, membership.role) and acting_role != Role.OWNER:
        raise DomainError("Only an owner can make or unmake owners.", param="role")
    if membership.role == Role.OWNER and role != Role.OWNER and _owners(membership.tenant) == 1:
        raise DomainError("The tenant's last owner stays an owner.", param="role")
    membership.role = role
    membership.save(update_fields=["role"])
    return membership


def membership_remove(*, membership: Membership, acting_role: str) -> None:
    if membership.role == Role.OWNER:
        if acting_role != Role.OWNER:
            raise DomainError("Only an owner can remove an owner.", param="membership")
        if _owners(membership.tenant) == 1:
            raise DomainError("The tenant's last owner cannot be removed.", param="membership")
    membership.delete()


def invite_send(*, membership_id: int, invited_by_id: int | None = None) -> bool:
    """The invitation email: a one-time link to choose a password for a new user, else a
    link to sign in."""
    from django.conf import settings

    from aura import emails

    membership = Membership.objects.select_related("tenant", "user").filter(pk=membership_id)
    m = membership.first()
    if m is None or not m.user.email:
        return False
    inviter = get_user_model().objects.filter(pk=invited_by_id).first() if invited_by_id else None
    link = (
        user_invite_link(user=m.user)
        if not m.user.has_usable_password()
        else f"{settings.AURA_PUBLIC_URL}/login/"
    )
    emails.send(
        "invite",
        to=[m.user.email],
        context={
            "tenant": m.tenant,
            "role": m.get_role_display(),
            "username": m.user.get_username(),
            "inviter": inviter.get_username() if inviter else None,
            "link": link,
            "new_user": not m.user.has_usable_password(),
        },
    )
    return True
