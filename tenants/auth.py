"""API-key authentication, shared by the gateway (async) and the management API (DRF).

Keys look like ``aura-<prefix>.<secret>``. The prefix is stored in clear and indexed; the
secret only as HMAC-SHA256(pepper, secret), compared in constant time. Resolved keys are
cached in-process for ``API_KEY_CACHE_TTL`` seconds (default 30), so a warm request does
no database query.

Changes reach every process within about a second: revoking or deleting a key and
suspending a tenant publish the change in Redis (``api_keys_changed``: a version counter
and a short log of what changed); each process compares its version at most once per
``AUTH_VERSION_CHECK_INTERVAL`` and forgets just those keys. If Redis is unreachable, the
TTL is the bound.

Failed attempts are cheap and throttled: unknown prefixes are remembered (negatively) for a
few seconds, and a client address with more than ``AUTH_FAILURES_PER_MINUTE`` failures in a
minute (counted in Redis, across workers) gets 429 for the rest of that minute on anything
that would need a database lookup. A cached, valid key from the same address still works.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import logging
import math
import secrets
import time
from collections.abc import Callable, Iterable
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
AUTH_VERSION_KEY = "aura:auth:version"
AUTH_CHANGES_KEY = "aura:auth:changes"
AUTH_CHANGES_KEPT = 10_000
AUTH_VERSION_CHECK_INTERVAL = 1.0
FAILURES_KEY = "aura:authfail"

log = logging.getLogger(__name__)

# Atomically: next version, remember what changed under it, keep the log short.
# ARGV[1]: where a counter Redis lost restarts (random: restarting at 1, it could climb back
# to the version a process last saw, which would then miss changes until the cache TTL).
# Below 10**12, so that Lua still writes the version into a member as digits (from 10**14
# it writes "1.2e+14").
_PUBLISH = f"""
if redis.call('EXISTS', KEYS[1]) == 0 then redis.call('SET', KEYS[1], ARGV[1]) end
local v = redis.call('INCR', KEYS[1])
for i = 2, #ARGV do redis.call('ZADD', KEYS[2], v, v .. ':' .. ARGV[i]) end
redis.call('ZREMRANGEBYRANK', KEYS[2], 0, -1 - {AUTH_CHANGES_KEPT})
return v
"""


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
    priority: str = "normal"  # ApiKey.priority: its queue rank on an overloaded endpoint

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


class AuthThrottled(AuthError):
    """Too many failed attempts from this client address: refused before any lookup."""

    def __init__(self, retry_after: float) -> None:
        super().__init__(
            f"Too many failed authentication attempts from this address; retry in "
            f"{math.ceil(retry_after)} s.",
            "too_many_failed_attempts",
        )
        self.retry_after = retry_after


class FailedAuthThrottle:
    """Failed attempts per client address and minute, counted in Redis (all workers); the
    verdict "blocked until" is kept locally, so checking it costs no round trip."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self._blocked: dict[str, float] = {}

    def clear(self) -> None:
        self._blocked.clear()

    def retry_after(self, address: str | None) -> float | None:
        if not address:
            return None
        until = self._blocked.get(address)
        if until is None:
            return None
        left = until - self.clock()
        if left <= 0:
            del self._blocked[address]
            return None
        return left

    def _counted(self, address: str, count: int, now: float) -> None:
        if count > settings.AUTH_FAILURES_PER_MINUTE:
            if len(self._blocked) > _CACHE_MAX:
                self._blocked.clear()
            self._blocked[address] = (now // 60 + 1) * 60  # to the end of this minute
            if count == settings.AUTH_FAILURES_PER_MINUTE + 1:
                log.warning("throttling failed authentication from %s", address)

    def _key(self, address: str, now: float) -> str:
        return f"{FAILURES_KEY}:{address}:{int(now // 60)}"

    async def afailed(self, address: str | None) -> None:
        if not address or settings.AUTH_FAILURES_PER_MINUTE <= 0:
            return
        from aura.redis import async_client

        now = self.clock()
        key = self._key(address, now)
        try:
            pipe = async_client().pipeline(transaction=False)
            pipe.incr(key)
            pipe.expire(key, 120)
            count = int((await pipe.execute())[0])
        except Exception:
            return  # Redis down: the negative cache still keeps unknown prefixes cheap
        self._counted(address, count, now)

    def failed(self, address: str | None) -> None:
        if not address or settings.AUTH_FAILURES_PER_MINUTE <= 0:
            return
        from aura.redis import sync_client

        now = self.clock()
        key = self._key(address, now)
        try:
            pipe = sync_client().pipeline(transaction=False)
            pipe.incr(key)
            pipe.expire(key, 120)
            count = int(pipe.execute()[0])
        except Exception:
            return
        self._counted(address, count, now)


throttle = FailedAuthThrottle()


def client_address(peer: str | None, forwarded_for: str | None) -> str | None:
    """The client's address: the peer, or, when the peer is a trusted proxy
    (``TRUSTED_PROXIES``), the last address in X-Forwarded-For that is not one."""
    if not peer:
        return None
    trusted = settings.TRUSTED_PROXY_NETWORKS
    if not trusted or not forwarded_for or not _in(peer, trusted):
        return peer
    for hop in reversed([h.strip() for h in forwarded_for.split(",")]):
        if hop and not _in(hop, trusted):
            return hop
    return peer


def _in(address: str, networks: Any) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in net for net in networks)


class ApiKeyResolver:
    """In-process TTL cache of key rows; the clock is injectable for tests."""

    # Cold async lookups run in the shared thread pool, not Django's one thread-sensitive
    # thread: a flood of unknown keys must not queue the routing context builds of
    # legitimate requests behind its lookups. (Tests that count queries set it True.)
    thread_sensitive = False

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._entries: dict[str, _Entry] = {}
        self._version: int | None = None
        self._checked_at = float("-inf")

    def forget(self, prefix: str | None = None) -> None:
        if prefix is None:
            self._entries.clear()
        else:
            self._entries.pop(prefix, None)

    def forget_tenant(self, tenant_id: int) -> None:
        for prefix in [
            p
            for p, e in self._entries.items()
            if e.principal and e.principal.tenant_id == tenant_id
        ]:
            del self._entries[prefix]

    # ----------------------------------------------------------------- changes elsewhere

    def _version_due(self) -> bool:
        now = self.clock()
        if now - self._checked_at < AUTH_VERSION_CHECK_INTERVAL:
            return False
        self._checked_at = now
        return True

    def _apply(self, version: int, changes: list[Any]) -> None:
        previous = self._version
        self._version = version
        if previous is None or version == previous:
            return
        seen = [(c.decode() if isinstance(c, bytes) else str(c)).split(":", 1) for c in changes]
        # The log was trimmed past what this process last saw (or Redis was reset): all.
        if version < previous or not seen or int(seen[0][0]) > previous + 1:
            self.forget()
            return
        for _, what in seen:
            kind, _, ident = what.partition(":")
            if kind == "k":
                self.forget(ident)
            elif kind == "t" and ident.isdigit():
                self.forget_tenant(int(ident))
            else:
                self.forget()

    def _check_version(self) -> None:
        if not self._version_due():
            return
        from aura.redis import sync_client

        try:
            client = sync_client()
            version = int(client.get(AUTH_VERSION_KEY) or 0)
            changes: list[Any] = []
            if self._version is not None and version != self._version:
                changes = client.zrangebyscore(AUTH_CHANGES_KEY, f"({self._version}", version)
            self._apply(version, changes)
        except Exception:
            log.warning("API key change check failed; cached keys expire within the TTL")

    async def _acheck_version(self) -> None:
        if not self._version_due():
            return
        from aura.redis import async_client

        try:
            client = async_client()
            version = int(await client.get(AUTH_VERSION_KEY) or 0)
            changes: list[Any] = []
            if self._version is not None and version != self._version:
                changes = await client.zrangebyscore(AUTH_CHANGES_KEY, f"({self._version}", version)
            self._apply(version, changes)
        except Exception:
            log.warning("API key change check failed; cached keys expire within the TTL")

    # ----------------------------------------------------------------- cache

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

    def _throttle(self, prefix: str, address: str | None) -> None:
        """Refuse a lookup for a throttled address, unless the prefix is a key this process
        has seen (a legitimate client behind the same address reloading its key)."""
        known = self._entries.get(prefix)
        if known is not None and known.principal is not None:
            return
        wait = throttle.retry_after(address)
        if wait is not None:
            raise AuthThrottled(wait)

    def _needs_touch(self, entry: _Entry) -> bool:
        now = self.clock()
        if now - entry.touched_at >= ApiKeyTouch.RESOLUTION:
            entry.touched_at = now
            return True
        return False

    def resolve(self, raw: str, address: str | None = None) -> KeyPrincipal:
        self._check_version()
        try:
            parsed = parse_key(raw)
            if parsed is None:
                raise AuthError("Incorrect API key provided.")
            prefix, secret = parsed
            entry = self._fresh(prefix)
            if entry is None:
                self._throttle(prefix, address)
                entry = self._store(prefix, _load(prefix))
            principal = self._check(entry, secret)
        except AuthThrottled:
            raise
        except AuthError:
            throttle.failed(address)
            raise
        if self._needs_touch(entry):
            ApiKeyTouch.touch(principal.key_id)
        return principal

    async def aresolve(self, raw: str, address: str | None = None) -> tuple[KeyPrincipal, bool]:
        """Async lookup; returns (principal, needs_touch) so the caller can touch last_used_at
        off the hot path."""
        await self._acheck_version()
        try:
            parsed = parse_key(raw)
            if parsed is None:
                raise AuthError("Incorrect API key provided.")
            prefix, secret = parsed
            entry = self._fresh(prefix)
            if entry is None:
                self._throttle(prefix, address)
                loaded = await sync_to_async(
                    _load_releasing, thread_sensitive=self.thread_sensitive
                )(prefix)
                entry = self._store(prefix, loaded)
            principal = self._check(entry, secret)
        except AuthThrottled:
            raise
        except AuthError:
            await throttle.afailed(address)
            raise
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
        priority=row.priority,
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
    """Forget cached keys in this process only (tests; see ``api_keys_changed``)."""
    resolver.forget(prefix)


def api_keys_changed(*, prefixes: Iterable[str] = (), tenant_ids: Iterable[int] = ()) -> None:
    """Keys were revoked or deleted, or tenants suspended or reactivated: forget them here
    at once and, once the transaction commits, in every other process within a second."""
    changes = [f"k:{p}" for p in prefixes] + [f"t:{t}" for t in tenant_ids]
    if not changes:
        return
    for change in changes:
        kind, _, ident = change.partition(":")
        if kind == "k":
            resolver.forget(ident)
        else:
            resolver.forget_tenant(int(ident))

    def publish() -> None:
        from aura.redis import sync_client

        try:
            sync_client().eval(
                _PUBLISH, 2, AUTH_VERSION_KEY, AUTH_CHANGES_KEY, secrets.randbelow(10**12), *changes
            )
        except Exception:
            log.warning(
                "API key change not published (Redis); other processes catch up within %ss",
                settings.API_KEY_CACHE_TTL,
            )

    from django.db import transaction

    transaction.on_commit(publish)


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
        address = client_address(
            request.META.get("REMOTE_ADDR"), request.META.get("HTTP_X_FORWARDED_FOR")
        )
        try:
            principal = resolver.resolve(token, address)
        except AuthThrottled as exc:
            raise exceptions.Throttled(wait=exc.retry_after, detail=exc.message) from None
        except AuthError as exc:
            raise exceptions.AuthenticationFailed(exc.message, code=exc.code) from None
        return ApiKeyUser(principal), principal

    def authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="aura"'
