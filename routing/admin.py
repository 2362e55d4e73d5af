from __future__ import annotations

import math
from decimal import Decimal
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db import models
from django.db.models import QuerySet
from django.http import HttpRequest

from aura.admin_columns import usd_column
from aura.crypto import DecryptionError
from aura.errors import DomainError
from aura.money import plain_decimal
from routing.cache.config import DEFAULTS as CACHE_DEFAULTS
from routing.cache.config import CacheConfigError, clean_cache
from routing.cache.models import CacheEntry
from routing.catalog.services import (
    base_url_check,
    credential_create,
    credential_rotate_secret,
    credential_scope_check,
    credentials_reencrypt,
    notify_config_changed,
    tenant_allows_private_base_urls,
)
from routing.learning.config import DEFAULTS as LEARNING_DEFAULTS
from routing.learning.config import (
    OPTIMIZATION_DEFAULTS,
    LearningConfigError,
    clean_learning,
    clean_optimization,
)
from routing.learning.models import OutcomeImport, OutcomeMemory, WeightOptimization
from routing.models import (
    CatalogModel,
    Credential,
    Provider,
    ProviderEndpoint,
    RoutingOutcome,
    RoutingPolicy,
    WeightHistory,
)


class ConfigChangedMixin:
    """Every admin write to routing configuration invalidates the routing caches."""

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        super().save_model(request, obj, form, change)  # type: ignore[misc]
        notify_config_changed()

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        super().save_related(request, form, formsets, change)  # type: ignore[misc]
        notify_config_changed()  # served_models (M2M) are saved here, after save_model

    def delete_model(self, request: HttpRequest, obj: Any) -> None:
        super().delete_model(request, obj)  # type: ignore[misc]
        notify_config_changed()

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        super().delete_queryset(request, queryset)  # type: ignore[misc]
        notify_config_changed()


# Django 6's default; set now so a scheme-less URL means https and Django 5.2 stays quiet.
URL_FIELD_OVERRIDES: dict[Any, dict[str, Any]] = {models.URLField: {"assume_scheme": "https"}}


def _owner(obj: Any) -> str:
    return obj.tenant.slug if obj.tenant_id else "platform"


# --------------------------------------------------------------------------- catalog


@admin.register(Provider)
class ProviderAdmin(ConfigChangedMixin, admin.ModelAdmin):
    list_display = [
        "slug",
        "name",
        "wire_format",
        "default_base_url",
        "is_local",
        "requires_api_key",
        "enabled",
    ]
    list_filter = ["wire_format", "is_local", "enabled"]
    search_fields = ["slug", "name"]
    formfield_overrides = URL_FIELD_OVERRIDES


@admin.register(CatalogModel)
class CatalogModelAdmin(ConfigChangedMixin, admin.ModelAdmin):
    list_display = [
        "model_id",
        "provider",
        "kind",
        "tier",
        "input_price_per_mtok",
        "output_price_per_mtok",
        "cached_input_price_per_mtok",
        "context_window",
        "enabled",
    ]
    list_editable = [
        "input_price_per_mtok",
        "output_price_per_mtok",
        "cached_input_price_per_mtok",
        "enabled",
    ]
    list_filter = ["provider", "tier", "kind", "enabled", "is_local"]
    list_select_related = ["provider"]
    # "aliases" is a JSON list: Django's JSONField icontains searches its text form.
    search_fields = ["model_id", "display_name", "aliases"]
    readonly_fields = ["updated_at"]
    formfield_overrides = URL_FIELD_OVERRIDES


# --------------------------------------------------------------------------- endpoints


class ProviderEndpointForm(forms.ModelForm):
    # Declared, so formfield_overrides cannot reach it: same https default as above.
    base_url = forms.URLField(max_length=500, assume_scheme="https")

    class Meta:
        model = ProviderEndpoint
        fields = [
            "provider",
            "tenant",
            "name",
            "base_url",
            "api_version",
            "deployments",
            "extra_headers",
            "served_models",
            "connect_timeout",
            "first_byte_timeout",
            "total_timeout",
            "max_retries",
            "weight",
            "max_in_flight",
            "requires_api_key",
            "enabled",
        ]

    def clean(self) -> dict[str, Any]:
        super().clean()
        data = self.cleaned_data
        provider, tenant = data.get("provider"), data.get("tenant")
        base_url = data.get("base_url")
        # Platform endpoints are the operator's own; a tenant's endpoint is checked against
        # private ranges like the tenant API does, unless its policy allows them.
        if tenant is not None and base_url:
            try:
                base_url_check(base_url, allow_private=tenant_allows_private_base_urls(tenant))
            except DomainError as exc:
                self.add_error("base_url", exc.message)
        served = data.get("served_models")
        if provider is not None and served:
            foreign = [m.model_id for m in served if m.provider_id != provider.pk]
            if foreign:
                self.add_error(
                    "served_models",
                    f"not models of {provider.slug}: {', '.join(foreign)}",
                )
        return data


@admin.register(ProviderEndpoint)
class ProviderEndpointAdmin(ConfigChangedMixin, admin.ModelAdmin):
    form = ProviderEndpointForm
    list_display = ["name", "provider", "owner", "base_url", "weight", "enabled"]
    list_filter = ["provider", "enabled", ("tenant", admin.EmptyFieldListFilter)]
    list_select_related = ["provider", "tenant"]
    search_fields = ["name", "base_url", "provider__slug", "tenant__slug"]
    autocomplete_fields = ["tenant"]
    filter_horizontal = ["served_models"]
    readonly_fields = ["created_at"]

    @admin.display(description="owner")
    def owner(self, obj: ProviderEndpoint) -> str:
        return _owner(obj)


# --------------------------------------------------------------------------- credentials


class CredentialForm(forms.ModelForm):
    # Write-only: never rendered back (render_value=False), never shown after entry.
    secret = forms.CharField(
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        required=False,
        strip=True,
        help_text="The provider API key. Leave blank to keep the current one.",
    )

    class Meta:
        model = Credential
        fields = ["provider", "tenant", "endpoint", "name", "enabled"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk is None:
            self.fields["secret"].required = True
            self.fields["secret"].help_text = "The provider API key; it is not shown again."

    def clean(self) -> dict[str, Any]:
        super().clean()
        data = self.cleaned_data
        # tenant and provider are read-only on change, so fall back to the instance's.
        provider = data.get("provider") or getattr(self.instance, "provider", None)
        tenant = data["tenant"] if "tenant" in data else self.instance.tenant
        if provider is not None:
            try:
                credential_scope_check(
                    provider=provider, tenant=tenant, endpoint=data.get("endpoint")
                )
            except DomainError as exc:
                self.add_error("endpoint", exc.message)
        return data


@admin.register(Credential)
class CredentialAdmin(admin.ModelAdmin):
    form = CredentialForm
    list_display = ["name", "provider", "owner", "endpoint", "masked", "enabled", "rotated_at"]
    list_filter = ["provider", "enabled", ("tenant", admin.EmptyFieldListFilter)]
    list_select_related = ["provider", "tenant", "endpoint"]
    search_fields = ["name", "provider__slug", "tenant__slug"]
    autocomplete_fields = ["tenant"]
    readonly_fields = ["masked", "created_at", "rotated_at"]
    actions = ["reencrypt"]

    def get_fields(self, request: HttpRequest, obj: Credential | None = None) -> Any:
        return [
            "provider",
            "tenant",
            "endpoint",
            "name",
            "enabled",
            "secret",
            *self.readonly_fields,
        ]

    def get_readonly_fields(self, request: HttpRequest, obj: Credential | None = None) -> Any:
        if obj is not None:
            # Moving a tenant's key to the platform (or to another provider) is a new key.
            return ["provider", "tenant", *self.readonly_fields]
        return self.readonly_fields

    @admin.display(description="owner")
    def owner(self, obj: Credential) -> str:
        return _owner(obj)

    def save_model(self, request: HttpRequest, obj: Credential, form: Any, change: bool) -> None:
        secret = form.cleaned_data.get("secret") or ""
        if not change:
            created = credential_create(
                provider=obj.provider,
                name=obj.name,
                secret=secret,
                tenant=obj.tenant,
                endpoint=obj.endpoint,
                enabled=obj.enabled,
            )
            # The admin goes on to log and redirect with `obj`: make it the saved row.
            for f in Credential._meta.concrete_fields:
                setattr(obj, f.attname, getattr(created, f.attname))
            obj._state.adding = False
            return
        super().save_model(request, obj, form, change)
        if secret:
            credential_rotate_secret(credential=obj, secret=secret)
        else:
            notify_config_changed()

    def delete_model(self, request: HttpRequest, obj: Credential) -> None:
        super().delete_model(request, obj)
        notify_config_changed()

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Credential]) -> None:
        super().delete_queryset(request, queryset)
        notify_config_changed()

    @admin.action(description="Re-encrypt under the newest key")
    def reencrypt(self, request: HttpRequest, queryset: QuerySet[Credential]) -> None:
        try:
            count = credentials_reencrypt(queryset=queryset)
        except DecryptionError as exc:
            self.message_user(request, str(exc), level=messages.ERROR)
            return
        self.message_user(request, f"Re-encrypted {count} credential(s) under the newest key.")


# --------------------------------------------------------------------------- policies


class PlainDecimalInput(forms.NumberInput):
    """A number input that shows 0.0000001, not 1.000E-7."""

    def format_value(self, value: Any) -> str | None:
        if isinstance(value, Decimal):
            return plain_decimal(value)
        return super().format_value(value)


class RoutingPolicyForm(forms.ModelForm):
    class Meta:
        model = RoutingPolicy
        widgets = {"max_cost_per_request": PlainDecimalInput}
        fields = [
            "tenant",
            "objective",
            "weight_quality",
            "weight_cost",
            "weight_latency",
            "allowed_providers",
            "denied_providers",
            "allowed_models",
            "denied_models",
            "local_only",
            "max_cost_per_request",
            "min_quality",
            "quality_target",
            "fallback_depth",
            "model_fallback",
            "strategy",
            "hedge_k",
            "aliases",
            "cache",
            "learning",
            "optimization",
            "allow_private_base_urls",
        ]

    def clean_quality_target(self) -> float | None:
        value = self.cleaned_data.get("quality_target")
        if value is not None and not 0 < value <= 1:
            raise forms.ValidationError("must be above 0 and at most 1")
        return value

    def clean_learning(self) -> dict[str, Any]:
        raw = self.cleaned_data.get("learning") or {}
        try:
            return {**LEARNING_DEFAULTS, **clean_learning(raw)}
        except LearningConfigError as exc:
            raise forms.ValidationError(exc.message) from None

    def clean_optimization(self) -> dict[str, Any]:
        raw = self.cleaned_data.get("optimization") or {}
        try:
            return {**OPTIMIZATION_DEFAULTS, **clean_optimization(raw)}
        except LearningConfigError as exc:
            raise forms.ValidationError(exc.message) from None

    def clean_cache(self) -> dict[str, Any]:
        raw = self.cleaned_data.get("cache") or {}
        try:
            return {**CACHE_DEFAULTS, **clean_cache(raw)}
        except CacheConfigError as exc:
            raise forms.ValidationError(exc.message) from None

    def clean(self) -> dict[str, Any]:
        super().clean()
        data = self.cleaned_data
        names = ["weight_quality", "weight_cost", "weight_latency"]
        if any(data.get(n) is None for n in names):
            return data  # the field itself already has an error
        weights = [float(data[n]) for n in names]
        for name, weight in zip(names, weights, strict=True):
            if not 0 <= weight <= 1:
                self.add_error(name, "must be between 0 and 1")
        total = sum(weights)
        # isclose: 0.1 + 0.2 + 0.7 is not exactly 1.0 in floating point.
        if not math.isclose(total, 1.0, abs_tol=1e-6):
            self.add_error(
                "weight_quality",
                f"quality + cost + latency weights must sum to 1 (they sum to {total:g})",
            )
        return data


@admin.register(RoutingPolicy)
class RoutingPolicyAdmin(ConfigChangedMixin, admin.ModelAdmin):
    form = RoutingPolicyForm
    list_display = [
        "tenant",
        "objective",
        "strategy",
        "model_fallback",
        "weight_quality",
        "weight_cost",
        "weight_latency",
        "local_only",
        "allow_private_base_urls",
        "version",
        "updated_at",
    ]
    list_filter = [
        "objective",
        "strategy",
        "model_fallback",
        "local_only",
        "allow_private_base_urls",
    ]
    list_select_related = ["tenant"]
    search_fields = ["tenant__slug", "tenant__name"]
    autocomplete_fields = ["tenant"]
    readonly_fields = ["version", "updated_at", "updated_by"]

    def get_readonly_fields(self, request: HttpRequest, obj: RoutingPolicy | None = None) -> Any:
        if obj is not None:  # a policy belongs to its tenant for life
            return ["tenant", *self.readonly_fields]
        return self.readonly_fields

    def save_model(self, request: HttpRequest, obj: RoutingPolicy, form: Any, change: bool) -> None:
        if request.user.is_authenticated:
            obj.updated_by = request.user
        super().save_model(request, obj, form, change)


class ReadOnlyAdmin(admin.ModelAdmin):
    """History and observations: written by the system, only looked at here."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(WeightHistory)
class WeightHistoryAdmin(ReadOnlyAdmin):
    list_display = ["tenant", "version", "weights", "source", "note", "created_by", "created_at"]
    list_filter = ["source", "tenant"]
    list_select_related = ["tenant", "created_by"]
    search_fields = ["tenant__slug", "note"]


@admin.register(RoutingOutcome)
class RoutingOutcomeAdmin(ReadOnlyAdmin):
    list_display = [
        "tenant",
        "model_key",
        "success",
        "latency_ms",
        "cost",
        "quality_score",
        "source",
        "created_at",
    ]
    list_filter = ["success", "source", "tenant"]
    list_select_related = ["tenant"]
    search_fields = ["model_key", "request_id", "tenant__slug"]
    date_hierarchy = "created_at"
    cost = usd_column("cost_usd", "cost")


@admin.register(CacheEntry)
class CacheEntryAdmin(admin.ModelAdmin):
    """Semantic cache entries: looked at and deleted here, written only by the gateway."""

    list_display = [
        "tenant",
        "model",
        "provider",
        "short_prompt",
        "hits",
        "created_at",
        "expires_at",
    ]
    list_filter = ["embedder", "tenant"]
    list_select_related = ["tenant"]
    search_fields = ["prompt", "model", "tenant__slug"]
    date_hierarchy = "created_at"
    fields = readonly_fields = (
        "tenant",
        "partition",
        "model",
        "provider",
        "embedder",
        "prompt",
        "response",
        "prompt_tokens",
        "completion_tokens",
        "cost_usd",
        "hits",
        "last_hit_at",
        "created_at",
        "expires_at",
    )

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(description="prompt")
    def short_prompt(self, obj: CacheEntry) -> str:
        return obj.prompt if len(obj.prompt) <= 80 else obj.prompt[:79] + "…"


@admin.register(WeightOptimization)
class WeightOptimizationAdmin(ReadOnlyAdmin):
    """The weight optimizer's runs (weekly and POST /router/optimize); applied and reverted
    through the API, which goes through the policy and its history."""

    list_display = ["id", "tenant", "trigger", "method", "goal", "status", "weights_after",
                    "created_at"]  # fmt: skip
    list_filter = ["status", "method", "trigger", "tenant"]
    list_select_related = ["tenant"]
    search_fields = ["tenant__slug", "message"]
    date_hierarchy = "created_at"
    fields = readonly_fields = (
        "tenant",
        "trigger",
        "method",
        "goal",
        "status",
        "message",
        "scheduled_for",
        "window_start",
        "window_end",
        "objective_before",
        "weights_before",
        "policy_version_before",
        "weights_after",
        "policy_version_after",
        "figures",
        "evidence",
        "created_by",
        "created_at",
        "applied_by",
        "applied_at",
        "reverted_by",
        "reverted_at",
    )


@admin.register(OutcomeMemory)
class OutcomeMemoryAdmin(admin.ModelAdmin):
    """The learning router's outcome memory: read and deleted here, written by imports and
    feedback (a deleted row leaves the tenant's predictor at its next refit)."""

    list_display = ["tenant", "model_key", "quality", "success", "source", "created_at"]
    list_filter = ["source", "tenant"]
    list_select_related = ["tenant"]
    search_fields = ["model_key", "external_id", "request_id", "tenant__slug"]
    date_hierarchy = "created_at"
    fields = readonly_fields = (
        "tenant",
        "model_key",
        "quality",
        "success",
        "cost_usd",
        "latency_ms",
        "source",
        "external_id",
        "request_id",
        "prompt_hash",
        "embedder",
        "prompt",
        "created_at",
    )

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(OutcomeImport)
class OutcomeImportAdmin(admin.ModelAdmin):
    list_display = ["id", "tenant", "status", "format", "processed", "total", "imported",
                    "duplicates", "failed", "created_at"]  # fmt: skip
    list_filter = ["status", "tenant"]
    list_select_related = ["tenant"]
    fields = readonly_fields = (
        "tenant",
        "status",
        "format",
        "total",
        "processed",
        "imported",
        "duplicates",
        "failed",
        "errors",
        "message",
        "created_by",
        "created_at",
        "started_at",
        "finished_at",
    )

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
