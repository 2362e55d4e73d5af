"""BYOK management API: a tenant's own provider keys and endpoints, and the usable providers.

Reads need the viewer role, writes admin. Credentials and endpoints are listed and reached
only through ``_own(Model)``, which filters by the caller's tenant: rows of other tenants
and platform rows (tenant empty) answer 404 like missing ones. A secret is write-only:
no response carries it, not even the create response (the caller already has it).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Exists, OuterRef, QuerySet
from django.http import Http404
from rest_framework import serializers, status
from rest_framework.pagination import PageNumberPagination
from rest_framework.request import Request
from rest_framework.response import Response

from aura.errors import DomainError
from routing.catalog.services import (
    base_url_check,
    credential_create,
    credential_update,
    endpoint_create,
    notify_config_changed,
    tenant_allows_private_base_urls,
)
from routing.models import HEALTH_CHECK_MODES, CatalogModel, Credential, Provider, ProviderEndpoint
from tenants.models import Role
from tenants.scoping import TenantScopedAPIView

SECRET_MAX_LENGTH = 4096
MAX_TIMEOUT_SECONDS = 3600.0
MAX_RETRIES = 5
MAX_IN_FLIGHT = 100_000
_READS_AND_ADMIN_WRITES: dict[str, str] = {
    "GET": Role.VIEWER,
    "POST": Role.ADMIN,
    "PATCH": Role.ADMIN,
    "DELETE": Role.ADMIN,
}


class ByokView(TenantScopedAPIView):
    required_roles = _READS_AND_ADMIN_WRITES

    def _own(self, model: type[Credential] | type[ProviderEndpoint]) -> QuerySet[Any]:
        # Credential and ProviderEndpoint hold platform rows too (tenant empty), so they
        # have no TenantScopedQuerySet manager; this filter is their only way in here.
        return model._default_manager.filter(tenant_id=self.tenant.pk)

    def _own_or_404(self, model: type[Credential] | type[ProviderEndpoint], pk: int) -> Any:
        obj = self._own(model).select_related("provider").filter(pk=pk).first()
        if obj is None:
            raise Http404
        return obj


def _paginated(view: TenantScopedAPIView, request: Request, qs: Any, out: Any) -> Response:
    paginator = PageNumberPagination()
    page: list[Any] | None = paginator.paginate_queryset(qs, request, view=view)
    return paginator.get_paginated_response(out(page, many=True).data)


def _body(request: Request) -> Mapping[str, Any]:
    if not isinstance(request.data, Mapping):
        raise DomainError("The request body must be a JSON object.")
    return request.data


def _refuse_unknown(
    data: Mapping[str, Any],
    writable: set[str],
    read_only: set[str],
    fixed: Mapping[str, Any] | None = None,
) -> None:
    """An unknown key is refused rather than silently ignored (a typo would look applied).
    Output-only keys are ignored so a GET body can be sent back; ``fixed`` fields (set at
    creation) may be sent back unchanged but not changed."""
    fixed = fixed or {}
    unknown = sorted(set(data) - writable - read_only - set(fixed))
    if unknown:
        raise DomainError(
            f"unknown field(s): {', '.join(unknown)}; writable: {', '.join(sorted(writable))}",
            param=unknown[0],
        )
    for field, current in fixed.items():
        if field in data and data[field] != current:
            raise DomainError(f"{field} cannot be changed; create a new one instead", param=field)


def _enabled_provider(slug: str) -> Provider:
    provider = Provider.objects.filter(slug=slug, enabled=True).first()
    if provider is None:
        raise DomainError(f"unknown or disabled provider {slug!r}", param="provider")
    return provider


# --------------------------------------------------------------------------- providers


class ProviderOutput(serializers.ModelSerializer):
    has_own_credential = serializers.BooleanField(read_only=True)

    class Meta:
        model = Provider
        fields = ["slug", "name", "wire_format", "is_local", "has_own_credential"]


class ProviderListView(ByokView):
    """GET /api/v1/providers — enabled providers; has_own_credential: an enabled key of ours."""

    def get(self, request: Request) -> Response:
        own = Credential.objects.filter(
            tenant_id=self.tenant.pk, provider_id=OuterRef("pk"), enabled=True
        )
        qs = Provider.objects.filter(enabled=True).annotate(has_own_credential=Exists(own))
        return _paginated(self, request, qs.order_by("slug"), ProviderOutput)


# --------------------------------------------------------------------------- credentials


class CredentialOutput(serializers.ModelSerializer):
    provider = serializers.CharField(source="provider.slug")
    endpoint = serializers.IntegerField(source="endpoint_id", allow_null=True)

    class Meta:
        model = Credential
        # Never ciphertext, never the secret: the masked form is all a caller sees.
        fields = [
            "id",
            "provider",
            "name",
            "masked",
            "endpoint",
            "enabled",
            "created_at",
            "rotated_at",
        ]


_CREDENTIAL_READ_ONLY = {"id", "masked", "created_at", "rotated_at"}


class CredentialCreateInput(serializers.Serializer):
    provider = serializers.SlugField(max_length=64)
    name = serializers.CharField(max_length=100)
    secret = serializers.CharField(max_length=SECRET_MAX_LENGTH)
    endpoint = serializers.IntegerField(required=False, allow_null=True)
    enabled = serializers.BooleanField(default=True)


class CredentialUpdateInput(serializers.Serializer):
    name = serializers.CharField(max_length=100, required=False)
    secret = serializers.CharField(max_length=SECRET_MAX_LENGTH, required=False)
    enabled = serializers.BooleanField(required=False)


class CredentialListCreateView(ByokView):
    """GET/POST /api/v1/credentials — the tenant's own provider keys."""

    def get(self, request: Request) -> Response:
        qs = self._own(Credential).select_related("provider").order_by("provider__slug", "id")
        return _paginated(self, request, qs, CredentialOutput)

    def post(self, request: Request) -> Response:
        body = _body(request)
        _refuse_unknown(body, set(CredentialCreateInput().fields), _CREDENTIAL_READ_ONLY)
        data = CredentialCreateInput(data=body)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        provider = _enabled_provider(values["provider"])
        endpoint: ProviderEndpoint | None = None
        if values.get("endpoint") is not None:
            # A field of the body, so an endpoint that is not ours is a 400, not a 404.
            endpoint = self._own(ProviderEndpoint).filter(pk=values["endpoint"]).first()
            if endpoint is None:
                raise DomainError(
                    f"endpoint {values['endpoint']} is not one of your endpoints",
                    param="endpoint",
                )
        credential = credential_create(
            provider=provider,
            name=values["name"],
            secret=values["secret"],
            tenant=self.tenant,
            endpoint=endpoint,
            enabled=values["enabled"],
        )
        return Response(CredentialOutput(credential).data, status=status.HTTP_201_CREATED)


class CredentialDetailView(ByokView):
    """GET/PATCH/DELETE /api/v1/credentials/<id>. PATCH {secret} rotates the key."""

    def get(self, request: Request, credential_id: int) -> Response:
        return Response(CredentialOutput(self._own_or_404(Credential, credential_id)).data)

    def patch(self, request: Request, credential_id: int) -> Response:
        credential: Credential = self._own_or_404(Credential, credential_id)
        body = _body(request)
        fixed = {"provider": credential.provider.slug, "endpoint": credential.endpoint_id}
        _refuse_unknown(body, set(CredentialUpdateInput().fields), _CREDENTIAL_READ_ONLY, fixed)
        data = CredentialUpdateInput(data=body, partial=True)
        data.is_valid(raise_exception=True)
        credential = credential_update(credential=credential, **data.validated_data)
        return Response(CredentialOutput(credential).data)

    def delete(self, request: Request, credential_id: int) -> Response:
        credential = self._own_or_404(Credential, credential_id)
        credential.delete()
        notify_config_changed()
        return Response(status=status.HTTP_204_NO_CONTENT)


# --------------------------------------------------------------------------- endpoints


def _timeout_field() -> serializers.FloatField:
    return serializers.FloatField(min_value=0.1, max_value=MAX_TIMEOUT_SECONDS, required=False)


class EndpointFieldsInput(serializers.Serializer):
    """The writable fields of an endpoint; all optional here (PATCH), some required on POST."""

    name = serializers.CharField(max_length=100, required=False)
    base_url = serializers.URLField(max_length=500, required=False)
    api_version = serializers.CharField(max_length=32, allow_blank=True, required=False)
    deployments = serializers.DictField(child=serializers.CharField(max_length=200), required=False)
    models = serializers.ListField(
        child=serializers.CharField(max_length=200), max_length=500, required=False
    )
    connect_timeout = _timeout_field()
    first_byte_timeout = _timeout_field()
    total_timeout = _timeout_field()
    max_retries = serializers.IntegerField(min_value=0, max_value=MAX_RETRIES, required=False)
    # Calls at once per gateway process before requests queue; null: the platform
    # default (SHED_MAX_IN_FLIGHT); 0: no limit.
    max_in_flight = serializers.IntegerField(
        min_value=0, max_value=MAX_IN_FLIGHT, allow_null=True, required=False
    )
    # null: as the provider says; false: a keyless server, routable without a credential.
    requires_api_key = serializers.BooleanField(allow_null=True, required=False)
    enabled = serializers.BooleanField(required=False)
    # Health checks: blank / null take the platform's HEALTH_CHECK_* settings.
    health_check_mode = serializers.ChoiceField(
        choices=[m for m, _ in HEALTH_CHECK_MODES], allow_blank=True, required=False
    )
    health_check_model = serializers.CharField(max_length=200, allow_blank=True, required=False)
    health_check_interval = serializers.FloatField(
        min_value=5, max_value=3600, allow_null=True, required=False
    )
    health_check_timeout = serializers.FloatField(
        min_value=0.5, max_value=60, allow_null=True, required=False
    )


class EndpointCreateInput(EndpointFieldsInput):
    provider = serializers.SlugField(max_length=64)
    name = serializers.CharField(max_length=100)
    base_url = serializers.URLField(max_length=500)


class EndpointOutput(serializers.ModelSerializer):
    provider = serializers.CharField(source="provider.slug")
    models = serializers.SerializerMethodField()

    class Meta:
        model = ProviderEndpoint
        fields = [
            "id",
            "provider",
            "name",
            "base_url",
            "api_version",
            "deployments",
            "models",
            "connect_timeout",
            "first_byte_timeout",
            "total_timeout",
            "max_retries",
            "max_in_flight",
            "requires_api_key",
            "enabled",
            "health_check_mode",
            "health_check_model",
            "health_check_interval",
            "health_check_timeout",
            "created_at",
        ]

    def get_models(self, endpoint: ProviderEndpoint) -> list[str]:
        # Sorted in Python so a prefetched list costs no query.
        return sorted(m.model_id for m in endpoint.served_models.all())


_ENDPOINT_READ_ONLY = {"id", "created_at"}
_ENDPOINT_SIMPLE_FIELDS = (
    "name",
    "base_url",
    "api_version",
    "deployments",
    "connect_timeout",
    "first_byte_timeout",
    "total_timeout",
    "max_retries",
    "max_in_flight",
    "requires_api_key",
    "enabled",
    "health_check_mode",
    "health_check_model",
    "health_check_interval",
    "health_check_timeout",
)


def _catalog_models(provider: Provider, wanted: list[str]) -> list[CatalogModel]:
    catalog = {m.model_id: m for m in provider.models.filter(model_id__in=wanted)}
    missing = [m for m in dict.fromkeys(wanted) if m not in catalog]
    if missing:
        raise DomainError(
            f"unknown model(s) for provider {provider.slug}: {', '.join(missing)}", param="models"
        )
    return [catalog[m] for m in dict.fromkeys(wanted)]


class EndpointListCreateView(ByokView):
    """GET/POST /api/v1/endpoints — the tenant's own provider endpoints."""

    def get(self, request: Request) -> Response:
        qs = (
            self._own(ProviderEndpoint)
            .select_related("provider")
            .prefetch_related("served_models")
            .order_by("provider__slug", "name", "id")
        )
        return _paginated(self, request, qs, EndpointOutput)

    def post(self, request: Request) -> Response:
        body = _body(request)
        _refuse_unknown(body, set(EndpointCreateInput().fields), _ENDPOINT_READ_ONLY)
        data = EndpointCreateInput(data=body)
        data.is_valid(raise_exception=True)
        values = dict(data.validated_data)
        provider = _enabled_provider(values.pop("provider"))
        enabled = values.pop("enabled", True)
        # endpoint_create checks base_url (private addresses unless the operator allowed
        # them for this tenant), the models, the name's uniqueness, and notifies routing.
        endpoint = endpoint_create(provider=provider, tenant=self.tenant, **values)
        if not enabled:
            endpoint.enabled = False
            endpoint.save(update_fields=["enabled"])
            notify_config_changed()
        return Response(EndpointOutput(endpoint).data, status=status.HTTP_201_CREATED)


class EndpointDetailView(ByokView):
    """GET/PATCH/DELETE /api/v1/endpoints/<id>. Deleting one deletes the keys bound to it."""

    def get(self, request: Request, endpoint_id: int) -> Response:
        return Response(EndpointOutput(self._own_or_404(ProviderEndpoint, endpoint_id)).data)

    def patch(self, request: Request, endpoint_id: int) -> Response:
        endpoint: ProviderEndpoint = self._own_or_404(ProviderEndpoint, endpoint_id)
        body = _body(request)
        fixed = {"provider": endpoint.provider.slug}
        _refuse_unknown(body, set(EndpointFieldsInput().fields), _ENDPOINT_READ_ONLY, fixed)
        data = EndpointFieldsInput(data=body, partial=True)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        # Check everything before writing anything.
        if "base_url" in values and values["base_url"] != endpoint.base_url:
            base_url_check(
                values["base_url"], allow_private=tenant_allows_private_base_urls(self.tenant)
            )
        if "name" in values:
            taken = self._own(ProviderEndpoint).filter(
                provider_id=endpoint.provider_id, name=values["name"]
            )
            if taken.exclude(pk=endpoint.pk).exists():
                raise DomainError(
                    f"endpoint {endpoint.provider.slug}:{values['name']} already exists",
                    param="name",
                )
        served = (
            _catalog_models(endpoint.provider, values["models"]) if "models" in values else None
        )
        deployments = values.get("deployments")
        if deployments:
            _catalog_models(endpoint.provider, list(deployments))
        changed = [f for f in _ENDPOINT_SIMPLE_FIELDS if f in values]
        for field in changed:
            setattr(endpoint, field, values[field])
        try:
            with transaction.atomic():
                if changed:
                    endpoint.save(update_fields=changed)
                if served is not None:
                    endpoint.served_models.set(served)
        except IntegrityError:  # a concurrent rename to the same name
            raise DomainError(
                f"endpoint {endpoint.provider.slug}:{endpoint.name} already exists", param="name"
            ) from None
        if changed or served is not None:
            notify_config_changed()
        return Response(EndpointOutput(endpoint).data)

    def delete(self, request: Request, endpoint_id: int) -> Response:
        endpoint = self._own_or_404(ProviderEndpoint, endpoint_id)
        endpoint.delete()  # cascades to the tenant's credentials bound to this endpoint
        notify_config_changed()
        return Response(status=status.HTTP_204_NO_CONTENT)
