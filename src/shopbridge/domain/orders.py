"""The unified order: one shape for every channel, with the channel's own status kept verbatim beside ours."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from shopbridge.domain.money import Money


class OrderStatus(StrEnum):
    """The normalized status, spelled the same in the database, the API and the dashboard."""

    UNPAID = "unpaid"
    ON_HOLD = "on_hold"
    AWAITING_SHIPMENT = "awaiting_shipment"
    PARTIALLY_SHIPPED = "partially_shipped"
    AWAITING_COLLECTION = "awaiting_collection"
    IN_TRANSIT = "in_transit"
    DELIVERED = "delivered"
    COMPLETED = "completed"
    CANCELLED = "cancelled"


# The order of progress, so an out-of-date read never moves an order backwards.
_PROGRESS = {
    OrderStatus.UNPAID: 0,
    OrderStatus.ON_HOLD: 1,
    OrderStatus.AWAITING_SHIPMENT: 2,
    OrderStatus.PARTIALLY_SHIPPED: 3,
    OrderStatus.AWAITING_COLLECTION: 4,
    OrderStatus.IN_TRANSIT: 5,
    OrderStatus.DELIVERED: 6,
    OrderStatus.COMPLETED: 7,
    OrderStatus.CANCELLED: 8,
}

# Only orders still waiting to be shipped go to fulfilment. One first seen later in its life (shipped from Seller
# Center, or history read on first connect) was fulfilled elsewhere: releasing it would ship it twice.
RELEASABLE = frozenset({OrderStatus.AWAITING_SHIPMENT, OrderStatus.PARTIALLY_SHIPPED})

# Orders someone still has to ship: their dispatch deadline is what the queue puts first.
TO_DISPATCH = frozenset({OrderStatus.ON_HOLD, OrderStatus.AWAITING_SHIPMENT, OrderStatus.PARTIALLY_SHIPPED})

# The keys of ``Order.deadlines`` every channel may fill: the latest time the order must be handed to a carrier, and
# the end of a free-cancellation hold (the order cannot be fulfilled before it).
DISPATCH_DEADLINE = "dispatch_by"
HOLD_UNTIL = "hold_until"


class UnknownStatus(ValueError):
    pass


class CancelReason(StrEnum):
    """Why an order is cancelled, in words every channel maps its own reasons to and from."""

    BUYER = "buyer"  # the buyer asked
    OUT_OF_STOCK = "out_of_stock"
    FRAUD = "fraud"
    DECLINED = "declined"  # the payment was declined
    UNDELIVERABLE = "undeliverable"
    STAFF = "staff"  # a staff error (wrong price, wrong item)
    OTHER = "other"


def progress(status: OrderStatus) -> int:
    return _PROGRESS[status]


@dataclass(frozen=True)
class OrderLine:
    """All units of one SKU in an order. A channel may send one line item per unit (TikTok does); their ids are kept
    so a partial cancellation or refund can name exactly which units."""

    external_sku_id: str
    seller_sku: str | None
    title: str
    quantity: int
    unit_price: Money
    line_item_ids: tuple[str, ...]
    external_product_id: str | None = None


@dataclass(frozen=True)
class Order:
    channel: str
    external_id: str
    channel_status: str
    status: OrderStatus
    currency: str
    total: Money
    subtotal: Money | None
    shipping: Money | None
    tax: Money | None
    lines: tuple[OrderLine, ...]
    created_at: datetime
    updated_at: datetime
    payment_method: str | None = None
    is_cod: bool = False
    buyer: dict[str, Any] = field(default_factory=dict)
    recipient: dict[str, Any] = field(default_factory=dict)
    deadlines: dict[str, datetime] = field(default_factory=dict)
    packages: tuple[dict[str, Any], ...] = ()
    warehouse_id: str | None = None

    @property
    def dispatch_by(self) -> datetime | None:
        """The dispatch deadline while the order still has to be shipped."""
        return self.deadlines.get(DISPATCH_DEADLINE) if self.status in TO_DISPATCH else None

    @property
    def buyer_name(self) -> str | None:
        """The name staff search the order by: the recipient's (or the buyer's), in search form."""
        return buyer_name(self.buyer, self.recipient)


MAX_NAME = 200


def search_form(name: str) -> str:
    """A name as searched: case and spacing do not matter ("  ana  SILVA" finds "Ana Silva")."""
    return " ".join(name.casefold().split())[:MAX_NAME]


def buyer_name(buyer: dict[str, Any], recipient: dict[str, Any]) -> str | None:
    """The person's name in search form, from the first that is given: the recipient's name, their first and last
    names (as channels spell them), the buyer's customer name. None when no name is given."""
    candidates = [
        recipient.get("name"),
        " ".join(str(recipient.get(key) or "") for key in ("first_name", "firstName", "last_name", "lastName")),
        buyer.get("customer_name"),
    ]
    for candidate in candidates:
        if isinstance(candidate, str) and candidate.strip():
            return search_form(candidate)
    return None


@dataclass(frozen=True)
class ReleaseDecision:
    release: bool
    reason: str
    not_before: datetime | None = None


def release_decision(
    status: OrderStatus,
    *,
    now: datetime,
    reached_awaiting_at: datetime | None,
    extra_hold: timedelta = timedelta(0),
    blocked: bool = False,
    already_released: bool = False,
) -> ReleaseDecision:
    """Whether an order may go to fulfilment now. Never while ON_HOLD (the buyer may still cancel for free),
    never once cancelled, never while blocked, and only after the shop's optional extra hold."""
    if already_released:
        return ReleaseDecision(False, "already released")
    if status is OrderStatus.CANCELLED:
        return ReleaseDecision(False, "cancelled")
    if progress(status) < progress(OrderStatus.AWAITING_SHIPMENT):
        return ReleaseDecision(False, f"{status.value}: not yet awaiting shipment")
    if status not in RELEASABLE:
        return ReleaseDecision(False, f"{status.value}: already shipped outside the hub")
    if blocked:
        return ReleaseDecision(False, "blocked")
    since = reached_awaiting_at or now
    not_before = since + extra_hold
    if now < not_before:
        return ReleaseDecision(False, "extra hold", not_before=not_before)
    return ReleaseDecision(True, "awaiting shipment")
