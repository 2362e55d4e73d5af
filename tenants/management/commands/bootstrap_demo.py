from __future__ import annotations

import secrets
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction

from tenants.models import ApiKey, Role, Tenant
from tenants.services import api_key_create, membership_add, tenant_create


class Command(BaseCommand):
    help = (
        "Create the demo tenant, a superuser and a demo API key (idempotent; secrets print once)."
    )

    def handle(self, *args: Any, **opts: Any) -> None:
        out = self.stdout.write
        url = settings.AURA_PUBLIC_URL
        user_model = get_user_model()
        with transaction.atomic():
            tenant = Tenant.objects.filter(slug="demo").first()
            if tenant is None:
                tenant = tenant_create(
                    name="Demo", slug="demo", contact_emails=["admin@example.com"]
                )
                # The demo shows the response cache; a new tenant's default is off.
                from routing.policy.services import policy_update

                policy_update(tenant=tenant, changes={"cache": {"mode": "semantic"}}, source="demo")
            admin = user_model.objects.filter(username="admin").first()
            password = None
            if admin is None:
                password = secrets.token_urlsafe(12)
                admin = user_model.objects.create_superuser("admin", "admin@example.com", password)
            membership_add(tenant=tenant, user=admin, role=Role.OWNER)
            plaintext = None
            if not ApiKey.objects.filter(tenant=tenant, name="demo").exists():
                _, plaintext = api_key_create(tenant=tenant, name="demo", can_manage=True)

        from routing.catalog.local import describe, local_endpoints_ensure
        from routing.catalog.services import catalog_load
        from routing.models import CatalogModel

        if not CatalogModel.objects.exists():
            counts = catalog_load()
            loaded = f"loaded the model catalog ({counts.get('models_created', 0)} models)"
        else:
            loaded = "model catalog present (refresh: manage.py load_catalog)"
        # Every start, not only the first: an older data folder gets its local endpoints too.
        local = [
            describe(s) for s in local_endpoints_ensure() if s.created or not s.endpoint.enabled
        ]
        out("")
        out("=" * 72)
        out(f"  AURA is starting at {url}")
        out(f"  console:   {url}/   user: admin (owner of the demo tenant)")
        out(f"  operators: {url}/admin/   same user")
        if password:
            out(f"  password:  {password}   (shown once; reset: manage.py changepassword admin)")
        else:
            out("  password:  set at first start (reset: manage.py changepassword admin)")
        if plaintext:
            out(f"  demo key:  {plaintext}   (shown once; it is not stored)")
            out(f"  try:       curl -H 'Authorization: Bearer {plaintext}' {url}/api/v1/keys")
        else:
            out(
                "  demo key:  created at first start; make another: manage.py create_api_key demo mykey"
            )
        out(f"  health:    {url}/healthz   {url}/readyz")
        out(f"  catalog:   {loaded}; add provider keys: manage.py add_credential")
        for line in local:
            out(f"  local:     {line}")
        out("=" * 72)
        out("")
