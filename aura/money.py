"""How money (and other Decimals) is written out: one place, so no figure shows as 0E-10."""

from __future__ import annotations

from decimal import Decimal


def plain_decimal(value: Decimal) -> str:
    """3.8000000000 -> "3.8", 0E-10 -> "0", 1E+2 -> "100": for JSON and CSV."""
    return f"{value.normalize():f}"
