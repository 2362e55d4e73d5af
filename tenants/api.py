"""Management API for a tenant's own API keys (and who the caller is)."""

from __future__ import annotations

from typing import Any

from django.db.models import Q
from django.utils import timezone
from rest_framework import exceptions, serializers, status
from rest_framework.pagination import PageNumberPagination
from rest_framework.request import Request
from rest_framework.response import Response

from tenants.models import ApiKey, Membership, Priority, Role
from tenants.scoping import TenantScopedAPIView
from tenants.services import api_key_create, api_key_revoke, api_key_set_priority


class ApiKeyOutput(serializers.ModelSerializer):
    created_by = serializers.CharField(source="created_by.username", default=None)

    class Meta:
        model = ApiKey
        fields = [
            "id",
            "name",
            "prefix",
            "masked",
            "status",
            "can_manage",
            "priority",
            "created_by",
            "created_at",
            "expires_at",
            "revoked_at",
            "last_used_at",
        ]


class ApiKeyCreateInput(serializers.Serializer):
    name = serializers.CharField(max_length=100)
    expires_at = serializers.DateTimeField(required=False, allow_null=True)
    can_manage = serializers.BooleanField(default=False)
    priority = serializers.ChoiceField(choices=Priority.values, default=Priority.NORMAL)


class ApiKeyUpdateInput(serializers.Serializer):
    priority = serializers.ChoiceField(choices=Priority.values)


KEY_STATUSES = ("active", "expired", "revoked")


def _filter_by_status(qs: Any, wanted: str) -> Any:
    """The same rule as ApiKey.status: revoked wins over expired."""
    if wanted not in KEY_STATUSES:
        raise serializers.ValidationError({"status": [f"must be one of {', '.join(KEY_STATUSES)}"]})
    if wanted == "revoked":
        return qs.filter(revoked_at__isnull=False)
    now = timezone.now()
    qs = qs.filter(revoked_at__isnull=True)
    if wanted == "expired":
        return qs.filter(expires_at__lte=now)
    return qs.filter(Q(expires_at__isnull=True) | Q(expires_at__gt=now))


class TenantView(TenantScopedAPIView):
    """GET /api/v1/tenant — the tenant the caller acts for, and the caller's role."""

    def get(self, request: Request) -> Response:
        t = self.tenant
        return Response(
            {
                "id": t.pk,
                "name": t.name,
                "slug": t.slug,
                "status": t.status,
                "timezone": t.timezone,
                "contact_emails": t.contact_emails,
                "role": self.ctx.role,
                "via_api_key": self.ctx.via_key.prefix if self.ctx.via_key else None,
            }
        )


class PreferencesView(TenantScopedAPIView):
    """GET/PATCH /api/v1/tenant/preferences — the caller's own membership settings."""

    def _membership(self, request: Request) -> Membership:
        if self.ctx.via_key is not None:
            raise exceptions.PermissionDenied("Preferences belong to a user; sign in to set them.")
        membership = self.scoped(Membership).filter(user_id=request.user.pk).first()
        if membership is None:  # an operator acting inside a tenant has no membership
            raise exceptions.PermissionDenied("You are not a member of this tenant.")
        return membership

    def get(self, request: Request) -> Response:
        m = self._membership(request)
        return Response({"weekly_report_opt_out": m.weekly_report_opt_out})

    def patch(self, request: Request) -> Response:
        m = self._membership(request)
        data: Any = request.data
        value = data.get("weekly_report_opt_out") if isinstance(data, dict) else None
        if not isinstance(value, bool):
            raise exceptions.ValidationError({"weekly_report_opt_out": ["Must be true or false."]})
        m.weekly_report_opt_out = value
        m.save(update_fields=["weekly_report_opt_out"])
        return Response({"weekly_report_opt_out": m.weekly_report_opt_out})


class ApiKeyListCreateView(TenantScopedAPIView):
    required_roles = {"GET": Role.ADMIN, "POST": Role.ADMIN}

    def get(self, request: Request) -> Response:
        qs = self.scoped(ApiKey).select_related("created_by").order_by("-created_at", "-id")
        status_filter = request.query_params.get("status")
        if status_filter:
            qs = _filter_by_status(qs, status_filter)
        paginator = PageNumberPagination()
        page = paginator.paginate_queryset(qs, request, view=self)
        return paginator.get_paginated_response(ApiKeyOutput(page, many=True).data)

    def post(self, request: Request) -> Response:
        data = ApiKeyCreateInput(data=request.data)
        data.is_valid(raise_exception=True)
        # Keys have no Django user; only session callers are recorded as creators.
        user: Any = request.user if not self.ctx.via_key else None
        key, plaintext = api_key_create(tenant=self.tenant, created_by=user, **data.validated_data)
        body = dict(ApiKeyOutput(key).data)
        body["key"] = plaintext
        body["warning"] = "Store this key now: it is shown only once."
        return Response(body, status=status.HTTP_201_CREATED)


class ApiKeyDetailView(TenantScopedAPIView):
    required_roles = {"GET": Role.ADMIN, "PATCH": Role.ADMIN, "DELETE": Role.ADMIN}

    def get(self, request: Request, key_id: int) -> Response:
        return Response(ApiKeyOutput(self.get_scoped_object(ApiKey, pk=key_id)).data)

    def patch(self, request: Request, key_id: int) -> Response:
        """Only the priority changes; anything else is refused, naming the field."""
        key = self.get_scoped_object(ApiKey, pk=key_id)
        body: Any = request.data
        writable = set(ApiKeyUpdateInput().fields)
        unknown = sorted(set(body) - writable) if isinstance(body, dict) else []
        if unknown:
            raise serializers.ValidationError(
                {unknown[0]: [f"cannot be changed; writable: {', '.join(sorted(writable))}"]}
            )
        data = ApiKeyUpdateInput(data=body)
        data.is_valid(raise_exception=True)
        api_key_set_priority(key=key, priority=data.validated_data["priority"])
        return Response(ApiKeyOutput(key).data)

    def delete(self, request: Request, key_id: int) -> Response:
        api_key_revoke(key=self.get_scoped_object(ApiKey, pk=key_id))
        return Response(status=status.HTTP_204_NO_CONTENT)


class ApiKeyRevokeView(TenantScopedAPIView):
    required_role = Role.ADMIN

    def post(self, request: Request, key_id: int) -> Response:
        key = self.get_scoped_object(ApiKey, pk=key_id)
        api_key_revoke(key=key)
        return Response(ApiKeyOutput(key).data)
