"""The console's request context: which tenant a signed-in person is looking at, and as what.

Every console page is wrapped in ``console_page``: a signed-out visitor goes to the sign-in
page; a person is shown the tenant chosen with the switcher (kept in the session), else
their first membership; a tenant they do not belong to does not exist for them (404, as in
the API). ``console_object`` fetches a row of the current tenant or raises 404, so an id of
another tenant's row is indistinguishable from a missing one.

Roles: ``viewer`` reads; ``member`` also uses the playground; ``admin``/``owner`` change
configuration. A page says the least role for each method; a weaker role gets 403 on
writes and sees no forms.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from django.contrib.auth.views import redirect_to_login
from django.db import models
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render

from tenants.models import ADMIN_ROLES, Membership, Role, Tenant

SESSION_KEY = "aura_console_tenant"
RANK = {Role.VIEWER: 0, Role.MEMBER: 1, Role.ADMIN: 2, Role.OWNER: 3}
M = TypeVar("M", bound=models.Model)


@dataclass(frozen=True, slots=True)
class Console:
    tenant: Tenant
    role: str
    memberships: tuple[Membership, ...]

    @property
    def can_admin(self) -> bool:
        return self.role in ADMIN_ROLES

    @property
    def can_use(self) -> bool:
        return RANK[Role(self.role)] >= RANK[Role.MEMBER]

    def allows(self, role: str) -> bool:
        return RANK[Role(self.role)] >= RANK[Role(role)]


def console_for(request: HttpRequest) -> Console | None:
    """The signed-in user's current tenant and role; None when they belong to none."""
    user_id: Any = request.user.pk
    memberships = tuple(
        Membership.objects.filter(user_id=user_id, tenant__status=Tenant.Status.ACTIVE)
        .select_related("tenant")
        .order_by("tenant__name", "tenant_id")
    )
    if not memberships:
        return None
    wanted = request.session.get(SESSION_KEY)
    current = next((m for m in memberships if m.tenant.slug == wanted), memberships[0])
    return Console(tenant=current.tenant, role=current.role, memberships=memberships)


def console_switch(request: HttpRequest, slug: str) -> Console:
    """Make ``slug`` the current tenant; 404 unless the user is a member."""
    user_id: Any = request.user.pk
    if not Membership.objects.filter(
        user_id=user_id, tenant__slug=slug, tenant__status=Tenant.Status.ACTIVE
    ).exists():
        raise Http404
    request.session[SESSION_KEY] = slug
    console = console_for(request)
    assert console is not None
    return console


def console_page(
    *, write_role: str = Role.ADMIN, read_role: str = Role.VIEWER
) -> Callable[[Callable[..., HttpResponse]], Callable[..., HttpResponse]]:
    """Sign-in required; ``request.console`` set; GET/HEAD need ``read_role``, other
    methods ``write_role`` (403 page otherwise)."""

    def wrap(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @functools.wraps(view)
        def inner(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if not request.user.is_authenticated:
                return redirect_to_login(request.get_full_path())
            console = console_for(request)
            if console is None:
                return render(request, "console/no_tenant.html", status=403)
            request.console = console  # type: ignore[attr-defined]
            needed = read_role if request.method in ("GET", "HEAD") else write_role
            if not console.allows(needed):
                return render(
                    request,
                    "console/forbidden.html",
                    {"console": console, "needed": Role(needed).label},
                    status=403,
                )
            return view(request, *args, **kwargs)

        return inner

    return wrap


def console_object(request: HttpRequest, model: type[M], **lookup: Any) -> M:
    """A row of the current tenant, or 404."""
    console: Console = request.console  # type: ignore[attr-defined]
    obj = model._default_manager.filter(tenant=console.tenant, **lookup).first()
    if obj is None:
        raise Http404
    return obj
