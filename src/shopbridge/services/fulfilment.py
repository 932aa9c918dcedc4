"""Fulfilment across channels: an order taken in one channel (TikTok) is fulfilled by another (the store).

The hub's part is channel-neutral bookkeeping between the two, with the work each side does named by convention
(``channels/port.py``):

- at release, the order is handed to every active account that fulfils orders (``settings.fulfils_orders``), as an
  ``order_links`` row written before the ``<store>.place_order`` job asks the store, so the order is placed once;
- a fulfilment the store reports becomes a ``shipments`` row, once per fulfilment, and a ``<channel>.ship_order``
  job for the order's own channel, which sends the tracking number there;
- a cancellation on the order's channel after release becomes ``<store>.cancel_order``; a cancellation in the store
  of an order from elsewhere becomes ``<channel>.cancel_order`` on the order's channel;
- a released order still without tracking close to its dispatch deadline raises an "SLA at risk" issue.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from shopbridge.domain.orders import OrderStatus
from shopbridge.runtime.jobs import enqueue
from shopbridge.store.sync_issues import raise_issue, resolve_issue
from shopbridge.store.tables import ChannelAccount, Order, OrderEvent, OrderLink, Shipment

SLA_CHECK = "fulfilment.sla_check"
SLA_AT_RISK = "sla_at_risk"


def place_order_kind(channel: str) -> str:
    """The job that places a released order in an account of ``channel``: payload ``{"order_id", "link_id"}``."""
    return f"{channel}.place_order"


def ship_kind(channel: str) -> str:
    """The job that tells ``channel`` an order of its shipped: payload ``{"shipment_id"}``."""
    return f"{channel}.ship_order"


def cancel_kind(channel: str) -> str:
    """The job that cancels an order in ``channel``: payload ``{"order_id", "reason", "link_id"?}``; for a store,
    ``link_id`` names the order it placed."""
    return f"{channel}.cancel_order"


def answer_cancellation_kind(channel: str) -> str:
    """The job that answers a buyer's cancellation request on ``channel``: payload ``{"request_id", "approve"}``."""
    return f"{channel}.answer_cancellation"


def fulfils_orders(account: ChannelAccount) -> bool:
    return account.status == "active" and bool((account.settings or {}).get("fulfils_orders"))


def fulfillers(session: Session, order_account: ChannelAccount) -> list[ChannelAccount]:
    """The active accounts, other than the order's own channel, that fulfil released orders."""
    accounts = session.scalars(select(ChannelAccount).where(ChannelAccount.channel != order_account.channel))
    return [account for account in accounts if fulfils_orders(account)]


def hand_over(session: Session, order_account: ChannelAccount, order_id: int, *, now: datetime) -> list[int]:
    """At release: a link to each fulfilling account, and the job that places the order there. Returns the link
    ids; an order already handed over is not handed over again."""
    links: list[int] = []
    for store in fulfillers(session, order_account):
        link = session.scalar(
            select(OrderLink).where(OrderLink.order_id == order_id, OrderLink.channel_account_id == store.id)
        )
        if link is None:
            link = OrderLink(order_id=order_id, channel_account_id=store.id, state="placing",
                             created_at=now, updated_at=now)  # fmt: skip
            session.add(link)
            session.flush()
        if link.state == "placing":
            enqueue(session, place_order_kind(store.channel), {"order_id": order_id, "link_id": link.id}, now=now,
                    identity_key=f"place:{link.id}", channel_account_id=store.id, priority=20)  # fmt: skip
        links.append(link.id)
    return links


def cancel_in_fulfillers(session: Session, order_id: int, reason: str, *, now: datetime) -> int:
    """The order was cancelled on its own channel after release: cancel what was placed for it. Returns how many
    cancellations were asked for."""
    asked = 0
    links = session.scalars(select(OrderLink).where(OrderLink.order_id == order_id)).all()
    for link in links:
        if link.state not in ("placing", "placed", "refused"):
            continue
        store = session.get(ChannelAccount, link.channel_account_id)
        assert store is not None
        link.state, link.updated_at = "cancel_requested", now
        enqueue(session, cancel_kind(store.channel), {"order_id": order_id, "link_id": link.id, "reason": reason},
                now=now, identity_key=f"cancel-placed:{link.id}", channel_account_id=store.id, priority=20)  # fmt: skip
        asked += 1
    return asked


def cancelled_in_store(session: Session, link: OrderLink, reason: str, *, now: datetime) -> bool:
    """The store cancelled an order placed for another channel: cancel it on the order's channel (once), unless it
    is cancelled there already or the cancellation started there."""
    if link.state in ("cancel_requested", "cancelled"):
        link.state, link.updated_at = "cancelled", now
        return False
    link.state, link.updated_at = "cancelled", now
    order = session.get(Order, link.order_id)
    assert order is not None
    if order.status == OrderStatus.CANCELLED:
        return False
    account = session.get(ChannelAccount, order.channel_account_id)
    assert account is not None
    enqueue(session, cancel_kind(account.channel), {"order_id": order.id, "reason": reason, "source": "store"},
            now=now, identity_key=f"cancel-origin:{order.id}", channel_account_id=account.id, priority=20)  # fmt: skip
    return True


@dataclass(frozen=True)
class Fulfilment:
    """A fulfilment as the fulfilling side reports it."""

    external_id: str
    carrier: str | None
    tracking_number: str | None
    tracking_url: str | None
    lines: list[dict[str, Any]]  # [{sku, variant_id, quantity}]
    shipped_at: datetime


def record_shipment(session: Session, link: OrderLink, fulfilment: Fulfilment, *, now: datetime) -> int | None:
    """A fulfilment the store made for a linked order: recorded once, and sent to the order's channel. Returns the
    new shipment's id, or None for one already recorded."""
    known = session.scalar(
        select(Shipment.id).where(
            Shipment.channel_account_id == link.channel_account_id, Shipment.external_id == fulfilment.external_id
        )
    )
    if known is not None:
        return None
    order = session.get(Order, link.order_id)
    assert order is not None
    account = session.get(ChannelAccount, order.channel_account_id)
    assert account is not None
    shipment = Shipment(
        order_id=order.id, channel_account_id=link.channel_account_id, external_id=fulfilment.external_id,
        carrier=fulfilment.carrier, tracking_number=fulfilment.tracking_number, tracking_url=fulfilment.tracking_url,
        lines=fulfilment.lines, shipped_at=fulfilment.shipped_at, state="pending", created_at=now,
    )  # fmt: skip
    session.add(shipment)
    session.flush()
    enqueue(session, ship_kind(account.channel), {"shipment_id": shipment.id}, now=now,
            identity_key=f"ship:{shipment.id}", channel_account_id=account.id, priority=10)  # fmt: skip
    return shipment.id


def shipment_sent(session: Session, shipment: Shipment, *, package_id: str | None, provider: str | None,
                  now: datetime) -> None:  # fmt: skip
    """The order's channel has the tracking number: the shipment is done, and the order no longer at risk."""
    shipment.state, shipment.sent_at, shipment.error = "sent", now, None
    shipment.external_package_id, shipment.provider = package_id, provider
    resolve_issue(session, sla_fingerprint(shipment.order_id), now)


def sla_fingerprint(order_id: int) -> str:
    return f"{SLA_AT_RISK}:{order_id}"


def _deadline(order: Order) -> datetime | None:
    value = (order.deadlines or {}).get("rts_sla_time")
    return None if value is None else datetime.fromtimestamp(int(value), UTC)


SHIPPED = frozenset({OrderStatus.AWAITING_COLLECTION, OrderStatus.IN_TRANSIT, OrderStatus.DELIVERED,
                     OrderStatus.COMPLETED, OrderStatus.CANCELLED})  # fmt: skip


def orders_at_risk(session: Session, *, now: datetime, warn_before: timedelta) -> list[tuple[Order, datetime]]:
    """Released orders not yet shipped on their channel, no tracking sent, whose dispatch deadline is within
    ``warn_before`` (or past)."""
    released = session.scalars(
        select(Order).where(Order.released_at.is_not(None), Order.status.not_in([s.value for s in SHIPPED]))
    ).all()
    sent = set(session.scalars(select(Shipment.order_id).where(Shipment.state == "sent")).all())
    at_risk = []
    for order in released:
        deadline = _deadline(order)
        if deadline is not None and order.id not in sent and deadline - warn_before <= now:
            at_risk.append((order, deadline))
    return at_risk


def check_sla(session: Session, *, now: datetime, warn_before: timedelta) -> int:
    """Raise an "SLA at risk" issue for each order at risk (one open issue per order); returns how many."""
    at_risk = orders_at_risk(session, now=now, warn_before=warn_before)
    for order, deadline in at_risk:
        late = deadline <= now
        raise_issue(
            session, kind=SLA_AT_RISK, severity="critical" if late else "error",
            fingerprint=sla_fingerprint(order.id), channel_account_id=order.channel_account_id,
            subject_type="order", subject_id=str(order.id), now=now,
            message=(f"order {order.external_id} has no tracking on its channel and its dispatch deadline "
                     f"{deadline.isoformat()} {'has passed' if late else 'is near'}"),
            details={"external_id": order.external_id, "rts_sla_time": deadline.isoformat(), "act": "ops"},
        )  # fmt: skip
    return len(at_risk)


def note(session: Session, order: Order, kind: str, payload: dict[str, Any], *, now: datetime) -> None:
    """An order event (once per kind), for the order's timeline."""
    if session.scalar(select(OrderEvent.id).where(OrderEvent.order_id == order.id, OrderEvent.kind == kind)):
        return
    session.add(OrderEvent(order_id=order.id, channel_account_id=order.channel_account_id, kind=kind,
                           payload=payload, created_at=now))  # fmt: skip
