"""TikTok's finance objects (reference §8, the doc samples) as the hub's rows: amounts in minor units of the row's
currency with TikTok's signs, times in UTC, bad data refused with a clear message."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shopbridge.channels.tiktok.finance import parse_minor, payment_row, statement_row, transaction_row
from shopbridge.domain.money import InvalidAmount, Money
from shopbridge.runtime.errors import PermanentError

# §8.2's sample statement.
STATEMENT = {"id": "7238804564097517339", "statement_time": 1685548800, "currency": "GBP", "revenue_amount": "200",
             "fee_amount": "-30", "adjustment_amount": "-70", "shipping_cost_amount": "-70",
             "net_sales_amount": "-70", "settlement_amount": "100", "payment_id": "3459275187040258849",
             "payment_status": "PAID"}  # fmt: skip

# §8.5's sample transaction (202309, flat), with cents added to show the rounding is exact.
TRANSACTION = {"id": "1636700041413599290", "type": "ORDER", "order_id": "576463220456522968",
               "order_create_time": 1685548800, "currency": "USD", "revenue_amount": "200.10",
               "settlement_amount": "130.05", "fee_amount": "-30.05", "shipping_cost_amount": "-70",
               "adjustment_amount": "30", "platform_commission_amount": "0", "referral_fee_amount": "-2",
               "transaction_fee_amount": "-2.01", "affiliate_commission_amount": "-6",
               "customer_refund_amount": "-0.99"}  # fmt: skip


def test_a_statement_keeps_its_currency_and_amounts_in_minor_units() -> None:
    row = statement_row(STATEMENT)
    assert row == {
        "external_id": "7238804564097517339",
        "statement_time": datetime(2023, 5, 31, 16, 0, tzinfo=UTC),
        "payment_status": "PAID",
        "currency": "GBP",
        "settlement_minor": 10000,
        "revenue_minor": 20000,
        "fee_minor": -3000,
        "adjustment_minor": -7000,
        "shipping_cost_minor": -7000,
        "net_sales_minor": -7000,
        "payment_external_id": "3459275187040258849",
        "paid_at": None,
    }


def test_a_transaction_names_each_component_with_its_sign() -> None:
    settled = datetime(2023, 6, 1, tzinfo=UTC)
    row = transaction_row(TRANSACTION, settled)
    assert row["currency"] == "USD" and row["type"] == "ORDER"
    assert row["external_order_id"] == "576463220456522968"
    assert (row["revenue_minor"], row["fee_minor"], row["shipping_cost_minor"], row["adjustment_minor"]) == (
        20010, -3005, -7000, 3000)  # fmt: skip
    assert (row["platform_commission_minor"], row["referral_fee_minor"], row["transaction_fee_minor"],
            row["affiliate_commission_minor"]) == (0, -200, -201, -600)  # fmt: skip
    assert row["refund_minor"] == -99 and row["reserve_minor"] == 0 and row["settlement_minor"] == 13005
    assert row["settled_at"] == settled and row["order_created_at"] == datetime(2023, 5, 31, 16, 0, tzinfo=UTC)


def test_minor_units_follow_the_currency() -> None:
    yen = transaction_row({**TRANSACTION, "currency": "JPY", "revenue_amount": "1500", "settlement_amount": "1200",
                           "fee_amount": "-300", "transaction_fee_amount": "-45", "shipping_cost_amount": "0",
                           "adjustment_amount": "0", "referral_fee_amount": "", "customer_refund_amount": None},
                          datetime(2023, 6, 1, tzinfo=UTC))  # fmt: skip
    assert (yen["currency"], yen["revenue_minor"], yen["settlement_minor"]) == ("JPY", 1500, 1200)
    assert yen["referral_fee_minor"] == 0 and yen["refund_minor"] == 0  # empty or null is nothing
    with pytest.raises(PermanentError, match="more decimals than JPY allows"):
        transaction_row({**TRANSACTION, "currency": "JPY", "revenue_amount": "10.5"}, datetime.now(UTC))


def test_a_reserve_transaction_is_the_reserve() -> None:
    reserve = transaction_row({"id": "9", "type": "RESERVE", "currency": "GBP", "settlement_amount": "-25.00"},
                              datetime.now(UTC))  # fmt: skip
    assert reserve["reserve_minor"] == -2500 and reserve["settlement_minor"] == -2500
    assert reserve["external_order_id"] is None


def test_a_payment_keeps_the_paid_currency_apart_from_the_settlement() -> None:
    row = payment_row({"id": "P1", "create_time": 1685548800, "status": "PAID", "paid_time": 1685635200,
                       "amount": {"value": "117.01", "currency": "USD"},
                       "settlement_amount": {"value": "100.00", "currency": "GBP"},
                       "reserve_amount": {"value": "5.00", "currency": "GBP"},
                       "exchange_rate": "1.170100", "bank_account": "****1234"})  # fmt: skip
    assert (row["amount_minor"], row["currency"]) == (11701, "USD")
    assert (row["settlement_minor"], row["settlement_currency"], row["reserve_minor"]) == (10000, "GBP", 500)
    assert row["paid_at"] == datetime(2023, 6, 1, 16, 0, tzinfo=UTC) and row["bank_account"] == "****1234"
    unpaid = payment_row({"id": "P2", "create_time": 1685548800, "status": "PROCESSING", "paid_time": 0,
                          "amount": {"value": "1", "currency": "USD"}})  # fmt: skip
    assert unpaid["paid_at"] is None and unpaid["settlement_minor"] is None and unpaid["reserve_minor"] is None


def test_bad_finance_data_is_refused_with_what_was_wrong() -> None:
    with pytest.raises(PermanentError, match="has no currency"):
        statement_row({**STATEMENT, "currency": ""})
    with pytest.raises(PermanentError, match="settlement_amount 'lots'"):
        statement_row({**STATEMENT, "settlement_amount": "lots"})
    with pytest.raises(PermanentError, match="never mixed"):
        payment_row({"id": "P3", "create_time": 1, "amount": {"value": "1", "currency": "USD"},
                     "settlement_amount": {"value": "1", "currency": "GBP"},
                     "reserve_amount": {"value": "1", "currency": "EUR"}})  # fmt: skip
    with pytest.raises(PermanentError, match="without an id"):
        transaction_row({"type": "ORDER", "currency": "USD"}, datetime.now(UTC))


# --- the fast amount parser: the same answers as Money.parse, and the same refusals --------------------------------


@pytest.mark.parametrize(
    ("text", "digits", "minor"),
    [("12.50", 2, 1250), ("-0.99", 2, -99), ("7", 2, 700), ("12.", 2, 1200), ("1.500", 2, 150), ("-0.00", 2, 0),
     ("007.05", 2, 705), ("1500", 0, 1500), ("10.0", 0, 10), ("1.234", 3, 1234), ("0.1", 3, 100)],
)  # fmt: skip
def test_a_plain_decimal_string_becomes_minor_units(text: str, digits: int, minor: int) -> None:
    assert parse_minor(text, digits) == minor


@pytest.mark.parametrize("text", ["1.505", "10.5:0", "1e3", " 1", "1 ", "+1", ".5", "--1", "1,5", "", "NaN", "١٢"])
def test_anything_else_is_left_to_money_parse(text: str) -> None:
    assert parse_minor(text, 2) is None


def test_refusals_keep_their_messages() -> None:
    with pytest.raises(PermanentError, match=r"revenue_amount '1\.005': amount '1\.005' has more decimals than USD"):
        transaction_row({**TRANSACTION, "revenue_amount": "1.005"}, datetime.now(UTC))
    with pytest.raises(PermanentError, match=r"fee_amount 'x': amount 'x' is not a decimal number"):
        transaction_row({**TRANSACTION, "fee_amount": "x"}, datetime.now(UTC))
    with pytest.raises(PermanentError, match="currency 'usd' is not an ISO 4217 code"):
        transaction_row({**TRANSACTION, "currency": "usd"}, datetime.now(UTC))  # even where the amounts are zero
    assert transaction_row({**TRANSACTION, "revenue_amount": "1e2"}, datetime.now(UTC))["revenue_minor"] == 10000


@given(
    st.one_of(
        st.decimals(allow_nan=False, allow_infinity=False, places=4, min_value=-(10**9), max_value=10**9).map(str),
        st.from_regex(r"-?[0-9]{1,12}(\.[0-9]{0,5})?", fullmatch=True),
        st.text(alphabet="0123456789.-+eE ", max_size=8),
    ),
    st.sampled_from(["USD", "JPY", "KWD"]),
)
def test_the_fast_path_answers_as_money_parse_does(text: str, currency: str) -> None:
    line = {"id": "1", "type": "ORDER", "currency": currency, "revenue_amount": text}
    try:
        expected = Money.parse(text, currency).to_minor() if text else 0
    except InvalidAmount as error:
        with pytest.raises(PermanentError) as refused:
            transaction_row(line, datetime.now(UTC))
        assert str(refused.value) == f"TikTok's statement transaction 1: revenue_amount {text!r}: {error}"
        return
    assert transaction_row(line, datetime.now(UTC))["revenue_minor"] == expected
