"""Policy API: the tenant's routing policy (JSON, YAML export/import) and its weights.

Reads need the viewer role, writes admin.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.http import HttpResponse
from rest_framework import parsers, serializers
from rest_framework.pagination import PageNumberPagination
from rest_framework.request import Request
from rest_framework.response import Response

from aura.errors import DomainError
from aura.parsers import JSONParser, read_limited
from routing.models import RoutingPolicy, WeightHistory
from routing.policy import document
from routing.policy.document import PolicyError
from routing.policy.services import (
    policy_get_or_create,
    policy_preview,
    policy_state,
    policy_update,
)
from tenants.models import Role
from tenants.scoping import TenantScopedAPIView

_POLICY_READ_ONLY = frozenset(
    {"allow_private_base_urls", "effective_weights", "version", "updated_at", "updated_by"}
)


_TRUE = frozenset({"1", "true", "yes", "on"})


class YamlParser(parsers.BaseParser):
    """A raw YAML body, handed to the view as text (parsed later with safe_load)."""

    media_type = "application/yaml"

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        encoding = (parser_context or {}).get("encoding") or "utf-8"
        try:
            return read_limited(stream).decode(encoding)
        except (UnicodeDecodeError, LookupError):
            raise PolicyError(f"The YAML body is not valid {encoding}.", param="yaml") from None


class TextYamlParser(YamlParser):
    media_type = "text/yaml"


class XYamlParser(YamlParser):
    media_type = "application/x-yaml"


def _acting_user(view: TenantScopedAPIView, request: Request) -> Any:
    # Keys have no Django user; only session callers are recorded as authors.
    return request.user if not view.ctx.via_key else None


def json_object(data: Any, what: str = "The request body") -> dict[str, Any]:
    if not isinstance(data, Mapping):
        raise DomainError(f"{what} must be a JSON object.")
    return dict(data)


def policy_body(policy: RoutingPolicy) -> dict[str, Any]:
    state = policy_state(policy)
    return {
        **{k: state[k] for k in document.EDITABLE_FIELDS},
        "effective_weights": document.effective_weights(state),
        "allow_private_base_urls": policy.allow_private_base_urls,
        "version": policy.version,
        "updated_at": policy.updated_at,
        "updated_by": policy.updated_by.get_username() if policy.updated_by else None,
    }


class PolicyView(TenantScopedAPIView):
    """GET/PUT/PATCH /api/v1/router/policy. PUT replaces (absent keys -> defaults)."""

    required_roles = {"GET": Role.VIEWER, "PUT": Role.ADMIN, "PATCH": Role.ADMIN}

    def get(self, request: Request) -> Response:
        return Response(policy_body(policy_get_or_create(tenant=self.tenant)))

    def _write(self, request: Request, *, replace: bool) -> Response:
        data = json_object(request.data)
        changes = document.clean_policy(
            {k: v for k, v in data.items() if k not in _POLICY_READ_ONLY}
        )
        policy = policy_update(
            tenant=self.tenant, changes=changes, replace=replace, user=_acting_user(self, request)
        )
        return Response(policy_body(policy))

    def put(self, request: Request) -> Response:
        return self._write(request, replace=True)

    def patch(self, request: Request) -> Response:
        return self._write(request, replace=False)


class PolicyExportView(TenantScopedAPIView):
    """GET /api/v1/router/policy/export -> this tenant's policy as a YAML document."""

    def get(self, request: Request) -> HttpResponse:
        state = policy_state(policy_get_or_create(tenant=self.tenant))
        text = document.dump_document({self.tenant.slug: document.non_default_entry(state)})
        response = HttpResponse(text, content_type="application/yaml; charset=utf-8")
        response["Content-Disposition"] = f'inline; filename="{self.tenant.slug}-policy.yaml"'
        return response


class PolicyImportView(TenantScopedAPIView):
    """POST /api/v1/router/policy/import (YAML body or {"yaml": "..."}; ?dry_run=1)."""

    required_role = Role.ADMIN
    parser_classes = [JSONParser, YamlParser, TextYamlParser, XYamlParser]

    def post(self, request: Request) -> Response:
        data = request.data
        if isinstance(data, Mapping) and isinstance(data.get("yaml"), str):
            text = data["yaml"]
        elif isinstance(data, str):
            text = data
        else:
            raise PolicyError(
                "Send the policy document as a YAML body (Content-Type: application/yaml) "
                'or as JSON {"yaml": "..."}.',
                param="yaml",
            )
        slug = self.tenant.slug
        entries = {slug: document.own_entry(text, slug)}
        prefix = f"tenants.{slug}."
        if request.query_params.get("dry_run", "").lower() in _TRUE:
            state = policy_preview(
                tenant=self.tenant, changes=entries[slug], replace=True, prefix=prefix
            )
            body = {k: state[k] for k in document.EDITABLE_FIELDS}
            body["effective_weights"] = document.effective_weights(state)
            return Response({"dry_run": True, "valid": True, "policy": body})
        policy = policy_update(
            tenant=self.tenant,
            changes=entries[slug],
            replace=True,
            user=_acting_user(self, request),
            source="import",
            prefix=prefix,
        )
        return Response({"dry_run": False, "valid": True, "policy": policy_body(policy)})


def _weights_body(policy: RoutingPolicy) -> dict[str, Any]:
    state = policy_state(policy)
    return {
        "objective": policy.objective,
        "weights": document.effective_weights(state),
        "version": policy.version,
    }


class WeightsView(TenantScopedAPIView):
    """GET/PUT /api/v1/router/weights. PUT {quality, cost, latency[, note]} -> custom."""

    required_roles = {"GET": Role.VIEWER, "PUT": Role.ADMIN}

    def get(self, request: Request) -> Response:
        return Response(_weights_body(policy_get_or_create(tenant=self.tenant)))

    def put(self, request: Request) -> Response:
        data = json_object(request.data)
        note = data.pop("note", "")
        if not isinstance(note, str) or len(note) > 200:
            raise DomainError("note must be a string of at most 200 characters.", param="note")
        raw = data["weights"] if set(data) == {"weights"} else data
        weights = document.clean_weights(raw)
        policy = policy_update(
            tenant=self.tenant,
            changes={"objective": "custom", "weights": weights},
            user=_acting_user(self, request),
            note=note,
        )
        return Response(_weights_body(policy))


class WeightHistoryOutput(serializers.ModelSerializer):
    created_by = serializers.CharField(source="created_by.username", default=None)

    class Meta:
        model = WeightHistory
        fields = ["id", "version", "weights", "source", "note", "created_by", "created_at"]


class WeightHistoryView(TenantScopedAPIView):
    """GET /api/v1/router/weights/history, newest first, paginated."""

    def get(self, request: Request) -> Response:
        qs = self.scoped(WeightHistory).select_related("created_by").order_by("-created_at", "-id")
        paginator = PageNumberPagination()
        page = paginator.paginate_queryset(qs, request, view=self)
        return paginator.get_paginated_response(WeightHistoryOutput(page, many=True).data)
