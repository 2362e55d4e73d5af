"""How money (and other Decimals) is written out, in one place: plainly for machines (no
0E-10), and for people with the digits that matter (a $0.0000001 cap is not "$0.000000")."""

from __future__ import annotations

from decimal import Decimal


def plain_decimal(value: Decimal) -> str:
    """3.8000000000 -> "3.8", 0E-10 -> "0", 1E+2 -> "100": for JSON and CSV."""
    return f"{value.normalize():f}"


CENT = Decimal("0.01")


def usd(value: Decimal | float | int | None, *, significant: int = 4) -> str:
    """Money for people, never rounded away: cents from a dollar up ("$1,234.57"), below a
    dollar enough decimals for ``significant`` digits ("$0.0134", "$0.0000001")."""
    if value is None:
        return "n/a"
    amount = value if isinstance(value, Decimal) else Decimal(str(value))
    sign = "-" if amount < 0 else ""
    amount = abs(amount)
    if amount == 0 or amount >= 1:
        return f"{sign}${amount.quantize(CENT):,}"
    places = max(2, significant - 1 - amount.adjusted())
    whole, _, fraction = f"{amount.quantize(Decimal(1).scaleb(-places)):f}".partition(".")
    return f"{sign}${whole}.{fraction.rstrip('0').ljust(2, '0')}"
