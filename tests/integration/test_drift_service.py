"""The drift detector's bookkeeping on the real database (services/drift.py), fed the readings a channel's check
makes: a first sighting waits for its confirmation, a confirmed drift raises one issue and makes its repair, a drift
already reported is confirmed at once, an order back in step has its issue resolved, and every check is recorded
once with its counts. The sandbox tests (test_drift.py) cover the channels' reading; these cover the drifts no
sandbox can make silently: work the hub asked for that never landed."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from shopbridge.bootstrap import Hub
from shopbridge.domain.drift import FulfillerReading, OriginReading
from shopbridge.domain.money import Money
from shopbridge.domain.orders import Order, OrderLine, OrderStatus
from shopbridge.services import drift, fulfilment, returns
from shopbridge.services.orders import upsert_order
from shopbridge.store.db import transaction
from shopbridge.store.tables import (
    ChannelAccount,
    DriftCheck,
    Job,
    Location,
    OrderLink,
    Product,
    Shipment,
    StoreReturn,
    SyncIssue,
    Variant,
)

LATER = timedelta(minutes=10)  # past every in-flight grace


@dataclass
class Hubs:
    hub: Hub
    tiktok: int
    store: int

    def now(self) -> datetime:
        return self.hub.clock.now()

    def sell(self, external_id: str, status: OrderStatus = OrderStatus.AWAITING_SHIPMENT, updated: int = 0) -> int:
        """A TikTok order as its sync upserts it: awaiting shipment, it is released and handed to the store."""
        created = self.now() - timedelta(hours=2)
        usd = Money.parse("19.90", "USD")
        order = Order(
            channel="tiktok", external_id=external_id, channel_status=status.name, status=status, currency="USD",
            total=usd, subtotal=usd, shipping=None, tax=None, created_at=created,
            updated_at=created + timedelta(minutes=1 + updated),
            lines=(OrderLine("sku-tee", "TEE-M", "Tee", 1, usd, (f"{external_id}-1",)),),
        )  # fmt: skip
        with transaction(self.hub.sessions) as session:
            tiktok = session.get(ChannelAccount, self.tiktok)
            assert tiktok is not None
            return upsert_order(session, tiktok, order, source="webhook", now=self.now()).order_id

    def placed(self, order_id: int) -> int:
        """The store took the order the hub placed there; returns the link."""
        with transaction(self.hub.sessions) as session:
            link = session.scalar(select(OrderLink).where(OrderLink.order_id == order_id))
            assert link is not None
            fulfilment.placed_in_store(session, link.id, external_id=f"task-{order_id}", external_name=None,
                                       now=self.now())  # fmt: skip
            return link.id

    def fulfiller(self, readings: list[FulfillerReading], *, at: timedelta,
                  payload: Mapping[str, Any] | None = None) -> DriftCheck | None:  # fmt: skip
        with transaction(self.hub.sessions) as session:
            store = session.get(ChannelAccount, self.store)
            assert store is not None
            found = drift.record_fulfiller_readings(session, store, readings, payload=payload, now=self.now() + at)
            if found is not None:
                session.expunge(found)
            return found

    def origin(self, readings: list[OriginReading], *, at: timedelta,
               payload: Mapping[str, Any] | None = None) -> DriftCheck | None:  # fmt: skip
        with transaction(self.hub.sessions) as session:
            tiktok = session.get(ChannelAccount, self.tiktok)
            assert tiktok is not None
            found = drift.record_origin_readings(session, tiktok, readings, resync_kind="tiktok.sync_orders",
                                                 payload=payload, now=self.now() + at)  # fmt: skip
            if found is not None:
                session.expunge(found)
            return found

    def confirmation(self, kind: str) -> dict[str, Any]:
        """The payload of the confirmation a check queued for its suspects (waiting)."""
        with self.hub.sessions() as session:
            job = session.scalar(select(Job).where(Job.kind == kind, Job.state == "pending",
                                                   Job.identity_key.like("%:confirm:%")))  # fmt: skip
            assert job is not None, "a confirmation is waiting"
            return dict(job.payload)

    def issues(self, status: str = "open") -> dict[tuple[int, str], SyncIssue]:
        with self.hub.sessions() as session:
            found = session.scalars(select(SyncIssue).where(SyncIssue.kind == drift.ISSUE_KIND,
                                                            SyncIssue.status == status))  # fmt: skip
            return {(int(issue.subject_id or 0), str(issue.details["drift"])): issue for issue in found}

    def jobs(self, kind: str) -> list[Job]:
        with self.hub.sessions() as session:
            return list(session.scalars(select(Job).where(Job.kind == kind).order_by(Job.id)))


@pytest.fixture
def hubs(hub: Hub) -> Hubs:
    with transaction(hub.sessions) as session:
        tiktok = ChannelAccount(channel="tiktok", label="TikTok US", external_id="7001", currency="USD", settings={})
        store = ChannelAccount(channel="pos", label="Store 1", external_id="pos-1", currency="USD",
                               settings={"fulfils_orders": True})  # fmt: skip
        product = Product(title="Tee")
        session.add_all([tiktok, store, product, Location(code="MAIN", name="Main")])
        session.flush()
        session.add(Variant(product_id=product.id, sku="TEE-M"))
        session.flush()
        return Hubs(hub, tiktok.id, store.id)


def test_a_first_sighting_waits_for_its_confirmation_which_reports_repairs_and_records_the_check(
    hubs: Hubs,
) -> None:
    cancelled = hubs.sell("T1")
    link = hubs.placed(cancelled)
    fine = hubs.placed(hubs.sell("T2"))
    hubs.sell("T1", OrderStatus.CANCELLED, updated=10)  # the hub asks the store to cancel its task
    with hubs.hub.sessions() as session:
        assert session.get(OrderLink, link).state == "cancel_requested"  # type: ignore[union-attr]
    readings = [FulfillerReading(link, "in_progress", words="picking"), FulfillerReading(fine, "open")]

    assert hubs.fulfiller(readings, at=timedelta(seconds=30)).drifted == 0, "a cancellation in flight"  # type: ignore[union-attr]
    assert hubs.fulfiller(readings, at=LATER) is None, "a suspect: its confirmation records the check"
    assert hubs.issues() == {}
    payload = hubs.confirmation("pos.check_drift")
    assert (payload["side"], payload["orders"], payload["carry"]["checked"]) == ("fulfiller", [cancelled], 2)

    with hubs.hub.sessions() as session:
        asked_at = session.get(OrderLink, link).updated_at  # type: ignore[union-attr]
    check = hubs.fulfiller([readings[0]], at=LATER + timedelta(seconds=10), payload=payload)
    assert check is not None
    assert (check.orders_checked, check.drifted, check.repaired, check.kinds) == (
        2, 1, 1, {"cancelled_still_fulfilling": 1})  # fmt: skip
    (issue,) = hubs.issues().values()
    assert issue.details == {"drift": "cancelled_still_fulfilling", "act": "ops", "repair": "ask_cancel",
                             "repaired": True}  # fmt: skip
    assert issue.channel_account_id == hubs.store and issue.subject_id == str(cancelled)
    assert "Store 1 order task-" in issue.message and "being picked (picking)" in issue.message
    (asked,) = [job for job in hubs.jobs("pos.cancel_order") if job.state == "pending"]
    assert asked.payload["link_id"] == link, "asked again (the request still waiting is the one)"
    with hubs.hub.sessions() as session:
        row = session.get(OrderLink, link)
        assert row is not None and row.state == "cancel_requested"
        assert row.updated_at.replace(tzinfo=None) > asked_at.replace(tzinfo=None), "its grace starts again"

    # Still drifting at the next check (its issue is open): confirmed at once, one issue, one more occurrence.
    again = hubs.fulfiller(readings, at=LATER + timedelta(minutes=5))
    assert again is not None and again.drifted == 1
    assert [found.occurrences for found in hubs.issues().values()] == [2]

    # The store cancelled it at last: the issue is resolved.
    back = hubs.fulfiller([FulfillerReading(link, "cancelled"), readings[1]], at=LATER + timedelta(minutes=6))
    assert back is not None and (back.drifted, back.orders_checked) == (0, 2)
    assert hubs.issues() == {} and len(hubs.issues("resolved")) == 1


def test_a_return_the_hub_never_heard_of_is_recorded_and_refunded(hubs: Hubs) -> None:
    order_id = hubs.sell("T3")
    link = hubs.placed(order_id)
    taken = returns.ReturnIn("RET-9", None, {"link_id": link}, [returns.ReturnedLine("TEE-M", 1, 1)],
                             hubs.now())  # fmt: skip
    reading = FulfillerReading(link, "shipped", returns=(taken,))
    assert hubs.fulfiller([reading], at=LATER) is None
    check = hubs.fulfiller([reading], at=LATER, payload=hubs.confirmation("pos.check_drift"))
    assert check is not None and (check.drifted, check.repaired) == (1, 1)
    with hubs.hub.sessions() as session:
        (row,) = session.scalars(select(StoreReturn))
        assert (row.external_id, row.order_id, row.state) == ("RET-9", order_id, "refunding")
    assert [job.payload for job in hubs.jobs("tiktok.refund_return")] == [{"return_id": row.id}]
    assert hubs.fulfiller([reading], at=LATER * 2).drifted == 0, "recorded once, then in step"  # type: ignore[union-attr]


def test_tracking_the_channel_lost_is_sent_again_and_a_missing_refund_goes_to_ops(hubs: Hubs) -> None:
    order_id = hubs.sell("T4")
    link_id = hubs.placed(order_id)
    now = hubs.now()
    with transaction(hubs.hub.sessions) as session:
        link = session.get(OrderLink, link_id)
        assert link is not None
        shipment_id = fulfilment.record_shipment(
            session, link, fulfilment.Fulfilment("F1", "UPS", "1Z1", None, [], now), now=now)  # fmt: skip
        shipment = session.get(Shipment, shipment_id)
        assert shipment is not None
        fulfilment.shipment_sent(session, shipment, package_id="P1", provider="UPS", now=now)
        store = session.get(ChannelAccount, hubs.store)
        assert store is not None
        taken = returns.ReturnIn("RET-1", None, {"hub_order_id": order_id}, [returns.ReturnedLine("TEE-M", 1, 0)], now)
        row, _ = returns.record_store_return(session, store, taken, now=now)
        returns.refunded(session, row.id, external_id="RF-1", status="COMPLETE", amount=None, now=now)
    lost = OriginReading(order_id, OrderStatus.AWAITING_SHIPMENT, "AWAITING_SHIPMENT", tracking=frozenset(),
                         refunds=frozenset())  # fmt: skip
    assert hubs.origin([lost], at=timedelta(seconds=20)).drifted == 0, "just sent, just refunded"  # type: ignore[union-attr]
    assert hubs.origin([lost], at=LATER) is None
    check = hubs.origin([lost], at=LATER, payload=hubs.confirmation("tiktok.check_drift"))
    assert check is not None and (check.drifted, check.repaired) == (1, 1)
    assert check.kinds == {"shipped_not_on_channel": 1, "refunded_not_on_channel": 1}
    issues = hubs.issues()
    assert issues[(order_id, "shipped_not_on_channel")].details["act"] == "none"
    refund = issues[(order_id, "refunded_not_on_channel")]
    assert (refund.details["act"], refund.details["repair"], refund.severity) == ("ops", None, "error")
    assert "refund RF-1 (return RET-1)" in refund.message
    with hubs.hub.sessions() as session:
        assert session.get(Shipment, shipment_id).state == "pending"  # type: ignore[union-attr]
    assert [job.payload for job in hubs.jobs("tiktok.ship_order")][-1] == {"shipment_id": shipment_id}

    in_step = OriginReading(order_id, OrderStatus.AWAITING_SHIPMENT, tracking=frozenset({"1Z1"}),
                            refunds=frozenset({"RF-1"}))  # fmt: skip
    assert hubs.origin([in_step], at=LATER * 2).drifted == 0  # type: ignore[union-attr]
    assert hubs.issues() == {}


def test_the_drift_rate_sums_the_checks_of_the_period(hubs: Hubs) -> None:
    order_id = hubs.sell("T5")
    hubs.placed(order_id)
    cancelled = OriginReading(order_id, OrderStatus.CANCELLED, "CANCELLED")
    assert hubs.origin([cancelled], at=LATER) is None
    hubs.origin([cancelled], at=LATER, payload=hubs.confirmation("tiktok.check_drift"))
    assert [job.payload["order_ids"] for job in hubs.jobs("tiktok.sync_orders")] == [["T5"]]
    hubs.origin([OriginReading(order_id, OrderStatus.AWAITING_SHIPMENT)], at=LATER * 2)
    with hubs.hub.sessions() as session:
        rate = drift.drift_rate(session, hubs.now())
        assert session.scalar(select(func.count()).select_from(DriftCheck)) == 2
    assert (rate.checks, rate.orders_checked, rate.drifted, rate.repaired) == (2, 2, 1, 1)
    assert rate.rate == 0.5 and rate.kinds == {"cancelled_not_in_hub": 1}
    with hubs.hub.sessions() as session:
        shown = drift.summary(session, now=hubs.now() + LATER * 2)
    assert shown["last_24h"]["rate"] == 0.5 and [check["account"] for check in shown["checks"]] == ["TikTok US"] * 2
    assert shown["open"] == [], "back in step: resolved"
