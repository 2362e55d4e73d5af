from __future__ import annotations

from django.apps import AppConfig


class MonitoringConfig(AppConfig):
    name = "monitoring"
    verbose_name = "Monitoring"

    def ready(self) -> None:
        # Every process that loads Django (web, Celery worker) builds the instruments and
        # connects the Celery task signals.
        from monitoring import metrics  # noqa: F401
