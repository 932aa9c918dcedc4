"""TikTok's statements, their transactions and payments imported into the hub from the sandbox: the rows say what
TikTok's Finance API says, in minor units beside their currency; a re-import changes nothing; an incremental pass
(the scheduled job) reads only the new statement's transactions."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from shopbridge import cli
from shopbridge.channels.tiktok.channel import context_of
from shopbridge.channels.tiktok.finance import (
    IMPORT_FINANCE,
    PAYMENTS_PATH,
    STATEMENTS_PATH,
    TRANSACTIONS_PATH,
    queue_finance_import,
)
from shopbridge.channels.tiktok.shop import Shop
from shopbridge.services.access import add_user
from shopbridge.store.db import transaction
from shopbridge.store.tables import (
    AuditEntry,
    ChannelAccount,
    FinancePayment,
    FinanceStatement,
    FinanceTransaction,
    Job,
    Order,
)
from tests.integration.tiktok.harness import World, tiktok_world, wait_until

runner = CliRunner()
DAY = 86_400
HOLD_SECONDS = 3601
TX_CALL = "GET /finance/202309/statements/{statement_id}/statement_transactions"


def next_day(world: World) -> None:
    """Move the sandbox just past its next midnight (UTC): the day before closes into a statement."""
    now = float(world.control.get("/_sandbox/clock").json()["now"])
    world.advance((int(now) // DAY + 1) * DAY + 60 - now)


def completed(world: World, items: dict[str, int], **extra: Any) -> str:
    """A TikTok order past its hold, shipped, delivered and completed, and in the hub: its TikTok id."""
    external_id = world.place_order(items, **extra)
    wait_until(lambda: world.hub_order(external_id), message="the order in the hub")
    world.advance(HOLD_SECONDS)
    for step in ("ship", "collect", "deliver", "complete"):
        world.control.post(f"/_sandbox/orders/{external_id}/{step}").raise_for_status()
    return external_id


def account_of(world: World) -> int:
    with world.hub.sessions() as session:
        account_id = session.scalar(select(ChannelAccount.id).where(ChannelAccount.channel == "tiktok"))
        assert account_id is not None
        return account_id


def tiktok_says(world: World) -> tuple[list[dict[str, Any]], dict[str, list[dict[str, Any]]], list[dict[str, Any]]]:
    """Statements, their transactions and payments as TikTok's Finance API gives them to the shop."""
    context = context_of(world.hub.channels)
    assert context is not None
    shop = Shop(context, account_of(world))
    statements = list(shop.pages("GET", STATEMENTS_PATH, "statements", query={"sort_field": "statement_time"}))
    lines = {s["id"]: list(shop.pages("GET", TRANSACTIONS_PATH.format(statement_id=s["id"]), "statement_transactions",
                                      query={"sort_field": "order_create_time"})) for s in statements}  # fmt: skip
    payments = list(shop.pages("GET", PAYMENTS_PATH, "payments", query={"sort_field": "create_time"}))
    return statements, lines, payments


def cents(amount: str) -> int:
    return int(Decimal(amount) * 100)


def snapshot(world: World) -> dict[str, list[tuple[Any, ...]]]:
    with world.hub.sessions() as session:
        return {
            table.__tablename__: [tuple(row) for row in session.execute(select(table.__table__).order_by(table.id))]
            for table in (FinanceStatement, FinanceTransaction, FinancePayment)
        }


def transaction_calls(world: World) -> int:
    calls = world.control.get("/_sandbox/truth/api_calls").json()["calls"]
    return sum(call["count"] for call in calls if call["endpoint"] == TX_CALL)


def passes(world: World) -> int:
    """Import jobs that succeeded."""
    with world.hub.sessions() as session:
        done = select(func.count()).select_from(Job).where(Job.kind == IMPORT_FINANCE, Job.state == "succeeded")
        return int(session.scalar(done) or 0)


def cli_env(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    """The environment of a `shopbridge` command beside the world's hub."""
    settings = world.hub.settings
    assert settings.secret_key is not None
    for key, value in {
        "DATABASE_URL": settings.effective_database_url, "SECRET_KEY": settings.secret_key.get_secret_value(),
        "DATA_DIR": str(settings.data_dir), "LOG_LEVEL": "error", "CURRENCY": settings.currency,
        "TIMEZONE": settings.timezone, "TIKTOK_APP_KEY": settings.tiktok_app_key or "",
        "TIKTOK_APP_SECRET": settings.tiktok_app_secret.get_secret_value() if settings.tiktok_app_secret else "",
        "TIKTOK_API_BASE_URL": world.sandbox_url, "TIKTOK_AUTH_BASE_URL": world.sandbox_url,
    }.items():  # fmt: skip
        monkeypatch.setenv(f"SHOPBRIDGE_{key}", value)
    monkeypatch.setattr(cli.console, "width", 200)


def test_statements_transactions_and_payments_are_imported_once(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A shop in Singapore, where TikTok offers cash on delivery.
    with tiktok_world(
        database_url, tmp_path, shop_terms={"region": "SG"}, currency="SGD", timezone="Asia/Singapore"
    ) as world:
        account_id = account_of(world)
        # The pass scheduled at connect has run (there was nothing to import yet).
        wait_until(lambda: passes(world) == 1, message="the first scheduled pass")
        with transaction(world.hub.sessions) as session:
            add_user(session, "support@example.com", "support", now=world.hub.clock.now())
            add_user(session, "finance@example.com", "finance", now=world.hub.clock.now())

        # Two days of orders: a statement per day, the first paid a day after it closed.
        next_day(world)
        plain = completed(world, {"TEE-M": 2}, shipping_fee="5.00", tax="2.00")
        affiliate = completed(world, {"MUG": 1}, affiliate_commission_rate="0.10")
        next_day(world)
        cod = completed(world, {"TEE-L": 1}, is_cod=True)
        penalty_in = {"shop_id": world.shop_id, "amount": "-3.50", "type": "PLATFORM_PENALTY"}
        world.control.post("/_sandbox/finance/adjustments", json=penalty_in).raise_for_status()
        next_day(world)
        statements, lines, payments = tiktok_says(world)
        assert len(statements) == 2 and sum(map(len, lines.values())) == 4

        cli_env(world, monkeypatch)
        refused = runner.invoke(cli.app, ["--as", "support@example.com", "finance", "import"])
        assert refused.exit_code == 2 and "support" in refused.output
        imported = runner.invoke(cli.app, ["--as", "finance@example.com", "finance", "import"])
        assert imported.exit_code == 0, imported.output
        assert "statements 2 new, 0 changed, 0 unchanged; transactions 4 new, 0 changed, 0 unchanged; payments 2 " \
               "new, 0 changed, 0 unchanged" in imported.output  # fmt: skip

        with world.hub.sessions() as session:
            held = {row.external_id: row for row in session.scalars(select(FinanceStatement))}
            tx = {row.external_id: row for row in session.scalars(select(FinanceTransaction))}
            paid = {row.external_id: row for row in session.scalars(select(FinancePayment))}
            hub_orders = {ref: order_id for ref, order_id in session.execute(select(Order.external_id, Order.id))}
            [entry] = session.scalars(select(AuditEntry).where(AuditEntry.action == "finance.import"))
        assert entry.actor == "finance@example.com" and entry.subject_id == str(account_id)
        assert entry.after is not None and entry.after["transactions"]["new"] == 4

        # Every row says what TikTok says, to the cent, in its currency.
        for found in statements:
            row = held[found["id"]]
            assert (row.currency, row.payment_status, row.payment_external_id) == (
                found["currency"], found["payment_status"], found["payment_id"])  # fmt: skip
            assert row.settlement_minor == cents(found["settlement_amount"])
            assert (row.revenue_minor, row.fee_minor, row.shipping_cost_minor, row.adjustment_minor) == tuple(
                cents(found[key]) for key in ("revenue_amount", "fee_amount", "shipping_cost_amount",
                                              "adjustment_amount"))  # fmt: skip
            assert int(row.statement_time.timestamp()) == found["statement_time"]
            assert row.transaction_count == len(lines[found["id"]])
            mine = [t for t in tx.values() if t.statement_id == row.id]
            assert sum(t.settlement_minor for t in mine) == row.settlement_minor
            for line in lines[found["id"]]:
                t = tx[line["id"]]
                assert (t.type, t.currency, t.external_order_id) == (line["type"], line["currency"],
                                                                     line.get("order_id"))  # fmt: skip
                assert t.order_id == hub_orders.get(line.get("order_id", ""))
                for key in (
                    "revenue",
                    "fee",
                    "shipping_cost",
                    "adjustment",
                    "settlement",
                    "referral_fee",
                    "transaction_fee",
                    "affiliate_commission",
                    "platform_commission",
                ):
                    assert getattr(t, f"{key}_minor") == cents(line.get(f"{key}_amount", "0")), key
        assert [row.payment_status for row in sorted(held.values(), key=lambda r: r.statement_time)] == [
            "PAID", "PROCESSING"]  # fmt: skip
        for found in payments:
            row = paid[found["id"]]
            assert (row.amount_minor, row.currency, row.status) == (
                cents(found["amount"]["value"]), found["amount"]["currency"], found["status"])  # fmt: skip
            assert row.bank_account == found["bank_account"] and row.reserve_minor == 0

        # One order worked by hand: 2 tees of 19.90, 5.00 shipping (the label costs as much), 2.00 tax.
        [order_line] = [t for t in tx.values() if t.external_order_id == plain]
        assert order_line.order_id == hub_orders[plain] and order_line.revenue_minor == 3980
        assert order_line.referral_fee_minor == -239  # 6 % of 39.80
        assert order_line.transaction_fee_minor == -136  # 2.9 % of the 46.80 the buyer paid
        assert order_line.shipping_cost_minor == 0 and order_line.settlement_minor == 3980 - 239 - 136
        [with_affiliate] = [t for t in tx.values() if t.external_order_id == affiliate]
        assert with_affiliate.affiliate_commission_minor == -85  # 10 % of 8.50
        [with_cod] = [t for t in tx.values() if t.external_order_id == cod]
        assert with_cod.fee_minor < with_cod.referral_fee_minor + with_cod.transaction_fee_minor  # the COD fee
        [penalty] = [t for t in tx.values() if t.type == "PLATFORM_PENALTY"]
        assert penalty.adjustment_minor == penalty.settlement_minor == -350 and penalty.external_order_id is None

        # A re-import from the first day reads everything again and changes nothing.
        before, calls = snapshot(world), transaction_calls(world)
        first_day = min(row.statement_time for row in held.values()).date().isoformat()
        again = runner.invoke(cli.app, ["finance", "import", "--shop", str(account_id), "--since", first_day])
        assert again.exit_code == 0, again.output
        assert "statements 0 new, 0 changed, 2 unchanged; transactions 0 new, 0 changed, 4 unchanged; payments 0 " \
               "new, 0 changed, 2 unchanged" in again.output  # fmt: skip
        assert snapshot(world) == before and transaction_calls(world) == calls + 2

        # A new day: the scheduled job reads the new statement's transactions only, and sees the payout paid.
        late = completed(world, {"MUG": 2})
        next_day(world)
        calls = transaction_calls(world)
        with transaction(world.hub.sessions) as session:
            queue_finance_import(session, account_id, now=world.hub.clock.now())
        wait_until(lambda: passes(world) == 2, message="the queued pass")
        assert transaction_calls(world) == calls + 1
        after = snapshot(world)
        assert len(after["finance_statements"]) == 3 and len(after["finance_payments"]) == 3
        assert len(after["finance_transactions"]) == 5
        assert after["finance_transactions"] == before["finance_transactions"] + [
            row for row in after["finance_transactions"] if row[4] == "ORDER" and row[5] == late
        ]
        with world.hub.sessions() as session:
            statuses = session.scalars(
                select(FinanceStatement.payment_status).order_by(FinanceStatement.statement_time)
            )
            assert list(statuses) == ["PAID", "PAID", "PROCESSING"]

        assert runner.invoke(cli.app, ["finance", "import", "--shop", "987654"]).exit_code == 2
