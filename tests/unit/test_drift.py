"""The drift rules (domain/drift.py): what counts as drift between the hub and a fulfiller or an order's channel,
who acts, what the hub repairs, and what is only a change in flight."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

import pytest

from shopbridge.domain.drift import (
    IN_FLIGHT,
    DriftKind,
    FulfillerReading,
    LinkFacts,
    OrderFacts,
    OriginReading,
    RefundFacts,
    Repair,
    ShipmentFacts,
    fulfiller_drift,
    origin_drift,
)
from shopbridge.domain.orders import OrderStatus

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
LONG_AGO = NOW - timedelta(hours=1)
JUST_NOW = NOW - timedelta(seconds=30)


@dataclass(frozen=True)
class Parcel:
    external_id: str
    tracking_number: str | None


@dataclass(frozen=True)
class TakenBack:
    external_id: str


LINK = LinkFacts(
    link_id=7, order_id=42, order_external_id="5001", origin="TikTok Shop", fulfiller="Main store", placed_as="#1001",
    order_status=OrderStatus.AWAITING_SHIPMENT, order_updated_at=LONG_AGO, link_state="placed",
    link_updated_at=LONG_AGO,
)  # fmt: skip
ORDER = OrderFacts(order_id=42, external_id="5001", origin="TikTok Shop", status=OrderStatus.AWAITING_SHIPMENT,
                   channel_status="AWAITING_SHIPMENT", updated_at=LONG_AGO, placed_at=("Main store",))  # fmt: skip


def fulfiller(status: str = "open", **changes: object) -> FulfillerReading:
    return FulfillerReading(**{"link_id": 7, "status": status, **changes})  # type: ignore[arg-type]


def kinds(drifts: list) -> list[DriftKind]:  # type: ignore[type-arg]
    return [drift.kind for drift in drifts]


# --- the fulfiller's side -------------------------------------------------------------------------------------------


def test_an_order_open_at_the_fulfiller_as_in_the_hub_is_in_step() -> None:
    assert fulfiller_drift(LINK, fulfiller("open", words="PAID/UNFULFILLED"), now=NOW) == []
    shipped = replace(LINK, recorded_shipments=frozenset({"F1"}))
    assert fulfiller_drift(shipped, fulfiller("shipped", shipments=(Parcel("F1", "1Z1"),)), now=NOW) == []


def test_a_shipment_the_hub_never_heard_of_is_recorded_and_its_tracking_sent_on() -> None:
    parcel = Parcel("F2", "1Z999")
    (drift,) = fulfiller_drift(replace(LINK, recorded_shipments=frozenset({"F1"})),
                               fulfiller("shipped", shipments=(Parcel("F1", "1Z1"), parcel), words="PAID/FULFILLED"),
                               now=NOW)  # fmt: skip
    assert (drift.kind, drift.role_to_act, drift.repair, drift.shipments) == (
        DriftKind.SHIPPED_NOT_RECORDED, "none", Repair.RECORD_SHIPMENT, (parcel,))  # fmt: skip
    assert "Main store order #1001 (PAID/FULFILLED) shipped F2 (1Z999)" in drift.message
    assert "TikTok Shop order 5001" in drift.message and "awaiting shipment" in drift.message


def test_a_shipment_of_a_cancelled_order_is_recorded_and_ops_must_stop_the_parcel() -> None:
    cancelled = replace(LINK, order_status=OrderStatus.CANCELLED, link_state="cancel_requested")
    drifts = fulfiller_drift(cancelled, fulfiller("shipped", shipments=(Parcel("F1", "1Z1"),)), now=NOW)
    assert [(d.kind, d.role_to_act, d.repair) for d in drifts] == [
        (DriftKind.SHIPPED_NOT_RECORDED, "ops", Repair.RECORD_SHIPMENT)]  # fmt: skip
    assert "stop the parcel" in drifts[0].message


@pytest.mark.parametrize("state", ["placed", "cancel_requested"])
def test_a_cancelled_order_still_open_at_the_fulfiller_is_asked_to_cancel_again(state: str) -> None:
    cancelled = replace(LINK, order_status=OrderStatus.CANCELLED, link_state=state)
    (drift,) = fulfiller_drift(cancelled, fulfiller("open"), now=NOW)
    assert (drift.kind, drift.role_to_act, drift.repair) == (
        DriftKind.CANCELLED_STILL_FULFILLING, "none", Repair.ASK_CANCEL)  # fmt: skip
    (picking,) = fulfiller_drift(cancelled, fulfiller("in_progress", words="picking"), now=NOW)
    assert picking.role_to_act == "ops" and "being picked (picking)" in picking.message


def test_a_cancellation_in_flight_or_refused_by_the_fulfiller_is_no_drift() -> None:
    asked = replace(LINK, order_status=OrderStatus.CANCELLED, link_state="cancel_requested", link_updated_at=JUST_NOW)
    assert fulfiller_drift(asked, fulfiller("open"), now=NOW) == []
    assert fulfiller_drift(asked, fulfiller("open"), now=JUST_NOW + IN_FLIGHT) != []
    just_cancelled = replace(LINK, order_status=OrderStatus.CANCELLED, order_updated_at=JUST_NOW)
    assert fulfiller_drift(just_cancelled, fulfiller("open"), now=NOW) == []
    refused = replace(LINK, order_status=OrderStatus.CANCELLED, link_state="cancel_refused")
    assert fulfiller_drift(refused, fulfiller("in_progress"), now=NOW) == [], "its own issue tells ops already"


def test_a_cancellation_at_the_fulfiller_is_taken_to_the_orders_channel() -> None:
    (drift,) = fulfiller_drift(LINK, fulfiller("cancelled", words="CANCELLED", cancel_reason="out_of_stock"), now=NOW)
    assert (drift.kind, drift.role_to_act, drift.repair, drift.cancel_reason) == (
        DriftKind.CANCELLED_AT_FULFILLER, "none", Repair.TAKE_CANCELLATION, "out_of_stock")  # fmt: skip
    assert "cancels it on TikTok Shop" in drift.message
    asked = replace(LINK, order_status=OrderStatus.CANCELLED, link_state="cancel_requested")
    assert fulfiller_drift(asked, fulfiller("cancelled"), now=NOW) == [], "the cancellation the hub asked for"


def test_an_order_the_fulfiller_lost_is_for_ops_unless_just_placed() -> None:
    (drift,) = fulfiller_drift(LINK, fulfiller("missing"), now=NOW)
    assert (drift.kind, drift.role_to_act, drift.repair) == (DriftKind.CANCELLED_AT_FULFILLER, "ops", None)
    assert "does not have the order the hub placed there (#1001)" in drift.message
    assert fulfiller_drift(replace(LINK, link_updated_at=JUST_NOW), fulfiller("missing"), now=NOW) == []


def test_a_return_the_hub_never_heard_of_is_recorded() -> None:
    known, new = TakenBack("R1"), TakenBack("R2")
    (drift,) = fulfiller_drift(replace(LINK, recorded_returns=frozenset({"R1"})),
                               fulfiller("shipped", returns=(known, new)), now=NOW)  # fmt: skip
    assert (drift.kind, drift.role_to_act, drift.repair, drift.returns) == (
        DriftKind.RETURNED_NOT_RECORDED, "none", Repair.RECORD_RETURN, (new,))  # fmt: skip


def test_a_fulfiller_event_waiting_in_the_hub_is_in_flight() -> None:
    pending = fulfiller("cancelled", shipments=(Parcel("F1", "1Z1"),), pending_event=True)
    assert fulfiller_drift(LINK, pending, now=NOW) == []


# --- the origin's side -------------------------------------------------------------------------------------------


def origin(status: OrderStatus | None, **changes: object) -> OriginReading:
    return OriginReading(**{"order_id": 42, "status": status, "words": status.name if status else "", **changes})  # type: ignore[arg-type]


def test_an_order_as_its_channel_shows_it_is_in_step() -> None:
    assert origin_drift(ORDER, origin(OrderStatus.AWAITING_SHIPMENT, tracking=frozenset()), now=NOW) == []
    assert origin_drift(ORDER, origin(None), now=NOW) == [], "an order the channel does not return is its sync's"


def test_a_cancellation_the_hub_missed_is_read_again() -> None:
    (drift,) = origin_drift(ORDER, origin(OrderStatus.CANCELLED), now=NOW)
    assert (drift.kind, drift.role_to_act, drift.repair) == (DriftKind.CANCELLED_NOT_IN_HUB, "none", Repair.RESYNC)
    assert "5001 was cancelled on TikTok Shop (CANCELLED) but the hub shows awaiting shipment" in drift.message
    assert "cancels it at Main store" in drift.message
    cancelled = replace(ORDER, status=OrderStatus.CANCELLED)
    assert origin_drift(cancelled, origin(OrderStatus.CANCELLED), now=NOW) == []
    assert origin_drift(cancelled, origin(OrderStatus.AWAITING_SHIPMENT), now=NOW) == []


def test_a_shipment_on_the_channel_alone_warns_ops_off_shipping_twice() -> None:
    (drift,) = origin_drift(ORDER, origin(OrderStatus.AWAITING_COLLECTION, tracking=frozenset({"TT1"})), now=NOW)
    assert (drift.kind, drift.role_to_act, drift.repair) == (DriftKind.SHIPPED_ON_CHANNEL_ONLY, "ops", Repair.RESYNC)
    assert "make sure Main store does not ship it again" in drift.message
    sent = replace(ORDER, shipments=(ShipmentFacts(1, "1Z1", "sent", LONG_AGO),))
    (lagging,) = origin_drift(sent, origin(OrderStatus.IN_TRANSIT, tracking=frozenset({"1Z1"})), now=NOW)
    assert (lagging.kind, lagging.role_to_act) == (DriftKind.SHIPPED_ON_CHANNEL_ONLY, "none")
    shipped = replace(ORDER, status=OrderStatus.AWAITING_COLLECTION)
    assert origin_drift(shipped, origin(OrderStatus.IN_TRANSIT), now=NOW) == [], "a carrier's progress is no drift"


def test_tracking_the_channel_lost_is_sent_again_once_its_sending_is_over() -> None:
    reading = origin(OrderStatus.AWAITING_SHIPMENT, tracking=frozenset())
    sent = replace(ORDER, shipments=(ShipmentFacts(3, "1Z1", "sent", LONG_AGO),))
    (drift,) = origin_drift(sent, reading, now=NOW)
    assert (drift.kind, drift.role_to_act, drift.repair, drift.shipment_ids) == (
        DriftKind.SHIPPED_NOT_ON_CHANNEL, "none", Repair.RESEND_TRACKING, (3,))  # fmt: skip
    lost_job = replace(ORDER, shipments=(ShipmentFacts(3, "1Z1", "pending", LONG_AGO),))
    assert kinds(origin_drift(lost_job, reading, now=NOW)) == [DriftKind.SHIPPED_NOT_ON_CHANNEL]
    for in_flight in (
        ShipmentFacts(3, "1Z1", "pending", LONG_AGO, in_flight=True),
        ShipmentFacts(3, "1Z1", "sent", JUST_NOW),
        ShipmentFacts(3, "1Z1", "failed", LONG_AGO),
    ):
        assert origin_drift(replace(ORDER, shipments=(in_flight,)), reading, now=NOW) == [], in_flight
    assert origin_drift(sent, origin(OrderStatus.AWAITING_SHIPMENT, tracking=frozenset({"1Z1"})), now=NOW) == []
    assert origin_drift(sent, origin(OrderStatus.AWAITING_SHIPMENT), now=NOW) == [], "tracking not read"


def test_a_refund_missing_on_the_channel_is_for_ops_and_a_stalled_one_is_asked_again() -> None:
    refunded = replace(ORDER, status=OrderStatus.DELIVERED,
                       refunds=(RefundFacts(9, "RET-1", "refunded", "RF-1", LONG_AGO),))  # fmt: skip
    (drift,) = origin_drift(refunded, origin(OrderStatus.DELIVERED, refunds=frozenset()), now=NOW)
    assert (drift.kind, drift.role_to_act, drift.repair) == (DriftKind.REFUNDED_NOT_ON_CHANNEL, "ops", None)
    assert "refund RF-1 (return RET-1)" in drift.message
    assert origin_drift(refunded, origin(OrderStatus.DELIVERED, refunds=frozenset({"RF-1"})), now=NOW) == []
    stalled = replace(refunded, refunds=(RefundFacts(9, "RET-1", "refunding", None, LONG_AGO),))
    (asked,) = origin_drift(stalled, origin(OrderStatus.DELIVERED, refunds=frozenset()), now=NOW)
    assert (asked.repair, asked.return_ids, asked.role_to_act) == (Repair.ASK_REFUND, (9,), "none")
    waiting = replace(refunded, refunds=(RefundFacts(9, "RET-1", "refunding", None, LONG_AGO, in_flight=True),))
    assert origin_drift(waiting, origin(OrderStatus.DELIVERED, refunds=frozenset()), now=NOW) == []


def test_an_event_of_the_channel_waiting_in_the_hub_is_in_flight() -> None:
    assert origin_drift(ORDER, origin(OrderStatus.CANCELLED, pending_event=True), now=NOW) == []
