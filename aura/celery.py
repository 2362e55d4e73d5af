"""The Celery app: broker from settings (Redis by default), tasks autodiscovered per app."""

from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "aura.settings")

app = Celery("aura")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
app.autodiscover_tasks(["routing.cache", "routing.learning"])  # sub-packages, not apps
