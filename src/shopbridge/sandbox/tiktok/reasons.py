"""Cancellation reasons (§7.2): a machine key (`cancel_reason`) beside the text shown to people
(`cancel_reason_text`). The order object only carries the text, in its own `cancel_reason` (§4.3 doc sample).

The reference's only documented pair is the search sample's (created by mistake); the other keys follow its
naming and are [INFERRED], as are the texts of the system's own cancellations.
"""

from __future__ import annotations

# Buyer reasons: what a buyer picks in the app.
BUYER_CANCEL_REASONS = {
    "ecom_order_to_ship_canceled_reason_created_by_mistakes": "Order created by mistake",
    "ecom_order_to_ship_canceled_reason_no_longer_needed": "No longer needed",
    "ecom_order_to_ship_canceled_reason_change_of_mind": "Changed my mind",
    "ecom_order_to_ship_canceled_reason_discount_not_as_expected": "Discount not as expected",
    "ecom_order_to_ship_canceled_reason_better_price_elsewhere": "Found a better price elsewhere",
    "ecom_order_to_ship_canceled_reason_shipping_too_long": "Shipping takes too long",
}
# A buyer's own words (control API) that match none of the above: "other", with the words as the text.
BUYER_OTHER_REASON = "ecom_order_to_ship_canceled_reason_other"
DEFAULT_BUYER_REASON = "ecom_order_to_ship_canceled_reason_no_longer_needed"

# Seller reasons: the names Cancel Order takes (the last one is the reference's seller-cancel sample).
SELLER_CANCEL_REASONS = {
    "seller_cancel_reason_out_of_stock": "Out of stock",
    "seller_cancel_reason_wrong_price": "Pricing error",
    "seller_cancel_reason_unable_to_deliver": "Unable to deliver to buyer address",
    "ecom_order_delivered_refund_and_return_reason_wrong_product_seller": "Wrong product",
}

# The platform's automatic cancellations.
SYSTEM_UNPAID_REASON = "ecom_order_unpaid_canceled_reason_payment_overdue"
SYSTEM_NOT_SHIPPED_REASON = "ecom_order_to_ship_canceled_reason_seller_overdue"
SYSTEM_CANCEL_REASONS = {
    SYSTEM_UNPAID_REASON: "Payment overdue",
    SYSTEM_NOT_SHIPPED_REASON: "Package wasn't shipped on time",
}

REASON_TEXTS = {**BUYER_CANCEL_REASONS, **SELLER_CANCEL_REASONS, **SYSTEM_CANCEL_REASONS}
_BUYER_KEY_BY_TEXT = {text.casefold(): key for key, text in BUYER_CANCEL_REASONS.items()}


def reason_text(key: str) -> str:
    """The text shown for a reason key (en-US; the sandbox has one locale)."""
    return REASON_TEXTS.get(key, key)


def buyer_reason(given: str) -> tuple[str, str]:
    """(key, text) for what a buyer gave: a known key, a known text, or their own words filed under "other"."""
    given = given.strip()
    if given in BUYER_CANCEL_REASONS:
        return given, BUYER_CANCEL_REASONS[given]
    key = _BUYER_KEY_BY_TEXT.get(given.casefold())
    if key is not None:
        return key, BUYER_CANCEL_REASONS[key]
    if not given:
        return DEFAULT_BUYER_REASON, BUYER_CANCEL_REASONS[DEFAULT_BUYER_REASON]
    return BUYER_OTHER_REASON, given
