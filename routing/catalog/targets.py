"""Which credential a call to an endpoint uses, and the endpoint's name.

Shared by the gateway (routing context) and the health checks, so a probe uses the same
key a request would and its result lands under the name routing and breakers use.
"""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger(__name__)


class CredentialSecrets:
    """Decrypts each credential once per build; one that cannot be decrypted is logged and
    counts as absent (routing treats its candidates as without credentials)."""

    def __init__(self) -> None:
        self._plain: dict[int, str | None] = {}

    def of(self, cred: Any) -> str | None:
        if cred is None:
            return None
        if cred.pk not in self._plain:
            from routing.catalog.services import credential_secret

            try:
                self._plain[cred.pk] = credential_secret(cred)
            except Exception:
                log.exception("credential %s could not be decrypted", cred.pk)
                self._plain[cred.pk] = None
        return self._plain[cred.pk]


def pick_credential(creds: list[Any], tenant_id: int | None, endpoint: Any) -> Any | None:
    """Tenant's own key first (endpoint-specific, then provider-wide), then the platform's."""

    def rank(c: Any) -> tuple[int, int]:
        own = 0 if c.tenant_id == tenant_id else 1
        specific = 0 if endpoint is not None and c.endpoint_id == endpoint.pk else 1
        return own, specific

    usable = [
        c
        for c in creds
        if c.tenant_id in (None, tenant_id)
        and (c.endpoint_id is None or (endpoint is not None and c.endpoint_id == endpoint.pk))
    ]
    if endpoint is not None and endpoint.tenant_id is not None:
        # A tenant's own endpoint is a URL the tenant chose: never send it a platform key.
        usable = [c for c in usable if c.tenant_id == endpoint.tenant_id]
    return min(usable, key=rank) if usable else None


def endpoint_name(provider_slug: str, endpoint: Any, credential: Any) -> str:
    """The circuit breaker a call counts toward. A tenant's own key on a shared endpoint
    gets its own breaker: its 401s or quota 429s must not take the endpoint down for
    every other tenant."""
    name = f"ep{endpoint.pk}" if endpoint is not None else f"{provider_slug}-default"
    shared = endpoint is None or endpoint.tenant_id is None
    if shared and credential is not None and credential.tenant_id is not None:
        name += f":t{credential.tenant_id}"
    return name
