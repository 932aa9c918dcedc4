"""Cash on delivery against a real database: COD orders entered by hand and from TikTok, shipped with couriers;
remittance files imported once, bad files refused whole with row and column, lines the hub cannot take reported one by
one; the report's expected, collected, fees, remitted and outstanding per day and courier; the command line."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import typer
from sqlalchemy import func, select
from typer.testing import CliRunner

from shopbridge import cli
from shopbridge.bootstrap import Hub
from shopbridge.cli_cod import cod_app
from shopbridge.config import Settings
from shopbridge.domain.cod import UNASSIGNED, CodFigures, ColumnMapping
from shopbridge.domain.money import Money
from shopbridge.domain.orders import Order, OrderLine, OrderStatus
from shopbridge.services import cod, manual_orders
from shopbridge.services.access import add_user
from shopbridge.services.fulfilment import Fulfilment, record_shipment
from shopbridge.services.orders import upsert_order
from shopbridge.store.db import transaction
from shopbridge.store.tables import (
    AuditEntry,
    ChannelAccount,
    CodRemittance,
    CodRemittanceFile,
    Courier,
    Location,
    OrderLink,
    Product,
    StockLevel,
    Variant,
)
from shopbridge.store.tables import Order as OrderRow
from shopbridge.store.tables import OrderLine as OrderLineRow

runner = CliRunner()
JAN = [datetime(2026, 1, day, tzinfo=UTC) for day in range(1, 32)]  # JAN[n]: 1 January + n days, midnight UTC
ACTOR = "finance@example.com"

JNE_COLUMNS = ["reference=Waybill", "order=Order No", "collected=COD Amount", "fee=Fee", "collected_on=Delivered",
               "remitted_on=Paid On"]  # fmt: skip
JNT_COLUMNS = ["reference=AWB", "order=Ref", "collected=Gross", "remitted=Net", "remitted_on=Date", "currency=Cur"]
JNE_FILE = (
    b"Waybill,Order No,COD Amount,Fee,Delivered,Paid On\n"
    b"JX100,WA-000001,41.80,1.00,03/01/2026,06/01/2026\n"  # by the order's number
    b"JX200,JX200,7.50,0.50,,06/01/2026\n"  # by its shipment's tracking number
    b"JX999,WA-999999,10.00,0.50,,06/01/2026\n"  # no such order
    b"JX300,FB-000003,19.90,0.50,,06/01/2026\n"  # a paid order
    b"JX777,JX777,19.90,0.50,,08/01/2026\n"  # an order the hub has not seen ship yet
)
# With a BOM and CRLF, as spreadsheets save; the order named by its TikTok package's tracking number.
JNT_FILE = b"\xef\xbb\xbfAWB,Ref,Gross,Net,Date,Cur\r\nJT900,JT900,25.00,24.25,2026-01-08,usd\r\n"


PACKAGE = {"id": "pkg-1", "tracking_number": "JT900", "shipping_provider": "J&T Express"}


@dataclass
class World:
    hub: Hub
    orders: dict[str, int]


def _entry(source: str, lines: dict[str, int], cod_order: bool = True) -> manual_orders.Entry:
    return manual_orders.Entry(
        source=source, customer_name="Siti Rahma", cash_on_delivery=cod_order, shipping=Decimal("2.00" if
        "TEE-M" in lines and lines["TEE-M"] == 2 else "0"),
        lines=tuple(manual_orders.EntryLine(sku, quantity) for sku, quantity in lines.items()),
    )  # fmt: skip


def _progress(hub: Hub, order_id: int, status: OrderStatus, at: datetime) -> None:
    """The order read again in a later status, through the upsert every channel's orders go through (the hub has no
    other way for an order to move on: status history, stock and release gate follow as for any channel)."""
    with transaction(hub.sessions) as session:
        row = session.get(OrderRow, order_id)
        assert row is not None
        account = session.get(ChannelAccount, row.channel_account_id)
        assert account is not None
        lines = session.scalars(select(OrderLineRow).where(OrderLineRow.order_id == order_id)).all()
        read = Order(
            channel=account.channel, external_id=row.external_id, channel_status=status.value.upper(), status=status,
            currency=row.currency, total=Money.from_minor(row.total_minor, row.currency),
            subtotal=None if row.subtotal_minor is None else Money.from_minor(row.subtotal_minor, row.currency),
            shipping=None if row.shipping_minor is None else Money.from_minor(row.shipping_minor, row.currency),
            tax=None, created_at=row.channel_created_at, updated_at=at, payment_method=row.payment_method,
            is_cod=row.is_cod, buyer=dict(row.buyer), recipient=dict(row.recipient),
            packages=tuple(row.packages.get("packages") or ()), warehouse_id=row.packages.get("warehouse_id"),
            lines=tuple(OrderLine(external_sku_id=line.external_sku_id or str(line.sku), seller_sku=line.sku,
                                  title=line.title, quantity=line.quantity,
                                  unit_price=Money.from_minor(line.unit_price_minor, line.currency), line_item_ids=())
                        for line in lines),
        )  # fmt: skip
        upsert_order(session, account, read, source="test", now=at)


def _ship(hub: Hub, order_id: int, carrier: str, tracking: str, at: datetime) -> None:
    """The store that fulfils the order ships it (a shipment with the carrier and tracking number, as the store
    reports it), and the order is in transit."""
    with transaction(hub.sessions) as session:
        store = session.scalar(select(ChannelAccount).where(ChannelAccount.channel == "shopify"))
        if store is None:
            store = ChannelAccount(channel="shopify", label="Store", external_id="store.example", currency="USD")
            session.add(store)
            session.flush()
        link = OrderLink(order_id=order_id, channel_account_id=store.id, external_id=f"S{order_id}", state="placed")
        session.add(link)
        session.flush()
        record_shipment(session, link, Fulfilment(f"F{order_id}", carrier, tracking, None, [], at), now=at)
    _progress(hub, order_id, OrderStatus.IN_TRANSIT, at)


@pytest.fixture
def world(hub: Hub) -> World:
    """COD orders entered by hand and one from TikTok, shipped and delivered at set times:

    WA-000001  COD 41.80  JNE ("jne express", JX100)   shipped 2 Jan 10:00, delivered 3 Jan
    PH-000002  COD  7.50  JNE (JX200)                  shipped 2 Jan 18:00 (3 Jan in Jakarta)
    FB-000003  paid 19.90 JNE (JX300)                  shipped 2 Jan
    WA-000004  COD 19.90  "Kurir Lokal", no courier    shipped 5 Jan
    FB-000005  COD 19.90                               not shipped (yet)
    T-1001     COD 25.00  TikTok's provider J&T Express, package JT900: in transit 3 Jan, delivered 4 Jan
    """
    with transaction(hub.sessions) as session:
        main, product = Location(code="MAIN", name="Main"), Product(title="Merch")
        session.add_all([main, product])
        session.flush()
        tee = Variant(product_id=product.id, sku="TEE-M", title="Cotton tee M", price_minor=1990, currency="USD")
        mug = Variant(product_id=product.id, sku="MUG", title="Mug", price_minor=750, currency="USD")
        session.add_all([tee, mug])
        session.flush()
        session.add_all([StockLevel(variant_id=tee.id, location_id=main.id, on_hand=20),
                         StockLevel(variant_id=mug.id, location_id=main.id, on_hand=5)])  # fmt: skip
        add_user(session, ACTOR, "finance", now=hub.clock.now())
        add_user(session, "support@example.com", "support", now=hub.clock.now())
    orders: dict[str, int] = {}
    for key, entry in enumerate([_entry("whatsapp", {"TEE-M": 2}), _entry("phone", {"MUG": 1}),
                                 _entry("facebook", {"TEE-M": 1}, cod_order=False), _entry("whatsapp", {"TEE-M": 1}),
                                 _entry("facebook", {"TEE-M": 1})]):  # fmt: skip
        with transaction(hub.sessions) as session:
            entered = manual_orders.enter(session, entry, idempotency_key=f"chat-{key}", currency="USD", now=JAN[0],
                                          actor="support@example.com")  # fmt: skip
        orders[entered.external_id] = entered.order_id
    assert list(orders) == ["WA-000001", "PH-000002", "FB-000003", "WA-000004", "FB-000005"]
    with transaction(hub.sessions) as session:
        tiktok = ChannelAccount(channel="tiktok", label="TikTok US", external_id="shop-1", currency="USD")
        session.add(tiktok)
        session.flush()
        line = OrderLine("sku-1", "TEE-M", "Cotton tee M", 1, Money.parse("25.00", "USD"), ("li-1",))
        read = Order(channel="tiktok", external_id="T-1001", channel_status="IN_TRANSIT",
                     status=OrderStatus.IN_TRANSIT, currency="USD", total=Money.parse("25.00", "USD"), subtotal=None,
                     shipping=None, tax=None, lines=(line,), created_at=JAN[1], updated_at=JAN[2].replace(hour=8),
                     payment_method="Cash on delivery", is_cod=True,
                     packages=(PACKAGE,))  # fmt: skip
        orders["T-1001"] = upsert_order(session, tiktok, read, source="webhook", now=JAN[2]).order_id
    _progress(hub, orders["T-1001"], OrderStatus.DELIVERED, JAN[3])
    _ship(hub, orders["WA-000001"], "jne express", "JX100", JAN[1].replace(hour=10))
    _progress(hub, orders["WA-000001"], OrderStatus.DELIVERED, JAN[2].replace(hour=9))
    _ship(hub, orders["PH-000002"], "JNE", "JX200", JAN[1].replace(hour=18))
    _ship(hub, orders["FB-000003"], "JNE", "JX300", JAN[1].replace(hour=11))
    _ship(hub, orders["WA-000004"], "Kurir Lokal", "KL1", JAN[4].replace(hour=9))
    return World(hub, orders)


def _couriers(hub: Hub) -> None:
    with transaction(hub.sessions) as session:
        cod.add_courier(session, "JNE", name="JNE Express", currency="USD", actor=ACTOR, now=JAN[0],
                        mapping=ColumnMapping.from_pairs(JNE_COLUMNS, "%d/%m/%Y"))  # fmt: skip
        cod.add_courier(session, "JNT", name="J&T Express", currency="USD", actor=ACTOR, now=JAN[0],
                        mapping=ColumnMapping.from_pairs(JNT_COLUMNS))  # fmt: skip


def _import(hub: Hub, courier: str, content: bytes, name: str = "remittance.csv") -> cod.ImportResult:
    with transaction(hub.sessions) as session:
        return cod.import_remittance(session, courier, name, content, actor=ACTOR, now=JAN[9])


def _report(hub: Hub, timezone: str = "UTC") -> cod.CodSummary:
    with hub.sessions() as session:
        return cod.cod_report(session, since=date(2026, 1, 1), until=date(2026, 1, 10), timezone=timezone)


def _day(summary: cod.CodSummary, day: int, courier: str) -> tuple[Any, ...]:
    (row,) = [row for row in summary.report.days if row.day == date(2026, 1, day) and row.courier == courier]
    return _figures(row)


def _figures(row: CodFigures) -> tuple[Any, ...]:
    return (row.orders, str(row.expected.amount), str(row.collected.amount), str(row.fees.amount),
            str(row.remitted.amount), str(row.outstanding.amount), row.outstanding_orders,
            row.oldest_outstanding_days)  # fmt: skip


def _stored(hub: Hub) -> dict[str, list[tuple[Any, ...]]]:
    with hub.sessions() as session:
        return {table.__tablename__: [tuple(row) for row in session.execute(select(table.__table__).order_by(table.id))]
                for table in (Courier, CodRemittanceFile, CodRemittance, AuditEntry)}  # fmt: skip


def test_remittances_are_imported_once_and_the_report_shows_what_couriers_owe(world: World) -> None:
    hub, orders = world.hub, world.orders
    _couriers(hub)
    first = _import(hub, "jne", JNE_FILE, "jne-2026-01-06.csv")
    assert (first.rows, first.new, first.already_imported, first.file_known) == (5, 2, 0, False)
    assert str(first.remitted) == "47.80 USD" and len(first.line_ids) == 2
    assert [str(problem) for problem in first.refused] == [
        "row 4, column 'Order No': no hub order is numbered 'WA-999999', and no shipment has that tracking number",
        "row 5, column 'Order No': order FB-000003 (Facebook) is not cash on delivery",
        "row 6, column 'Order No': no hub order is numbered 'JX777', and no shipment has that tracking number",
    ]
    with hub.sessions() as session:
        lines = {row.reference: row for row in session.scalars(select(CodRemittance))}
        file = session.scalar(select(CodRemittanceFile))
    assert file is not None
    assert (file.rows, file.total_minor, file.currency, file.imported_by) == (5, 9610, "USD", ACTOR)
    assert (lines["JX100"].order_id, lines["JX100"].collected_minor, lines["JX100"].fee_minor,
            lines["JX100"].remitted_minor, lines["JX100"].collected_on) == (orders["WA-000001"], 4180, 100, 4080,
                                                                            date(2026, 1, 3))  # fmt: skip
    assert lines["JX200"].order_id == orders["PH-000002"] and lines["JX200"].external_order_id == "JX200"

    before = _stored(hub)
    again = _import(hub, "JNE", JNE_FILE, "copy.csv")
    assert (again.new, again.already_imported, len(again.refused), again.file_known) == (0, 2, 3, True)
    assert _stored(hub) == before, "a file imported twice changes nothing"

    summary = _report(hub)
    #                                  orders expected collected fees remitted outstanding (orders, oldest)
    assert _day(summary, 2, "JNE") == (2, "49.30", "49.30", "1.50", "47.80", "0.00", 0, None)
    assert _day(summary, 3, "JNT") == (1, "25.00", "25.00", "0.00", "0.00", "25.00", 1, 7)  # delivered: JNT has it
    assert _day(summary, 5, UNASSIGNED) == (1, "19.90", "0.00", "0.00", "0.00", "19.90", 1, 5)
    assert len(summary.report.days) == 3, "the paid order and the one not shipped are not expected"
    (total,) = summary.report.totals
    assert _figures(total) == (4, "94.20", "74.30", "1.50", "47.80", "44.90", 2, 7)
    assert summary.courier_names == {"JNE": "JNE Express", "JNT": "J&T Express"}
    jakarta = _report(hub, "Asia/Jakarta")
    assert _day(jakarta, 2, "JNE")[:2] == (1, "41.80") and _day(jakarta, 3, "JNE")[:2] == (1, "7.50")

    # The order the file named by JX777 ships: the same file, imported again, now brings its line.
    _ship(hub, orders["FB-000005"], "JNE", "JX777", JAN[6])
    _progress(hub, orders["FB-000005"], OrderStatus.DELIVERED, JAN[7])
    later = _import(hub, "JNE", JNE_FILE)
    assert (later.new, later.already_imported, len(later.refused), later.file_known) == (1, 2, 2, True)
    jnt = _import(hub, "JNT", JNT_FILE, "jnt.csv")
    assert (jnt.new, jnt.refused) == (1, ())
    summary = _report(hub)
    assert _day(summary, 3, "JNT") == (1, "25.00", "25.00", "0.75", "24.25", "0.00", 0, None)
    assert _day(summary, 7, "JNE") == (1, "19.90", "19.90", "0.50", "19.40", "0.00", 0, None)
    assert _figures(summary.report.totals[0]) == (5, "114.10", "94.20", "2.75", "91.45", "19.90", 1, 5)
    with hub.sessions() as session:
        imports = session.scalars(select(AuditEntry).where(AuditEntry.action == "cod.import")).all()
    assert [entry.after["new"] for entry in imports if entry.after] == [2, 1, 1], "an import that adds nothing is not"
    assert {entry.actor for entry in imports} == {ACTOR}


@pytest.mark.parametrize(
    ("content", "problems"),
    [
        (b"Waybill,Order No,COD Amount,Fee,Delivered,Paid On\nJX100,WA-000001,41.80,-1.00,,06/01/2026\n"
         b"JX200,JX200,7.5O,0.50,,2026-01-06\n",
         ["row 2, column 'Fee': -1.00 is negative; remittance amounts are never below zero",
          "row 3, column 'COD Amount': '7.5O' is not an amount (write it like 1234.50, without thousands separators "
          "or currency signs)",
          "row 3, column 'Paid On': '2026-01-06' is not a date written %d/%m/%Y"]),
        (b"Waybill,Order,COD Amount,Paid On\nJX100,WA-000001,41.80,06/01/2026\n",
         ["row 1, column 'Order No': no such column (for order); the file's columns are: 'Waybill', 'Order', "
          "'COD Amount', 'Paid On'",
          "row 1, column 'Fee': no such column (for fee); the file's columns are: 'Waybill', 'Order', 'COD Amount', "
          "'Paid On'",
          "row 1, column 'Delivered': no such column (for collected_on); the file's columns are: 'Waybill', 'Order', "
          "'COD Amount', 'Paid On'"]),
        (b"Waybill,Order No,COD Amount,Fee,Delivered,Paid On\nJX100,WA-000001,41.80,1.00,,06/01/2026\nJX2\xff,",
         ["row 3: not UTF-8 text (byte 0xff); save the file as CSV UTF-8"]),
    ],
)  # fmt: skip
def test_a_malformed_file_is_refused_whole_naming_row_and_column(world: World, content: bytes,
                                                                  problems: list[str]) -> None:  # fmt: skip
    _couriers(world.hub)
    before = _stored(world.hub)
    with pytest.raises(cod.RemittanceRefused) as refused:
        _import(world.hub, "JNE", content, "bad.csv")
    assert [str(error) for error in refused.value.errors] == problems
    assert str(refused.value).startswith("bad.csv: row ")
    assert _stored(world.hub) == before, "nothing written, not even the file"


def test_a_line_in_another_currency_or_changing_an_imported_reference_is_refused(world: World) -> None:
    hub = world.hub
    _couriers(world.hub)
    with transaction(hub.sessions) as session:
        cod.add_courier(session, "NINJA", name="Ninja Van", currency="IDR", actor=ACTOR, now=JAN[0],
                        mapping=ColumnMapping.from_pairs(JNT_COLUMNS))  # fmt: skip
    ninja = _import(hub, "ninja", b"AWB,Ref,Gross,Net,Date,Cur\nN1,WA-000001,41800,41000,2026-01-06,IDR\n")
    assert [str(problem) for problem in ninja.refused] == [
        "row 2, column 'Cur': order WA-000001 is in USD; the line is in IDR"
    ]
    assert ninja.new == 0 and ninja.file_known is False
    _import(hub, "JNE", JNE_FILE, "jne-2026-01-06.csv")
    changed = _import(hub, "JNE", b"Waybill,Order No,COD Amount,Fee,Delivered,Paid On\n"
                                  b"JX100,WA-000001,41.80,2.00,03/01/2026,06/01/2026\n")  # fmt: skip
    assert [str(problem) for problem in changed.refused] == [
        "row 2, column 'Waybill': reference 'JX100' was imported from jne-2026-01-06.csv for order WA-000001 with "
        "collected 41.80 USD, fee 1.00 USD, remitted 40.80 USD on 2026-01-06; this row says otherwise"
    ]
    with hub.sessions() as session:
        assert session.scalar(select(func.sum(CodRemittance.fee_minor))) == 150, "the first figures stand"


def test_couriers_are_added_listed_and_changed_with_their_mapping(hub: Hub) -> None:
    _couriers(hub)
    mapping = ColumnMapping.from_pairs(JNE_COLUMNS)
    with transaction(hub.sessions) as session:
        for code, currency, message in [("jne", "USD", "courier JNE exists already"),
                                        ("Unassigned", "USD", "not 'unassigned'"),
                                        ("J N E", "USD", "1 to 50 letters"),
                                        ("POS", "dollars", "currency 'DOLLARS' is not an ISO 4217")]:  # fmt: skip
            with pytest.raises(cod.CodError, match=message):
                cod.add_courier(session, code, name="x", currency=currency, mapping=mapping, actor=ACTOR, now=JAN[0])
        with pytest.raises(cod.CourierNotFound, match=r"no courier 'DHL' \(couriers: JNE, JNT\)"):
            cod.get_courier(session, "DHL")
        dotted = ColumnMapping.from_pairs(JNE_COLUMNS, "%d.%m.%Y")
        changed = cod.update_courier(session, "jnt", name="J&T", mapping=dotted, actor=ACTOR, now=JAN[1])
        assert (changed.name, changed.mapping.date_format, changed.mapping.header("fee")) == ("J&T", "%d.%m.%Y", "Fee")
        cod.update_courier(session, "JNT", currency="IDR", actor=ACTOR, now=JAN[1])
    with hub.sessions() as session:
        listed = cod.list_couriers(session)
        actions = session.scalars(select(AuditEntry.action).where(AuditEntry.subject_type == "courier")).all()
    assert [(c.code, c.currency, c.files, c.lines) for c in listed] == [("JNE", "USD", 0, 0), ("JNT", "IDR", 0, 0)]
    assert sorted(actions) == ["cod.courier_add", "cod.courier_add", "cod.courier_update", "cod.courier_update"]


def test_a_courier_keeps_its_currency_once_it_has_remitted(world: World) -> None:
    _couriers(world.hub)
    _import(world.hub, "JNE", JNE_FILE)
    with transaction(world.hub.sessions) as session, pytest.raises(cod.CodError, match="its currency stays"):
        cod.update_courier(session, "JNE", currency="IDR", actor=ACTOR, now=JAN[1])


# --- the command line ---------------------------------------------------------------------------------------------


def _app() -> typer.Typer:
    """The COD commands under the root command's options (``--as``), as ``shopbridge finance cod`` has them."""
    app = typer.Typer()
    app.callback()(cli.root)
    app.add_typer(cod_app, name="cod")
    return app


def test_the_command_line_adds_couriers_imports_files_and_reports(world: World, env: Settings,
                                                                   tmp_path: Path) -> None:  # fmt: skip
    app = _app()
    columns = [option for column in JNE_COLUMNS for option in ("--column", column)]
    add = ["cod", "courier", "add", "JNE", "--name", "JNE Express", *columns, "--date-format", "%d/%m/%Y"]
    refused = runner.invoke(app, ["--as", "support@example.com", *add])
    assert refused.exit_code == 2 and "support: this change needs one of: owner, ops, finance" in refused.stderr
    added = runner.invoke(app, ["--as", ACTOR, *add])
    assert added.exit_code == 0, added.output
    assert "courier JNE (JNE Express), remits in USD: reference=Waybill, order=Order No" in added.stdout
    twice = runner.invoke(app, ["--as", ACTOR, "cod", "courier", "add", "X", "--name", "X", "--column", "order=A",
                                "--column", "order=B"])  # fmt: skip
    assert twice.exit_code == 2 and "field 'order' is named twice ('A' and 'B')" in twice.stderr
    listed = runner.invoke(app, ["--as", "support@example.com", "cod", "courier", "list"])
    assert listed.exit_code == 0 and "JNE Express" in listed.stdout and "%d/%m/%Y" in listed.stdout

    bad = tmp_path / "bad.csv"
    bad.write_bytes(b"Waybill,Order No,COD Amount,Fee,Delivered,Paid On\nJX100,WA-000001,41.80,x,,06/01/2026\n")
    malformed = runner.invoke(app, ["--as", ACTOR, "cod", "import", str(bad), "--courier", "jne"])
    assert malformed.exit_code == 2
    assert malformed.stderr.splitlines()[0].startswith("row 2, column 'Fee': 'x' is not an amount")
    assert "bad.csv: 1 problem(s); nothing was imported" in malformed.stderr
    good = tmp_path / "jne.csv"
    good.write_bytes(JNE_FILE)
    imported = runner.invoke(app, ["--as", ACTOR, "cod", "import", str(good), "--courier", "jne"])
    assert imported.exit_code == 1, imported.output
    assert ("jne.csv: 5 row(s) from JNE: 2 new (remitted 47.80 USD), 0 already imported, 3 refused"
            in imported.stdout)  # fmt: skip
    assert "refused: row 5, column 'Order No': order FB-000003 (Facebook) is not cash on delivery" in imported.stderr
    with world.hub.sessions() as session:
        assert session.scalar(select(func.count()).select_from(CodRemittance)) == 2
        audited = session.scalars(select(AuditEntry.actor).where(AuditEntry.action.like("cod.%"))).all()
    assert audited == [ACTOR, ACTOR], "the courier added and the file imported; the refused attempts changed nothing"
    support = runner.invoke(app, ["--as", "support@example.com", "cod", "import", str(good), "--courier", "jne"])
    assert support.exit_code == 2

    report = runner.invoke(app, ["--as", "support@example.com", "cod", "report", "--since", "2026-01-01", "--until",
                                 "2026-01-10"])  # fmt: skip
    assert report.exit_code == 0, report.output
    lines = [" ".join(line.replace("│", " ").split()) for line in report.stdout.splitlines()]
    assert "2026-01-02 JNE USD 2 49.30 49.30 1.50 47.80 0.00 0" in lines
    assert "2026-01-05 unassigned USD 1 19.90 0.00 0.00 0.00 19.90 1 5" in lines
    assert "JNE Express JNE USD 2 49.30 49.30 1.50 47.80 0.00 0" in lines
    assert "total USD 4 94.20 74.30 1.50 47.80 44.90 2 7" in lines
