"""Available to sell: never negative, never above the channel's maximum, buffers and protection honoured."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shopbridge.domain.stock import (
    InvalidStockRule,
    StockRule,
    available_to_sell,
    drifted,
    held_back,
    sells_out_before_a_push_lands,
)

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)

rules = st.builds(
    StockRule,
    buffer_units=st.integers(0, 50),
    buffer_percent=st.decimals(0, 99, places=1),
    out_of_stock_threshold=st.integers(0, 20),
    channel_max=st.integers(0, 99_999),
    protect_units=st.integers(0, 50),
    protect_until=st.sampled_from([None, NOW - timedelta(minutes=1), NOW + timedelta(minutes=1)]),
)


@given(st.integers(-1000, 200_000), st.integers(0, 200_000), rules)
def test_never_negative_and_never_above_the_channel_maximum(on_hand: int, reserved: int, rule: StockRule) -> None:
    offered = available_to_sell(on_hand, reserved, rule, NOW)
    assert 0 <= offered <= rule.channel_max
    if offered:
        assert offered <= on_hand - reserved - held_back(on_hand, rule, NOW)
        assert offered > rule.out_of_stock_threshold or offered == rule.channel_max


def test_buffers_add_up_and_the_percent_rounds_up() -> None:
    rule = StockRule(buffer_units=2, buffer_percent=Decimal("5"))
    assert held_back(100, rule, NOW) == 2 + 5
    assert held_back(10, rule, NOW) == 2 + 1, "5% of 10 is half a unit: one unit is held back"
    assert available_to_sell(100, 10, rule, NOW) == 100 - 10 - 7


def test_the_threshold_zeroes_the_last_units() -> None:
    assert available_to_sell(5, 0, StockRule(out_of_stock_threshold=5), NOW) == 0
    assert available_to_sell(6, 0, StockRule(out_of_stock_threshold=5), NOW) == 6


def test_flash_sale_protection_holds_back_until_it_expires() -> None:
    rule = StockRule(protect_units=10, protect_until=NOW + timedelta(hours=1))
    assert available_to_sell(50, 0, rule, NOW) == 40
    assert available_to_sell(50, 0, rule, NOW + timedelta(hours=1)) == 50


def test_capped_at_tiktoks_maximum_and_continue_selling() -> None:
    assert available_to_sell(250_000, 0, StockRule(), NOW) == 99_999
    assert available_to_sell(0, 0, StockRule(continue_selling=True), NOW) == 99_999


@pytest.mark.parametrize(
    ("field", "value"),
    [("buffer_units", -1), ("out_of_stock_threshold", -1), ("protect_units", -3), ("buffer_percent", Decimal(100))],
)
def test_a_nonsense_rule_is_refused_naming_the_field(field: str, value: object) -> None:
    with pytest.raises(InvalidStockRule, match=field):
        StockRule(**{field: value})  # type: ignore[arg-type]


def test_the_sell_out_guard_zeroes_only_what_the_current_pace_sells_before_a_push_lands() -> None:
    def guarded(shown: int, sold_in_2_s: int) -> bool:
        return sells_out_before_a_push_lands(shown, sold_in_2_s, window_seconds=2.0, reach_seconds=0.5)

    # A live sale's last SKU: 60 units in 2 s is 15 units in the half second a change takes to land.
    assert guarded(15, 60) and not guarded(16, 60)
    # An ordinary pace (one unit in 2 s) never zeroes a SKU, however low; nothing sold, nothing guarded.
    assert not guarded(1, 1) and not guarded(1, 0)
    assert not guarded(0, 60), "nothing shown, nothing to guard"


def test_drift_is_a_different_quantity_on_a_sku_both_sides_know() -> None:
    assert drifted({"a": 5, "b": 3, "c": 0}, {"a": 5, "b": 4, "z": 9}) == (["b"], 2)
    assert drifted({}, {"a": 1}) == ([], 0)


@given(wanted=st.dictionaries(st.sampled_from("abcdef"), st.integers(0, 20)),
       shown=st.dictionaries(st.sampled_from("abcdef"), st.integers(0, 20)))  # fmt: skip
def test_drift_of_a_channel_showing_what_is_wanted_is_none(wanted: dict[str, int], shown: dict[str, int]) -> None:
    assert drifted(wanted, {**shown, **wanted}) == ([], len(wanted))
    mismatched, compared = drifted(wanted, shown)
    assert set(mismatched) == {sku for sku in wanted if sku in shown and shown[sku] != wanted[sku]}
    assert compared == len(set(wanted) & set(shown))
