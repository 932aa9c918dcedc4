"""Stock at the stores: counts and receipts (``stock.levels``), till sales (``sale.completed``) and the returns
desk (``return.completed``), docs/pos-protocol.md §3.1-§3.3.

Each change bumps the location's sequence once and its event carries the absolute levels of the SKUs it touched.
A ``silent`` change changes the same state (sequence included) but sends no event: drift for the hub to find.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from .errors import PosError
from .models import StockReason
from .state import ReturnRecord, Sale
from .times import iso_ms, millis

if TYPE_CHECKING:
    from .runtime import PosSandbox

DEFAULT_PRICE = "10.00"


@dataclass(frozen=True)
class LevelChange:
    """A count of one SKU: ``on_hand`` and, when given, ``allocated`` (the POS's own holds included)."""

    sku: str
    on_hand: int
    allocated: int | None = None
    unit_price: str | None = None


def _price(text: str) -> str:
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise PosError(422, "invalid_body", f"{text!r} is not a price", {"field": "unit_price"}) from None
    return str(value.quantize(Decimal("0.01")))


def _known(sb: PosSandbox, sku: str, location_id: str) -> None:
    if sku not in sb.world.catalogue:
        raise PosError(404, "unknown_sku", f"the POS does not carry {sku}", {"sku": sku, "location_id": location_id})


def set_levels(
    sb: PosSandbox, location_id: str, reason: StockReason, changes: list[LevelChange], *, silent: bool = False
) -> dict[str, Any]:
    """Set levels at a location (a count, a receipt, damage…): one sequence, one ``stock.levels``. A SKU the POS
    did not carry joins the catalogue (at ``unit_price``, or 10.00)."""
    store = sb.store(location_id)
    if not changes:
        raise PosError(422, "invalid_body", "levels must not be empty", {"field": "levels"})
    for change in changes:
        if change.on_hand < 0 or (change.allocated is not None and change.allocated < 0):
            raise PosError(422, "invalid_body", f"levels of {change.sku} must be >= 0", {"field": "levels"})
    for change in changes:
        if change.unit_price is not None:
            sb.world.catalogue[change.sku] = _price(change.unit_price)
        else:
            sb.world.catalogue.setdefault(change.sku, DEFAULT_PRICE)
        level = store.level(change.sku)
        level.on_hand = change.on_hand
        if change.allocated is not None:
            level.allocated = change.allocated
    sequence = sb.world.bump(store)
    levels = store.levels_json([c.sku for c in changes])
    data = {"sequence": sequence, "reason": reason, "levels": levels}
    event = sb.outbox.publish("stock.levels", location_id, millis(sb.now()), data, silent=silent)
    return {**data, "location_id": location_id, "event_id": event["event_id"] if event else None}


@dataclass(frozen=True)
class SaleLine:
    sku: str
    quantity: int
    unit_price: str | None = None


def sell(
    sb: PosSandbox,
    location_id: str,
    lines: list[SaleLine],
    *,
    allow_oversell: bool = False,
    silent: bool = False,
) -> Sale:
    """A till sale: ``on_hand`` drops by each line. Units held for tasks are not for sale unless ``allow_oversell``
    (a till that sells them anyway makes the drift the hub must notice)."""
    store = sb.store(location_id)
    if not lines:
        raise PosError(422, "invalid_body", "a sale needs lines", {"field": "lines"})
    wanted: dict[str, int] = {}
    for line in lines:
        if line.quantity < 1:
            raise PosError(422, "invalid_body", "quantities must be >= 1", {"field": "lines"})
        _known(sb, line.sku, location_id)
        wanted[line.sku] = wanted.get(line.sku, 0) + line.quantity
    if not allow_oversell:
        for sku, quantity in wanted.items():
            if store.available(sku) < quantity:
                raise PosError(
                    409,
                    "insufficient_stock",
                    f"{location_id} has {max(store.available(sku), 0)} of {sku} to sell, the sale needs {quantity}",
                    {"sku": sku, "location_id": location_id, "available": max(store.available(sku), 0),
                     "needed": quantity},
                )  # fmt: skip
    for sku, quantity in wanted.items():
        level = store.level(sku)
        level.on_hand = max(0, level.on_hand - quantity)
    sequence = sb.world.bump(store)
    now = millis(sb.now())
    sale = Sale(
        sale_id=sb.world.next_sale_id(),
        location_id=location_id,
        currency=sb.config.currency,
        lines=[
            {
                "sku": line.sku,
                "quantity": line.quantity,
                "unit_price": _price(line.unit_price) if line.unit_price else sb.world.catalogue[line.sku],
            }
            for line in lines
        ],
        occurred_at=now,
        sequence=sequence,
        levels=store.levels_json(list(wanted)),
        silent=silent,
    )
    sb.world.sales[sale.sale_id] = sale
    data = {
        "sale_id": sale.sale_id,
        "sequence": sequence,
        "currency": sale.currency,
        "lines": sale.lines,
        "levels": sale.levels,
    }
    sb.outbox.publish("sale.completed", location_id, now, data, silent=silent)
    return sale


def sale_json(sale: Sale) -> dict[str, Any]:
    return {
        "sale_id": sale.sale_id,
        "location_id": sale.location_id,
        "occurred_at": iso_ms(sale.occurred_at),
        "sequence": sale.sequence,
        "currency": sale.currency,
        "lines": sale.lines,
        "levels": sale.levels,
        "silent": sale.silent,
    }


@dataclass(frozen=True)
class ReturnedLine:
    sku: str
    quantity: int
    restock_quantity: int


def take_return(
    sb: PosSandbox,
    location_id: str,
    order_ref: dict[str, Any],
    lines: list[ReturnedLine],
    *,
    silent: bool = False,
) -> ReturnRecord:
    """The returns desk takes units back for ``order_ref``: ``restock_quantity`` of each line goes back on the
    shelf (``on_hand``), the rest is damaged and is not restocked."""
    store = sb.store(location_id)
    if not lines:
        raise PosError(422, "invalid_body", "a return needs lines", {"field": "lines"})
    for line in lines:
        if line.quantity < 1 or not 0 <= line.restock_quantity <= line.quantity:
            raise PosError(422, "invalid_body", "each line needs quantity >= 1 and 0 <= restock_quantity <= quantity",
                           {"field": "lines"})  # fmt: skip
        _known(sb, line.sku, location_id)
    for line in lines:
        store.level(line.sku).on_hand += line.restock_quantity
    sequence = sb.world.bump(store)
    number = sb.world.next_return_number()
    record = ReturnRecord(
        return_id=f"R-{number}",
        number=number,
        location_id=location_id,
        order_ref=order_ref,
        lines=[{"sku": x.sku, "quantity": x.quantity, "restock_quantity": x.restock_quantity} for x in lines],
        occurred_at=millis(sb.now()),
        sequence=sequence,
        levels=store.levels_json([x.sku for x in lines]),
        silent=silent,
    )
    sb.world.returns[record.return_id] = record
    data = {
        "return_id": record.return_id,
        "sequence": sequence,
        "order_ref": order_ref,
        "lines": record.lines,
        "levels": record.levels,
    }
    sb.outbox.publish("return.completed", location_id, record.occurred_at, data, silent=silent)
    return record


def return_json(record: ReturnRecord) -> dict[str, Any]:
    """A return as ``GET /returns`` lists it: the event's data plus ``location_id`` and ``occurred_at`` (§4.7)."""
    return {
        "return_id": record.return_id,
        "sequence": record.sequence,
        "order_ref": record.order_ref,
        "lines": record.lines,
        "levels": record.levels,
        "location_id": record.location_id,
        "occurred_at": iso_ms(record.occurred_at),
    }
