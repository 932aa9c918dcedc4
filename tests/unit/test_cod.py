"""Cash on delivery, pure: a courier's column mapping, reading its remittance file (every bad row named at once),
and the arithmetic of what couriers owe per day and courier, currencies kept apart."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from shopbridge.domain.cod import (
    UNASSIGNED,
    CodFigures,
    ColumnMapping,
    ExpectedCod,
    MappingRefused,
    RemittedCod,
    Unreadable,
    cod_report,
    courier_index,
    courier_of,
    decode,
    read_remittance,
)
from shopbridge.domain.money import CurrencyMismatch, Money

JNE = ColumnMapping.from_pairs(
    ["reference=Waybill", "order=Order No", "collected=COD Amount", "fee=Fee", "remitted_on=Paid On",
     "collected_on=Delivered"], "%d/%m/%Y",
)  # fmt: skip
HEADER = "Waybill,Order No,COD Amount,Fee,Delivered,Paid On,Branch\n"


def usd(amount: str) -> Money:
    return Money.parse(amount, "USD")


def idr(amount: str) -> Money:
    return Money.parse(amount, "IDR")


# --- the mapping ------------------------------------------------------------------------------------------------------


def test_a_mapping_names_each_field_once_and_keeps_the_headers_as_written() -> None:
    assert JNE.header("order") == "Order No" and JNE.header("remitted") is None
    assert JNE.date_format == "%d/%m/%Y"
    assert ColumnMapping(JNE.as_document(), JNE.date_format) == JNE
    both = ColumnMapping.from_pairs(["reference=Waybill", "order=Waybill", "collected=COD", "remitted_on=Paid"])
    assert both.header("reference") == both.header("order") == "Waybill", "one column may serve two fields"


@pytest.mark.parametrize(
    ("pairs", "date_format", "message"),
    [
        (["reference=A", "order=B", "order=C", "collected=D", "remitted_on=E"], "%Y-%m-%d",
         "field 'order' is named twice ('B' and 'C')"),
        (["reference=A", "order=B"], "%Y-%m-%d", "required field(s) missing: collected, remitted_on"),
        (["reference=A", "order=B", "collected=C", "remitted_on=D", "amount=E"], "%Y-%m-%d", "unknown field 'amount'"),
        (["reference=A", "order= ", "collected=C", "remitted_on=D"], "%Y-%m-%d", "field 'order' has no column"),
        (["reference A", "order=B", "collected=C", "remitted_on=D"], "%Y-%m-%d", "'reference A' is not field=Column"),
        (["reference=A", "order=B", "collected=C", "remitted_on=D"], "%d/%m", "does not read back the dates"),
        (["reference=A", "order=B", "collected=C", "remitted_on=D"], "daily", "does not read back the dates"),
    ],
)  # fmt: skip
def test_a_mapping_that_cannot_read_a_file_is_refused(pairs: list[str], date_format: str, message: str) -> None:
    with pytest.raises(MappingRefused) as refused:
        ColumnMapping.from_pairs(pairs, date_format)
    assert message in str(refused.value)


# --- reading a file ---------------------------------------------------------------------------------------------------


def test_a_file_with_a_bom_odd_headers_and_semicolons_reads_into_money() -> None:
    text = "\ufeff waybill ; ORDER  NO;Cod Amount;FEE;Delivered;paid on\r\n" \
           "JX1;WA-000001;49.30;1.50;04/01/2026;06/01/2026\r\n" \
           "\r\n" \
           "JX2;WA-000002;20;;;06/01/2026\r\n"  # fmt: skip
    read = read_remittance(text, JNE, "USD")
    assert read.errors == () and read.rows == 2
    first, second = read.lines
    assert (first.row, first.reference, first.order) == (2, "JX1", "WA-000001")
    assert (first.collected, first.fee, first.remitted) == (usd("49.30"), usd("1.50"), usd("47.80"))
    assert first.collected_on == date(2026, 1, 4) and first.remitted_on == date(2026, 1, 6)
    assert second.row == 4, "a blank row keeps its number, as in a spreadsheet"
    assert (second.fee, second.remitted, second.collected_on) == (usd("0"), usd("20"), None)
    assert first.remitted.to_minor() == 4780 and read.total("USD") == usd("67.80")


def test_decoding_takes_utf8_with_or_without_a_bom_and_names_the_row_that_is_not() -> None:
    assert decode("\ufeffWaybill\n".encode()) == decode(b"Waybill\n") == "Waybill\n"
    with pytest.raises(Unreadable) as unreadable:
        decode(b"Waybill,Order\nJX1,WA-1\nJX2,Caf\xe9\n")
    assert unreadable.value.error.row == 3 and "not UTF-8" in str(unreadable.value)


def test_a_net_amount_without_a_fee_column_gives_the_fee() -> None:
    mapping = ColumnMapping.from_pairs(["reference=Ref", "order=Order", "collected=Gross", "remitted=Net",
                                        "remitted_on=Date", "currency=Cur"])  # fmt: skip
    read = read_remittance("Ref,Order,Gross,Net,Date,Cur\nR1,PH-1,150000,147000,2026-01-09,idr\n", mapping, "IDR")
    assert read.errors == ()
    (line,) = read.lines
    assert (line.collected, line.fee, line.remitted) == (idr("150000"), idr("3000"), idr("147000"))
    assert line.currency == "IDR"


def test_every_bad_row_is_named_with_its_column_and_no_bad_row_becomes_a_line() -> None:
    text = HEADER + "\n".join([
        "JX1,WA-1,10.00,0.50,,06/01/2026,North",  # good
        "JX2,WA-2,-5.00,0,,06/01/2026,North",  # negative
        "JX3,WA-3,1.005,0,,06/01/2026,North",  # too precise
        "JX4,WA-4,\"1,234.00\",0,,06/01/2026,North",  # thousands separator
        "JX5,,10.00,0,,31/02/2026,North",  # no order, no such day
        "JX6,WA-6,10.00,12.00,,06/01/2026,North",  # fee above collected
        "JX1,WA-7,10.00,0,,06/01/2026,North",  # reference again
        ",WA-8,,0,,,North",  # nothing required
        "JX9,WA-9,10.00,0",  # short row
    ])  # fmt: skip
    read = read_remittance(text, JNE, "USD")
    shown = [str(error) for error in read.errors]
    assert [line.reference for line in read.lines] == ["JX1"] and read.rows == 9
    assert "row 3, column 'COD Amount': -5.00 is negative; remittance amounts are never below zero" in shown
    assert "row 4, column 'COD Amount': amount '1.005' has more decimals than USD allows" in shown
    assert any(text.startswith("row 5, column 'COD Amount': '1,234.00' is not an amount") for text in shown)
    assert "row 6, column 'Order No': is empty: every row needs its order" in shown
    assert "row 6, column 'Paid On': '31/02/2026' is not a date written %d/%m/%Y" in shown
    assert "row 7, column 'Fee': fee 12.00 USD is more than the 10.00 USD collected" in shown
    assert "row 8, column 'Waybill': reference 'JX1' is also on row 2" in shown
    assert {"row 9, column 'Waybill': is empty: every row needs its reference",
            "row 9, column 'COD Amount': is empty: every row needs the amount collected",
            "row 9, column 'Paid On': is empty: every row needs the day it was remitted"} <= set(shown)  # fmt: skip
    assert "row 10, column 'Paid On': is empty: every row needs the day it was remitted" in shown


def test_a_row_in_another_currency_and_a_net_that_does_not_add_up_are_refused() -> None:
    mapping = ColumnMapping.from_pairs(["reference=Ref", "order=Order", "collected=Gross", "fee=Fee", "remitted=Net",
                                        "remitted_on=Date", "currency=Cur"])  # fmt: skip
    text = "Ref,Order,Gross,Fee,Net,Date,Cur\nR1,WA-1,10.00,1.00,8.00,2026-01-09,USD\n" \
           "R2,WA-2,10.00,1.00,9.00,2026-01-09,IDR\n"  # fmt: skip
    shown = [str(error) for error in read_remittance(text, mapping, "USD").errors]
    assert shown == [
        "row 2, column 'Net': remitted 8.00 USD is not the 10.00 USD collected less the fee 1.00 USD",
        "row 3, column 'Cur': 'IDR', but the courier remits in USD; a file is in one currency",
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "row 1: the file is empty"),
        (HEADER, "row 2: the file has a header but no rows"),
        ("Waybill,Order,COD Amount,Paid On\nJX1,WA-1,1,06/01/2026\n",
         "row 1, column 'Order No': no such column (for order); the file's columns are: 'Waybill', 'Order', "
         "'COD Amount', 'Paid On'"),
        ("Waybill,Order No,Order No,COD Amount,Fee,Delivered,Paid On\n",
         "row 1, column 'Order No': the header has this column 2 times"),
        ('Waybill,Order No,COD Amount,Fee,Delivered,Paid On\n"JX1,WA-1', "not readable as CSV"),
    ],
)  # fmt: skip
def test_a_file_whose_header_does_not_fit_the_mapping_is_refused_at_row_one(text: str, message: str) -> None:
    read = read_remittance(text, JNE, "USD")
    assert read.lines == () and any(message in str(error) for error in read.errors), read.errors


# --- which courier ----------------------------------------------------------------------------------------------------


def test_a_carrier_is_a_courier_by_its_code_or_name_in_any_case() -> None:
    index = courier_index([("JNE", "JNE Express"), ("JNT", "J&T Express")])
    assert courier_of([None, "  j&t   express "], index) == "JNT"
    assert courier_of(["jne"], index) == "JNE"
    assert courier_of(["DHL", ""], index) is None


# --- what couriers owe ------------------------------------------------------------------------------------------------

D1, D2, D3 = date(2026, 1, 5), date(2026, 1, 6), date(2026, 1, 7)
AS_OF = date(2026, 1, 15)


def line(order_id: int | None, amount: str, fee: str, on: date, courier: str = "JNE") -> RemittedCod:
    collected = usd(amount)
    return RemittedCod(order_id, courier, collected, usd(fee), collected - usd(fee), on)


def figures(rows: tuple[CodFigures, ...], day: date | None, courier: str | None, currency: str = "USD") -> CodFigures:
    (found,) = [row for row in rows if (row.day, row.courier, row.currency) == (day, courier, currency)]
    return found


def test_expected_collected_remitted_and_outstanding_per_day_and_courier() -> None:
    expected = [
        ExpectedCod(1, "WA-1", "JNE", usd("100.00"), D1, delivered_on=D2),  # remitted, less a fee
        ExpectedCod(2, "WA-2", "JNE", usd("50.00"), D1, delivered_on=D2),  # delivered: the courier has the cash
        ExpectedCod(3, "WA-3", "JNE", usd("30.00"), D2),  # in transit
        ExpectedCod(4, "WA-4", "JNT", usd("20.00"), D2, delivered_on=D3),  # collected short
    ]
    lines = [line(1, "100.00", "4.00", D3), line(4, "15.00", "0.50", D3, "JNT")]
    report = cod_report(expected, lines, as_of=AS_OF)
    jne_d1 = figures(report.days, D1, "JNE")
    assert (jne_d1.orders, jne_d1.expected, jne_d1.collected) == (2, usd("150"), usd("150"))
    assert (jne_d1.fees, jne_d1.remitted, jne_d1.outstanding) == (usd("4"), usd("96"), usd("50"))
    assert (jne_d1.outstanding_orders, jne_d1.oldest_outstanding_days) == (1, 10)
    jne_d2 = figures(report.days, D2, "JNE")
    assert (jne_d2.expected, jne_d2.collected, jne_d2.outstanding, jne_d2.oldest_outstanding_days) == (
        usd("30"), usd("0"), usd("30"), 9)  # fmt: skip
    jnt = figures(report.days, D2, "JNT")
    assert (jnt.collected, jnt.fees, jnt.remitted, jnt.outstanding) == (usd("15"), usd("0.50"), usd("14.50"), usd("5"))
    per_courier = figures(report.couriers, None, "JNE")
    assert (per_courier.orders, per_courier.expected, per_courier.outstanding) == (3, usd("180"), usd("80"))
    assert (per_courier.outstanding_orders, per_courier.oldest_outstanding_days) == (2, 10)
    (total,) = report.totals
    assert (total.expected, total.remitted, total.fees, total.outstanding) == (usd("200"), usd("110.50"),
                                                                              usd("4.50"), usd("85"))  # fmt: skip


def test_a_fully_remitted_order_is_not_outstanding_and_has_no_age() -> None:
    report = cod_report([ExpectedCod(1, "WA-1", "JNE", usd("100"), D1)], [line(1, "100", "4", D3)], as_of=AS_OF)
    (row,) = report.days
    assert row.outstanding == usd("0") and row.outstanding_orders == 0 and row.oldest_outstanding_days is None


def test_the_report_is_as_of_a_day_later_remittances_deliveries_and_shipments_do_not_count() -> None:
    expected = [ExpectedCod(1, "WA-1", "JNE", usd("100"), D1, delivered_on=D3),
                ExpectedCod(2, "WA-2", "JNE", usd("10"), D3)]  # fmt: skip
    report = cod_report(expected, [line(1, "100", "0", D3)], as_of=D2)
    (row,) = report.days
    assert (row.day, row.orders, row.collected, row.remitted, row.outstanding) == (D1, 1, usd("0"), usd("0"),
                                                                                   usd("100"))  # fmt: skip
    assert row.oldest_outstanding_days == 1


def test_currencies_are_never_added_together() -> None:
    expected = [ExpectedCod(1, "WA-1", "JNE", usd("10"), D1), ExpectedCod(2, "TT-2", "JNE", idr("150000"), D1)]
    report = cod_report(expected, [RemittedCod(2, "JNE", idr("150000"), idr("2500"), idr("147500"), D2)], as_of=AS_OF)
    assert [(row.courier, row.currency) for row in report.days] == [("JNE", "IDR"), ("JNE", "USD")]
    assert figures(report.days, D1, "JNE", "IDR").outstanding == idr("0")
    assert figures(report.days, D1, "JNE", "USD").outstanding == usd("10")
    assert [(row.currency, row.expected.amount) for row in report.totals] == [("IDR", Decimal(150000)),
                                                                             ("USD", Decimal(10))]  # fmt: skip
    with pytest.raises(CurrencyMismatch, match="order WA-1"):
        cod_report(expected, [RemittedCod(1, "JNE", idr("10"), idr("0"), idr("10"), D2)], as_of=AS_OF)


def test_an_order_without_a_known_carrier_goes_to_the_courier_that_remitted_it_else_unassigned() -> None:
    expected = [ExpectedCod(1, "PH-1", None, usd("20"), D1), ExpectedCod(2, "PH-2", None, usd("30"), D1)]
    report = cod_report(expected, [line(1, "20", "1", D2, "JNT")], as_of=AS_OF)
    assert figures(report.days, D1, "JNT").remitted == usd("19")
    assert figures(report.days, D1, UNASSIGNED).outstanding == usd("30")
    assert [row.courier for row in report.couriers] == ["JNT", UNASSIGNED], "unassigned comes last"


def test_a_line_for_an_order_not_expected_counts_on_the_day_it_was_remitted() -> None:
    report = cod_report([], [line(9, "25", "1", D3), line(None, "5", "0", D1)], as_of=AS_OF)
    cancelled = figures(report.days, D3, "JNE")
    assert (cancelled.orders, cancelled.expected, cancelled.remitted) == (0, usd("0"), usd("24"))
    assert (cancelled.outstanding, cancelled.unexpected_lines) == (usd("-25"), 1)
    assert report.totals[0].unexpected_lines == 2
