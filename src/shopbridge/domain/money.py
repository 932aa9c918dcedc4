"""Money: ``Decimal`` with an ISO 4217 currency in code, integer minor units in storage. Never float."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation

# ISO 4217 currencies whose minor unit is not two digits; every other valid code has two.
_MINOR_DIGITS = {
    "BHD": 3, "BIF": 0, "CLP": 0, "DJF": 0, "GNF": 0, "IQD": 3, "ISK": 0, "JOD": 3, "JPY": 0, "KMF": 0,
    "KRW": 0, "KWD": 3, "LYD": 3, "OMR": 3, "PYG": 0, "RWF": 0, "TND": 3, "UGX": 0, "UYI": 0, "VND": 0,
    "VUV": 0, "XAF": 0, "XOF": 0, "XPF": 0,
}  # fmt: skip


class CurrencyMismatch(ValueError):
    """Two amounts in different currencies met; the sync that met them must stop."""


class InvalidAmount(ValueError):
    """An amount that is not a finite decimal number in its currency's precision."""


def minor_digits(currency: str) -> int:
    if len(currency) != 3 or not currency.isalpha() or not currency.isupper():
        raise InvalidAmount(f"currency {currency!r} is not an ISO 4217 code")
    return _MINOR_DIGITS.get(currency, 2)


@dataclass(frozen=True, slots=True)
class Money:
    amount: Decimal
    currency: str

    def __post_init__(self) -> None:
        if isinstance(self.amount, float) or not isinstance(self.amount, Decimal):
            raise InvalidAmount(f"amount must be a Decimal, got {type(self.amount).__name__}")
        if not self.amount.is_finite():
            raise InvalidAmount(f"amount {self.amount} is not finite")
        minor_digits(self.currency)

    @classmethod
    def parse(cls, amount: str | int | Decimal, currency: str) -> Money:
        """Parse a decimal string such as TikTok's ``"12.50"``; rejects more precision than the currency has."""
        try:
            value = Decimal(amount) if not isinstance(amount, Decimal) else amount
        except InvalidOperation:
            raise InvalidAmount(f"amount {amount!r} is not a decimal number") from None
        money = cls(value, currency)
        try:
            exact = money.amount == money.amount.quantize(money._quantum())
        except InvalidOperation:  # too many digits to hold at all (e.g. "9e99")
            raise InvalidAmount(f"amount {amount!r} is too large") from None
        if not exact:
            raise InvalidAmount(f"amount {amount!r} has more decimals than {currency} allows")
        return money

    @classmethod
    def from_minor(cls, minor: int, currency: str) -> Money:
        return cls(Decimal(minor).scaleb(-minor_digits(currency)), currency)

    def to_minor(self) -> int:
        return int(self.amount.quantize(self._quantum(), rounding=ROUND_HALF_EVEN).scaleb(self._digits()))

    def _digits(self) -> int:
        return minor_digits(self.currency)

    def _quantum(self) -> Decimal:
        return Decimal(1).scaleb(-self._digits())

    def _same(self, other: Money) -> None:
        if other.currency != self.currency:
            raise CurrencyMismatch(f"cannot combine {self.currency} with {other.currency}")

    def __add__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.amount + other.amount, self.currency)

    def __sub__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.amount - other.amount, self.currency)

    def __mul__(self, factor: int) -> Money:
        return Money(self.amount * factor, self.currency)

    def __str__(self) -> str:
        return f"{self.amount.quantize(self._quantum())} {self.currency}"
