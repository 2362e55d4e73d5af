"""Changelist columns shared by the apps' admins."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib import admin

from aura.money import usd


def usd_column(field: str, description: str) -> Callable[[Any, Any], str]:
    """A sortable column showing ``field`` as money for people ($0.0000001, not 0E-10)."""

    @admin.display(description=description, ordering=field)
    def column(model_admin: Any, obj: Any) -> str:
        return usd(getattr(obj, field))

    column.__name__ = f"{field}_shown"
    return column
