"""The one way request code reaches tenant-owned data.

``TenantScopedAPIView`` resolves the caller's tenant and role once per request (from the
API key, or from the session user's membership) and hands out querysets only through
``scoped(Model)``, which always filters by that tenant. Objects of other tenants are
therefore indistinguishable from missing ones: 404, never 403.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

from django.db import models
from django.http import Http404
from rest_framework import exceptions
from rest_framework.request import Request
from rest_framework.views import APIView

from tenants.auth import KeyPrincipal
from tenants.models import ADMIN_ROLES, Membership, Role, Tenant, TenantScopedQuerySet

TENANT_HEADER = "X-Aura-Tenant"
M = TypeVar("M", bound=models.Model)

# Roles ordered by power; a view's `required_role` admits that role and stronger ones.
_RANK = {Role.VIEWER: 0, Role.MEMBER: 1, Role.ADMIN: 2, Role.OWNER: 3}


@dataclass(frozen=True, slots=True)
class TenantContext:
    tenant: Tenant
    role: str
    via_key: KeyPrincipal | None = None
    is_operator: bool = False

    @property
    def is_admin(self) -> bool:
        return self.role in ADMIN_ROLES


def tenant_context_for(request: Request) -> TenantContext:
    """Resolve which tenant the caller acts for; 404 when it is not theirs."""
    principal = request.auth if isinstance(request.auth, KeyPrincipal) else None
    if principal is not None:
        if not principal.can_manage:
            raise exceptions.PermissionDenied(
                "This API key may only call the gateway (/v1). "
                "Use a key created with can_manage for the management API."
            )
        tenant = Tenant.objects.get(pk=principal.tenant_id)
        return TenantContext(tenant=tenant, role=Role.ADMIN, via_key=principal)

    user = request.user
    wanted = request.headers.get(TENANT_HEADER) or request.query_params.get("tenant")
    if getattr(user, "is_superuser", False) and wanted:
        # Operators may act inside any tenant, named explicitly.
        named = Tenant.objects.filter(slug=wanted).first()
        if named is None:
            raise Http404
        return TenantContext(tenant=named, role=Role.OWNER, is_operator=True)

    user_id: Any = user.pk
    memberships = Membership.objects.select_related("tenant").filter(user_id=user_id)
    if wanted:
        memberships = memberships.filter(tenant__slug=wanted)
    found = list(memberships[:2])
    if not found:
        if wanted:
            raise Http404
        raise exceptions.PermissionDenied("You are not a member of any tenant.")
    if len(found) > 1:
        raise exceptions.ValidationError(
            {
                TENANT_HEADER: [
                    f"You belong to several tenants: name one in the {TENANT_HEADER} header."
                ]
            }
        )
    membership = found[0]
    if not membership.tenant.is_active:
        raise exceptions.PermissionDenied("This tenant is suspended.")
    return TenantContext(tenant=membership.tenant, role=membership.role)


class TenantScopedAPIView(APIView):
    """Base of every tenant-owned DRF endpoint.

    Subclasses set ``required_role`` (per HTTP method via ``required_roles`` if they differ)
    and read data only through ``self.scoped(Model)`` / ``self.get_scoped_object``.
    """

    required_role: ClassVar[str] = Role.VIEWER
    required_roles: ClassVar[dict[str, str]] = {}
    ctx: TenantContext

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # Refuse the classic bypass: a class-level queryset would skip the tenant filter.
        if getattr(cls, "queryset", None) is not None:
            raise TypeError(f"{cls.__name__}: use self.scoped(Model), not a class-level queryset")

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)
        self.ctx = tenant_context_for(request)
        needed = self.required_roles.get(request.method or "GET", self.required_role)
        if _RANK[Role(self.ctx.role)] < _RANK[Role(needed)]:
            raise exceptions.PermissionDenied(f"This action needs the {needed} role or higher.")

    @property
    def tenant(self) -> Tenant:
        return self.ctx.tenant

    def scoped(self, model: type[M]) -> TenantScopedQuerySet:
        manager: Any = model._default_manager
        return manager.for_tenant(self.ctx.tenant)

    def get_scoped_object(self, model: type[M], **lookup: Any) -> M:
        obj = self.scoped(model).filter(**lookup).first()
        if obj is None:
            raise Http404
        return obj
