"""Orders staff enter by hand: WhatsApp, phone and Facebook orders join the one queue as orders of a channel
account of their own ("manual"), through the same upsert as every channel's orders, so they reserve their units and
move every marketplace's quantity as a TikTok or store order does.

An entry names its source, the customer and the address, lines by hub SKU (the unit price defaults to the SKU's
price), and whether it is paid or cash on delivery. Every entry carries an idempotency key: sent again, it makes no
second order; the same key with other content is refused. A line for more units than are free at the location the
order ships from is refused with the numbers, so staff never promise stock the hub does not have.

The hub is the manual channel's own system of record, so the work other channels do on their side is done here:
when the store or POS that fulfils a manual order ships it, the ``manual.ship_order`` job records the shipment as
sent and moves the order on (in transit once every unit has left) through the same upsert; when that fulfiller
cancels its order, ``manual.cancel_order`` cancels the manual order here; and staff mark it delivered on the
merchant's or the courier's word (``mark_delivered``), since no channel will say so.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from shopbridge.domain.money import InvalidAmount, Money
from shopbridge.domain.orders import Order, OrderLine, OrderStatus, progress
from shopbridge.runtime.errors import PermanentError
from shopbridge.runtime.registry import JobContext, JobRegistry
from shopbridge.services import audit
from shopbridge.services.fulfilment import cancel_kind, ship_kind, shipment_sent
from shopbridge.services.orders import cancel_here, upsert_order
from shopbridge.services.stock import fulfilment_location
from shopbridge.store.tables import ChannelAccount, ManualEntry, Shipment, StockLevel, Variant
from shopbridge.store.tables import Order as OrderRow
from shopbridge.store.tables import OrderLine as OrderLineRow

CHANNEL = "manual"
# source -> (the account's label, the prefix of its order numbers)
SOURCES = {"whatsapp": ("WhatsApp", "WA"), "phone": ("Phone", "PH"), "facebook": ("Facebook", "FB")}
MAX_LINES = 50
MAX_UNITS = 1000
SHIP_ORDER = ship_kind(CHANNEL)
CANCEL_ORDER = cancel_kind(CHANNEL)
DELIVERED_ACTION = "order.delivered"  # the audit action of a delivery staff record


class EntryRefused(ValueError):
    """An entry that cannot become an order; the message names the field and what is wrong."""


class KeyReused(EntryRefused):
    pass


@dataclass(frozen=True)
class EntryLine:
    sku: str
    quantity: int
    unit_price: Decimal | None = None  # None: the SKU's own price


@dataclass(frozen=True)
class Entry:
    source: str
    customer_name: str
    lines: tuple[EntryLine, ...]
    cash_on_delivery: bool = False
    phone: str | None = None
    email: str | None = None
    address: dict[str, str] = field(default_factory=dict)  # line1, line2, city, region, postal_code, country
    shipping: Decimal = Decimal(0)
    note: str | None = None


@dataclass(frozen=True)
class Entered:
    order_id: int
    external_id: str
    created: bool


def digest(entry: Entry) -> str:
    document = asdict(entry)
    return hashlib.sha256(json.dumps(document, sort_keys=True, default=str).encode()).hexdigest()


def account_for(session: Session, source: str, *, currency: str, now: datetime) -> ChannelAccount:
    """The manual account of a source, made on first use."""
    if source not in SOURCES:
        raise EntryRefused(f"source must be one of {', '.join(SOURCES)}, got {source!r}")
    account = session.scalar(
        select(ChannelAccount).where(ChannelAccount.channel == CHANNEL, ChannelAccount.external_id == source)
    )
    if account is None:
        account = ChannelAccount(channel=CHANNEL, label=SOURCES[source][0], external_id=source, currency=currency,
                                 created_at=now, updated_at=now)  # fmt: skip
        session.add(account)
        session.flush()
    return account


def free_units(session: Session, skus: list[str], location_id: int | None) -> dict[str, int]:
    """Units on hand less reserved at the location, per SKU (0 where the SKU has no stock there)."""
    if location_id is None or not skus:
        return dict.fromkeys(skus, 0)
    rows = session.execute(
        select(Variant.sku, StockLevel.on_hand - StockLevel.reserved)
        .join(StockLevel, StockLevel.variant_id == Variant.id)
        .where(Variant.sku.in_(skus), StockLevel.location_id == location_id)
    ).all()
    found = {sku: int(free) for sku, free in rows}
    return {sku: found.get(sku, 0) for sku in skus}


def enter(session: Session, entry: Entry, *, idempotency_key: str, currency: str, now: datetime,
          actor: str) -> Entered:  # fmt: skip
    """Make the entry an order (once per key) and settle its stock as any channel's order."""
    key = idempotency_key.strip()
    if not 1 <= len(key) <= 200:
        raise EntryRefused("idempotency key: 1 to 200 characters")
    fingerprint = digest(entry)
    earlier = session.scalar(select(ManualEntry).where(ManualEntry.idempotency_key == key))
    if earlier is not None:
        if earlier.digest != fingerprint:
            raise KeyReused(f"idempotency key {key!r} was used for another order")
        row = session.get(OrderRow, earlier.order_id) if earlier.order_id else None
        return Entered(earlier.order_id or 0, row.external_id if row else "", False)
    account = account_for(session, entry.source, currency=currency, now=now)
    order_lines = _lines(session, entry, currency, fulfilment_location(session, account.id, None))
    record = ManualEntry(idempotency_key=key, digest=fingerprint, entered_by=actor, created_at=now)
    session.add(record)
    session.flush()
    external_id = f"{SOURCES[entry.source][1]}-{record.id:06d}"
    subtotal = sum((line.unit_price * line.quantity for line in order_lines), Money(Decimal(0), currency))
    shipping = _money(entry.shipping, currency, "shipping")
    recipient = {key: value for key, value in entry.address.items() if value}
    order = Order(
        channel=CHANNEL, external_id=external_id, channel_status="COD" if entry.cash_on_delivery else "PAID",
        status=OrderStatus.AWAITING_SHIPMENT, currency=currency, total=subtotal + shipping, subtotal=subtotal,
        shipping=shipping, tax=None, lines=tuple(order_lines), created_at=now, updated_at=now,
        payment_method="cash on delivery" if entry.cash_on_delivery else "paid", is_cod=entry.cash_on_delivery,
        buyer={key: value for key, value in (("name", entry.customer_name), ("phone", entry.phone),
                                              ("email", entry.email), ("note", entry.note)) if value},
        recipient={"name": entry.customer_name, **recipient},
    )  # fmt: skip
    intake = upsert_order(session, account, order, source=CHANNEL, now=now)
    record.order_id = intake.order_id
    audit.record(session, actor, "order.enter", "order", intake.order_id, now=now,
                 after={"external_id": external_id, "source": entry.source, "total": str(order.total.amount),
                        "lines": {line.sku: line.quantity for line in entry.lines}})  # fmt: skip
    return Entered(intake.order_id, external_id, True)


def _money(amount: Decimal, currency: str, name: str) -> Money:
    try:
        money = Money.parse(amount, currency)
    except InvalidAmount as error:
        raise EntryRefused(f"{name}: {error}") from None
    if money.amount < 0:
        raise EntryRefused(f"{name}: may not be negative")
    return money


def _lines(session: Session, entry: Entry, currency: str, location_id: int | None) -> list[OrderLine]:
    if not entry.customer_name.strip():
        raise EntryRefused("customer name: required")
    if not 1 <= len(entry.lines) <= MAX_LINES:
        raise EntryRefused(f"lines: 1 to {MAX_LINES}")
    skus = [line.sku for line in entry.lines]
    if len(set(skus)) != len(skus):
        raise EntryRefused("lines: each SKU once (add up its units)")
    variants = {v.sku: v for v in session.scalars(select(Variant).where(Variant.sku.in_(skus)))}
    free = free_units(session, skus, location_id)
    lines = []
    for number, line in enumerate(entry.lines, start=1):
        where = f"line {number} ({line.sku})"
        variant = variants.get(line.sku)
        if variant is None:
            raise EntryRefused(f"{where}: the hub has no SKU {line.sku!r}")
        if not 1 <= line.quantity <= MAX_UNITS:
            raise EntryRefused(f"{where}: quantity must be 1 to {MAX_UNITS}")
        if line.quantity > free[line.sku]:
            raise EntryRefused(f"{where}: only {free[line.sku]} free to sell, {line.quantity} asked")
        if line.unit_price is not None:
            price = _money(line.unit_price, currency, f"{where} unit price")
        elif variant.price_minor is not None and variant.currency in (None, currency):
            price = Money.from_minor(variant.price_minor, currency)
        else:
            raise EntryRefused(f"{where}: the SKU has no price in {currency}; enter the unit price")
        lines.append(OrderLine(external_sku_id=line.sku, seller_sku=line.sku, title=variant.title or line.sku,
                               quantity=line.quantity, unit_price=price, line_item_ids=()))  # fmt: skip
    return lines


def as_entry(document: dict[str, Any]) -> Entry:
    """An entry from the API's validated body."""
    return Entry(
        source=document["source"], customer_name=document["customer"]["name"],
        phone=document["customer"].get("phone"), email=document["customer"].get("email"),
        address={k: v for k, v in (document.get("address") or {}).items() if isinstance(v, str)},
        lines=tuple(EntryLine(line["sku"], line["quantity"], line.get("unit_price")) for line in document["lines"]),
        cash_on_delivery=document.get("payment") == "cod", shipping=document.get("shipping") or Decimal(0),
        note=document.get("note"),
    )  # fmt: skip


# --- after entry: shipped, cancelled by its fulfiller, delivered ------------------------------------------------


class DeliveryRefused(ValueError):
    """A delivery the hub cannot record; the message says why."""


@dataclass(frozen=True)
class Delivery:
    """What marking an order delivered did: ``changed`` is False for an order delivered already."""

    order_id: int
    external_id: str
    delivered_at: datetime
    changed: bool

    @property
    def message(self) -> str:
        if self.changed:
            return f"order {self.external_id} delivered at {_moment(self.delivered_at)}"
        return f"order {self.external_id} was delivered already ({_moment(self.delivered_at)})"


def _moment(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def register_work(registry: JobRegistry) -> None:
    """The manual channel's job kinds: what another channel's adapter does on its side, done in the hub's database
    (the hub is this channel), so they need nothing but the database."""
    registry.register(SHIP_ORDER, ship_order)
    registry.register(CANCEL_ORDER, cancel_order)


def ship_order(ctx: JobContext) -> None:
    """``manual.ship_order`` (payload ``{"shipment_id"}``, queued by ``fulfilment.record_shipment``): ``shipped``,
    in the job's unit of work."""
    shipment_id = int(ctx.payload.get("shipment_id") or 0)
    shipment = ctx.session.get(Shipment, shipment_id, with_for_update=True, populate_existing=True)
    if shipment is None:
        raise PermanentError(f"shipment {shipment_id} does not exist")
    shipped(ctx.session, shipment, now=ctx.now)


def shipped(session: Session, shipment: Shipment, *, now: datetime) -> bool:
    """The store or POS that fulfils a manual order shipped it. The order's channel is the hub itself, so the
    tracking has reached it at once: the shipment is sent (its carrier is the provider: no other name exists for
    it), and the order moves on as a channel's read would move it, through ``upsert_order`` (status history, the
    sale of its units): in transit once its sent shipments carry all its units, partially shipped before, from
    when the fulfiller shipped (the day cash on delivery is expected). An order further on already, or cancelled
    meanwhile (the store shipped despite the cancellation, which raised its own issue), keeps its status. Returns
    False for a shipment sent already, so a job run twice changes nothing the second time."""
    if shipment.state == "sent":
        return False
    row = session.get(OrderRow, shipment.order_id, with_for_update=True, populate_existing=True)
    assert row is not None
    account = session.get(ChannelAccount, row.channel_account_id)
    fulfiller = session.get(ChannelAccount, shipment.channel_account_id)
    assert account is not None and fulfiller is not None
    if account.channel != CHANNEL:
        raise PermanentError(f"shipment {shipment.id} is for a {account.channel} order, not one entered in the hub")
    shipment_sent(session, shipment, package_id=None, provider=shipment.carrier, now=now)
    status, current = _shipped_status(session, row.id), OrderStatus(row.status)
    if current is OrderStatus.CANCELLED or progress(current) >= progress(status):
        return True
    # Never earlier than the hub's copy: the upsert takes an older read for a stale one and changes nothing.
    at = max(shipment.shipped_at, row.channel_updated_at)
    upsert_order(session, account, _read_back(session, row, account, status, at), source=fulfiller.channel, now=now)
    return True


def _shipped_status(session: Session, order_id: int) -> OrderStatus:
    """In transit once the order's sent shipments carry all its units, partially shipped before. A shipment's lines
    are matched to the order's by hub variant, else by SKU; one that names no lines carries the whole order (its
    fulfiller did not say which units it held)."""
    ordered = session.execute(
        select(OrderLineRow.id, OrderLineRow.variant_id, OrderLineRow.sku, OrderLineRow.quantity)
        .where(OrderLineRow.order_id == order_id)
    ).all()  # fmt: skip
    by_variant = {variant_id: line_id for line_id, variant_id, _, _ in ordered if variant_id is not None}
    by_sku = {sku: line_id for line_id, _, sku, _ in ordered if sku}
    carried: dict[int, int] = defaultdict(int)
    for lines in session.scalars(select(Shipment.lines).where(Shipment.order_id == order_id, Shipment.state == "sent")):
        if not lines:
            return OrderStatus.IN_TRANSIT
        for line in lines:
            if not isinstance(line, dict):
                continue
            variant, sku = line.get("variant_id"), line.get("sku")
            line_id = by_variant.get(variant) if isinstance(variant, int) else None
            line_id = line_id or (by_sku.get(sku) if isinstance(sku, str) else None)
            if line_id is not None:
                carried[line_id] += int(line.get("quantity") or 0)
    whole = all(carried[line_id] >= quantity for line_id, _, _, quantity in ordered)
    return OrderStatus.IN_TRANSIT if whole else OrderStatus.PARTIALLY_SHIPPED


def _read_back(session: Session, row: OrderRow, account: ChannelAccount, status: OrderStatus,
               at: datetime) -> Order:  # fmt: skip
    """A manual order as its channel (the hub) now reads it: in ``status`` since ``at``, in the hub's own status
    word (``IN_TRANSIT``, ``DELIVERED``), and otherwise as stored: lines, totals, payment and COD flag, buyer,
    recipient. Given to ``upsert_order`` it changes the status alone: the lines read the same, so they are neither
    rewritten nor matched again."""

    def money(minor: int | None) -> Money | None:
        return None if minor is None else Money.from_minor(minor, row.currency)

    stored = session.scalars(select(OrderLineRow).where(OrderLineRow.order_id == row.id).order_by(OrderLineRow.id))
    lines = tuple(
        OrderLine(external_sku_id=line.external_sku_id or line.sku or "", seller_sku=line.sku, title=line.title,
                  quantity=line.quantity, unit_price=Money.from_minor(line.unit_price_minor, line.currency),
                  line_item_ids=tuple(str(item) for item in (line.line_item_ids or {}).get("ids", [])),
                  external_product_id=line.external_product_id)
        for line in stored
    )  # fmt: skip
    packages = row.packages or {}
    return Order(
        channel=account.channel, external_id=row.external_id, channel_status=status.name, status=status,
        currency=row.currency, total=Money.from_minor(row.total_minor, row.currency),
        subtotal=money(row.subtotal_minor), shipping=money(row.shipping_minor), tax=money(row.tax_minor),
        lines=lines, created_at=row.channel_created_at, updated_at=at, payment_method=row.payment_method,
        is_cod=row.is_cod, buyer=dict(row.buyer or {}), recipient=dict(row.recipient or {}),
        deadlines={key: datetime.fromtimestamp(int(value), UTC) for key, value in (row.deadlines or {}).items()},
        packages=tuple(packages.get("packages") or ()), warehouse_id=packages.get("warehouse_id"),
    )  # fmt: skip


def cancel_order(ctx: JobContext) -> None:
    """``manual.cancel_order`` (payload ``{"order_id", "reason", "source"}``): the store or POS that fulfils a
    manual order cancelled its order (``fulfilment.cancelled_in_store``), and the order's channel, the hub, takes
    the cancellation as a channel would: the order is cancelled with its history and its units released. One that
    has shipped since is not (a shipped order comes back as a return): the job fails, for ops to see."""
    order_id = int(ctx.payload.get("order_id") or 0)
    row = ctx.session.get(OrderRow, order_id)
    if row is None:
        raise PermanentError(f"order {order_id} does not exist")
    status = OrderStatus(row.status)
    if status is not OrderStatus.CANCELLED and progress(status) > progress(OrderStatus.PARTIALLY_SHIPPED):
        raise PermanentError(f"order {row.external_id} is {status.value.replace('_', ' ')}: its fulfiller cancelled "
                             "it after it shipped, so it is not cancelled; take it back as a return")  # fmt: skip
    cancel_here(ctx.session, order_id, now=ctx.now, source=str(ctx.payload.get("source") or "store")[:30])


def mark_delivered(session: Session, order_id: int, *, actor: str, now: datetime,
                   at: datetime | None = None) -> Delivery:  # fmt: skip
    """A manual order reached its buyer, on the merchant's or the courier's word (no channel tells the hub so for
    these orders): delivered at ``at`` (default ``now``), through the upsert every order's status takes (status
    history; cash on delivery counts it delivered), and audited. Refused for an order of another channel (that
    channel says when its orders are delivered), one not wholly shipped yet, a cancelled one, and a time in the
    future or before it shipped. An order delivered already is left as it is."""
    row = session.get(OrderRow, order_id, with_for_update=True, populate_existing=True)
    if row is None:
        raise DeliveryRefused(f"order {order_id} does not exist")
    account = session.get(ChannelAccount, row.channel_account_id)
    assert account is not None
    number, status = row.external_id, OrderStatus(row.status)
    if account.channel != CHANNEL:
        raise DeliveryRefused(f"order {number} came from {account.label} ({account.channel}): {account.label} says "
                              "when its orders are delivered; only orders entered in the hub are marked delivered "
                              "here")  # fmt: skip
    if status is OrderStatus.CANCELLED:
        raise DeliveryRefused(f"order {number} is cancelled: there is no delivery to record")
    if progress(status) >= progress(OrderStatus.DELIVERED):
        return Delivery(row.id, number, row.channel_updated_at, False)
    if status is OrderStatus.PARTIALLY_SHIPPED:
        raise DeliveryRefused(f"order {number} has only partly shipped: mark it delivered once the rest has shipped")
    if status is not OrderStatus.IN_TRANSIT:
        raise DeliveryRefused(f"order {number} is {status.value.replace('_', ' ')}, not shipped yet: it can be marked "
                              "delivered once its fulfiller has shipped it")  # fmt: skip
    if at is not None and at.tzinfo is None:
        raise DeliveryRefused("the delivery time needs a timezone")
    when = (at or now).astimezone(UTC)
    if when > now:
        raise DeliveryRefused(f"a delivery at {_moment(when)} is in the future")
    if when < row.channel_updated_at:
        raise DeliveryRefused(f"order {number} shipped at {_moment(row.channel_updated_at)}: it cannot have been "
                              f"delivered before, at {_moment(when)}")  # fmt: skip
    before = {"status": row.status, "channel_status": row.channel_status}
    read = _read_back(session, row, account, OrderStatus.DELIVERED, when)
    upsert_order(session, account, read, source=f"hub:{actor}", now=now)
    audit.record(session, actor, DELIVERED_ACTION, "order", row.id, now=now, before=before,
                 after={"status": read.status.value, "channel_status": read.channel_status,
                        "delivered_at": when.isoformat()})  # fmt: skip
    return Delivery(row.id, number, when, True)
