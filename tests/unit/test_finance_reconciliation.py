"""The finance rules: a payout's breakdown adds up to its settlement, and each exception kind is found with the money
at stake, at the moment it becomes due and not before."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shopbridge.domain.finance import (
    Breakdown,
    ExceptionKind,
    FeeRates,
    Line,
    OrderFacts,
    Policy,
    Settled,
    breakdown,
    check_order,
    check_unknown,
)
from shopbridge.domain.money import CurrencyMismatch

DELIVERED = datetime(2026, 11, 3, 15, 30, tzinfo=UTC)
POLICY = Policy(settlement_delay=timedelta(days=7), grace=timedelta(days=2))
RATES = FeeRates(referral_fee=Decimal("0.06"), transaction_fee=Decimal("0.029"))


def sale(revenue: int, *, referral: int = 0, transaction: int = 0, affiliate: int = 0, other: int = 0,
         shipping: int = 0, currency: str = "USD") -> Line:  # fmt: skip
    fee = referral + transaction + affiliate + other
    return Line("ORDER", currency, revenue, 0, referral, transaction, affiliate, fee, shipping, 0, 0,
                revenue + fee + shipping)  # fmt: skip


def refund(revenue: int, buyer_got: int, fee_back: int = 0) -> Line:
    return Line("ORDER", "USD", -revenue, 0, fee_back, 0, 0, fee_back, 0, -buyer_got, 0, -revenue + fee_back)


def adjustment(amount: int, kind: str = "PLATFORM_PENALTY") -> Line:
    return Line(kind, "USD", 0, 0, 0, 0, 0, 0, 0, 0, amount, amount)


def reserve(amount: int) -> Line:
    return Line("RESERVE", "USD", 0, 0, 0, 0, 0, 0, 0, 0, 0, amount)


def test_a_payout_breaks_down_into_the_numbers_finance_posts() -> None:
    lines = [
        sale(10_000, referral=-600, transaction=-319, affiliate=-500, other=-110, shipping=-450),
        sale(2_500, referral=-150, transaction=-73),
        refund(2_500, 2_750, fee_back=120),
        adjustment(-1_000),
        reserve(-500),
    ]
    found = breakdown(lines, "USD")
    assert (found.sales, found.refunds) == (12_500, -2_500)
    assert (found.referral_fee, found.transaction_fee, found.affiliate_commission, found.other_fees) == (
        -630, -392, -500, -110)  # fmt: skip
    assert (found.shipping, found.adjustments, found.reserve, found.unexplained) == (-450, -1_000, -500, 0)
    assert found.net == sum(line.settlement for line in lines if line.type != "RESERVE") == 6_918
    assert found.paid == 6_418
    assert found.transactions == 5


def test_what_the_channel_does_not_attribute_is_kept_so_the_breakdown_still_adds_up() -> None:
    odd = Line("ORDER", "USD", 1_000, 0, -60, 0, 0, -60, 0, 0, 0, 935)
    found = breakdown([odd], "USD")
    assert found.unexplained == -5
    assert found.net == 935


def test_currencies_are_never_mixed() -> None:
    with pytest.raises(CurrencyMismatch, match="GBP transaction in a USD payout"):
        breakdown([sale(100, currency="GBP")], "USD")
    with pytest.raises(CurrencyMismatch):
        _ = Breakdown("USD") + Breakdown("GBP")


amounts = st.integers(-(10**9), 10**9)


@given(st.lists(st.tuples(st.sampled_from(["ORDER", "RESERVE", "CHARGE_BACK"]), st.lists(amounts, min_size=10,
                                                                                          max_size=10))))  # fmt: skip
def test_every_breakdown_adds_up_to_its_settlement(rows: list[tuple[str, list[int]]]) -> None:
    lines = [Line(kind, "USD", *numbers) for kind, numbers in rows]
    found = breakdown(lines, "USD")
    assert found.net == sum(line.settlement for line in lines if line.type != "RESERVE")
    assert found.paid == sum(line.settlement for line in lines)


def order(**changes: object) -> OrderFacts:
    base = dict(order_id=7, external_id="576", currency="USD", cancelled=False, revenue=10_000, paid_by_buyer=11_000,
                delivered_at=DELIVERED, refunded=0, refunded_at=None)  # fmt: skip
    return OrderFacts(**{**base, **changes})  # type: ignore[arg-type]


def settled(**changes: object) -> Settled:
    base = dict(currencies=frozenset({"USD"}), sale_revenue=10_000, sales=1, sale_settlement=9_081,
                first_settled_at=datetime(2026, 11, 11, tzinfo=UTC), referral_fee=-600,
                transaction_fee=-319)  # fmt: skip
    return Settled(**{**base, **changes})  # type: ignore[arg-type]


def kinds(found: list[object]) -> list[str]:
    return [str(f.kind) for f in found]


def test_a_clean_order_has_no_exception() -> None:
    assert check_order(order(), settled(), rates=RATES, policy=POLICY, now=datetime(2026, 12, 1, tzinfo=UTC)) == []


def test_missing_settlement_only_once_it_is_due() -> None:
    due = POLICY.due_by(DELIVERED)
    assert due == datetime(2026, 11, 13, tzinfo=UTC)  # delivered 3rd + 7 days = 10th, closes 11th, + 2 days grace
    assert check_order(order(), None, rates=RATES, policy=POLICY, now=due) == []
    [found] = check_order(order(), None, rates=RATES, policy=POLICY, now=due + timedelta(seconds=1))
    assert (found.kind, found.at_stake, found.expected_by) == (ExceptionKind.MISSING_SETTLEMENT, 10_000, due)
    assert check_order(order(cancelled=True), None, rates=RATES, policy=POLICY, now=due + timedelta(days=9)) == []
    assert check_order(order(delivered_at=None), None, rates=RATES, policy=POLICY, now=due + timedelta(days=9)) == []


def test_amount_difference_names_both_amounts() -> None:
    [found] = check_order(order(), settled(sale_revenue=9_750), rates=FeeRates(), policy=POLICY,
                          now=datetime(2026, 12, 1, tzinfo=UTC))  # fmt: skip
    assert (found.kind, found.at_stake, found.expected, found.actual) == (
        ExceptionKind.AMOUNT_DIFFERENCE, 250, 10_000, 9_750)  # fmt: skip
    assert "97.50 USD" in found.detail and "100.00 USD" in found.detail


def test_late_release_and_its_days() -> None:
    late = settled(first_settled_at=datetime(2026, 11, 20, tzinfo=UTC))
    [found] = check_order(order(), late, rates=RATES, policy=POLICY, now=datetime(2026, 12, 1, tzinfo=UTC))
    assert (found.kind, found.at_stake) == (ExceptionKind.LATE_RELEASE, 9_081)
    assert "7 days late" in found.detail


def test_refund_not_deducted_once_its_statement_has_closed() -> None:
    refunded = order(refunded=2_750, refunded_at=datetime(2026, 11, 20, 9, tzinfo=UTC))
    early = datetime(2026, 11, 22, 23, tzinfo=UTC)
    assert check_order(refunded, settled(), rates=RATES, policy=POLICY, now=early) == []
    [found] = check_order(refunded, settled(), rates=RATES, policy=POLICY, now=datetime(2026, 11, 23, 1, tzinfo=UTC))
    assert (found.kind, found.at_stake) == (ExceptionKind.REFUND_NOT_DEDUCTED, 2_750)
    partly = settled(refund_deducted=2_000, refunds=1)
    [found] = check_order(refunded, partly, rates=RATES, policy=POLICY, now=datetime(2026, 12, 1, tzinfo=UTC))
    assert found.at_stake == 750
    whole = settled(refund_deducted=2_750, refunds=1)
    assert check_order(refunded, whole, rates=RATES, policy=POLICY, now=datetime(2026, 12, 1, tzinfo=UTC)) == []


def test_fee_outside_rate_by_the_money_overcharged_and_within_rounding_not() -> None:
    now = datetime(2026, 12, 1, tzinfo=UTC)
    [found] = check_order(order(), settled(referral_fee=-800), rates=RATES, policy=POLICY, now=now)
    assert (found.kind, found.at_stake, found.expected, found.actual) == (
        ExceptionKind.FEE_OUTSIDE_RATE, 200, -600, -800)  # fmt: skip
    assert found.subject == "order:576:referral_fee" and "6% of 100.00 USD" in found.detail
    assert check_order(order(), settled(referral_fee=-601), rates=RATES, policy=POLICY, now=now) == []
    assert check_order(order(), settled(referral_fee=-800), rates=FeeRates(), policy=POLICY, now=now) == []


def test_settlement_in_another_currency_is_a_difference_not_a_sum() -> None:
    [found] = check_order(order(), settled(currencies=frozenset({"GBP"})), rates=RATES, policy=POLICY,
                          now=datetime(2026, 12, 1, tzinfo=UTC))  # fmt: skip
    assert found.kind == ExceptionKind.AMOUNT_DIFFERENCE and "never mixed" in found.detail


def test_a_settled_order_unknown_to_the_hub() -> None:
    found = check_unknown("999", "USD", 4_321, 2)
    assert (found.kind, found.at_stake, found.subject) == (ExceptionKind.UNKNOWN_ORDER, 4_321, "order:999")
    assert "2 transactions settled 43.21 USD" in found.detail


def test_several_kinds_on_one_order_each_with_its_own_money() -> None:
    bad = settled(sale_revenue=9_000, first_settled_at=datetime(2026, 11, 25, tzinfo=UTC), referral_fee=-900)
    found = check_order(order(refunded=500, refunded_at=datetime(2026, 11, 1, tzinfo=UTC)), bad, rates=RATES,
                        policy=POLICY, now=datetime(2026, 12, 1, tzinfo=UTC))  # fmt: skip
    assert kinds(found) == ["amount_difference", "late_release", "refund_not_deducted", "fee_outside_rate"]
    assert [f.at_stake for f in found] == [1_000, 9_081, 500, 300]  # the fee on the order's own 100.00
