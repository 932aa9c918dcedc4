"""Shopify's words for what the hub names in its own (domain/orders.py): cancellation reasons both ways, and the
attribute that marks a store order the hub placed."""

from __future__ import annotations

from shopbridge.domain.orders import CancelReason

# The customAttribute every store order the hub places carries: the hub's order id (orders.py writes it, intake.py
# reads it to tell such an order from the store's own).
HUB_ORDER_ATTRIBUTE = "shopbridge_order_id"

# OrderCancelReason (reference §4.4) → the hub's reason.
CANCEL_REASON_IN = {
    "CUSTOMER": CancelReason.BUYER,
    "INVENTORY": CancelReason.OUT_OF_STOCK,
    "FRAUD": CancelReason.FRAUD,
    "DECLINED": CancelReason.DECLINED,
    "STAFF": CancelReason.STAFF,
    "OTHER": CancelReason.OTHER,
}
# The hub's reason → OrderCancelReason (no undeliverable reason in Shopify: OTHER).
CANCEL_REASON_OUT = {reason: name for name, reason in CANCEL_REASON_IN.items()} | {CancelReason.UNDELIVERABLE: "OTHER"}


def cancel_reason_in(shopify_reason: str | None) -> CancelReason:
    """The hub's reason for a store cancellation (REST payloads spell it in lower case)."""
    return CANCEL_REASON_IN.get((shopify_reason or "").upper(), CancelReason.OTHER)


def cancel_reason_out(reason: str) -> str:
    try:
        return CANCEL_REASON_OUT[CancelReason(reason)]
    except ValueError:
        return "OTHER"
