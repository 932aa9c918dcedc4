"""Money as TikTok sends it: decimal strings in major units (`"199.00"`), never floats.

A shop sells in its market's currency, and its finance amounts carry that currency's precision: whole units for
the ISO 4217 zero-decimal currencies (`"25000"` VND), cents for the rest. The table is the sandbox's own, so the
sandbox depends on nothing of the hub; it matches ISO 4217, which the hub also follows, so no amount ever carries
more decimals than the hub accepts for its currency.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

CENT = Decimal("0.01")
UNIT = Decimal(1)

# ISO 4217 currencies without minor units that a TikTok Shop market or a seller's payout could use. IDR has two
# decimals in ISO 4217 (and in the hub), so it is not here even though prices are quoted in whole rupiah.
ZERO_DECIMAL_CURRENCIES = frozenset({"VND", "JPY", "KRW", "CLP"})

# Every shop sells in its market's currency (a region code as Get Active Shops gives it).
MARKET_CURRENCIES = {
    "US": "USD",
    "GB": "GBP",
    "ID": "IDR",
    "MY": "MYR",
    "TH": "THB",
    "VN": "VND",
    "PH": "PHP",
    "SG": "SGD",
    "JP": "JPY",
    "MX": "MXN",
    "BR": "BRL",
    "DE": "EUR",
    "FR": "EUR",
    "IT": "EUR",
    "ES": "EUR",
    "IE": "EUR",
}


class UnknownMarket(ValueError):
    """A region where TikTok Shop does not sell (the sandbox's list of markets)."""


def market_currency(region: str) -> str:
    """The currency a shop in this region sells and settles in."""
    currency = MARKET_CURRENCIES.get(region)
    if currency is None:
        raise UnknownMarket(f"region {region!r} is not a TikTok Shop market ({', '.join(sorted(MARKET_CURRENCIES))})")
    return currency


def quantum(currency: str | None) -> Decimal:
    """The smallest amount of the currency: 1 for a zero-decimal currency, 0.01 otherwise (and when unknown)."""
    return UNIT if currency in ZERO_DECIMAL_CURRENCIES else CENT


def in_precision(amount: Decimal, currency: str | None) -> Decimal:
    """The amount rounded to the currency's precision (half to even, as Decimal rounds by default)."""
    return amount.quantize(quantum(currency))


def has_precision(amount: Decimal, currency: str | None) -> bool:
    """Whether the amount already fits the currency (no decimals a payout could not carry)."""
    return amount == amount.quantize(quantum(currency))


def _decimal(value: object) -> Decimal | None:
    """A finite decimal from a string or an int (never a bool or a float), or None."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        return None
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        return None
    return amount if amount.is_finite() else None


def parse_amount(value: object) -> Decimal | None:
    """A non-negative decimal with at most two places, or None if the value is not one."""
    amount = _decimal(value)
    if amount is None or amount < 0 or amount != amount.quantize(CENT):
        return None
    return amount


def parse_signed(value: object, currency: str | None) -> Decimal | None:
    """A decimal string of either sign in the currency's precision (an adjustment or an injected error), or None."""
    amount = _decimal(value)
    if amount is None or not has_precision(amount, currency):
        return None
    return amount


def fmt(amount: Decimal, currency: str | None = None) -> str:
    """The amount as TikTok writes it, in the currency's precision (cents when no currency is given). A zero is
    never written with a minus sign."""
    value = in_precision(amount, currency)
    return str(value.copy_abs() if value.is_zero() else value)
