"""What an order's state adds up to: totals, quantities and the display statuses, all derived, never stored.

* ``displayFinancialStatus`` is derived from the transactions unless ``financialStatus`` was given at create (§4.1);
  a given PAID with no transactions counts as paid in full, and later refunds or voids take over.
* ``displayFulfillmentStatus``: UNFULFILLED, PARTIALLY_FULFILLED or FULFILLED from the fulfilment orders' remaining
  quantities and the successful fulfilments (§4.5).
* An order is closed (archived) once cancelled, or once fully fulfilled and settled, as Shopify's default
  auto-archive does ([INFERRED]).
"""

from __future__ import annotations

from decimal import Decimal

from .models import LineItem, Order
from .money import dec

PAID_KINDS = ("SALE", "CAPTURE")


def line_total(line: LineItem) -> Decimal:
    return dec(line.price) * line.quantity


def subtotal(order: Order) -> Decimal:
    return sum((line_total(li) for li in order.line_items), Decimal(0))


def current_subtotal(order: Order) -> Decimal:
    return sum((dec(li.price) * (li.quantity - li.refunded_quantity) for li in order.line_items), Decimal(0))


def shipping_total(order: Order) -> Decimal:
    return sum((dec(s.price) for s in order.shipping_lines), Decimal(0))


def tax_total(order: Order) -> Decimal:
    line_taxes = sum((dec(t.price) for li in order.line_items for t in li.tax_lines), Decimal(0))
    return line_taxes + sum((dec(t.price) for t in order.tax_lines), Decimal(0))


def total(order: Order) -> Decimal:
    tax = Decimal(0) if order.taxes_included else tax_total(order)
    return subtotal(order) + shipping_total(order) + tax


def refunded(order: Order) -> Decimal:
    return sum((dec(t.amount) for t in order.transactions if t.kind == "REFUND" and t.status == "SUCCESS"), Decimal(0))


def received(order: Order) -> Decimal:
    paid = sum(
        (dec(t.amount) for t in order.transactions if t.kind in PAID_KINDS and t.status == "SUCCESS"), Decimal(0)
    )
    given_paid = order.financial_status in ("PAID", "PARTIALLY_REFUNDED", "REFUNDED")
    if paid == 0 and given_paid:
        return total(order)
    return paid


def authorized(order: Order) -> Decimal:
    return sum(
        (dec(t.amount) for t in order.transactions if t.kind == "AUTHORIZATION" and t.status == "SUCCESS"),
        Decimal(0),
    )


def current_total(order: Order) -> Decimal:
    removed = sum((dec(line.subtotal) for r in order.refunds for line in r.line_items), Decimal(0))
    removed_shipping = sum((dec(r.shipping_amount) for r in order.refunds), Decimal(0))
    return max(Decimal(0), total(order) - removed - removed_shipping)


def financial_status(order: Order) -> str:
    paid, back = received(order), refunded(order)
    if back > 0:
        return "REFUNDED" if back >= paid else "PARTIALLY_REFUNDED"
    if any(t.kind == "VOID" and t.status == "SUCCESS" for t in order.transactions):
        return "VOIDED"
    has_transactions = any(t.kind in (*PAID_KINDS, "AUTHORIZATION") for t in order.transactions)
    if order.financial_status is not None and not has_transactions:
        return order.financial_status
    due = total(order)
    if paid > 0 and paid >= due:
        return "PAID"
    if paid > 0:
        return "PARTIALLY_PAID"
    if authorized(order) > 0:
        return "AUTHORIZED"
    return "PAID" if due == 0 else "PENDING"


def fulfilled_quantity(order: Order, line_item_id: str) -> int:
    return sum(
        fl.quantity
        for f in order.fulfillments
        if f.status == "SUCCESS"
        for fl in f.line_items
        if fl.line_item_id == line_item_id
    )


def unfulfilled_quantity(order: Order, line_item_id: str) -> int:
    return sum(
        fl.remaining_quantity
        for fo in order.fulfillment_orders
        if fo.status in ("OPEN", "IN_PROGRESS", "SCHEDULED", "ON_HOLD", "INCOMPLETE")
        for fl in fo.line_items
        if fl.line_item_id == line_item_id
    )


def returned_quantity(order: Order, line_item_id: str) -> int:
    return sum(
        rl.quantity
        for r in order.refunds
        for rl in r.line_items
        if rl.line_item_id == line_item_id and rl.restock_type == "RETURN"
    )


def fulfillment_status(order: Order) -> str:
    remaining = sum(unfulfilled_quantity(order, li.id) for li in order.line_items)
    shipped = sum(fulfilled_quantity(order, li.id) for li in order.line_items)
    if shipped == 0:
        return "UNFULFILLED"
    return "FULFILLED" if remaining == 0 else "PARTIALLY_FULFILLED"


def line_fulfillment_status(order: Order, line: LineItem) -> str | None:
    """REST ``line_items[].fulfillment_status``: null, "partial" or "fulfilled"."""
    shipped = fulfilled_quantity(order, line.id)
    if shipped == 0:
        return None
    return "fulfilled" if unfulfilled_quantity(order, line.id) == 0 else "partial"


def settled(order: Order) -> bool:
    return financial_status(order) in ("PAID", "PARTIALLY_REFUNDED", "REFUNDED", "VOIDED")


def should_close(order: Order) -> bool:
    if order.cancelled_at is not None:
        return True
    remaining = sum(unfulfilled_quantity(order, li.id) for li in order.line_items)
    return remaining == 0 and settled(order)
