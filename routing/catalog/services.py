"""Writes for providers, endpoints, credentials and the model catalog.

Credentials are encrypted with ``aura.crypto`` and bound to their row (the AAD names the
primary key), so a ciphertext copied to another row does not decrypt. The plaintext leaves
this module only through ``credential_secret``, for the provider adapters.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import ipaddress
import json
import socket
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import QuerySet
from django.utils import timezone

from aura import crypto
from aura.errors import DomainError
from aura.netguard import refused_reason as _refused_reason
from routing import changes
from routing.models import (
    CAPABILITIES,
    WIRE_FORMATS,
    CatalogModel,
    Credential,
    Provider,
    ProviderEndpoint,
    RoutingPolicy,
)
from tenants.models import Tenant

CATALOG_PATH = Path(__file__).resolve().parents[1] / "data" / "catalog.json"
# Showing the last 4 characters of a short secret would reveal too much of it.
LAST4_MIN_LENGTH = 12
ENDPOINT_TIMEOUT_FIELDS = frozenset(
    {
        "connect_timeout",
        "first_byte_timeout",
        "total_timeout",
        "max_retries",
        "weight",
        "health_check_mode",
        "health_check_model",
        "health_check_interval",
        "health_check_timeout",
        "max_in_flight",
    }
)
# What a model created from the command line claims unless told more: a model that is said
# to do tools or JSON and cannot would fail requests the router sent it on that promise.
CREATED_MODEL_CAPABILITIES = {"chat": ["chat"], "embeddings": ["embeddings"]}
CHAT_ONLY_CAPABILITIES = frozenset(CAPABILITIES) - {"embeddings"}
# The catalog's price columns: DecimalField(max_digits=12, decimal_places=6).
MAX_PRICE_PER_MTOK = Decimal("999999.999999")
PROVIDER_CATALOG_FIELDS = (
    "name",
    "wire_format",
    "default_base_url",
    "is_local",
    "requires_api_key",
)
MODEL_CATALOG_FIELDS = (
    "display_name",
    "kind",
    "aliases",
    "input_price_per_mtok",
    "output_price_per_mtok",
    "cached_input_price_per_mtok",
    "context_window",
    "max_output_tokens",
    "capabilities",
    "quality",
    "tier",
    "is_local",
    "price_source",
    "price_source_date",
    "notes",
)


def notify_config_changed() -> None:
    """Tell routing its cached configuration is stale (it publishes on commit itself)."""
    changes.config_changed()


# --------------------------------------------------------------------------- base URLs


def _resolve(host: str) -> list[str]:
    """The addresses ``host`` stands for; empty when it does not resolve."""
    try:
        return [ipaddress.ip_address(host).compressed]
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        return []
    # sockaddr[0] may carry an IPv6 zone ("fe80::1%eth0"), which ipaddress accepts.
    return sorted({str(info[4][0]) for info in infos})


def _resolve_or_refuse(host: str, field: str) -> list[str]:
    addresses = _resolve(host)
    if not addresses:
        raise DomainError(f"{field} host {host!r} does not resolve", param=field)
    return addresses


def pinned_public_url(
    url: httpx.URL, *, field: str = "base_url"
) -> tuple[httpx.URL, dict[str, str], dict[str, Any]]:
    """Resolve ``url``'s host once, refuse unless every address is public, and return the
    URL rewritten to one checked address plus the Host header / TLS SNI that keep it the
    same request (for synchronous callers; the gateway's calls pin in aura.http)."""
    host = url.host
    addresses = _resolve_or_refuse(host, field)
    for address in addresses:
        reason = _refused_reason(ipaddress.ip_address(address.split("%", 1)[0]))
        if reason is not None:
            raise DomainError(f"{host} resolves to a {reason} address", param=field)
    if addresses[0] == host:
        return url, {}, {}
    extensions: dict[str, Any] = {"sni_hostname": host} if url.scheme == "https" else {}
    return url.copy_with(host=addresses[0]), {"host": url.netloc.decode("ascii")}, extensions


def base_url_check(url: str, *, allow_private: bool, field: str = "base_url") -> None:
    """Refuse URLs that are not http(s), that carry credentials, or that reach private,
    loopback or other internal addresses (SSRF from tenant-supplied endpoints and budget
    webhooks), unless ``allow_private``. Errors name ``field``.

    Checks the addresses the host resolves to now (a name that does not resolve is
    refused); the HTTP seam must re-check at connect time to also stop DNS rebinding.
    """
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError as exc:
        raise DomainError(f"{field} is not a valid URL: {exc}", param=field) from exc
    if parts.scheme not in ("http", "https"):
        raise DomainError(f"{field} must start with http:// or https://", param=field)
    host = parts.hostname
    if not host:
        raise DomainError(f"{field} has no host", param=field)
    if parts.username is not None or parts.password is not None:
        raise DomainError(
            f"{field} must not contain credentials (user:password@)"
            + ("; add a credential instead" if field == "base_url" else ""),
            param=field,
        )
    if allow_private:
        return
    for address in _resolve_or_refuse(host, field):
        reason = _refused_reason(ipaddress.ip_address(address.split("%", 1)[0]))
        if reason is not None:
            shown = host if host == address else f"{host} ({address})"
            raise DomainError(
                f"{field} host {shown} is a {reason} address; only public addresses are "
                "allowed unless an operator enables private base URLs for this tenant",
                param=field,
            )


def tenant_allows_private_base_urls(tenant: Tenant) -> bool:
    policy = RoutingPolicy.objects.for_tenant(tenant).only("allow_private_base_urls").first()
    return bool(policy and policy.allow_private_base_urls)


# --------------------------------------------------------------------------- providers


def provider_upsert(
    *,
    slug: str,
    wire_format: str,
    default_base_url: str = "",
    name: str = "",
    is_local: bool = False,
    requires_api_key: bool | None = None,
) -> tuple[Provider, bool]:
    """Create or update a provider by slug; returns (provider, created).

    ``requires_api_key`` None means by wire format (Ollama: no key, every other: a key)."""
    if wire_format not in dict(WIRE_FORMATS):
        raise DomainError(
            f"wire_format must be one of {', '.join(dict(WIRE_FORMATS))}", param="wire_format"
        )
    provider = Provider.objects.filter(slug=slug).first()
    created = provider is None
    if provider is None:
        provider = Provider(slug=slug)
    provider.name = name or provider.name or slug
    provider.wire_format = wire_format
    provider.default_base_url = default_base_url
    provider.is_local = is_local
    provider.requires_api_key = requires_api_key
    _full_clean(provider)
    provider.save()
    notify_config_changed()
    return provider, created


# --------------------------------------------------------------------------- endpoints


def endpoint_create(
    *,
    provider: Provider,
    name: str,
    base_url: str,
    tenant: Tenant | None = None,
    models: list[str] | None = None,
    api_version: str = "",
    deployments: dict[str, str] | None = None,
    requires_api_key: bool | None = None,
    **timeouts: float | None,
) -> ProviderEndpoint:
    """``requires_api_key`` None means as the provider says; False: a keyless server."""
    unknown_options = sorted(set(timeouts) - ENDPOINT_TIMEOUT_FIELDS)
    if unknown_options:
        raise DomainError(f"unknown endpoint option(s): {', '.join(unknown_options)}")
    if not name.strip():
        raise DomainError("name must not be blank", param="name")
    # Operators create platform endpoints (often on private networks); tenants' are checked.
    if tenant is not None:
        base_url_check(base_url, allow_private=tenant_allows_private_base_urls(tenant))
    deployments = deployments or {}
    wanted = list(dict.fromkeys([*(models or []), *deployments]))
    catalog = {m.model_id: m for m in provider.models.filter(model_id__in=wanted)}
    missing = [m for m in wanted if m not in catalog]
    if missing:
        raise DomainError(
            f"unknown model(s) for provider {provider.slug}: {', '.join(missing)}", param="models"
        )
    duplicate = ProviderEndpoint.objects.filter(provider=provider, tenant=tenant, name=name)
    if duplicate.exists():  # the unique constraint does not cover tenant IS NULL
        raise DomainError(f"endpoint {provider.slug}:{name} already exists", param="name")
    endpoint = ProviderEndpoint(
        provider=provider,
        tenant=tenant,
        name=name,
        base_url=base_url,
        api_version=api_version,
        deployments=deployments,
        requires_api_key=requires_api_key,
        **timeouts,
    )
    _full_clean(endpoint)
    with transaction.atomic():
        endpoint.save()
        if models:
            endpoint.served_models.set([catalog[m] for m in models])
    notify_config_changed()
    return endpoint


def catalog_models_ensure(
    *,
    provider: Provider,
    model_ids: list[str],
    kind: str = CatalogModel.Kind.CHAT,
    capabilities: list[str] | None = None,
    input_price: Decimal = Decimal(0),
    output_price: Decimal = Decimal(0),
    context_window: int | None = None,
    max_output_tokens: int | None = None,
) -> list[CatalogModel]:
    """Create the models the catalog lacks, so a self-hosted deployment (e.g. vLLM) can be
    configured from a script. Unless told more they claim only what every model of their
    kind does (chat, or embeddings) and cost nothing. Models already in the catalog are
    left as they are."""
    values = _created_model_values(
        kind=kind,
        capabilities=capabilities,
        input_price=input_price,
        output_price=output_price,
        context_window=context_window,
        max_output_tokens=max_output_tokens,
    )
    existing = set(
        provider.models.filter(model_id__in=model_ids).values_list("model_id", flat=True)
    )
    created: list[CatalogModel] = []
    for model_id in dict.fromkeys(model_ids):
        if model_id in existing:
            continue
        model = CatalogModel(
            provider=provider,
            model_id=model_id,
            display_name=model_id,
            is_local=provider.is_local,
            notes="Created by add_endpoint --create-models; check prices and set quality.",
            **values,
        )
        _full_clean(model, label=f"model {model_id}", exclude_unique=True)
        model.save()
        created.append(model)
    if created:
        notify_config_changed()
    return created


def _created_model_values(
    *,
    kind: str,
    capabilities: list[str] | None,
    input_price: Decimal,
    output_price: Decimal,
    context_window: int | None,
    max_output_tokens: int | None,
) -> dict[str, Any]:
    if kind not in CatalogModel.Kind.values:
        raise DomainError(
            f"kind must be one of {', '.join(CatalogModel.Kind.values)}, not {kind!r}",
            param="kind",
        )
    caps = list(dict.fromkeys(capabilities or CREATED_MODEL_CAPABILITIES[kind]))
    unknown = [c for c in caps if c not in CAPABILITIES]
    if unknown:
        raise DomainError(
            f"unknown capabilities: {', '.join(unknown)} (known: {', '.join(CAPABILITIES)})",
            param="capabilities",
        )
    if kind == CatalogModel.Kind.EMBEDDINGS:
        chatty = [c for c in caps if c in CHAT_ONLY_CAPABILITIES]
        if chatty:
            raise DomainError(
                f"an embeddings model cannot claim {', '.join(chatty)}", param="capabilities"
            )
    elif "embeddings" in caps:
        raise DomainError(
            "a chat model cannot claim embeddings; create it with kind embeddings",
            param="capabilities",
        )
    for name, price in (("input price", input_price), ("output price", output_price)):
        if not price.is_finite() or not Decimal(0) <= price <= MAX_PRICE_PER_MTOK:
            raise DomainError(
                f"{name} must be between 0 and {MAX_PRICE_PER_MTOK} USD per 1M tokens",
                param=name.replace(" ", "_"),
            )
        if price != price.quantize(Decimal("0.000001")):
            raise DomainError(
                f"{name} has more than 6 decimal places (USD per 1M tokens)",
                param=name.replace(" ", "_"),
            )
    if context_window is None:
        context_window = CatalogModel._meta.get_field("context_window").default
    if max_output_tokens is None:
        # Embeddings produce no tokens; the catalog's embeddings models say 0.
        max_output_tokens = (
            0
            if kind == CatalogModel.Kind.EMBEDDINGS
            else min(CatalogModel._meta.get_field("max_output_tokens").default, context_window)
        )
    window, max_output = context_window, max_output_tokens
    if window < 1:
        raise DomainError("context window must be at least 1 token", param="context_window")
    if max_output < 0 or max_output > window:
        raise DomainError(
            f"max output tokens must be between 0 and the context window ({window})",
            param="max_output_tokens",
        )
    if kind == CatalogModel.Kind.CHAT and max_output == 0:
        raise DomainError("a chat model needs max output tokens above 0", param="max_output_tokens")
    return {
        "kind": kind,
        "capabilities": caps,
        "input_price_per_mtok": input_price,
        "output_price_per_mtok": output_price,
        "context_window": window,
        "max_output_tokens": max_output,
    }


# --------------------------------------------------------------------------- credentials


def credential_aad(pk: int) -> str:
    return f"{Credential._meta.label}:{pk}"


def _last4(secret: str) -> str:
    return secret[-4:] if len(secret) >= LAST4_MIN_LENGTH else ""


def _clean_secret(secret: str) -> str:
    # Pasted keys often carry a trailing newline; no provider key has surrounding spaces.
    secret = (secret or "").strip()
    if not secret:
        raise DomainError("secret must not be blank", param="secret")
    return secret


def credential_scope_check(
    *, provider: Provider, tenant: Tenant | None, endpoint: ProviderEndpoint | None
) -> None:
    if endpoint is None:
        return
    if endpoint.provider_id != provider.pk:
        raise DomainError(
            f"endpoint {endpoint.name} belongs to provider {endpoint.provider.slug}, "
            f"not {provider.slug}",
            param="endpoint",
        )
    if endpoint.tenant_id is not None and endpoint.tenant_id != (tenant.pk if tenant else None):
        # A platform credential on a tenant's endpoint would send our key to their URL.
        raise DomainError(
            "the endpoint belongs to another tenant than the credential", param="endpoint"
        )


def credential_create(
    *,
    provider: Provider,
    name: str,
    secret: str,
    tenant: Tenant | None = None,
    endpoint: ProviderEndpoint | None = None,
    enabled: bool = True,
) -> Credential:
    secret = _clean_secret(secret)
    credential_scope_check(provider=provider, tenant=tenant, endpoint=endpoint)
    credential = Credential(provider=provider, tenant=tenant, endpoint=endpoint, name=name)
    _credential_name_check(credential, name)
    with _credential_name_unique(credential, name), transaction.atomic():
        # The AAD names the primary key, so the row must exist before it can be encrypted;
        # inside one transaction nobody ever sees it without its ciphertext.
        credential.enabled = enabled
        credential.ciphertext = ""
        credential.last4 = _last4(secret)
        credential.save()
        credential.ciphertext = crypto.encrypt(secret, aad=credential_aad(credential.pk))
        credential.save(update_fields=["ciphertext"])
    notify_config_changed()
    return credential


def credential_update(
    *,
    credential: Credential,
    name: str | None = None,
    enabled: bool | None = None,
    secret: str | None = None,
) -> Credential:
    """Rename, enable/disable and/or rotate one credential, all or nothing. A name another
    credential of the same provider, owner and endpoint has is refused (400), like on
    create."""
    changed: list[str] = []
    if name is not None and name != credential.name:
        _credential_name_check(credential, name)
        credential.name = name
        changed.append("name")
    if enabled is not None and enabled != credential.enabled:
        credential.enabled = enabled
        changed.append("enabled")
    with _credential_name_unique(credential, credential.name), transaction.atomic():
        if changed:
            credential.save(update_fields=changed)
        if secret is not None:
            credential_rotate_secret(credential=credential, secret=secret)
    if changed:
        notify_config_changed()
    return credential


def _credential_name_taken(name: str, credential: Credential) -> DomainError:
    return DomainError(
        f"a credential named {name!r} already exists for {credential.provider.slug} here; "
        "rotate its secret instead",
        param="name",
    )


def _credential_name_check(credential: Credential, name: str) -> None:
    if not name.strip():
        raise DomainError("name must not be blank", param="name")
    taken = Credential.objects.filter(
        provider=credential.provider,
        tenant=credential.tenant,
        endpoint=credential.endpoint,
        name=name,
    ).exclude(pk=credential.pk)
    if taken.exists():
        raise _credential_name_taken(name, credential)


@contextlib.contextmanager
def _credential_name_unique(credential: Credential, name: str) -> Iterator[None]:
    # A concurrent writer of the same name slips past the check; the unique constraint
    # stops it, and it gets the same 400.
    try:
        yield
    except IntegrityError:
        raise _credential_name_taken(name, credential) from None


def credential_rotate_secret(*, credential: Credential, secret: str) -> Credential:
    secret = _clean_secret(secret)
    credential.ciphertext = crypto.encrypt(secret, aad=credential_aad(credential.pk))
    credential.last4 = _last4(secret)
    credential.rotated_at = timezone.now()
    credential.save(update_fields=["ciphertext", "last4", "rotated_at"])
    notify_config_changed()
    return credential


def credential_secret(credential: Credential) -> str:
    return crypto.decrypt(credential.ciphertext, aad=credential_aad(credential.pk))


def credentials_reencrypt(*, queryset: QuerySet[Credential] | None = None) -> int:
    """Move every credential not under the newest key onto it; returns how many moved.

    Rows that cannot be decrypted are skipped and reported together at the end, after the
    others are saved, so one lost key does not block rotating everything else.
    """
    newest = crypto.keys()[0]
    rows = (queryset if queryset is not None else Credential.objects.all()).exclude(
        ciphertext__startswith=f"{crypto.VERSION}:{newest.id}:"
    )
    moved = 0
    failures: list[str] = []
    for pk, old in rows.values_list("pk", "ciphertext").iterator():
        aad = credential_aad(pk)
        try:
            new = crypto.encrypt(crypto.decrypt(old, aad=aad), aad=aad)
        except crypto.DecryptionError as exc:
            failures.append(f"credential {pk}: {exc}")
            continue
        # Conditional update: a rotation that landed meanwhile must not be overwritten.
        moved += Credential.objects.filter(pk=pk, ciphertext=old).update(ciphertext=new)
    if moved:
        notify_config_changed()
    if failures:
        raise crypto.DecryptionError(
            f"re-encrypted {moved} credential(s); {len(failures)} could not be decrypted: "
            + "; ".join(failures)
        )
    return moved


# --------------------------------------------------------------------------- catalog


def _model_values(raw: dict[str, Any]) -> dict[str, Any]:
    def price(key: str) -> Decimal | None:
        value = raw.get(key)
        return None if value is None else Decimal(str(value))

    date = raw.get("price_source_date")
    return {
        "display_name": raw.get("display_name", ""),
        "kind": raw.get("kind", CatalogModel.Kind.CHAT),
        "aliases": raw.get("aliases", []),
        "input_price_per_mtok": price("input_price_per_mtok") or Decimal(0),
        "output_price_per_mtok": price("output_price_per_mtok") or Decimal(0),
        "cached_input_price_per_mtok": price("cached_input_price_per_mtok"),
        "context_window": raw.get("context_window", 8192),
        "max_output_tokens": raw.get("max_output_tokens", 4096),
        "capabilities": raw.get("capabilities", []),
        "quality": raw.get("quality", {}),
        "tier": raw.get("tier", "balanced"),
        "is_local": raw.get("is_local", False),
        "price_source": raw.get("price_source", ""),
        "price_source_date": dt.date.fromisoformat(date) if date else None,
        "notes": raw.get("notes", ""),
    }


def _apply(obj: Any, values: dict[str, Any]) -> bool:
    changed = False
    for attr, value in values.items():
        if getattr(obj, attr) != value:
            setattr(obj, attr, value)
            changed = True
    return changed


def catalog_load(path: str | Path | None = None) -> dict[str, int]:
    """Upsert providers and models from the catalog file; idempotent, never deletes.

    Rows are saved only when a value differs, so a second run writes nothing (and leaves
    ``updated_at`` alone). ``enabled`` is the operator's and is never touched.
    """
    path = Path(path) if path else CATALOG_PATH
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise DomainError(f"cannot read catalog {path}: {exc}", param="path") from exc
    counts = dict.fromkeys(
        ("providers_created", "providers_updated", "models_created", "models_updated", "unchanged"),
        0,
    )
    with transaction.atomic():
        providers = {p.slug: p for p in Provider.objects.all()}
        for raw in data.get("providers", []):
            slug = raw["slug"]
            values = {f: raw[f] for f in PROVIDER_CATALOG_FIELDS if f in raw}
            provider = providers.get(slug)
            if provider is None:
                provider = Provider(slug=slug, **values)
                kind = "providers_created"
            elif _apply(provider, values):
                kind = "providers_updated"
            else:
                counts["unchanged"] += 1
                continue
            _full_clean(provider, label=f"provider {slug}")
            provider.save()
            providers[slug] = provider
            counts[kind] += 1

        existing = {(m.provider_id, m.model_id): m for m in CatalogModel.objects.all()}
        for raw in data.get("models", []):
            label = f"model {raw.get('provider')}/{raw.get('model_id')}"
            provider = providers.get(raw.get("provider", ""))
            if provider is None:
                raise DomainError(f"{label}: unknown provider", param="path")
            values = _model_values(raw)
            model = existing.get((provider.pk, raw["model_id"]))
            if model is None:
                model = CatalogModel(provider=provider, model_id=raw["model_id"], **values)
                kind = "models_created"
            elif _apply(model, values):
                kind = "models_updated"
            else:
                counts["unchanged"] += 1
                continue
            _full_clean(model, label=label, exclude_unique=True)
            model.save()
            existing[(provider.pk, model.model_id)] = model
            counts[kind] += 1
    if counts["unchanged"] != sum(counts.values()):
        notify_config_changed()
    return counts


# --------------------------------------------------------------------------- helpers


def _full_clean(obj: Any, *, label: str = "", exclude_unique: bool = False) -> None:
    try:
        obj.full_clean(validate_unique=not exclude_unique, validate_constraints=not exclude_unique)
    except ValidationError as exc:
        detail = "; ".join(
            f"{field}: {' '.join(str(m) for m in msgs)}" for field, msgs in exc.message_dict.items()
        )
        raise DomainError(f"{label + ': ' if label else ''}{detail}") from exc
