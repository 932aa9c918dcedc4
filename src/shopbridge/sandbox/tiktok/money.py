"""Money as TikTok sends it: decimal strings in major units (`"199.00"`), never floats."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

CENT = Decimal("0.01")


def parse_amount(value: object) -> Decimal | None:
    """A non-negative decimal with at most two places, or None if the value is not one."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        return None
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        return None
    if not amount.is_finite() or amount < 0 or amount != amount.quantize(CENT):
        return None
    return amount


def fmt(amount: Decimal) -> str:
    return str(amount.quantize(CENT))
