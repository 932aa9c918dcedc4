from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shopbridge.domain.money import CurrencyMismatch, InvalidAmount, Money


def test_decimal_strings_round_trip_through_minor_units() -> None:
    assert Money.parse("12.50", "USD").to_minor() == 1250
    assert Money.from_minor(1250, "USD") == Money(Decimal("12.50"), "USD")
    assert Money.parse("1500", "JPY").to_minor() == 1500
    assert Money.parse("1.234", "KWD").to_minor() == 1234


def test_more_precision_than_the_currency_has_is_refused() -> None:
    with pytest.raises(InvalidAmount, match="more decimals than USD"):
        Money.parse("1.005", "USD")


def test_an_amount_too_large_to_hold_is_refused_not_crashed_on() -> None:
    with pytest.raises(InvalidAmount, match="too large"):
        Money.parse("9e99", "USD")


@pytest.mark.parametrize("amount", ["abc", "NaN", "Infinity"])
def test_non_numbers_are_refused(amount: str) -> None:
    with pytest.raises(InvalidAmount):
        Money.parse(amount, "USD")


def test_float_is_never_money() -> None:
    with pytest.raises(InvalidAmount, match="Decimal"):
        Money(1.5, "USD")  # type: ignore[arg-type]


def test_unknown_currency_shape_is_refused() -> None:
    with pytest.raises(InvalidAmount, match="ISO 4217"):
        Money.parse("1", "usd")


def test_mixing_currencies_stops() -> None:
    with pytest.raises(CurrencyMismatch, match="USD with IDR"):
        Money.parse("1", "USD") + Money.parse("1", "IDR")


@given(st.integers(min_value=-(10**15), max_value=10**15), st.sampled_from(["USD", "JPY", "KWD", "IDR"]))
def test_minor_units_are_exact(minor: int, currency: str) -> None:
    assert Money.from_minor(minor, currency).to_minor() == minor
