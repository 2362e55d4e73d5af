"""The semantic cache's beat task: a thin wrapper over ``semantic_expire``.

Scheduled every 10 minutes by migration ``routing/0010_cache_entry`` (a django-celery-beat
row, editable in the admin). Deletes are idempotent, so a double-fired beat does no harm.
"""

from __future__ import annotations

from aura.celery import app
from routing.cache.semantic import semantic_expire


# Bound to AURA's app, not @shared_task (see billing/tasks.py for why).
@app.task(name="routing.cache.tasks.expire_semantic_cache")
def expire_semantic_cache() -> dict[str, int]:
    return semantic_expire()
