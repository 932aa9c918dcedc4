"""Orders staff enter by hand: WhatsApp, phone and Facebook orders join the one queue as orders of a channel
account of their own ("manual"), through the same upsert as every channel's orders, so they reserve their units and
move every marketplace's quantity as a TikTok or store order does.

An entry names its source, the customer and the address, lines by hub SKU (the unit price defaults to the SKU's
price), and whether it is paid or cash on delivery. Every entry carries an idempotency key: sent again, it makes no
second order; the same key with other content is refused. A line for more units than are free at the location the
order ships from is refused with the numbers, so staff never promise stock the hub does not have.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from shopbridge.domain.money import InvalidAmount, Money
from shopbridge.domain.orders import Order, OrderLine, OrderStatus
from shopbridge.services import audit
from shopbridge.services.orders import upsert_order
from shopbridge.services.stock import fulfilment_location
from shopbridge.store.tables import ChannelAccount, ManualEntry, StockLevel, Variant
from shopbridge.store.tables import Order as OrderRow

CHANNEL = "manual"
# source -> (the account's label, the prefix of its order numbers)
SOURCES = {"whatsapp": ("WhatsApp", "WA"), "phone": ("Phone", "PH"), "facebook": ("Facebook", "FB")}
MAX_LINES = 50
MAX_UNITS = 1000


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
