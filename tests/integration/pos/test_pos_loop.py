"""The POS loop end to end, every part real: the TikTok sandbox and the POS sandbox served over HTTP, the hub
serving both receivers with its workers, on the test database. A till sale moves TikTok's quantity; a released
TikTok order becomes a task at the routed store, whose shipment puts tracking on TikTok; a TikTok cancellation
stops the task (or, once shipped, raises an issue); in-store returns refund exactly their lines once, however their
events are duplicated or reordered; forged and replayed events change nothing."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import select

from shopbridge.channels.pos.client import signature
from shopbridge.demo.world import Pos, World, running_world, wait_until
from shopbridge.sandbox.pos.config import PosSandboxConfig
from shopbridge.store.tables import (
    InboundEvent,
    MirroredLevel,
    Order,
    OrderLink,
    Shipment,
    StockLevel,
    StoreReturn,
    SyncIssue,
    Variant,
)
from tests.integration.test_store_loop import tiktok_stock
from tests.integration.tiktok.test_fulfilment_back import HOLD_SECONDS, released
from tests.integration.tiktok.test_returns import seller_refunds, sku_id

SKUS = {"TEE-M": "19.90", "MUG": "8.50"}
SEEDED = 5000  # what the TikTok sandbox lists before the hub's first push


def shown(on_hand: int, reserved: int = 0) -> int:
    """What TikTok shows of a location's stock under the shop's default rule: 1 unit and 4 % (rounded up) held."""
    return max(0, on_hand - reserved - 1 - math.ceil(on_hand * 4 / 100))


POS = PosSandboxConfig()


@contextmanager
def pos_world(database_url: str, data_dir: Path, *, hub_settings: dict[str, Any] | None = None,
              **pos_options: Any) -> Iterator[tuple[World, Pos]]:  # fmt: skip
    """TikTok and the POS, the POS's associates idle (the tests ship tasks themselves), downtown (the hub's MAIN,
    TikTok's warehouse) and the mall stocked; ``hub_settings`` for the hub."""
    options = {"associates": False, **pos_options}
    with running_world(database_url, data_dir, skus=SKUS, pos=True, pos_options=options,
                       **(hub_settings or {})) as world:  # fmt: skip
        assert world.pos is not None
        pos = world.pos
        pos.set_stock("store-downtown", {"TEE-M": 10, "MUG": 4})
        pos.set_stock("store-mall", {"TEE-M": 6, "MUG": 6})
        # TikTok shows downtown's stock less the shop's buffer (stock rules), once the first push lands.
        wait_until(lambda: tiktok_stock(world, "TEE-M") == shown(10), message="downtown's stock on TikTok")
        yield world, pos


def task_for(pos: Pos, external_id: str) -> dict[str, Any]:
    def found() -> list[dict[str, Any]]:
        return [task for task in pos.tasks() if task["order_ref"].get("order_id") == external_id]

    tasks = wait_until(found, message=f"a task for TikTok order {external_id}")
    assert len(tasks) == 1, tasks
    return tasks[0]


def link(world: World, order_id: int) -> OrderLink:
    with world.hub.sessions() as session:
        row = session.scalar(select(OrderLink).where(OrderLink.order_id == order_id))
        assert row is not None
        session.expunge(row)
        return row


def hub_on_hand(world: World, sku: str, code: str = "MAIN") -> tuple[int, int]:
    """(on hand, reserved) of a SKU at a hub location."""
    from shopbridge.store.tables import Location

    with world.hub.sessions() as session:
        row = session.execute(
            select(StockLevel.on_hand, StockLevel.reserved)
            .join(Variant, Variant.id == StockLevel.variant_id)
            .join(Location, Location.id == StockLevel.location_id)
            .where(Variant.sku == sku, Location.code == code)
        ).one_or_none()
        return (int(row[0]), int(row[1])) if row else (0, 0)


def issues(world: World, kind: str) -> list[SyncIssue]:
    with world.hub.sessions() as session:
        rows = list(session.scalars(select(SyncIssue).where(SyncIssue.kind == kind, SyncIssue.resolved_at.is_(None))))
        session.expunge_all()
        return rows


# --- stock ----------------------------------------------------------------------------------------------------


def test_a_till_sale_moves_tiktoks_quantity_and_the_pos_becomes_the_skus_master(
    database_url: str, tmp_path: Path
) -> None:
    with pos_world(database_url, tmp_path) as (world, pos):
        pos.sell("store-downtown", {"TEE-M": 3})
        wait_until(lambda: tiktok_stock(world, "TEE-M") == shown(7), message="the till sale on TikTok")
        assert hub_on_hand(world, "TEE-M") == (7, 0)
        with world.hub.sessions() as session:
            assert session.scalar(select(Variant.stock_source).where(Variant.sku == "TEE-M")) == "external"
        # A sale at the mall moves the mall's mirror, not what TikTok sells (downtown's).
        pos.sell("store-mall", {"TEE-M": 1})
        wait_until(lambda: hub_on_hand(world, "TEE-M", "store-mall")[0] == 5, message="the mall's mirror")
        assert tiktok_stock(world, "TEE-M") == shown(7)


def test_an_older_level_never_overwrites_a_newer_one(database_url: str, tmp_path: Path) -> None:
    with pos_world(database_url, tmp_path) as (world, _pos):
        with world.hub.sessions() as session:
            level = session.scalar(
                select(MirroredLevel).where(
                    MirroredLevel.sku == "MUG", MirroredLevel.external_location_id == "store-downtown"
                )
            )
            assert level is not None
            sequence = level.sequence
        late = {"version": 1, "event_id": "evt-late-1", "type": "stock.levels", "occurred_at": "2026-12-05T10:00:00Z",
                "location_id": "store-downtown",
                "data": {"sequence": sequence - 1, "reason": "count", "levels": [{"sku": "MUG", "on_hand": 99,
                                                                                  "allocated": 0}]}}  # fmt: skip
        assert send_event(world, late).status_code == 200
        newer = {**late, "event_id": "evt-newer-1",
                 "data": {**late["data"], "sequence": sequence + 1, "levels": [{"sku": "MUG", "on_hand": 3,
                                                                                "allocated": 0}]}}  # fmt: skip
        assert send_event(world, newer).status_code == 200
        wait_until(lambda: tiktok_stock(world, "MUG") == shown(3), message="the newer level on TikTok")
        assert hub_on_hand(world, "MUG") == (3, 0)


# --- forged, replayed, unreadable -----------------------------------------------------------------------------


def send_event(world: World, event: dict[str, Any], *, secret: str = POS.secret, account: str = POS.account,
               timestamp: int | None = None, raw: bytes | None = None) -> httpx.Response:  # fmt: skip
    body = raw if raw is not None else json.dumps(event, separators=(",", ":")).encode()
    stamp = str(timestamp if timestamp is not None else int(time.time()))
    headers = {"X-POS-Account": account, "X-POS-Timestamp": stamp,
               "X-POS-Signature": signature(secret, stamp, "POST", "/hooks/pos", body),
               "Content-Type": "application/json"}  # fmt: skip
    return httpx.post(f"{world.hub_url}/hooks/pos", content=body, headers=headers, timeout=10)


def test_a_forged_stale_or_replayed_event_is_refused_and_changes_nothing(database_url: str, tmp_path: Path) -> None:
    with pos_world(database_url, tmp_path) as (world, pos):
        sale = {"version": 1, "event_id": "evt-forged-1", "type": "sale.completed",
                "occurred_at": "2026-12-05T10:00:00Z", "location_id": "store-downtown",
                "data": {"sale_id": "S-1", "sequence": 10**15, "currency": "USD",
                         "lines": [{"sku": "TEE-M", "quantity": 10, "unit_price": "19.90"}],
                         "levels": [{"sku": "TEE-M", "on_hand": 0, "allocated": 0}]}}  # fmt: skip
        forged = send_event(world, sale, secret="x" * 40)
        assert forged.status_code == 401 and forged.json()["error"]["code"] == "bad_signature"
        stale = send_event(world, sale, timestamp=int(time.time()) - 3600)
        assert stale.status_code == 401 and stale.json()["error"]["code"] == "stale_timestamp"
        stranger = send_event(world, sale, account="someone-else")
        assert stranger.status_code == 401 and stranger.json()["error"]["code"] == "unknown_account"
        with world.hub.inbox_sessions() as session:
            assert session.scalar(select(InboundEvent.id).where(InboundEvent.event_id.like("%evt-forged-1"))) is None
            assert session.scalar(select(InboundEvent.id).where(InboundEvent.source == "pos")) is not None
        # A replay of an event taken before: answered, and nothing moves twice.
        pos.sell("store-downtown", {"TEE-M": 1})
        wait_until(lambda: tiktok_stock(world, "TEE-M") == shown(9), message="the sale on TikTok")
        taken = [e for e in pos.events(type="sale.completed") if e["status"] == "delivered"][-1]
        replay = send_event(world, taken["event"])
        assert replay.status_code == 200 and replay.json()["message"] == "already received"
        # Unreadable but signed: 400 naming the field, kept as rejected for inspection.
        negative = {
            **sale,
            "event_id": "evt-negative-1",
            "data": {**sale["data"], "levels": [{"sku": "TEE-M", "on_hand": -4, "allocated": 0}]},
        }
        refused = send_event(world, negative)
        assert refused.status_code == 400
        assert "data.levels[0].on_hand" in refused.json()["error"]["message"]
        with world.hub.inbox_sessions() as session:
            kept = session.scalar(select(InboundEvent).where(InboundEvent.status == "rejected"))
            assert kept is not None and "on_hand" in (kept.error or "")
        time.sleep(0.5)
        assert tiktok_stock(world, "TEE-M") == shown(9)
        assert hub_on_hand(world, "TEE-M") == (9, 0)


# --- fulfilment ----------------------------------------------------------------------------------------------


def test_a_released_order_becomes_a_task_at_the_routed_store_whose_shipment_puts_tracking_on_tiktok(
    database_url: str, tmp_path: Path
) -> None:
    with pos_world(database_url, tmp_path) as (world, pos):
        external_id, order_id = released(world, {"TEE-M": 2})
        task = task_for(pos, external_id)
        assert task["location_id"] == "store-downtown", "downtown has every unit and comes first"
        assert task["lines"] == [{"sku": "TEE-M", "quantity": 2}]
        assert task["order_ref"] == {"channel": "tiktok", "order_id": external_id, "hub_order_id": order_id}
        placed = wait_until(lambda: (row := link(world, order_id)).state == "placed" and row, message="placed")
        assert placed.external_id == task["task_id"] and placed.external_location_id == "store-downtown"
        # The task's allocation and the hub's reservation are the same two units: TikTok shows them once.
        wait_until(lambda: pos.level("store-downtown", "TEE-M")["allocated"] == 2, message="allocated at the POS")
        time.sleep(0.5)
        assert hub_on_hand(world, "TEE-M") == (10, 2)
        assert tiktok_stock(world, "TEE-M") == shown(10, 2)
        pos.ship(task["task_id"], carrier="UPS", tracking_number="1Z999AA10123456784")
        tracked = wait_until(
            lambda: [item for item in world.sandbox_order(external_id)["line_items"] if item.get("tracking_number")],
            message="the tracking number on TikTok",
        )  # fmt: skip
        assert {item["tracking_number"] for item in tracked} == {"1Z999AA10123456784"}
        with world.hub.sessions() as session:
            shipments = list(session.scalars(select(Shipment).where(Shipment.order_id == order_id)))
            assert [(s.external_id, s.state) for s in shipments] == [(task["task_id"], "sent")]
        assert link(world, order_id).external_status == "shipped"


def taken(world: World, items: dict[str, int]) -> tuple[str, int]:
    """A seller-shipped TikTok order in the hub, still on hold: (TikTok id, hub id)."""
    external_id = world.place_order(items, shipping_type="SELLER")
    order = wait_until(lambda: world.hub_order(external_id), message="the order in the hub")
    return external_id, int(order["id"])


def release(world: World, external_id: str) -> None:
    world.advance(HOLD_SECONDS)
    wait_until(lambda: (found := world.hub_order(external_id)) and found["released_at"], message="released")


def test_an_order_downtown_cannot_fill_goes_to_the_mall_with_its_reservation(database_url: str, tmp_path: Path) -> None:
    with pos_world(database_url, tmp_path) as (world, pos):
        external_id, order_id = taken(world, {"MUG": 2})
        wait_until(lambda: hub_on_hand(world, "MUG") == (4, 2), message="held downtown (TikTok's warehouse)")
        # During the hold a till sells three of downtown's four: one left there, the mall still has six.
        pos.sell("store-downtown", {"MUG": 3}, allow_oversell=True)
        wait_until(lambda: hub_on_hand(world, "MUG") == (1, 2), message="the till sale mirrored")
        release(world, external_id)
        task = task_for(pos, external_id)
        assert task["location_id"] == "store-mall"
        wait_until(lambda: link(world, order_id).state == "placed", message="placed at the mall")
        with world.hub.sessions() as session:
            order = session.get(Order, order_id)
            assert order is not None and order.fulfilment_location_id is not None
        # The hold moved with the order: the mall's mirror counts it (6 on hand, 2 allocated to the task, 2 held),
        # and downtown holds nothing for it any more.
        wait_until(lambda: hub_on_hand(world, "MUG", "store-mall") == (6, 2), message="the mall holds the order")
        wait_until(lambda: hub_on_hand(world, "MUG") == (1, 0), message="nothing held downtown")
        pos.ship(task["task_id"])
        wait_until(lambda: [i for i in world.sandbox_order(external_id)["line_items"] if i.get("tracking_number")],
                   message="tracking on TikTok")  # fmt: skip
        # Until TikTok's carrier takes the parcel the hub still holds the two (the POS no longer counts them).
        assert hub_on_hand(world, "MUG", "store-mall") == (6, 2)
        world.control.post(f"/_sandbox/orders/{external_id}/collect").raise_for_status()
        wait_until(lambda: hub_on_hand(world, "MUG", "store-mall") == (4, 0), message="sold at the mall")


def test_an_order_no_store_can_fill_is_blocked_naming_the_shortages(database_url: str, tmp_path: Path) -> None:
    with pos_world(database_url, tmp_path) as (world, pos):
        external_id, order_id = taken(world, {"TEE-M": 3})
        pos.set_stock("store-downtown", {"TEE-M": 1})
        pos.sell("store-mall", {"TEE-M": 5})
        wait_until(lambda: hub_on_hand(world, "TEE-M", "store-mall") == (1, 0), message="the mall's sale mirrored")
        release(world, external_id)
        blocked = wait_until(lambda: (found := world.hub_order(external_id)) and found["blocked"],
                             message="the order blocked")  # fmt: skip
        assert blocked["reason"] == "store_refused"
        assert "store-downtown lacks 2 TEE-M" in blocked["message"]
        assert "store-mall lacks 2 TEE-M" in blocked["message"]
        assert link(world, order_id).state == "refused"
        assert not [t for t in pos.tasks() if t["order_ref"].get("order_id") == external_id]


def cancel_on_tiktok(world: World, external_id: str) -> None:
    """The buyer asks to cancel after the hold; the seller approves it from the hub."""
    world.buyer_cancel(external_id)
    request = wait_until(
        lambda: [found for found in world.api.get("/api/v1/cancellations").json()["cancellations"]
                 if found["external_order_id"] == external_id],
        message="the buyer's request in the hub",
    )[0]  # fmt: skip
    assert world.api.post(f"/api/v1/cancellations/{request['id']}/approve").status_code == 202


def test_a_tiktok_cancellation_stops_the_task_and_one_after_shipping_is_an_issue(
    database_url: str, tmp_path: Path
) -> None:
    with pos_world(database_url, tmp_path) as (world, pos):
        external_id, order_id = released(world, {"TEE-M": 1})
        task = task_for(pos, external_id)
        wait_until(lambda: link(world, order_id).state == "placed", message="placed")
        cancel_on_tiktok(world, external_id)
        wait_until(lambda: link(world, order_id).state == "cancelled", message="the task cancelled")
        assert next(t for t in pos.tasks() if t["task_id"] == task["task_id"])["status"] == "cancelled"
        wait_until(lambda: pos.level("store-downtown", "TEE-M")["allocated"] == 0, message="released at the POS")
        wait_until(lambda: hub_on_hand(world, "TEE-M") == (10, 0), message="the hub's hold released")
        # Shipped before TikTok's cancellation arrives: the store refuses, and ops are told to stop the parcel.
        shipped_id, shipped_order = released(world, {"MUG": 1})
        shipped_task = task_for(pos, shipped_id)
        wait_until(lambda: link(world, shipped_order).state == "placed", message="placed")
        pos.ship(shipped_task["task_id"], silent=True)
        cancel_on_tiktok(world, shipped_id)
        wait_until(lambda: link(world, shipped_order).state == "cancel_refused", message="the cancel refused")
        refused = issues(world, "store_cancel_refused")
        assert len(refused) == 1 and "already_shipped" in refused[0].message


# --- returns --------------------------------------------------------------------------------------------------


def shipped_and_delivered(world: World, pos: Pos, items: dict[str, int]) -> tuple[str, dict[str, Any]]:
    """A TikTok order fulfilled by the POS and delivered to the buyer: (TikTok id, its task)."""
    external_id, _ = released(world, items)
    task = task_for(pos, external_id)
    pos.ship(task["task_id"])
    wait_until(lambda: world.sandbox_order(external_id)["status"] == "AWAITING_COLLECTION", message="tracking sent")
    for step in ("collect", "deliver"):
        world.control.post(f"/_sandbox/orders/{external_id}/{step}").raise_for_status()
    return external_id, task


def store_returns(world: World) -> list[StoreReturn]:
    with world.hub.sessions() as session:
        rows = list(session.scalars(select(StoreReturn).order_by(StoreReturn.id)))
        session.expunge_all()
        return rows


def test_a_full_and_a_partial_store_return_each_refund_exactly_their_lines_once(
    database_url: str, tmp_path: Path
) -> None:
    with pos_world(database_url, tmp_path) as (world, pos):
        full_id, full_task = shipped_and_delivered(world, pos, {"TEE-M": 1, "MUG": 1})
        part_id, _ = shipped_and_delivered(world, pos, {"TEE-M": 2, "MUG": 1})
        wait_until(lambda: pos.level("store-downtown", "TEE-M")["on_hand"] == 7, message="three tees shipped")
        # Every event from here on arrives twice, and out of order.
        pos.faults(event_duplicate_rate=1.0, event_reorder_max_delay_seconds=0.5)
        pos.take_return("store-downtown", {"task_ref": full_task["task_ref"]}, {"TEE-M": (1, 1), "MUG": (1, 0)})
        pos.take_return("store-downtown", {"channel": "tiktok", "order_id": part_id}, {"TEE-M": (1, 0)})

        def refunded() -> list[StoreReturn]:
            rows = store_returns(world)
            return rows if len(rows) == 2 and all(row.state == "refunded" for row in rows) else []

        rows = wait_until(refunded, message="both returns refunded")
        assert len(seller_refunds(world, full_id)) == 1 and len(seller_refunds(world, part_id)) == 1
        [whole] = seller_refunds(world, full_id)
        by_refund = {row.refund_external_id: row for row in rows}
        assert sorted(item["sku_id"] for item in whole["return_line_items"]) == sorted(
            [sku_id(world, "TEE-M"), sku_id(world, "MUG")]
        )
        [some] = seller_refunds(world, part_id)
        assert [item["sku_id"] for item in some["return_line_items"]] == [sku_id(world, "TEE-M")]
        # Amounts from TikTok's own calculation: the tee and the mug; the one tee.
        assert by_refund[whole["return_id"]].refund_minor == 1990 + 850
        assert by_refund[some["return_id"]].refund_minor == 1990
        # The restocked tee is back downtown; the damaged mug and tee are not (the POS's levels, mirrored).
        assert pos.level("store-downtown", "TEE-M")["on_hand"] == 8
        assert pos.level("store-downtown", "MUG")["on_hand"] == 2
        wait_until(lambda: hub_on_hand(world, "TEE-M") == (8, 0), message="the restocked tee mirrored")
        assert hub_on_hand(world, "MUG") == (2, 0)
        # Every duplicate arrived and changed nothing.
        delivered = wait_until(
            lambda: len(found := [e for e in pos.events(type="return.completed") if e["status"] == "delivered"]) == 4
            and found,
            message="each return event delivered twice",
        )  # fmt: skip
        assert len({e["event_id"] for e in delivered}) == 2
        time.sleep(0.5)
        assert len(seller_refunds(world, full_id)) == 1 and len(seller_refunds(world, part_id)) == 1
