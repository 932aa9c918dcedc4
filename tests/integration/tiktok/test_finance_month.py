"""A simulated month of a Malaysian TikTok shop, every part real: sandbox buyers order (some cash on delivery), the
orders are delivered, the shop's returns desk takes some back and the hub refunds them on TikTok after they settled;
TikTok settles each order three days after delivery, holds 10% of every statement for a week, and pays out. The hub
imports it all, reconciles every order and exports journals.

Run clean, nothing is reported. Run with one discrepancy of every kind injected in the sandbox (an order never
settled, one settled short, one settled late, a refund never deducted, a referral fee at another rate, money for an
order the shop never had), each is reported once, with the right money at stake, and nothing else. Every payout's
journal entry balances; a re-import changes nothing and a second run finds the same."""

from __future__ import annotations

import io
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from shopbridge import cli
from shopbridge.demo.world import record_initial_stock
from shopbridge.domain.finance import ExceptionKind
from shopbridge.services import cod, finance_daily, journal, manual_orders, payouts, reconciliation
from shopbridge.services.access import add_user
from shopbridge.services.fulfilment import Fulfilment, record_shipment
from shopbridge.store.db import transaction
from shopbridge.store.tables import ChannelAccount, FinanceException, FinanceTransaction, Order, OrderLink
from tests.integration.tiktok.harness import World, tiktok_world, wait_until
from tests.integration.tiktok.test_finance_import import account_of, cli_env, next_day
from tests.integration.tiktok.test_fulfilment_back import HOLD_SECONDS
from tests.integration.tiktok.test_returns import pos_account, settled, take_back

runner = CliRunner()
DAYS_OF_ORDERS = 8
SETTLE_DAYS = 12  # after the last order: every settlement, reserve release and payout has happened
SHOP_TERMS = {"region": "MY", "settlement_delay_days": 3, "reserve_rate": "0.10", "reserve_days": 7}
HUB_RATES = {"referral_fee_rate": "0.06", "transaction_fee_rate": "0.029", "settlement_delay_days": "3"}
BASKETS = ({"TEE-M": 2}, {"MUG": 1}, {"TEE-L": 1, "MUG": 2})
PRICES = {"TEE-M": "39.00", "TEE-L": "39.00", "MUG": "18.50"}  # what the shop asks on WhatsApp, in MYR
COURIER = ["JNT", "--name", "J&T Express", "--column", "reference=AWB", "--column", "order=Ref", "--column",
           "collected=COD", "--column", "fee=Fee", "--column", "remitted_on=Paid"]  # fmt: skip


def sandbox_now(world: World) -> datetime:
    return datetime.fromtimestamp(float(world.control.get("/_sandbox/clock").json()["now"]), UTC)


def delivered(world: World, items: dict[str, int], **extra: Any) -> str:
    """A buyer's order past its hold, shipped with TikTok's label, collected and delivered; its TikTok id."""
    external_id = world.place_order(items, shipping_fee="4.00", tax="1.20", **extra)
    wait_until(lambda: world.hub_order(external_id), message="the order in the hub")
    world.advance(HOLD_SECONDS)
    wait_until(lambda: world.sandbox_order(external_id)["status"] == "AWAITING_SHIPMENT", message="past its hold")
    for step in ("ship", "collect", "deliver"):
        world.control.post(f"/_sandbox/orders/{external_id}/{step}").raise_for_status()
    return external_id


def inject(world: World, kind: str, **fields: Any) -> dict[str, Any]:
    answer = world.control.post("/_sandbox/finance/discrepancies", json={"kind": kind, **fields})
    assert answer.status_code == 201, answer.text
    return dict(answer.json())


def hub_order(world: World, external_id: str) -> Order:
    with world.hub.sessions() as session:
        found = session.scalar(select(Order).where(Order.external_id == external_id))
        assert found is not None
        session.expunge(found)
        return found


def sale_line(world: World, external_id: str) -> FinanceTransaction:
    with world.hub.sessions() as session:
        found = session.scalar(
            select(FinanceTransaction).where(
                FinanceTransaction.external_order_id == external_id, FinanceTransaction.revenue_minor > 0
            )
        )
        assert found is not None
        session.expunge(found)
        return found


def open_exceptions(world: World) -> set[tuple[str, str, int]]:
    with world.hub.sessions() as session:
        rows = session.scalars(select(FinanceException).where(FinanceException.cleared_at.is_(None)))
        return {(row.kind, row.external_order_id or "", row.amount_minor) for row in rows}


def reconcile(world: World, account_id: int) -> reconciliation.RunCounts:
    """One reconciliation run, as the hub's job does it, at the sandbox's time (the month ran on its clock)."""
    with transaction(world.hub.sessions) as session:
        account = session.get(ChannelAccount, account_id)
        assert account is not None
        return reconciliation.reconcile(session, account, now=sandbox_now(world))


def whatsapp_cod_order(world: World, key: str, items: dict[str, int]) -> Order:
    """A cash-on-delivery order a buyer sent by WhatsApp, entered by staff."""
    entry = manual_orders.Entry(source="whatsapp", customer_name="Nurul Aina", cash_on_delivery=True,
                                lines=tuple(manual_orders.EntryLine(sku, n, Decimal(PRICES[sku]))
                                            for sku, n in items.items()))  # fmt: skip
    with transaction(world.hub.sessions) as session:
        entered = manual_orders.enter(session, entry, idempotency_key=key, currency="MYR", now=world.hub.clock.now(),
                                      actor="ops@example.com")  # fmt: skip
    return hub_order(world, entered.external_id)


def courier_ships(world: World, order: Order, tracking: str) -> None:
    """The merchant's store hands the order to J&T and reports it (what a store connector records), and the hub
    shows the order shipped on its own channel."""
    with transaction(world.hub.sessions) as session:
        store = session.scalar(select(ChannelAccount).where(ChannelAccount.label == "Back room"))
        if store is None:
            store = ChannelAccount(channel="shopify", label="Back room", external_id="back-room.example",
                                   currency="MYR", settings={"fulfils_orders": False})  # fmt: skip
            session.add(store)
            session.flush()
        link = OrderLink(order_id=order.id, channel_account_id=store.id, external_id=f"F-{order.id}", state="placed")
        session.add(link)
        session.flush()
        record_shipment(session, link, Fulfilment(f"S-{order.id}", "J&T Express", tracking, None, [],
                                                  world.hub.clock.now()), now=world.hub.clock.now())  # fmt: skip
    wait_until(lambda: hub_order(world, order.external_id).status == "in_transit", message="the order shipped")


@pytest.mark.parametrize("discrepancies", [False, True], ids=["clean", "injected"])
def test_a_month_of_money_reconciles_and_every_injected_discrepancy_is_found(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, discrepancies: bool
) -> None:
    with tiktok_world(database_url, tmp_path, shop_terms=SHOP_TERMS, currency="MYR",
                      timezone="Asia/Kuala_Lumpur") as world:  # fmt: skip
        account_id, pos_id = account_of(world), pos_account(world)
        with transaction(world.hub.sessions) as session:
            add_user(session, "finance@example.com", "finance", now=world.hub.clock.now())
            account = session.get(ChannelAccount, account_id)
            assert account is not None
            reconciliation.configure(account, HUB_RATES)

        # The month: orders every day, a third of them cash on delivery, a fifth through a creator. With
        # discrepancies, the sandbox is told of one right after its order is delivered, before it settles.
        withheld, unrefunded, refunded, short, late, overcharged = 1, 2, 5, 4, 7, 10
        injections = {
            withheld: ("withhold", {}),
            short: ("revenue_delta", {"amount": "-1.50"}),
            late: ("delay", {"days": 6}),  # on top of the three days the shop's terms say
            overcharged: ("fee_rate", {"referral_fee_rate": "0.08"}),
            unrefunded: ("skip_refund", {}),
        }
        next_day(world)
        placed: list[str] = []
        for day in range(DAYS_OF_ORDERS):
            for n, basket in enumerate(BASKETS):
                extra = {"is_cod": (day + n) % 3 == 0}
                if (day * 3 + n) % 5 == 0:
                    extra["affiliate_commission_rate"] = "0.10"
                placed.append(delivered(world, basket, **extra))
                if discrepancies and len(placed) - 1 in injections:
                    kind, fields = injections[len(placed) - 1]
                    inject(world, kind, order_id=placed[-1], **fields)
            if discrepancies and day == 3:
                unknown = inject(world, "unknown_order", shop_id=world.shop_id, amount="12.34")
            next_day(world)
        withheld_id, unrefunded_id, refunded_id = placed[withheld], placed[unrefunded], placed[refunded]
        short_id, late_id, overcharged_id = placed[short], placed[late], placed[overcharged]
        expected: set[tuple[str, str, int]] = set()

        # Two orders brought back to the shop's desk after they settled: the hub refunds both on TikTok.
        assert world.sandbox_order(refunded_id)["sandbox_settlement"]["statement_id"], "settled before its refund"
        returns = {}
        for number, external_id in (("R-1", refunded_id), ("R-2", unrefunded_id)):
            sku = next(iter(BASKETS[placed.index(external_id) % 3]))
            returns[external_id] = settled(world, take_back(world, pos_id, number, external_id, {sku: 1}), "refunded")
        for _ in range(SETTLE_DAYS):
            next_day(world)
        wait_until(lambda: all(hub_order(world, ref).status in ("delivered", "completed") for ref in placed),
                   message="every order delivered in the hub")  # fmt: skip

        # The finance team imports the month.
        cli_env(world, monkeypatch)
        imported = runner.invoke(cli.app, ["--as", "finance@example.com", "finance", "import"])
        assert imported.exit_code == 0, imported.output
        first = reconcile(world, account_id)
        assert first.orders == 0 or first.orders >= len(placed) - 1

        if discrepancies:
            # Each with the money at stake: what TikTok and the hub say, worked out independently of the rules.
            revenue = hub_order(world, withheld_id).subtotal_minor
            assert revenue is not None
            late_line, fee_line = sale_line(world, late_id), sale_line(world, overcharged_id)
            expected = {
                (ExceptionKind.MISSING_SETTLEMENT.value, withheld_id, revenue),
                (ExceptionKind.AMOUNT_DIFFERENCE.value, short_id, 150),
                (ExceptionKind.LATE_RELEASE.value, late_id, late_line.settlement_minor),
                (ExceptionKind.FEE_OUTSIDE_RATE.value, overcharged_id,
                 round(fee_line.revenue_minor * 0.08) - round(fee_line.revenue_minor * 0.06)),
                (ExceptionKind.REFUND_NOT_DEDUCTED.value, unrefunded_id,
                 int(returns[unrefunded_id].refund_minor or 0)),
                (ExceptionKind.UNKNOWN_ORDER.value, str(unknown["order_id"]), 1234),
            }  # fmt: skip
        assert open_exceptions(world) == expected

        # The clean refund was deducted after the order settled; both refunds show in some payout's breakdown.
        with world.hub.sessions() as session:
            shown = list(payouts.payouts(session, account_id=account_id, limit=100))
            assert shown and all(found.adds_up for found in shown)
            assert sum(found.breakdown.refunds for found in shown) < 0
            assert sum(found.breakdown.reserve for found in shown) == 0  # every reserve held has been released
            assert any(found.breakdown.reserve < 0 for found in shown)
            # Every payout's journal entry balances, and the bank receives exactly what TikTok paid.
            entries = journal.payout_entries(session, since=date(2000, 1, 1), until=date(2100, 1, 1),
                                             account_id=account_id)  # fmt: skip
            assert len(entries) == len(shown) and all(entry.balanced for entry in entries)
            written = io.StringIO()
            journal.write_csv(entries, journal.chart(session), written)
            assert written.getvalue().count("\n") > len(entries)

        # Cash on delivery by WhatsApp: three orders shipped with J&T and delivered; J&T's remittance file pays
        # them, less its fee (short by 5.00 on one, with discrepancies).
        record_initial_stock(world.hub, {"TEE-M": 100, "TEE-L": 100, "MUG": 100}, key_prefix="month")
        manual = [whatsapp_cod_order(world, f"chat-{n}", basket) for n, basket in enumerate(BASKETS)]
        lines = ["AWB,Ref,COD,Fee,Paid"]
        for n, order in enumerate(manual):
            courier_ships(world, order, f"JT{n}")
            delivered_cli = runner.invoke(cli.app, ["orders", "delivered", str(order.id)])
            assert delivered_cli.exit_code == 0, delivered_cli.output
            collected = order.total_minor - (500 if discrepancies and n == 1 else 0)
            lines.append(f"JT{n},{order.external_id},{collected / 100:.2f},1.00,{date.today().isoformat()}")
        remittance = tmp_path / "jt-remittance.csv"
        remittance.write_text("\n".join(lines) + "\n")
        added = runner.invoke(cli.app, ["--as", "finance@example.com", "finance", "cod", "courier", "add", *COURIER])
        assert added.exit_code == 0, added.output
        remitted = runner.invoke(cli.app, ["--as", "finance@example.com", "finance", "cod", "import", str(remittance),
                                           "--courier", "JNT"])  # fmt: skip
        assert remitted.exit_code == 0, remitted.output
        with world.hub.sessions() as session:
            summary = cod.cod_report(session, since=date.today(), until=date.today(), timezone="Asia/Kuala_Lumpur")
            [total] = summary.report.totals
            assert (total.orders, total.currency) == (3, "MYR")
            assert total.expected.to_minor() == sum(order.total_minor for order in manual)
            assert total.fees.to_minor() == 300
            assert total.outstanding.to_minor() == (500 if discrepancies else 0)
            [remitted_entry] = journal.remittance_entries(session, since=date.today(), until=date.today())
            assert remitted_entry.balanced and remitted_entry.currency == "MYR"

            # The daily checks of the month count every payout TikTok paid, on the day it reached the bank.
            paid = [found for found in shown if found.paid_at is not None]
            zone = ZoneInfo("Asia/Kuala_Lumpur")
            days = {found.paid_at.astimezone(zone).date() for found in paid if found.paid_at is not None}
            received = sum(check.payouts for day in days
                           for check in finance_daily.daily_check(session, day, account_id=account_id))  # fmt: skip
            assert received == len(paid) > 0

        # A re-import changes nothing, and a second run finds the same, nothing new, nothing cleared.
        again = runner.invoke(cli.app, ["--as", "finance@example.com", "finance", "import"])
        assert again.exit_code == 0, again.output
        assert " 0 new, 0 changed" in again.output and "transactions 0 new, 0 changed" in again.output
        second = reconcile(world, account_id)
        assert (second.new, second.cleared) == (0, 0)
        assert open_exceptions(world) == expected
