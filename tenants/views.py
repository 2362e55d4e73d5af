"""Console pages of the tenants app: sign-in and password reset, the tenant switcher, and
API keys (create: the plaintext shown once; revoke)."""

from __future__ import annotations

from datetime import datetime, time
from typing import Any
from zoneinfo import ZoneInfo

from django import forms
from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed
from django.shortcuts import redirect, render
from django.urls import reverse_lazy
from django.utils import timezone
from django.views.decorators.http import require_POST

from tenants.console import Console, console_object, console_page, console_switch
from tenants.models import ApiKey, Priority, Role
from tenants.services import api_key_create, api_key_revoke

# --------------------------------------------------------------------------- sign-in


class SignInView(auth_views.LoginView):
    template_name = "console/login.html"
    redirect_authenticated_user = True


class PasswordResetView(auth_views.PasswordResetView):
    template_name = "console/password_reset.html"
    email_template_name = "emails/password-reset-body.txt"
    html_email_template_name = "emails/password-reset-body.html"
    subject_template_name = "emails/password-reset-subject.txt"
    success_url = reverse_lazy("console-password-reset-sent")


class PasswordResetSentView(auth_views.PasswordResetDoneView):
    template_name = "console/password_reset_sent.html"


class PasswordResetConfirmView(auth_views.PasswordResetConfirmView):
    template_name = "console/password_reset_confirm.html"
    success_url = reverse_lazy("console-password-reset-complete")


class PasswordResetCompleteView(auth_views.PasswordResetCompleteView):
    template_name = "console/password_reset_complete.html"


class SignOutView(auth_views.LogoutView):  # POST only (Django >= 5)
    next_page = "console-sign-in"


@require_POST
@console_page(write_role=Role.VIEWER)
def switch_tenant(request: HttpRequest) -> HttpResponse:
    console = console_switch(request, str(request.POST.get("tenant", "")))
    messages.info(request, f"Now showing {console.tenant.name}.")
    return redirect(_safe_next(request) or "console-overview")


def _safe_next(request: HttpRequest) -> str | None:
    nxt = request.POST.get("next") or ""
    return nxt if nxt.startswith("/") and not nxt.startswith("//") else None


# --------------------------------------------------------------------------- keys


class KeyForm(forms.Form):
    name = forms.CharField(max_length=100, strip=True)
    expires_on = forms.DateField(
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}),
        help_text="Optional: the key stops working at the end of this day (tenant time).",
    )
    can_manage = forms.BooleanField(
        required=False,
        label="Management API",
        help_text="Also lets the key call /api/v1 as an admin (for automation).",
    )
    priority = forms.ChoiceField(choices=Priority.choices, initial=Priority.NORMAL)

    def __init__(self, *args: Any, tz: str = "UTC", **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.tz = tz

    def clean_expires_on(self) -> Any:
        day = self.cleaned_data.get("expires_on")
        if day is not None and day < timezone.now().astimezone(ZoneInfo(self.tz)).date():
            raise forms.ValidationError("The expiry date is in the past.")
        return day

    def expires_at(self) -> datetime | None:
        day = self.cleaned_data.get("expires_on")
        if day is None:
            return None
        return datetime.combine(day, time.max, tzinfo=ZoneInfo(self.tz))


def _key_rows(console: Console) -> list[dict[str, Any]]:
    now = timezone.now()
    rows: list[dict[str, Any]] = []
    for key in ApiKey.objects.filter(tenant=console.tenant).select_related("created_by"):
        if key.revoked_at:
            state = "revoked"
        elif key.expires_at and key.expires_at <= now:
            state = "expired"
        else:
            state = "active"
        rows.append({"key": key, "state": state})
    rows.sort(key=lambda r: (r["state"] != "active", -r["key"].created_at.timestamp()))
    return rows


@console_page()
def keys_page(request: HttpRequest) -> HttpResponse:
    console: Console = request.console  # type: ignore[attr-defined]
    created = None
    form = KeyForm(tz=console.tenant.timezone)
    status = 200
    if request.method == "POST":
        form = KeyForm(request.POST, tz=console.tenant.timezone)
        if form.is_valid():
            key, plaintext = api_key_create(
                tenant=console.tenant,
                name=form.cleaned_data["name"],
                created_by=request.user,
                expires_at=form.expires_at(),
                can_manage=form.cleaned_data["can_manage"],
                priority=form.cleaned_data["priority"],
            )
            # Shown in this response only: never stored, never shown again.
            created = {"key": key, "plaintext": plaintext}
            form = KeyForm(tz=console.tenant.timezone)
        else:
            status = 400
    response = render(
        request,
        "console/keys.html",
        {
            "console": console,
            "nav": "keys",
            "rows": _key_rows(console),
            "form": form,
            "created": created,
        },
        status=status,
    )
    if created is not None:
        response["Cache-Control"] = "no-store"
    return response


@console_page()
def key_revoke(request: HttpRequest, key_id: int) -> HttpResponse:
    key = console_object(request, ApiKey, pk=key_id)  # another tenant's key: 404 first
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    if api_key_revoke(key=key):
        messages.success(request, f"Key “{key.name}” ({key.masked}) is revoked.")
    else:
        messages.info(request, f"Key “{key.name}” was already revoked.")
    return redirect("console-keys")


# --------------------------------------------------------------------------- members


@console_page()
def members_page(request: HttpRequest) -> HttpResponse:
    """GET /members/ — who is in the tenant; admins invite by email (POST)."""
    from aura.errors import DomainError
    from tenants.models import Membership
    from tenants.services import membership_invite

    console: Console = request.console  # type: ignore[attr-defined]
    errors: dict[str, str] = {}
    values = {"email": "", "role": Role.MEMBER}
    status = 200
    if request.method == "POST":
        values = {
            "email": request.POST.get("email", "").strip(),
            "role": request.POST.get("role", ""),
        }
        try:
            forms.EmailField().clean(values["email"])
        except forms.ValidationError:
            errors["email"] = "Enter a valid email address."
        if values["role"] == Role.OWNER and console.role != Role.OWNER:
            errors["role"] = "Only an owner can invite owners."
        if not errors:
            try:
                membership, _ = membership_invite(
                    tenant=console.tenant,
                    email=values["email"],
                    role=str(values["role"]),
                    invited_by=request.user,
                )
            except DomainError as exc:
                errors[exc.param or "email"] = exc.message
            else:
                messages.success(
                    request, f"Invited {values['email']} as {membership.get_role_display()}."
                )
                return redirect("console-members")
        status = 400
    members = Membership.objects.filter(tenant=console.tenant).select_related("user")
    return render(
        request,
        "console/members.html",
        {
            "console": console,
            "nav": "members",
            "members": members.order_by("user__username"),
            "roles": Role.choices,
            "errors": errors,
            "values": values,
        },
        status=status,
    )


@console_page()
def member_action(request: HttpRequest, membership_id: int, action: str) -> HttpResponse:
    """POST /members/<id>/role/ (``role``) or /members/<id>/remove/ (admins)."""
    from aura.errors import DomainError
    from tenants.models import Membership
    from tenants.services import membership_remove, membership_set_role

    console: Console = request.console  # type: ignore[attr-defined]
    membership = console_object(request, Membership, pk=membership_id)
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    name = membership.user.get_username()
    try:
        if action == "remove":
            membership_remove(membership=membership, acting_role=console.role)
            messages.success(request, f"{name} is no longer a member.")
        else:
            role = str(request.POST.get("role", ""))
            membership_set_role(membership=membership, role=role, acting_role=console.role)
            messages.success(request, f"{name} is now {membership.get_role_display()}.")
    except DomainError as exc:
        messages.error(request, exc.message)
    return redirect("console-members")
