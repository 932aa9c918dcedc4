"""Fulfilment across channels: an order taken in one channel (TikTok) is fulfilled by another (the store).

The hub's part is channel-neutral bookkeeping between the two, with the work each side does named by convention
(``channels/port.py``):

- at release, the order is handed to one active account that fulfils orders (``settings.fulfils_orders``): one that
  has the location holding the order's units, else the first connected (``fulfiller_for``), as an ``order_links``
  row written before the ``<store>.place_order`` job asks the store, so the order is placed once;
- a fulfilment the store reports becomes a ``shipments`` row, once per fulfilment, and a ``<channel>.ship_order``
  job for the order's own channel, which sends the tracking number there;
- the store's answer is recorded on the link: placed (``placed_in_store``), or refused (``refused_by_store``: the
  order is Blocked with ``store_refused`` until a retry places it again, ``place_again``);
- a cancellation on the order's channel after release becomes ``<store>.cancel_order``, whose outcome is
  ``cancel_confirmed`` or ``cancel_refused_by_store``; a cancellation in the store of an order from elsewhere becomes
  ``<channel>.cancel_order`` on the order's channel;
- a released order still without tracking close to its dispatch deadline raises an "SLA at risk" issue.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from shopbridge.domain.matching import BlockReason
from shopbridge.domain.orders import CancelReason, OrderStatus
from shopbridge.runtime.jobs import enqueue
from shopbridge.services.stock import LedgerLine, record_movements
from shopbridge.store.sync_issues import order_blocked_fingerprint, raise_issue, resolve_issue
from shopbridge.store.tables import (
    ChannelAccount,
    ChannelWarehouse,
    Order,
    OrderEvent,
    OrderLink,
    Shipment,
    StockMovement,
)

SLA_CHECK = "fulfilment.sla_check"
SLA_AT_RISK = "sla_at_risk"
STORE_CANCEL_REFUSED = "store_cancel_refused"


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


def fulfiller_for(session: Session, order_id: int, candidates: list[ChannelAccount]) -> ChannelAccount | None:
    """The one account that fulfils the order among ``candidates``: one that has the location where the hub holds
    the order's units (one of its locations is mapped there), else the first connected."""
    if not candidates:
        return None
    held_at = set(session.scalars(
        select(StockMovement.location_id).where(StockMovement.reference == f"order:{order_id}")
        .group_by(StockMovement.location_id).having(func.sum(StockMovement.reserved_delta) > 0)
    ))  # fmt: skip
    if held_at:
        there = set(session.scalars(select(ChannelWarehouse.channel_account_id).where(
            ChannelWarehouse.location_id.in_(held_at),
            ChannelWarehouse.channel_account_id.in_([account.id for account in candidates]))))  # fmt: skip
        for account in sorted(candidates, key=lambda account: account.id):
            if account.id in there:
                return account
    return min(candidates, key=lambda account: account.id)


def hand_over(session: Session, order_account: ChannelAccount, order_id: int, *, now: datetime) -> list[int]:
    """At release: a link to the account that fulfils it (``fulfiller_for``: one order, one fulfiller), and the job
    that places the order there. Returns the link ids; an order already handed over is not handed over again."""
    links: list[int] = []
    if fulfils_orders(order_account):
        return links  # an account that fulfils orders fulfils its own (a store's web orders ship from the store)
    known = session.scalars(select(OrderLink).where(OrderLink.order_id == order_id)).all()
    chosen = fulfiller_for(session, order_id, fulfillers(session, order_account)) if not known else None
    accounts = [chosen] if chosen is not None else [
        account for link in known if (account := session.get(ChannelAccount, link.channel_account_id)) is not None
    ]  # fmt: skip
    for store in accounts:
        link = session.scalar(
            select(OrderLink).where(OrderLink.order_id == order_id, OrderLink.channel_account_id == store.id)
        )
        if link is None:
            link = OrderLink(order_id=order_id, channel_account_id=store.id, state="placing",
                             created_at=now, updated_at=now)  # fmt: skip
            session.add(link)
            session.flush()
        if link.state == "placing":
            _ask_place(session, store, link, now=now)
        links.append(link.id)
    return links


def place_again(session: Session, order_id: int, *, now: datetime) -> list[int]:
    """A retry of an order a store refused (its cause fixed): each refused link of a store that still fulfils orders
    goes back to placing, with its place job. The order stays Blocked until a store takes it. Returns the job ids."""
    queued: list[int] = []
    refused = session.scalars(
        select(OrderLink).where(OrderLink.order_id == order_id, OrderLink.state == "refused").with_for_update()
    ).all()
    for link in refused:
        store = session.get(ChannelAccount, link.channel_account_id)
        if store is not None and fulfils_orders(store):
            link.state, link.error, link.updated_at = "placing", None, now
            queued.append(_ask_place(session, store, link, now=now))
    return queued


def _ask_place(session: Session, store: ChannelAccount, link: OrderLink, *, now: datetime) -> int:
    # As urgent as an order sync: the time to the store order runs from the release.
    return enqueue(session, place_order_kind(store.channel), {"order_id": link.order_id, "link_id": link.id},
                   now=now, identity_key=f"place:{link.id}", channel_account_id=store.id, priority=5,
                   order_id=link.order_id)  # fmt: skip


def _ask_cancel(session: Session, store: ChannelAccount, link: OrderLink, reason: str, *, now: datetime) -> None:
    link.state, link.updated_at = "cancel_requested", now
    enqueue(session, cancel_kind(store.channel), {"order_id": link.order_id, "link_id": link.id, "reason": reason},
            now=now, identity_key=f"cancel-placed:{link.id}", channel_account_id=store.id, priority=20,
            order_id=link.order_id)  # fmt: skip


def _locked_link(session: Session, link_id: int) -> OrderLink | None:
    return session.get(OrderLink, link_id, with_for_update=True, populate_existing=True)


def placed_in_store(session: Session, link_id: int, *, external_id: str, external_name: str | None,
                    now: datetime) -> None:  # fmt: skip
    """The store has the order (just created, or found from an attempt whose answer was lost): the link is placed and
    a refusal recorded before is lifted. A link whose cancellation is under way keeps that state, now with the store
    order to cancel; one already settled as cancelled while the store was being asked (it seemed never placed) asks
    the store to cancel this order after all."""
    link = _locked_link(session, link_id)
    if link is None:
        return
    was_unknown = link.external_id is None
    link.external_id, link.external_name, link.error, link.updated_at = external_id, external_name, None, now
    if link.state in ("placing", "refused"):
        link.state = "placed"
    elif link.state == "cancelled" and was_unknown:
        store = session.get(ChannelAccount, link.channel_account_id)
        assert store is not None
        _ask_cancel(session, store, link, CancelReason.OTHER, now=now)
    _lift_refusal(session, link.order_id, now)


def refused_by_store(session: Session, link_id: int, problem: str, *, now: datetime) -> bool:
    """The store would not take the order (``problem``: what it said, or why the hub could not ask). The link is
    refused, and the order Blocked with ``store_refused`` and an ``order_blocked`` issue until a retry places it
    (``place_again``). A link no longer being placed (cancelled meanwhile) is left as it is. Returns whether the
    link was refused."""
    link = _locked_link(session, link_id)
    if link is None or link.state != "placing":
        return False
    link.state, link.error, link.updated_at = "refused", problem, now
    order = session.get(Order, link.order_id, with_for_update=True)
    store = session.get(ChannelAccount, link.channel_account_id)
    assert order is not None and store is not None
    origin = session.get(ChannelAccount, order.channel_account_id)
    assert origin is not None
    if order.blocked_reason not in (None, BlockReason.STORE_REFUSED):
        return True  # Blocked already, with its own issue; the link keeps the store's words
    order.blocked_reason = BlockReason.STORE_REFUSED
    order.blocked_message = f"{store.label} did not take the order: {problem}"
    order.updated_at = now
    raise_issue(
        session, kind="order_blocked", severity="error", fingerprint=order_blocked_fingerprint(order.id),
        message=f"{origin.label} order {order.external_id} is blocked: {order.blocked_message}. Fix the cause (the "
        f"store's product, or the SKU's link to it), then retry the order",
        now=now, channel_account_id=origin.id, subject_type="order", subject_id=str(order.id),
        details={"reason": BlockReason.STORE_REFUSED, "store": store.label, "link_id": link.id, "act": "ops"},
    )  # fmt: skip
    return True


def _lift_refusal(session: Session, order_id: int, now: datetime) -> None:
    """Unblock an order Blocked because a store refused it, once no store refuses it any more."""
    order = session.get(Order, order_id, with_for_update=True)
    if order is None or order.blocked_reason != BlockReason.STORE_REFUSED:
        return
    if session.scalar(select(OrderLink.id).where(OrderLink.order_id == order_id, OrderLink.state == "refused")):
        return
    order.blocked_reason = order.blocked_message = None
    order.updated_at = now
    resolve_issue(session, order_blocked_fingerprint(order_id), now)


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
        _ask_cancel(session, store, link, reason, now=now)
        asked += 1
    return asked


def cancel_confirmed(session: Session, link_id: int, *, now: datetime) -> None:
    """The store cancelled the order the hub placed (or it was never placed there): the link is cancelled, and a
    refusal recorded before no longer blocks the order."""
    link = _locked_link(session, link_id)
    if link is None:
        return
    link.state, link.error, link.updated_at = "cancelled", None, now
    _lift_refusal(session, link.order_id, now)


def cancel_refused_by_store(session: Session, link_id: int, problem: str, *, now: datetime) -> None:
    """The store would not cancel the order the hub placed (``problem``: what it said; typically it is fulfilled):
    the link is ``cancel_refused`` and ops are told to stop the parcel in the store."""
    link = _locked_link(session, link_id)
    if link is None:
        return
    link.state, link.error, link.updated_at = "cancel_refused", problem, now
    order = session.get(Order, link.order_id)
    store = session.get(ChannelAccount, link.channel_account_id)
    assert order is not None and store is not None
    origin = session.get(ChannelAccount, order.channel_account_id)
    assert origin is not None
    placed_as = link.external_name or link.external_id
    raise_issue(
        session, kind=STORE_CANCEL_REFUSED, severity="error", fingerprint=f"{STORE_CANCEL_REFUSED}:{link.id}",
        message=f"{origin.label} order {order.external_id} was cancelled there, but {store.label} refused to cancel "
        f"its order {placed_as}: {problem}. Stop the parcel in {store.label} (or take it back as a return) and check "
        f"the stock of its SKUs; the buyer is refunded on {origin.label}",
        now=now, channel_account_id=store.id, subject_type="order", subject_id=str(order.id),
        details={"link_id": link.id, "store_order": placed_as, "act": "ops"},
    )  # fmt: skip


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
            now=now, identity_key=f"cancel-origin:{order.id}", channel_account_id=account.id, priority=20,
            order_id=order.id)  # fmt: skip
    return True


def route_to(session: Session, order_id: int, location_id: int, *, now: datetime) -> int:
    """A fulfilling account routed the order to one of its locations (hub location ``location_id``): the units the
    hub holds for it move there (a release where they were held, a reservation there), and the order's later stock
    steps (its sale, or the release of a cancellation) happen there (``orders.fulfilment_location_id``). Returns how
    many units moved; an order already held there moves nothing."""
    order = session.get(Order, order_id, with_for_update=True, populate_existing=True)
    if order is None:
        return 0
    reference = f"order:{order_id}"
    held = session.execute(
        select(StockMovement.variant_id, StockMovement.location_id, func.sum(StockMovement.reserved_delta))
        .where(StockMovement.reference == reference)
        .group_by(StockMovement.variant_id, StockMovement.location_id)
    ).all()
    lines: list[LedgerLine] = []
    moved = 0
    for variant_id, held_at, units in sorted(held, key=lambda row: (row[0], row[1])):
        units = int(units or 0)
        if held_at == location_id or units <= 0:
            continue
        key = f"route:{order_id}:{variant_id}:{held_at}>{location_id}:{now.isoformat()}"
        lines.append(LedgerLine(f"{key}:release", variant_id, held_at, "release", 0, reference, -units))
        lines.append(LedgerLine(f"{key}:reserve", variant_id, location_id, "reservation", 0, reference, units))
        moved += units
    if lines:
        # Recorded as the order's own stock steps are, under its channel's name: a move is no stock source's word.
        origin = session.get(ChannelAccount, order.channel_account_id)
        assert origin is not None
        record_movements(session, lines, source=origin.channel, now=now)
    order.fulfilment_location_id = location_id
    return moved


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
            identity_key=f"ship:{shipment.id}", channel_account_id=account.id, priority=5,
            order_id=order.id)  # fmt: skip
    return shipment.id


def shipment_sent(session: Session, shipment: Shipment, *, package_id: str | None, provider: str | None,
                  now: datetime) -> None:  # fmt: skip
    """The order's channel has the tracking number: the shipment is done, and the order no longer at risk."""
    shipment.state, shipment.sent_at, shipment.error = "sent", now, None
    shipment.external_package_id, shipment.provider = package_id, provider
    resolve_issue(session, sla_fingerprint(shipment.order_id), now)


def sla_fingerprint(order_id: int) -> str:
    return f"{SLA_AT_RISK}:{order_id}"


def orders_at_risk(session: Session, *, now: datetime, warn_before: timedelta) -> list[tuple[Order, datetime]]:
    """Released orders not yet shipped on their channel, no tracking sent, whose dispatch deadline is within
    ``warn_before`` (or past)."""
    sent = select(Shipment.id).where(Shipment.order_id == Order.id, Shipment.state == "sent").exists()
    due = session.scalars(
        select(Order).where(Order.dispatch_by <= now + warn_before, Order.released_at.is_not(None), ~sent)
    ).all()
    return [(order, order.dispatch_by) for order in due if order.dispatch_by is not None]


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
            details={"external_id": order.external_id, "dispatch_by": deadline.isoformat(), "act": "ops"},
        )  # fmt: skip
    return len(at_risk)


def note(session: Session, order: Order, kind: str, payload: dict[str, Any], *, now: datetime) -> None:
    """An order event (once per kind), for the order's timeline."""
    if session.scalar(select(OrderEvent.id).where(OrderEvent.order_id == order.id, OrderEvent.kind == kind)):
        return
    session.add(OrderEvent(order_id=order.id, channel_account_id=order.channel_account_id, kind=kind,
                           payload=payload, created_at=now))  # fmt: skip
