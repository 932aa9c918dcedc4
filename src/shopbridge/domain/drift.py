"""Status drift: an open order's state in the hub against what an outside system shows of it, when an event was
missed (a webhook lost, a change made without one).

The hub's own state is the pivot: each outside system is compared with the hub, so a disagreement between two of them
(shipped at the store but not on TikTok) shows up as one of them disagreeing with the hub. Two sides are read:

- the **fulfiller** (a store, a POS) holds the orders the hub placed there: ``fulfiller_drift`` compares one placed
  order (``LinkFacts``) with what the fulfiller shows of it (``FulfillerReading``);
- the **origin** (TikTok, the store for its own orders) holds the order as the buyer made it: ``origin_drift``
  compares one hub order (``OrderFacts``) with what its channel shows (``OriginReading``).

A change still in flight is no drift: an event the hub holds but has not applied yet (``pending_event``), or work
the hub asked for less than ``IN_FLIGHT`` ago (a cancellation, a shipment's tracking, a refund). Each drift names
who should act (``none`` when the hub repairs it itself) and the repair that is safe to make automatically.

Pure: the facts and readings are gathered by services/drift.py and the channels.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Literal, Protocol

from shopbridge.domain.orders import TO_DISPATCH, OrderStatus, progress

# Work the hub asked for is given this long to land before its absence counts as drift.
IN_FLIGHT = timedelta(minutes=2)

FulfillerStatus = Literal["open", "in_progress", "shipped", "cancelled", "missing"]
Act = Literal["ops", "owner", "none"]
FULFILLER_STATUSES: tuple[FulfillerStatus, ...] = ("open", "in_progress", "shipped", "cancelled", "missing")
# Channel statuses under which the order still waits for (some of) its parcels.
TO_SHIP = frozenset({OrderStatus.AWAITING_SHIPMENT, OrderStatus.PARTIALLY_SHIPPED})


class DriftKind(StrEnum):
    """What disagrees, in the words the issues, the API and the dashboard use."""

    SHIPPED_NOT_RECORDED = "shipped_not_recorded"  # the fulfiller shipped; the hub has no shipment for it
    SHIPPED_NOT_ON_CHANNEL = "shipped_not_on_channel"  # the hub has the tracking; the order's channel does not
    CANCELLED_STILL_FULFILLING = "cancelled_still_fulfilling"  # cancelled, but still open at the fulfiller
    CANCELLED_AT_FULFILLER = "cancelled_at_fulfiller"  # the fulfiller cancelled (or lost) it; the order is live
    CANCELLED_NOT_IN_HUB = "cancelled_not_in_hub"  # the order's channel cancelled it; the hub did not hear
    SHIPPED_ON_CHANNEL_ONLY = "shipped_on_channel_only"  # the order's channel shows it shipped; the hub does not
    REFUNDED_NOT_ON_CHANNEL = "refunded_not_on_channel"  # a store return's refund is missing on the order's channel
    RETURNED_NOT_RECORDED = "returned_not_recorded"  # the fulfiller took a return the hub never heard of


FULFILLER_KINDS = frozenset({DriftKind.SHIPPED_NOT_RECORDED, DriftKind.CANCELLED_STILL_FULFILLING,
                             DriftKind.CANCELLED_AT_FULFILLER, DriftKind.RETURNED_NOT_RECORDED})  # fmt: skip
ORIGIN_KINDS = frozenset(DriftKind) - FULFILLER_KINDS


class Repair(StrEnum):
    """What the hub does about a drift on its own: what the missed event would have made it do, or the work it
    asked for, asked again (every such request is idempotent)."""

    RECORD_SHIPMENT = "record_shipment"  # record the fulfiller's shipment: its tracking goes to the order's channel
    RECORD_RETURN = "record_return"  # record the fulfiller's return: restocked, and refunded on the order's channel
    ASK_CANCEL = "ask_cancel"  # ask the fulfiller (again) to cancel the order it holds
    TAKE_CANCELLATION = "take_cancellation"  # the fulfiller's cancellation, as its event: cancel on the channel
    RESYNC = "resync"  # read the order again from its channel
    RESEND_TRACKING = "resend_tracking"  # send the shipment's tracking to the order's channel again
    ASK_REFUND = "ask_refund"  # ask the order's channel again for a store return's refund


class Shipped(Protocol):
    """A shipment as a fulfiller reports it (``services.fulfilment.Fulfilment``)."""

    @property
    def external_id(self) -> str: ...

    @property
    def tracking_number(self) -> str | None: ...


class Returned(Protocol):
    """A return as a fulfiller reports it (``services.returns.ReturnIn``)."""

    @property
    def external_id(self) -> str: ...


# --- the fulfiller's side ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LinkFacts:
    """The hub's side of one order placed at a fulfiller (an ``order_links`` row and its order)."""

    link_id: int
    order_id: int
    order_external_id: str
    origin: str  # the order's channel account, as people name it
    fulfiller: str  # the fulfilling account, as people name it
    placed_as: str | None  # the order's name or id at the fulfiller
    order_status: OrderStatus
    order_updated_at: datetime
    link_state: str  # placed, cancel_requested, cancel_refused
    link_updated_at: datetime
    recorded_shipments: frozenset[str] = frozenset()  # the fulfiller's shipment ids the hub has
    recorded_returns: frozenset[str] = frozenset()  # the fulfiller's return ids the hub has


@dataclass(frozen=True)
class FulfillerReading:
    """What a fulfiller shows of an order the hub placed there, read through its API."""

    link_id: int
    status: FulfillerStatus
    shipments: tuple[Shipped, ...] = ()  # every shipment it made for the order, with its tracking
    returns: tuple[Returned, ...] = ()  # returns it took back for the order
    words: str | None = None  # its own word for the order's state ("PAID/UNFULFILLED", "picking")
    pending_event: bool = False  # the hub holds an event of the fulfiller about this order, not yet applied
    cancel_reason: str | None = None  # why it cancelled the order, as a ``CancelReason`` value


# --- the origin's side -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ShipmentFacts:
    """A shipment the hub holds for an order, to be (or already) reported to the order's channel."""

    shipment_id: int
    tracking_number: str | None
    state: str  # pending, sent, failed
    since: datetime  # when it was sent, or else recorded
    in_flight: bool = False  # its job to the order's channel is waiting or running


@dataclass(frozen=True)
class RefundFacts:
    """A store return of an order, whose refund the hub asked the order's channel for."""

    return_id: int
    external_id: str  # the return's id where it was taken back
    state: str  # refunding, refunded
    refund_external_id: str | None  # the refund's id on the order's channel
    since: datetime  # the return's last change
    in_flight: bool = False  # its refund job is waiting or running


@dataclass(frozen=True)
class OrderFacts:
    """The hub's side of one order of an origin channel."""

    order_id: int
    external_id: str
    origin: str  # its channel account, as people name it
    status: OrderStatus
    channel_status: str  # the channel's word the hub last read
    updated_at: datetime
    placed_at: tuple[str, ...] = ()  # the fulfillers holding it (their names)
    shipments: tuple[ShipmentFacts, ...] = ()
    refunds: tuple[RefundFacts, ...] = ()


@dataclass(frozen=True)
class OriginReading:
    """What the order's own channel shows of it. ``tracking`` and ``refunds`` are None when they were not read (the
    comparison then leaves them out)."""

    order_id: int
    status: OrderStatus | None  # None: the channel did not return the order
    words: str = ""  # the channel's own word for its status
    tracking: frozenset[str] | None = None  # tracking numbers on the order's packages
    refunds: frozenset[str] | None = None  # refunds of the order not refused or cancelled there (their ids)
    pending_event: bool = False  # the hub holds an event of the channel about this order, not yet applied


# --- drift ----------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Drift:
    """One disagreement about one order: what it is, who should act, what the hub repairs, and a message naming
    both systems' words. ``shipments``, ``returns``, ``shipment_ids`` and ``return_ids`` are what the repair
    takes."""

    kind: DriftKind
    role_to_act: Act
    repair: Repair | None
    message: str
    shipments: tuple[Shipped, ...] = ()
    returns: tuple[Returned, ...] = ()
    shipment_ids: tuple[int, ...] = ()
    return_ids: tuple[int, ...] = ()
    cancel_reason: str | None = None  # for TAKE_CANCELLATION: the fulfiller's reason


def _young(since: datetime, now: datetime) -> bool:
    return now - since < IN_FLIGHT


def _words(status: OrderStatus) -> str:
    return status.value.replace("_", " ")


def _ids(items: Sequence[Shipped] | Sequence[Returned]) -> str:
    return ", ".join(item.external_id for item in items)


def fulfiller_drift(facts: LinkFacts, reading: FulfillerReading, *, now: datetime) -> list[Drift]:
    """How the fulfiller's view of an order placed there disagrees with the hub's (empty: in step)."""
    if reading.pending_event:
        return []
    drifts: list[Drift] = []
    order = f"{facts.origin} order {facts.order_external_id}"
    there = f"{facts.fulfiller} order {facts.placed_as}" if facts.placed_as else f"its {facts.fulfiller} order"
    said = f" ({reading.words})" if reading.words else ""
    placed = f" ({facts.placed_as})" if facts.placed_as else ""
    cancelled = facts.order_status is OrderStatus.CANCELLED
    unrecorded = tuple(s for s in reading.shipments if s.external_id not in facts.recorded_shipments)
    if unrecorded:
        tracking = ", ".join(s.tracking_number or "no tracking" for s in unrecorded)
        if cancelled:
            message = (f"{there}{said} shipped ({tracking}) although {order} is cancelled, and the hub had not "
                       f"heard: stop the parcel at {facts.fulfiller} or take it back as a return. The hub records "
                       "the shipment now")  # fmt: skip
        else:
            message = (f"{there}{said} shipped {_ids(unrecorded)} ({tracking}), but the hub had no shipment for "
                       f"{order} (it shows {_words(facts.order_status)}): the hub records it now and sends the "
                       f"tracking to {facts.origin}")  # fmt: skip
        drifts.append(Drift(DriftKind.SHIPPED_NOT_RECORDED, "ops" if cancelled else "none", Repair.RECORD_SHIPMENT,
                            message, shipments=unrecorded))  # fmt: skip
    unreturned = tuple(r for r in reading.returns if r.external_id not in facts.recorded_returns)
    if unreturned:
        drifts.append(Drift(
            DriftKind.RETURNED_NOT_RECORDED, "none", Repair.RECORD_RETURN,
            f"{facts.fulfiller} took back return {_ids(unreturned)} for {order}, which the hub had not heard of: the "
            f"hub records it now (restocking what it can) and asks {facts.origin} to refund the buyer",
            returns=unreturned,
        ))  # fmt: skip
    live = reading.status in ("open", "in_progress")
    if live and (cancelled or facts.link_state == "cancel_requested") and facts.link_state != "cancel_refused":
        asked = facts.link_state == "cancel_requested"
        if not _young(facts.link_updated_at if asked else facts.order_updated_at, now):
            picking = reading.status == "in_progress"
            why = f"the hub asked {facts.fulfiller} to cancel it" if asked else f"{order} is cancelled"
            act: Act = "ops" if picking else "none"
            drifts.append(Drift(
                DriftKind.CANCELLED_STILL_FULFILLING, act, Repair.ASK_CANCEL,
                f"{there} is still {'being picked' if picking else 'open'}{said} although {why} "
                f"({facts.origin} shows {_words(facts.order_status)}): the hub asks {facts.fulfiller} to cancel it "
                f"again{'; stop the pick there' if picking else ''}",
            ))  # fmt: skip
    if reading.status in ("cancelled", "missing") and facts.link_state == "placed" and not cancelled:
        gone = reading.status == "missing"
        if not (gone and _young(facts.link_updated_at, now)):
            if gone:
                drifts.append(Drift(
                    DriftKind.CANCELLED_AT_FULFILLER, "ops", None,
                    f"{facts.fulfiller} does not have the order the hub placed there{placed} for {order} (which "
                    f"shows {_words(facts.order_status)}): find out what happened to it, then cancel the order on "
                    f"{facts.origin} or retry it to place it again",
                ))  # fmt: skip
            else:
                drifts.append(Drift(
                    DriftKind.CANCELLED_AT_FULFILLER, "none", Repair.TAKE_CANCELLATION,
                    f"{there} was cancelled there{said}, but the hub had not heard and {order} is still "
                    f"{_words(facts.order_status)}: the hub cancels it on {facts.origin}, as for any cancellation "
                    f"at {facts.fulfiller}", cancel_reason=reading.cancel_reason,
                ))  # fmt: skip
    return drifts


def origin_drift(facts: OrderFacts, reading: OriginReading, *, now: datetime) -> list[Drift]:
    """How the order's own channel disagrees with the hub about it (empty: in step)."""
    if reading.pending_event or reading.status is None:
        return []
    order = f"{facts.origin} order {facts.external_id}"
    shows = f"{facts.origin} shows {reading.words or _words(reading.status)}"
    hub = f"the hub shows {_words(facts.status)}"
    if reading.status is OrderStatus.CANCELLED:
        if facts.status is OrderStatus.CANCELLED:
            return []
        elsewhere = f" and cancels it at {', '.join(facts.placed_at)}" if facts.placed_at else ""
        return [
            Drift(
                DriftKind.CANCELLED_NOT_IN_HUB,
                "none",
                Repair.RESYNC,
                f"{order} was cancelled on {facts.origin} ({reading.words or 'cancelled'}) but {hub}: the hub "
                f"reads the order again{elsewhere}",
            )
        ]
    if facts.status is OrderStatus.CANCELLED:
        return []  # a cancellation the hub holds for the channel is its own flow's (cancel_refused), not drift
    drifts: list[Drift] = []
    if progress(reading.status) > progress(OrderStatus.PARTIALLY_SHIPPED) and facts.status in TO_DISPATCH:
        known = any(shipment.state != "failed" for shipment in facts.shipments)
        if known or not facts.placed_at:
            message = f"{order} shipped ({shows}) but {hub}: the hub reads the order again"
        else:
            message = (f"{order} shipped on {facts.origin} ({shows}) without a shipment the hub knows, and {hub}: "
                       f"make sure {', '.join(facts.placed_at)} does not ship it again; the hub reads the order "
                       "again")  # fmt: skip
        drifts.append(Drift(DriftKind.SHIPPED_ON_CHANNEL_ONLY, "none" if known or not facts.placed_at else "ops",
                            Repair.RESYNC, message))  # fmt: skip
    if reading.tracking is not None and reading.status in TO_SHIP:
        unsent = tuple(
            shipment for shipment in facts.shipments
            if shipment.tracking_number and shipment.tracking_number not in reading.tracking
            and not _young(shipment.since, now)
            and (shipment.state == "sent" or (shipment.state == "pending" and not shipment.in_flight))
        )  # fmt: skip
        if unsent:
            tracking = ", ".join(str(shipment.tracking_number) for shipment in unsent)
            drifts.append(Drift(
                DriftKind.SHIPPED_NOT_ON_CHANNEL, "none", Repair.RESEND_TRACKING,
                f"the hub holds tracking {tracking} for {order}, but {shows} with no such parcel: the hub sends the "
                "tracking again", shipment_ids=tuple(shipment.shipment_id for shipment in unsent),
            ))  # fmt: skip
    if reading.refunds is not None:
        missing = [r for r in facts.refunds if r.state == "refunded" and r.refund_external_id not in reading.refunds
                   and not _young(r.since, now)]  # fmt: skip
        stalled = [r for r in facts.refunds if r.state == "refunding" and not r.in_flight and not _young(r.since, now)]
        if missing:
            refunds = ", ".join(f"{r.refund_external_id} (return {r.external_id})" for r in missing)
            drifts.append(Drift(
                DriftKind.REFUNDED_NOT_ON_CHANNEL, "ops", None,
                f"the hub recorded refund {refunds} of {order}, but {facts.origin} shows no such refund: check the "
                f"buyer was refunded on {facts.origin}, and refund them there if not",
            ))  # fmt: skip
        elif stalled:
            returns = ", ".join(r.external_id for r in stalled)
            drifts.append(Drift(
                DriftKind.REFUNDED_NOT_ON_CHANNEL, "none", Repair.ASK_REFUND,
                f"store return {returns} of {order} is still not refunded on {facts.origin} ({shows}), and nothing "
                f"is asking: the hub asks {facts.origin} for the refund again",
                return_ids=tuple(r.return_id for r in stalled),
            ))  # fmt: skip
    return drifts
