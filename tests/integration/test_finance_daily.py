"""The daily finance check against a real database: a TikTok shop in Jakarta (UTC+7) whose 3 March 2026 runs from
2 March 17:00 to 3 March 17:00 UTC, so orders just either side of those instants tell whether the shop's own day is
the one counted; a store in UTC beside it; every figure checked, then the command line's ``finance daily``."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from typer.testing import CliRunner

from shopbridge import cli
from shopbridge.bootstrap import Hub
from shopbridge.config import Settings
from shopbridge.domain.money import Money
from shopbridge.services.finance_daily import DailyCheckError, daily_check, day_bounds, percent, ratio
from shopbridge.store.db import transaction
from shopbridge.store.tables import (
    ChannelAccount,
    CodRemittance,
    CodRemittanceFile,
    Courier,
    FinanceException,
    FinancePayment,
    FinanceStatement,
    FinanceTransaction,
    Order,
    OrderStatusChange,
    StoreReturn,
)

runner = CliRunner()
DAY = date(2026, 3, 3)
START = datetime(2026, 3, 2, 17, 0, tzinfo=UTC)  # midnight, 3 March, in Jakarta
END = datetime(2026, 3, 3, 17, 0, tzinfo=UTC)  # midnight, 4 March, in Jakarta


def at(day: int, hour: int, minute: int = 0) -> datetime:
    """A UTC instant of March 2026."""
    return datetime(2026, 3, day, hour, minute, tzinfo=UTC)


def idr(amount: str) -> Money:
    return Money.parse(amount, "IDR")


@dataclass(frozen=True)
class World:
    jakarta: int
    store: int
    desk: int


def add_order(session: object, account_id: int, number: str, *changes: tuple[str, datetime], cod: bool = False,
              total: int = 100_000_00, currency: str = "IDR") -> int:  # fmt: skip
    """An order placed at its first change, now in its last status, with its status history."""
    assert changes
    placed, (status, updated) = changes[0][1], changes[-1]
    order = Order(channel_account_id=account_id, external_id=number, channel_status=status.upper(), status=status,
                  currency=currency, total_minor=total, subtotal_minor=total, is_cod=cod,
                  channel_created_at=placed, channel_updated_at=updated)  # fmt: skip
    session.add(order)  # type: ignore[attr-defined]
    session.flush()  # type: ignore[attr-defined]
    session.add_all([  # type: ignore[attr-defined]
        OrderStatusChange(order_id=order.id, channel_status=state.upper(), status=state, source="webhook",
                          occurred_at=moment)
        for state, moment in changes
    ])  # fmt: skip
    return order.id


@pytest.fixture
def world(hub: Hub) -> World:
    """Orders of the Jakarta shop around its 3 March (times UTC; Jakarta is 7 hours ahead):

    - A placed 18:00 on the 2nd (01:00 local, the 3rd) and paid: paid that day, still to ship (backlog).
    - B paid 16:45 on the 2nd (23:45 local, the day before), shipped 02:00 on the 3rd: shipped that day.
    - C placed and paid on the 3rd, cancelled the same day.
    - D, cash on delivery, delivered 16:59 on the 3rd (23:59 local): COD expected, and settled by TikTok that day.
    - E, cash on delivery, delivered 17:00 on the 3rd (midnight local): the 4th, not counted.
    - F, cash on delivery in USD, delivered on the 3rd, remitted by its courier that day.
    - G placed on the 3rd, never paid.
    - H paid on the 1st, still to ship (backlog). I paid on the 1st, shipped on the 4th (backlog at the day's end).
    - J delivered on the 3rd, refunded after a store return that day. K packed for the courier on the 3rd.
    """
    with transaction(hub.sessions) as session:
        jakarta = ChannelAccount(channel="tiktok", label="Tees ID", external_id="7495", currency="IDR",
                                 timezone="Asia/Jakarta")  # fmt: skip
        store = ChannelAccount(channel="shopify", label="My store", external_id="store-1", currency="USD")
        desk = ChannelAccount(channel="pos", label="POS Shop Front", external_id="pos-1")
        session.add_all([jakarta, store, desk])
        session.flush()
        shop = jakarta.id
        add_order(session, shop, "A", ("unpaid", at(2, 18)), ("awaiting_shipment", at(2, 18, 30)))
        add_order(session, shop, "B", ("unpaid", at(2, 16, 30)), ("awaiting_shipment", at(2, 16, 45)),
                  ("in_transit", at(3, 2)))  # fmt: skip
        add_order(session, shop, "C", ("unpaid", at(3, 10)), ("awaiting_shipment", at(3, 10, 5)),
                  ("cancelled", at(3, 12)))  # fmt: skip
        d = add_order(session, shop, "D", ("awaiting_shipment", at(1, 3)), ("in_transit", at(2, 10)),
                      ("delivered", at(3, 16, 59)), cod=True, total=150_000_00)  # fmt: skip
        add_order(session, shop, "E", ("awaiting_shipment", at(1, 3)), ("in_transit", at(2, 10)),
                  ("delivered", at(3, 17)), cod=True, total=80_000_00)  # fmt: skip
        f = add_order(session, shop, "F", ("awaiting_shipment", at(1, 4)), ("in_transit", at(2, 8)),
                      ("delivered", at(3, 9)), cod=True, total=25_00, currency="USD")  # fmt: skip
        add_order(session, shop, "G", ("unpaid", at(3, 11)))
        add_order(session, shop, "H", ("unpaid", at(1, 2)), ("awaiting_shipment", at(1, 3)))
        add_order(session, shop, "I", ("awaiting_shipment", at(1, 3)), ("in_transit", at(4, 1)))
        j = add_order(session, shop, "J", ("awaiting_shipment", at(1, 3)), ("in_transit", at(2, 5)),
                      ("delivered", at(3, 5)))  # fmt: skip
        add_order(session, shop, "K", ("awaiting_shipment", at(1, 3)), ("awaiting_collection", at(3, 3)),
                  ("in_transit", at(3, 20)))  # fmt: skip
        # The store in UTC: paid at 20:00 on the 3rd, which is the 4th in Jakarta but the 3rd in the store's day.
        add_order(session, store.id, "#1001", ("unpaid", at(3, 19)), ("awaiting_shipment", at(3, 20)),
                  currency="USD", total=40_00)  # fmt: skip

        def refund(number: str, order_id: int, state: str, when: datetime, minor: int) -> StoreReturn:
            return StoreReturn(channel_account_id=desk.id, external_id=number, order_id=order_id, state=state,
                               refund_minor=minor, currency="IDR", returned_at=when, updated_at=when)  # fmt: skip

        session.add_all([
            refund("R-1", j, "refunded", at(3, 6), 30_000_00),
            refund("R-2", d, "refunded", at(2, 16), 10_000_00),  # 23:00 on the 2nd in Jakarta
            refund("R-3", d, "refunding", at(3, 7), 5_000_00),
        ])  # fmt: skip
        statements = [
            FinanceStatement(channel_account_id=shop, external_id=external_id, statement_time=moment, currency="IDR",
                             settlement_minor=0, revenue_minor=0, fee_minor=0, adjustment_minor=0,
                             shipping_cost_minor=0, net_sales_minor=0)
            for external_id, moment in (("S-3", at(3, 3)), ("S-4", at(3, 17, 30)))
        ]  # fmt: skip
        session.add_all(statements)
        session.flush()

        def line(external_id: str, statement: FinanceStatement, order_id: int | None, settlement: int,
                 kind: str = "ORDER") -> FinanceTransaction:  # fmt: skip
            return FinanceTransaction(
                channel_account_id=shop, external_id=external_id, statement_id=statement.id, type=kind,
                order_id=order_id, currency="IDR", revenue_minor=settlement, platform_commission_minor=0,
                referral_fee_minor=0, transaction_fee_minor=0, affiliate_commission_minor=0, fee_minor=0,
                shipping_cost_minor=0, refund_minor=0, adjustment_minor=0, reserve_minor=0,
                settlement_minor=settlement, settled_at=statement.statement_time,
            )  # fmt: skip

        session.add_all([
            line("T-1", statements[0], d, 140_000_00),  # D, cash on delivery, settled on the 3rd
            line("T-2", statements[0], j, 90_000_00),  # J is not cash on delivery
            line("T-3", statements[0], None, -5_000_00, "RESERVE"),
            line("T-4", statements[1], d, 1_000_00),  # on the 4th's statement
        ])  # fmt: skip
        courier = Courier(code="JNT", name="J&T Express", currency="USD", columns={})
        session.add(courier)
        session.flush()
        file = CodRemittanceFile(courier_id=courier.id, filename="jnt.csv", sha256="a" * 64, rows=2, currency="USD",
                                 total_minor=0, imported_at=at(3, 9), imported_by="tests")  # fmt: skip
        session.add(file)
        session.flush()
        session.add_all([
            CodRemittance(courier_id=courier.id, file_id=file.id, reference="JT-1", order_id=f, currency="USD",
                          collected_minor=25_00, fee_minor=1_00, remitted_minor=24_00, remitted_on=DAY),
            CodRemittance(courier_id=courier.id, file_id=file.id, reference="JT-0", order_id=f, currency="USD",
                          collected_minor=3_00, fee_minor=0, remitted_minor=3_00, remitted_on=date(2026, 3, 2)),
        ])  # fmt: skip

        def payment(external_id: str, created: datetime, paid: datetime | None, minor: int) -> FinancePayment:
            return FinancePayment(channel_account_id=shop, external_id=external_id, status="PAID" if paid else
                                  "PROCESSING", amount_minor=minor, currency="IDR", created_at=created,
                                  paid_at=paid)  # fmt: skip

        session.add_all([
            payment("P-1", at(3, 1), at(3, 16), 500_000_00),  # 23:00 local: received that day
            payment("P-2", at(3, 1), at(3, 18), 70_000_00),  # 01:00 on the 4th, local
            payment("P-3", at(3, 2), None, 60_000_00),  # not paid yet
        ])  # fmt: skip

        def exception(subject: str, minor: int, **state: object) -> FinanceException:
            return FinanceException(channel_account_id=shop, kind="missing_settlement", subject=subject,
                                    currency="IDR", amount_minor=minor, detail="not settled", found_at=at(1, 0),
                                    last_found_at=at(3, 0), **state)  # fmt: skip

        session.add_all([
            exception("order:X1", 120_000_00),
            exception("order:X2", 15_000_00),
            exception("order:X3", 99_000_00, acknowledged_at=at(3, 1), acknowledged_by="finance@example.com",
                      note="the buyer paid cash at the store"),
            exception("order:X4", 7_000_00, cleared_at=at(3, 2)),
        ])  # fmt: skip
        return World(shop, store.id, desk.id)


def test_each_figure_is_counted_in_the_shops_own_day(hub: Hub, world: World) -> None:
    with hub.sessions() as session:
        checks = daily_check(session, DAY)
    assert [check.shop for check in checks] == ["Tees ID", "My store"], "the returns desk has no orders of its own"
    jakarta = checks[0]
    assert (jakarta.timezone, jakarta.day, jakarta.start, jakarta.end) == ("Asia/Jakarta", DAY, START, END)
    assert jakarta.placed == 3, "A, C and G; B was placed at 23:30 the day before"
    assert jakarta.paid == 2, "A and C; B paid the day before, G never"
    assert jakarta.shipped == 2, "B in transit, K packed for the courier; D, F, J shipped before the day"
    assert jakarta.backlog == 3, "A, H, and I (which shipped the next day)"
    assert jakarta.delivered == 3, "D, F and J; E's delivery at local midnight is the next day's"
    assert jakarta.cancelled == 1 and jakarta.cancel_ratio == Decimal("0.3333")
    assert jakarta.refunded == 1 and jakarta.refund_ratio == Decimal("0.3333")
    assert jakarta.refunds == {"IDR": idr("30000.00")}, "only R-1: R-2 was the day before, R-3 is not refunded"

    idr_cod, usd_cod = jakarta.cod
    assert (idr_cod.currency, idr_cod.delivered, idr_cod.expected, idr_cod.settled) == (
        "IDR", 1, idr("150000.00"), idr("140000.00")), "D's total, and its line on the 3rd's statement"  # fmt: skip
    assert (usd_cod.currency, usd_cod.delivered, usd_cod.expected, usd_cod.settled) == (
        "USD", 1, Money.parse("25.00", "USD"), Money.parse("24.00", "USD")), "F, remitted less the fee"  # fmt: skip

    assert jakarta.payouts == 1 and jakarta.received == {"IDR": idr("500000.00")}
    assert jakarta.open_exceptions == 2 and jakarta.at_stake == {"IDR": idr("135000.00")}

    store = checks[1]
    assert (store.timezone, store.start, store.end) == ("UTC", at(3, 0), at(4, 0))
    assert (store.placed, store.paid, store.shipped, store.backlog) == (1, 1, 0, 1)
    assert store.refund_ratio is None and store.cancel_ratio == Decimal(0) and store.cod == ()
    assert (store.payouts, store.received, store.open_exceptions, store.at_stake) == (0, {}, 0, {})


def test_the_days_either_side_count_their_own_orders(hub: Hub, world: World) -> None:
    with hub.sessions() as session:
        [before] = daily_check(session, date(2026, 3, 2), account_id=world.jakarta)
        [after] = daily_check(session, date(2026, 3, 4), account_id=world.jakarta)
    assert (before.placed, before.paid) == (1, 1), "B, placed and paid at 23:30 and 23:45 local"
    assert before.shipped == 4 and before.delivered == 0, "D, E, F and J went in transit"
    assert before.backlog == 4, "B, H, I and K were paid and still to ship at the end of the 2nd"
    assert before.refunded == 1 and before.refund_ratio is None, "R-2, on a day without deliveries"
    assert (after.placed, after.paid, after.cancel_ratio) == (0, 0, None)
    assert after.shipped == 1 and after.backlog == 2, "I shipped; A and H still wait"
    [cod] = after.cod
    assert (cod.delivered, cod.expected, cod.settled) == (1, idr("80000.00"), idr("1000.00")), "E; D's late line"
    assert after.payouts == 1 and after.received == {"IDR": idr("70000.00")}


def test_one_shop_and_ratios_without_a_denominator(hub: Hub, world: World) -> None:
    with hub.sessions() as session:
        [store] = daily_check(session, DAY, account_id=world.store)
        assert daily_check(session, DAY, account_id=world.desk) == []
        assert daily_check(session, date(2026, 1, 1), account_id=world.jakarta)[0].paid == 0
    assert store.shop == "My store"
    assert ratio(1, 0) is None and ratio(1, 3) == Decimal("0.3333") and ratio(2, 3) == Decimal("0.6667")
    assert percent(Decimal("0.0250")) == "2.50 %" and percent(None) == "\N{EM DASH}"


def test_a_day_with_a_clock_change_runs_from_midnight_to_midnight() -> None:
    assert day_bounds(date(2026, 3, 29), ZoneInfo("Europe/Berlin")) == (at(28, 23), at(29, 22)), "23 hours"
    assert day_bounds(DAY, ZoneInfo("Asia/Jakarta")) == (START, END)


def test_a_shop_whose_timezone_is_not_a_timezone_is_named(hub: Hub, world: World) -> None:
    with transaction(hub.sessions) as session:
        shop = session.get(ChannelAccount, world.store)
        assert shop is not None
        shop.timezone = "Mars/Olympus"
    with hub.sessions() as session, pytest.raises(DailyCheckError, match="My store: timezone 'Mars/Olympus'"):
        daily_check(session, DAY)


def test_the_command_line_prints_the_check_and_its_json(env: Settings, hub: Hub, world: World) -> None:
    result = runner.invoke(cli.app, ["finance", "daily", "--day", "2026-03-03", "--json"])
    assert result.exit_code == 0, result.output
    jakarta, store = json.loads(result.stdout)
    assert jakarta["shop"] == "Tees ID" and jakarta["timezone"] == "Asia/Jakarta"
    assert jakarta["from"] == "2026-03-02T17:00:00+00:00" and jakarta["until"] == "2026-03-03T17:00:00+00:00"
    assert jakarta["orders"] == {"placed": 3, "paid": 2, "shipped": 2, "backlog": 3, "delivered": 3, "cancelled": 1,
                                 "refunded": 1}  # fmt: skip
    assert jakarta["refund_ratio"] == "0.3333" and jakarta["cancel_ratio"] == "0.3333"
    assert jakarta["cod"] == [
        {"currency": "IDR", "delivered": 1, "expected": "150000.00", "settled": "140000.00"},
        {"currency": "USD", "delivered": 1, "expected": "25.00", "settled": "24.00"},
    ]
    assert jakarta["payouts"] == {"received": 1, "amounts": [{"currency": "IDR", "amount": "500000.00"}]}
    assert jakarta["exceptions"] == {"open": 2, "at_stake": [{"currency": "IDR", "amount": "135000.00"}]}
    assert store["refund_ratio"] is None

    result = runner.invoke(cli.app, ["finance", "daily", "--day", "2026-03-03", "--shop", str(world.jakarta)])
    assert result.exit_code == 0, result.output
    text = result.stdout
    assert "Tees ID" in text and "My store" not in text and "Asia/Jakarta" in text
    assert "150000.00 IDR" in text and "140000.00 IDR" in text and "25.00 USD" in text and "24.00 USD" in text
    assert "33.33 %" in text and "500000.00 IDR" in text and "135000.00 IDR" in text


def test_the_command_line_refuses_a_bad_day_and_an_unknown_shop(env: Settings, hub: Hub, world: World) -> None:
    result = runner.invoke(cli.app, ["finance", "daily", "--day", "3 March"])
    assert result.exit_code == 2 and "3 March" in result.output
    result = runner.invoke(cli.app, ["finance", "daily", "--day", "2026-03-03", "--shop", str(world.desk)])
    assert result.exit_code == 2 and f"channel account {world.desk} has no orders or finance data" in result.stderr
