from __future__ import annotations

import os
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from aura.errors import DomainError
from routing.catalog.local import describe, local_endpoints_ensure
from routing.catalog.services import catalog_load
from routing.models import CatalogModel

USERNAME_VAR = "DJANGO_SUPERUSER_USERNAME"
PASSWORD_VAR = "DJANGO_SUPERUSER_PASSWORD"  # noqa: S105 - the variable's name, not a password
EMAIL_VAR = "DJANGO_SUPERUSER_EMAIL"


class Command(BaseCommand):
    help = (
        "First start of a deployment (docker compose's `bootstrap` service), safe to re-run: "
        f"creates the first operator from {USERNAME_VAR} / {PASSWORD_VAR} / {EMAIL_VAR} if "
        "no superuser exists, and loads the model catalog if it is empty."
    )

    def handle(self, *args: Any, **opts: Any) -> None:
        out = self.stdout.write
        out(self._operator())
        if CatalogModel.objects.exists():
            out("Model catalog present (refresh: manage.py load_catalog)")
        else:
            try:
                counts = catalog_load()
            except DomainError as exc:
                raise CommandError(exc.message) from exc
            out(f"Loaded the model catalog ({counts['models_created']} models)")
        for state in local_endpoints_ensure():
            if state.created or not state.endpoint.enabled:
                out(describe(state))
        out(f"Admin: {settings.AURA_PUBLIC_URL}/admin/")

    def _operator(self) -> str:
        users = get_user_model()
        existing = users.objects.filter(is_superuser=True).order_by("pk").first()
        if existing is not None:
            return f"Operator present ({existing.get_username()}); nothing to create"
        username = os.environ.get(USERNAME_VAR, "").strip()
        password = os.environ.get(PASSWORD_VAR, "")
        if not username or not password:
            raise CommandError(
                f"no superuser exists yet: set {USERNAME_VAR} and {PASSWORD_VAR} (and "
                f"optionally {EMAIL_VAR}) for the first operator, or run manage.py "
                "createsuperuser"
            )
        user = users(username=username, email=os.environ.get(EMAIL_VAR, "").strip())
        try:
            validate_password(password, user)
        except ValidationError as exc:
            raise CommandError(f"{PASSWORD_VAR} is refused: {' '.join(exc.messages)}") from None
        if users.objects.filter(**{users.USERNAME_FIELD: username}).exists():
            raise CommandError(
                f"user {username!r} exists but is not a superuser; make it one in the admin "
                f"or choose another {USERNAME_VAR}"
            )
        users.objects.create_superuser(username, user.email, password)
        return f"Created operator {username} (a superuser) from {USERNAME_VAR}/{PASSWORD_VAR}"
