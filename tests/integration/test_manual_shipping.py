"""After entry, a manual order against a real database and the hub's own job kinds: the store that fulfils it ships
it, the queued ``manual.ship_order`` runs through the worker and moves the order on (in transit once every unit has
left, with its history and the sale of its units), once however often it runs; staff mark it delivered from the
command line, refused with the reason for other channels' orders and for orders not shipped or cancelled; cash on
delivery then expects and counts it; and a store cancelling its order cancels the manual order too."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, cast
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Table, select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from shopbridge import cli
from shopbridge.bootstrap import Hub, default_registry
from shopbridge.config import Settings
from shopbridge.domain.clock import ManualClock
from shopbridge.domain.cod import ColumnMapping
from shopbridge.domain.money import Money
from shopbridge.domain.orders import CancelReason, Order, OrderLine, OrderStatus
from shopbridge.runtime import jobs
from shopbridge.runtime.registry import JobRegistry
from shopbridge.runtime.worker import Worker
from shopbridge.services import cancellations, cod, manual_orders
from shopbridge.services.access import add_user
from shopbridge.services.fulfilment import Fulfilment, cancelled_in_store, record_shipment
from shopbridge.services.orders import upsert_order
from shopbridge.services.stock import stock_of
from shopbridge.store.db import reading, transaction
from shopbridge.store.tables import (
    AuditEntry,
    ChannelAccount,
    Job,
    Location,
    OrderLink,
    OrderStatusChange,
    Product,
    Shipment,
    StockLevel,
    StockMovement,
    Variant,
)
from shopbridge.store.tables import Order as OrderRow

runner = CliRunner()
# Days before the real time: the command line's clock is the system's, and a delivery may not be in the future.
START = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=6)
ENTERED_AT = START + timedelta(hours=1)
SHIPPED_AT = START + timedelta(days=1, hours=10)
DELIVERED_AT = START + timedelta(days=2, hours=9)
OPS = "ops@example.com"


@pytest.fixture
def registry() -> JobRegistry:
    """The hub's own job kinds, the manual channel's among them, so queued jobs run as they do in production."""
    return default_registry()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


@pytest.fixture
def world(hub: Hub) -> Hub:
    """TEE-M (20 at MAIN, 19.90) and MUG (5, 7.50); a store that fulfils orders; courier JNE; ops and support."""
    with transaction(hub.sessions) as session:
        main, product = Location(code="MAIN", name="Main"), Product(title="Merch")
        session.add_all([main, product])
        session.flush()
        tee = Variant(product_id=product.id, sku="TEE-M", title="Cotton tee M", price_minor=1990, currency="USD")
        mug = Variant(product_id=product.id, sku="MUG", title="Mug", price_minor=750, currency="USD")
        session.add_all([tee, mug])
        session.flush()
        session.add_all([StockLevel(variant_id=tee.id, location_id=main.id, on_hand=20),
                         StockLevel(variant_id=mug.id, location_id=main.id, on_hand=5),
                         ChannelAccount(channel="shopify", label="Store", external_id="store.example",
                                        currency="USD")])  # fmt: skip
        add_user(session, OPS, "ops", now=START)
        add_user(session, "support@example.com", "support", now=START)
        cod.add_courier(session, "JNE", name="JNE Express", currency="USD", actor=OPS, now=START,
                        mapping=ColumnMapping.from_pairs(["reference=Waybill", "order=Order No",
                                                          "collected=COD Amount", "remitted_on=Paid On"]))  # fmt: skip
    return hub


def _enter(hub: Hub, key: str, lines: dict[str, int], *, cash_on_delivery: bool = True) -> int:
    entry = manual_orders.Entry(
        source="whatsapp", customer_name="Siti Rahma", cash_on_delivery=cash_on_delivery, shipping=Decimal("2.00"),
        lines=tuple(manual_orders.EntryLine(sku, quantity) for sku, quantity in lines.items()),
    )  # fmt: skip
    with transaction(hub.sessions) as session:
        entered = manual_orders.enter(session, entry, idempotency_key=key, currency="USD", now=ENTERED_AT,
                                      actor="support@example.com")  # fmt: skip
    return entered.order_id


def _link(session: Session, order_id: int) -> OrderLink:
    """The order as placed in the store (what its place job would have made)."""
    store = session.scalar(select(ChannelAccount).where(ChannelAccount.channel == "shopify"))
    assert store is not None
    link = session.scalar(select(OrderLink).where(OrderLink.order_id == order_id))
    if link is None:
        link = OrderLink(order_id=order_id, channel_account_id=store.id, external_id=f"S{order_id}", state="placed")
        session.add(link)
        session.flush()
    return link


def _ship(hub: Hub, order_id: int, fulfilment_id: str, at: datetime, lines: list[dict[str, Any]] | None = None) -> int:
    """The store reports a fulfilment of the order at ``at`` (the hub's clock moves there), with JNE and a tracking
    number, as its intake records it."""
    _move_to(hub, at)
    with transaction(hub.sessions) as session:
        shipment_id = record_shipment(session, _link(session, order_id),
                                      Fulfilment(fulfilment_id, "JNE", f"JX-{fulfilment_id}", None, lines or [], at),
                                      now=at)  # fmt: skip
    assert shipment_id is not None
    return shipment_id


def _move_to(hub: Hub, moment: datetime) -> None:
    assert isinstance(hub.clock, ManualClock)
    if moment > hub.clock.now():
        hub.clock.advance((moment - hub.clock.now()).total_seconds())


def _drain(hub: Hub) -> int:
    """Run every due job through a worker on the hub's registry."""
    worker = Worker(hub.sessions, hub.registry, hub.clock, hub.worker_options(), name="w-manual")
    done = 0
    while ran := worker.run_once():
        done += ran
    return done


def _order(hub: Hub, order_id: int) -> OrderRow:
    with reading(hub.sessions) as session:
        row = session.get(OrderRow, order_id)
        assert row is not None
        return row


def _history(hub: Hub, order_id: int) -> list[tuple[str, str, str, datetime]]:
    with reading(hub.sessions) as session:
        changes = session.scalars(select(OrderStatusChange).where(OrderStatusChange.order_id == order_id)
                                  .order_by(OrderStatusChange.id))  # fmt: skip
        return [(change.status, change.channel_status, change.source, change.occurred_at) for change in changes]


def _stock(hub: Hub, sku: str) -> tuple[int, int]:
    with reading(hub.sessions) as session:
        shown = stock_of(session, sku, now=hub.clock.now())
    return int(shown["on_hand"]), int(shown["reserved"])


def _state(hub: Hub) -> dict[str, list[tuple[Any, ...]]]:
    """Everything a shipment job may write, row by row."""
    with reading(hub.sessions) as session:
        models = (OrderRow, OrderStatusChange, Shipment, StockMovement, StockLevel, AuditEntry)
        tables = [cast(Table, model.__table__) for model in models]
        return {table.name: [tuple(row) for row in session.execute(select(table).order_by(*table.primary_key))]
                for table in tables}  # fmt: skip


def _jobs(hub: Hub, kind: str) -> list[Job]:
    with reading(hub.sessions) as session:
        return list(session.scalars(select(Job).where(Job.kind == kind).order_by(Job.id)))


def _report(hub: Hub) -> cod.CodSummary:
    with reading(hub.sessions) as session:
        return cod.cod_report(session, since=START.date(), until=START.date() + timedelta(days=5), timezone="UTC")


def _delivered(*arguments: str, actor: str = OPS) -> Any:
    return runner.invoke(cli.app, ["--as", actor, "orders", "delivered", *arguments])


def test_a_shipped_manual_order_moves_in_transit_once_its_job_runs(world: Hub) -> None:
    hub = world
    order_id = _enter(hub, "chat-1", {"TEE-M": 2})
    assert _stock(hub, "TEE-M") == (20, 2)
    shipment_id = _ship(hub, order_id, "F1", SHIPPED_AT)
    assert _order(hub, order_id).status == "awaiting_shipment", "the store's word alone moves nothing"
    (queued,) = _jobs(hub, manual_orders.SHIP_ORDER)
    assert queued.payload == {"shipment_id": shipment_id} and queued.state == "pending"

    _move_to(hub, SHIPPED_AT + timedelta(hours=1))  # the job runs an hour after the store shipped
    assert _drain(hub) >= 1
    (ran,) = _jobs(hub, manual_orders.SHIP_ORDER)
    assert ran.state == "succeeded", ran.last_error
    with reading(hub.sessions) as session:
        shipment = session.get(Shipment, shipment_id)
        assert shipment is not None
        assert (shipment.state, shipment.provider, shipment.sent_at) == ("sent", "JNE", hub.clock.now())
    row = _order(hub, order_id)
    assert (row.status, row.channel_status, row.is_cod, row.total_minor) == ("in_transit", "IN_TRANSIT", True, 4180)
    assert (row.payment_method, row.recipient["name"]) == ("cash on delivery", "Siti Rahma")
    assert _history(hub, order_id)[-1] == ("in_transit", "IN_TRANSIT", "shopify", SHIPPED_AT), "from when it shipped"
    assert len(_history(hub, order_id)) == 2
    assert _stock(hub, "TEE-M") == (18, 0), "the reservation became a sale"

    # Run again (replayed by ops, or its tracking sent again by a drift repair): nothing changes.
    before = _state(hub)
    with transaction(hub.sessions) as session:
        jobs.replay(session, ran.id, now=hub.clock.now())
    assert _drain(hub) == 1
    assert [job.state for job in _jobs(hub, manual_orders.SHIP_ORDER)] == ["succeeded", "succeeded"]
    assert _state(hub) == before

    # Cash on delivery expects it from the day it shipped, at JNE (its shipment's carrier); nothing collected yet.
    summary = _report(hub)
    (day,) = summary.report.days
    assert (day.day, day.courier, day.orders, str(day.expected.amount)) == (SHIPPED_AT.date(), "JNE", 1, "41.80")
    assert str(day.collected.amount) == "0.00"


def test_an_order_shipped_in_parts_is_in_transit_once_all_its_units_have_left(world: Hub) -> None:
    hub = world
    order_id = _enter(hub, "chat-1", {"TEE-M": 2, "MUG": 1})
    with reading(hub.sessions) as session:
        tee = session.scalar(select(Variant.id).where(Variant.sku == "TEE-M"))
    _ship(hub, order_id, "F1", SHIPPED_AT, [{"sku": "TEE-M", "variant_id": tee, "quantity": 2}])
    _drain(hub)
    assert (_order(hub, order_id).status, _order(hub, order_id).channel_status) == ("partially_shipped",
                                                                                    "PARTIALLY_SHIPPED")  # fmt: skip
    assert _stock(hub, "TEE-M") == (20, 2) and _stock(hub, "MUG") == (5, 1), "no sale until it has all left"
    with transaction(hub.sessions) as session, pytest.raises(manual_orders.DeliveryRefused, match="partly shipped"):
        manual_orders.mark_delivered(session, order_id, actor=OPS, now=DELIVERED_AT)

    later = SHIPPED_AT + timedelta(hours=3)
    _ship(hub, order_id, "F2", later, [{"sku": "MUG", "variant_id": None, "quantity": 1}])  # by SKU alone
    _drain(hub)
    assert _order(hub, order_id).status == "in_transit"
    steps = [(status, at) for status, _, _, at in _history(hub, order_id)]
    assert steps == [("awaiting_shipment", ENTERED_AT), ("partially_shipped", SHIPPED_AT), ("in_transit", later)]
    assert _stock(hub, "TEE-M") == (18, 0) and _stock(hub, "MUG") == (4, 0)


def test_staff_mark_a_shipped_manual_order_delivered_and_cash_on_delivery_counts_it(
    env: Settings, world: Hub, monkeypatch: pytest.MonkeyPatch
) -> None:
    hub = world
    order_id = _enter(hub, "chat-1", {"TEE-M": 2})
    _ship(hub, order_id, "F1", SHIPPED_AT)
    _drain(hub)
    monkeypatch.setenv("SHOPBRIDGE_TIMEZONE", "Asia/Jakarta")  # --at is the hub's local time (UTC+7)
    local = DELIVERED_AT + timedelta(hours=7)

    refused = _delivered(str(order_id), "--at", local.strftime("%Y-%m-%dT%H:%M"), actor="support@example.com")
    assert refused.exit_code == 2 and "support" in refused.stderr, "support staff do not change orders"
    malformed = _delivered(str(order_id), "--at", "yesterday")
    assert malformed.exit_code == 2 and "--at: expected YYYY-MM-DDTHH:MM" in malformed.stderr
    early = _delivered(str(order_id), "--at", (SHIPPED_AT + timedelta(hours=6)).strftime("%Y-%m-%dT%H:%M"))
    assert early.exit_code == 2 and "cannot have been delivered before" in early.stderr
    future = _delivered(str(order_id), "--at", (datetime.now(UTC) + timedelta(days=2)).strftime("%Y-%m-%dT%H:%M"))
    assert future.exit_code == 2 and "is in the future" in future.stderr
    assert _order(hub, order_id).status == "in_transit"

    done = _delivered(str(order_id), "--at", local.strftime("%Y-%m-%dT%H:%M"))
    assert done.exit_code == 0, done.output
    number = _order(hub, order_id).external_id
    assert f"order {number} delivered at {DELIVERED_AT:%Y-%m-%d %H:%M} UTC" in done.stdout
    row = _order(hub, order_id)
    assert (row.status, row.channel_status, row.channel_updated_at) == ("delivered", "DELIVERED", DELIVERED_AT)
    assert _history(hub, order_id)[-1] == ("delivered", "DELIVERED", f"hub:{OPS}", DELIVERED_AT)
    with reading(hub.sessions) as session:
        (entry,) = session.scalars(select(AuditEntry).where(AuditEntry.action == manual_orders.DELIVERED_ACTION))
    assert (entry.actor, entry.subject_type, entry.subject_id) == (OPS, "order", str(order_id))
    assert entry.before == {"status": "in_transit", "channel_status": "IN_TRANSIT"}
    assert entry.after == {"status": "delivered", "channel_status": "DELIVERED",
                           "delivered_at": DELIVERED_AT.isoformat()}  # fmt: skip

    before = _state(hub)
    again = _delivered(str(order_id))
    assert again.exit_code == 0 and f"order {number} was delivered already" in again.stdout
    assert _state(hub) == before, "delivered twice: no second history row, no second audit entry"

    summary = _report(hub)
    (day,) = summary.report.days
    assert (day.day, day.courier, day.orders, str(day.expected.amount)) == (SHIPPED_AT.date(), "JNE", 1, "41.80")
    assert str(day.collected.amount) == "41.80", "delivered: the courier has the cash"


def test_delivery_is_refused_for_other_channels_orders_and_for_orders_not_shipped_or_cancelled(
    env: Settings, world: Hub
) -> None:
    hub = world
    with transaction(hub.sessions) as session:
        tiktok = ChannelAccount(channel="tiktok", label="TikTok US", external_id="shop-1", currency="USD")
        session.add(tiktok)
        session.flush()
        read = Order(channel="tiktok", external_id="T-1001", channel_status="IN_TRANSIT", status=OrderStatus.IN_TRANSIT,
                     currency="USD", total=Money.parse("25.00", "USD"), subtotal=None, shipping=None, tax=None,
                     lines=(OrderLine("sku-1", "TEE-M", "Cotton tee M", 1, Money.parse("25.00", "USD"), ("li-1",)),),
                     created_at=START, updated_at=SHIPPED_AT, is_cod=True)  # fmt: skip
        tiktok_order = upsert_order(session, tiktok, read, source="webhook", now=SHIPPED_AT).order_id
    waiting = _enter(hub, "chat-1", {"TEE-M": 1})
    cancelled = _enter(hub, "chat-2", {"MUG": 1})
    with transaction(hub.sessions) as session:
        cancellations.cancel_order(session, cancelled, "buyer", actor=OPS, now=SHIPPED_AT,
                                   cancelling_channels=frozenset())  # fmt: skip
    numbers = {order_id: _order(hub, order_id).external_id for order_id in (waiting, cancelled)}
    before = _state(hub)

    other = _delivered(str(tiktok_order))
    assert other.exit_code == 2, other.output
    assert "order T-1001 came from TikTok US (tiktok): TikTok US says when its orders are delivered" in other.stderr
    unshipped = _delivered(str(waiting))
    assert unshipped.exit_code == 2
    assert f"order {numbers[waiting]} is awaiting shipment, not shipped yet" in unshipped.stderr
    gone = _delivered(str(cancelled))
    assert gone.exit_code == 2 and f"order {numbers[cancelled]} is cancelled" in gone.stderr
    missing = _delivered("999")
    assert missing.exit_code == 2 and "order 999 does not exist" in missing.stderr
    assert _state(hub) == before, "a refusal changes nothing"


def test_a_store_cancelling_a_manual_order_cancels_it_in_the_hub(world: Hub) -> None:
    hub = world
    order_id = _enter(hub, "chat-1", {"TEE-M": 2})
    shipped_id = _enter(hub, "chat-2", {"MUG": 1})
    _ship(hub, shipped_id, "F1", SHIPPED_AT)
    _drain(hub)
    _move_to(hub, SHIPPED_AT + timedelta(days=2))
    now = hub.clock.now()
    with transaction(hub.sessions) as session:
        for placed in (order_id, shipped_id):
            assert cancelled_in_store(session, _link(session, placed), CancelReason.STAFF, now=now)
    assert [job.payload["order_id"] for job in _jobs(hub, manual_orders.CANCEL_ORDER)] == [order_id, shipped_id]
    _drain(hub)

    row = _order(hub, order_id)
    assert (row.status, row.channel_status) == ("cancelled", "CANCELLED")
    assert _history(hub, order_id)[-1] == ("cancelled", "CANCELLED", "store", now)
    assert _stock(hub, "TEE-M") == (20, 0), "its units are free again"
    cancelled, refused = _jobs(hub, manual_orders.CANCEL_ORDER)
    assert cancelled.state == "succeeded"
    assert refused.state == "dead" and "take it back as a return" in (refused.last_error or "")
    assert _order(hub, shipped_id).status == "in_transit", "a shipped order is not cancelled"


def test_the_order_page_marks_a_shipped_manual_order_delivered(world: Hub) -> None:
    from fastapi.testclient import TestClient

    from shopbridge.services.access import set_password
    from shopbridge.web.app import create_app
    from tests.integration.dashboard_world import PASSWORD, sign_in

    with transaction(world.sessions) as session:
        add_user(session, "viewer@example.com", "viewer", now=START)
        for email in (OPS, "viewer@example.com"):
            set_password(session, email, PASSWORD, now=START, actor="tests")
    order_id = _enter(world, "chat-page", {"TEE-M": 1})
    client = TestClient(create_app(world))
    csrf = sign_in(client, "ops")
    assert "Mark delivered" not in client.get(f"/orders/{order_id}").text, "not before it ships"
    early = client.post(f"/orders/{order_id}/delivered", data={"csrf_token": csrf}, follow_redirects=True)
    assert "not marked delivered" in early.text and "not shipped yet" in early.text
    _ship(world, order_id, "F-page", SHIPPED_AT)  # the hub's clock moves on: sign in again
    _drain(world)
    csrf = sign_in(client, "ops")
    page = client.get(f"/orders/{order_id}").text
    assert "Mark delivered" in page and f'action="/orders/{order_id}/delivered"' in page
    bad = client.post(f"/orders/{order_id}/delivered", data={"csrf_token": csrf, "at": "soon"}, follow_redirects=True)
    assert "not marked delivered: &#39;soon&#39; is not a date and time" in bad.text
    _move_to(world, DELIVERED_AT + timedelta(hours=1))
    csrf = sign_in(client, "ops")
    local = DELIVERED_AT.astimezone(ZoneInfo(world.settings.timezone)).strftime("%Y-%m-%dT%H:%M")
    done = client.post(f"/orders/{order_id}/delivered", data={"csrf_token": csrf, "at": local}, follow_redirects=True)
    assert "delivered" in done.text and "Mark delivered" not in done.text
    row = _order(world, order_id)
    assert (row.status, row.channel_updated_at) == ("delivered", DELIVERED_AT)
    assert _history(world, order_id)[-1] == ("delivered", "DELIVERED", "hub:ops@example.com", DELIVERED_AT)
    viewer = TestClient(create_app(world))
    viewer_csrf = sign_in(viewer, "viewer")
    assert viewer.post(f"/orders/{order_id}/delivered", data={"csrf_token": viewer_csrf}).status_code == 403
