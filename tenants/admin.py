from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone

from tenants.auth import api_keys_changed
from tenants.models import ApiKey, Membership, Tenant
from tenants.services import api_key_material, api_key_plaintext, tenant_set_status


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    autocomplete_fields = ["user"]
    fields = ["user", "role", "weekly_report_opt_out", "created_at"]
    readonly_fields = ["created_at"]


@admin.register(Tenant)
class TenantAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "status", "timezone", "created_at"]
    list_filter = ["status"]
    search_fields = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}
    inlines = [MembershipInline]
    actions = ["suspend", "reactivate"]

    def save_model(self, request: HttpRequest, obj: Tenant, form: Any, change: bool) -> None:
        super().save_model(request, obj, form, change)
        if change and "status" in form.changed_data:
            # Its keys' cached "tenant active" must not outlive the change anywhere.
            api_keys_changed(tenant_ids=[obj.pk])

    @admin.action(description="Suspend selected tenants (their API keys stop working)")
    def suspend(self, request: HttpRequest, queryset: QuerySet[Tenant]) -> None:
        n = sum(tenant_set_status(tenant=t, status=Tenant.Status.SUSPENDED) for t in queryset)
        self.message_user(request, f"Suspended {n} tenant(s).")

    @admin.action(description="Reactivate selected tenants")
    def reactivate(self, request: HttpRequest, queryset: QuerySet[Tenant]) -> None:
        n = sum(tenant_set_status(tenant=t, status=Tenant.Status.ACTIVE) for t in queryset)
        self.message_user(request, f"Reactivated {n} tenant(s).")


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ["user", "tenant", "role", "created_at"]
    list_filter = ["role", "tenant"]
    search_fields = ["user__username", "user__email", "tenant__slug"]
    autocomplete_fields = ["user", "tenant"]


class ApiKeyAdminForm(forms.ModelForm):
    class Meta:
        model = ApiKey
        fields = ["tenant", "name", "can_manage", "priority", "expires_at"]

    def clean_expires_at(self) -> Any:
        value = self.cleaned_data.get("expires_at")
        # Same rule as api_key_create; an unchanged past expiry (an expired key) may stay.
        if value is not None and "expires_at" in self.changed_data and value <= timezone.now():
            raise forms.ValidationError("expires_at must be in the future")
        return value


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    form = ApiKeyAdminForm
    list_display = [
        "name",
        "tenant",
        "masked",
        "status",
        "can_manage",
        "priority",
        "created_at",
        "last_used_at",
    ]
    list_filter = ["tenant", "can_manage", "priority"]
    search_fields = ["name", "prefix", "tenant__slug"]
    autocomplete_fields = ["tenant"]
    readonly_fields = ["masked", "created_by", "created_at", "revoked_at", "last_used_at"]
    fields = ["tenant", "name", "can_manage", "priority", "expires_at", *readonly_fields]
    actions = ["revoke_keys"]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        if obj is not None:  # the tenant of an existing key never changes
            return ["tenant", *self.readonly_fields]
        return self.readonly_fields

    def save_model(self, request: HttpRequest, obj: ApiKey, form: Any, change: bool) -> None:
        if change:
            super().save_model(request, obj, form, change)
            api_keys_changed(prefixes=[obj.prefix])
            return
        prefix, secret, secret_hash = api_key_material()
        obj.prefix, obj.secret_hash = prefix, secret_hash
        obj.created_by = request.user if request.user.is_authenticated else None
        super().save_model(request, obj, form, change)
        messages.warning(
            request,
            f"API key created: {api_key_plaintext(prefix, secret)} — copy it now, "
            "it will not be shown again.",
        )

    # Deleting is the other way out: forget the key here at once, as revoking does.
    def delete_model(self, request: HttpRequest, obj: ApiKey) -> None:
        super().delete_model(request, obj)
        api_keys_changed(prefixes=[obj.prefix])

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[ApiKey]) -> None:
        prefixes = list(queryset.values_list("prefix", flat=True))
        super().delete_queryset(request, queryset)
        api_keys_changed(prefixes=prefixes)

    @admin.action(description="Revoke selected API keys")
    def revoke_keys(self, request: HttpRequest, queryset: QuerySet[ApiKey]) -> None:
        prefixes = list(queryset.filter(revoked_at__isnull=True).values_list("prefix", flat=True))
        queryset.filter(revoked_at__isnull=True).update(revoked_at=timezone.now())
        api_keys_changed(prefixes=prefixes)
        self.message_user(request, f"Revoked {len(prefixes)} key(s).")
