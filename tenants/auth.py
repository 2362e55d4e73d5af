"""API-key authentication, shared by the gateway (async) and the management API (DRF).

Keys look like ``aura-<prefix>.<secret>``. The prefix is stored in clear and indexed; the
secret only as HMAC-SHA256(pepper, secret), compared in constant time. Resolved keys are
cached in-process for ``API_KEY_CACHE_TTL`` seconds (default 30), so a warm request does
no database query; a revoked key therefore keeps working for at most that long in *other*
processes (the revoking process forgets it at once).
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db.models import Q
from django.utils import timezone
from rest_framework import authentication, exceptions
from rest_framework.request import Request

KEY_LITERAL_PREFIX = "aura-"
_NEGATIVE_TTL = 5.0
_CACHE_MAX = 50_000


def hash_secret(secret: str) -> str:
    pepper = settings.API_KEY_PEPPER.encode()
    return hmac.new(pepper, secret.encode(), hashlib.sha256).hexdigest()


def parse_key(raw: str) -> tuple[str, str] | None:
    if not raw.startswith(KEY_LITERAL_PREFIX):
        return None
    prefix, sep, secret = raw[len(KEY_LITERAL_PREFIX) :].partition(".")
    if not sep or not prefix or not secret or len(prefix) > 16 or len(secret) > 128:
        return None
    return prefix, secret


@dataclass(frozen=True, slots=True)
class KeyPrincipal:
    """What a request authenticated with an API key may act as."""

    key_id: int
    prefix: str
    name: str
    tenant_id: int
    tenant_slug: str
    tenant_active: bool
    can_manage: bool
    secret_hash: str = field(repr=False)
    expires_at: datetime | None
    revoked: bool

    def usable(self, now: datetime) -> bool:
        if self.revoked or not self.tenant_active:
            return False
        return self.expires_at is None or self.expires_at > now


@dataclass(slots=True)
class _Entry:
    principal: KeyPrincipal | None
    fetched_at: float
    touched_at: float = float("-inf")


class AuthError(Exception):
    def __init__(self, message: str, code: str = "invalid_api_key") -> None:
        super().__init__(message)
        self.message = message
        self.code = code


class ApiKeyResolver:
    """In-process TTL cache of key rows; the clock is injectable for tests."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._entries: dict[str, _Entry] = {}

    def forget(self, prefix: str | None = None) -> None:
        if prefix is None:
            self._entries.clear()
        else:
            self._entries.pop(prefix, None)

    def _fresh(self, prefix: str) -> _Entry | None:
        entry = self._entries.get(prefix)
        if entry is None:
            return None
        ttl = (
            settings.API_KEY_CACHE_TTL
            if entry.principal
            else min(_NEGATIVE_TTL, settings.API_KEY_CACHE_TTL)
        )
        if self.clock() - entry.fetched_at > ttl:
            return None
        return entry

    def _store(self, prefix: str, principal: KeyPrincipal | None) -> _Entry:
        if len(self._entries) >= _CACHE_MAX:
            self._entries.clear()  # crude but bounded; a burst of bad keys must not grow memory
        entry = _Entry(principal, self.clock())
        previous = self._entries.get(prefix)
        if previous is not None:  # a reload must not forget when we last wrote last_used_at
            entry.touched_at = previous.touched_at
        self._entries[prefix] = entry
        return entry

    def _check(self, entry: _Entry, secret: str) -> KeyPrincipal:
        principal = entry.principal
        if principal is None or not hmac.compare_digest(principal.secret_hash, hash_secret(secret)):
            raise AuthError("Incorrect API key provided.")
        if principal.revoked:
            raise AuthError("This API key has been revoked.", "revoked_api_key")
        if not principal.tenant_active:
            raise AuthError("This API key's tenant is suspended.", "tenant_suspended")
        if principal.expires_at is not None and principal.expires_at <= timezone.now():
            raise AuthError("This API key has expired.", "expired_api_key")
        return principal

    def _needs_touch(self, entry: _Entry) -> bool:
        now = self.clock()
        if now - entry.touched_at >= ApiKeyTouch.RESOLUTION:
            entry.touched_at = now
            return True
        return False

    def resolve(self, raw: str) -> KeyPrincipal:
        parsed = parse_key(raw)
        if parsed is None:
            raise AuthError("Incorrect API key provided.")
        prefix, secret = parsed
        entry = self._fresh(prefix) or self._store(prefix, _load(prefix))
        principal = self._check(entry, secret)
        if self._needs_touch(entry):
            ApiKeyTouch.touch(principal.key_id)
        return principal

    async def aresolve(self, raw: str) -> tuple[KeyPrincipal, bool]:
        """Async lookup; returns (principal, needs_touch) so the caller can touch last_used_at
        off the hot path."""
        parsed = parse_key(raw)
        if parsed is None:
            raise AuthError("Incorrect API key provided.")
        prefix, secret = parsed
        entry = self._fresh(prefix)
        if entry is None:
            entry = self._store(prefix, await sync_to_async(_load_releasing)(prefix))
        principal = self._check(entry, secret)
        return principal, self._needs_touch(entry)


def _load(prefix: str) -> KeyPrincipal | None:
    from tenants.models import ApiKey

    row = ApiKey.objects.select_related("tenant").filter(prefix=prefix).first()
    if row is None:
        return None
    return KeyPrincipal(
        key_id=row.pk,
        prefix=row.prefix,
        name=row.name,
        tenant_id=row.tenant_id,
        tenant_slug=row.tenant.slug,
        tenant_active=row.tenant.is_active,
        can_manage=row.can_manage,
        secret_hash=row.secret_hash,
        expires_at=row.expires_at,
        revoked=row.revoked_at is not None,
    )


def _load_releasing(prefix: str) -> KeyPrincipal | None:
    from aura.db import releasing_connection

    return releasing_connection(_load)(prefix)


class ApiKeyTouch:
    """last_used_at is written at most once a minute per key and process, never per request."""

    RESOLUTION = 60.0

    @staticmethod
    def touch_releasing(key_id: int) -> None:
        from aura.db import releasing_connection

        releasing_connection(ApiKeyTouch.touch)(key_id)

    @staticmethod
    def touch(key_id: int) -> None:
        from tenants.models import ApiKey

        now = timezone.now()
        ApiKey.objects.filter(pk=key_id).filter(
            Q(last_used_at__isnull=True) | Q(last_used_at__lt=now - ApiKey.LAST_USED_RESOLUTION)
        ).update(last_used_at=now)


resolver = ApiKeyResolver()


def api_key_cache_forget(prefix: str | None = None) -> None:
    resolver.forget(prefix)


def bearer_token(header: str | None) -> str | None:
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


class ApiKeyUser:
    """The request.user of an API-key request: authenticated, but not a Django user."""

    is_authenticated = True
    is_anonymous = False
    is_active = True
    is_staff = False
    is_superuser = False
    pk = None
    id = None

    def __init__(self, principal: KeyPrincipal) -> None:
        self.principal = principal
        self.username = f"key:{principal.prefix}"

    def __str__(self) -> str:
        return self.username


class ApiKeyAuthentication(authentication.BaseAuthentication):
    """DRF authentication for ``Authorization: Bearer aura-…`` (also accepts ``X-Api-Key``)."""

    def authenticate(self, request: Request) -> tuple[Any, KeyPrincipal] | None:
        token = bearer_token(request.headers.get("Authorization")) or request.headers.get(
            "X-Api-Key"
        )
        if not token:
            return None
        try:
            principal = resolver.resolve(token)
        except AuthError as exc:
            raise exceptions.AuthenticationFailed(exc.message, code=exc.code) from None
        return ApiKeyUser(principal), principal

    def authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="aura"'
