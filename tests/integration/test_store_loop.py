"""The store loop end to end, every part real: the TikTok sandbox and the Shopify sandbox served over HTTP, the hub
serving both webhook receivers with its workers, on the test database. A TikTok order released after its hold
becomes one store order; the store's fulfilment reaches TikTok as tracking; cancellations cross both ways; the
store's own orders join the hub's queue and take their units off TikTok."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import select

from shopbridge.demo.world import Store, World, record_initial_stock, running_world, wait_until
from shopbridge.store.tables import Job, OrderLink, Shipment, SyncIssue
from tests.integration.tiktok.test_fulfilment_back import HOLD_SECONDS, released

SKUS = {"TEE-M": "19.90", "MUG": "8.50"}
STOCK = 20
SEEDED = 5000  # what the TikTok sandbox lists before the hub's first push


@contextmanager
def loop_world(database_url: str, data_dir: Path) -> Iterator[tuple[World, Store]]:
    def stock(hub: Any) -> None:
        record_initial_stock(hub, dict.fromkeys(SKUS, STOCK), key_prefix="loop")

    with running_world(database_url, data_dir, skus=SKUS, store=True, prepare_hub=stock) as world:
        assert world.store is not None
        store = world.store
        wait_until(lambda: store.available("TEE-M") == STOCK, message="the hub's truth written to the store")
        yield world, store


def tiktok_stock(world: World, sku: str) -> int:
    rows = world.control.get("/_sandbox/truth/stock", params={"shop_id": world.shop_id}).json()
    return int(next(row["total"] for row in rows if row["seller_sku"] == sku))


def pushed_to_tiktok(world: World, sku: str) -> int:
    """What TikTok shows of ``sku`` once the hub's first push has landed (its truth less the shop's buffer)."""
    return int(wait_until(lambda: (shown := tiktok_stock(world, sku)) < SEEDED and shown, message="the first push"))


def placed(world: World, store: Store, external_id: str) -> dict[str, Any]:
    """The store order placed for a TikTok order (waiting for it); there must be exactly one."""

    def found() -> list[dict[str, Any]]:
        return [order for order in store.orders() if order.get("source_identifier") == external_id]

    orders = wait_until(found, message=f"TikTok order {external_id} placed in the store")
    assert len(orders) == 1, orders
    return orders[0]


def link_state(world: World, order_id: int) -> str | None:
    with world.hub.sessions() as session:
        return session.scalar(select(OrderLink.state).where(OrderLink.order_id == order_id))


def test_a_released_tiktok_order_is_fulfilled_by_the_store_and_its_tracking_reaches_tiktok(
    database_url: str, tmp_path: Path
) -> None:
    with loop_world(database_url, tmp_path) as (world, store):
        shown = pushed_to_tiktok(world, "TEE-M")
        external_id, order_id = released(world, {"TEE-M": 2, "MUG": 1})
        store_order = placed(world, store, external_id)
        assert store_order["financial_status"].upper() == "PAID"
        assert {(line["sku"], line["quantity"]) for line in store_order["line_items"]} == {("TEE-M", 2), ("MUG", 1)}
        # The store committed the units the hub already holds: each side shows two fewer, not four.
        wait_until(lambda: store.available("TEE-M") == STOCK - 2, message="the store's available")
        assert tiktok_stock(world, "TEE-M") == shown - 2
        store.fulfil(store_order["id"], carrier="UPS", tracking_number="1Z999AA10123456784")
        tracked = wait_until(
            lambda: [item for item in world.sandbox_order(external_id)["line_items"] if item.get("tracking_number")],
            message="the tracking number on TikTok",
        )  # fmt: skip
        assert {item["tracking_number"] for item in tracked} == {"1Z999AA10123456784"}
        assert len(tracked) == 3, "every unit of the order shipped"

        def shipments() -> list[tuple[str | None, str]]:  # marked sent as the tracking push commits
            with world.hub.sessions() as session:
                rows = session.scalars(select(Shipment).where(Shipment.order_id == order_id)).all()
                return [(row.carrier, row.state) for row in rows]

        wait_until(lambda: shipments() == [("UPS", "sent")], message="one shipment, sent")
        placed(world, store, external_id)  # still exactly one store order


def test_a_partial_fulfilment_sends_each_parcel_with_its_own_tracking(database_url: str, tmp_path: Path) -> None:
    with loop_world(database_url, tmp_path) as (world, store):
        external_id, _ = released(world, {"TEE-M": 1, "MUG": 1})
        store_order = placed(world, store, external_id)
        store.fulfil(store_order["id"], tracking_number="1ZPARCELONE", lines={"TEE-M": 1})
        store.fulfil(store_order["id"], tracking_number="1ZPARCELTWO", lines={"MUG": 1})

        def tracking() -> dict[str, str]:
            items = world.sandbox_order(external_id)["line_items"]
            return {item["seller_sku"]: item["tracking_number"] for item in items if item.get("tracking_number")}

        wait_until(lambda: len(tracking()) == 2, message="both parcels on TikTok")
        assert tracking() == {"TEE-M": "1ZPARCELONE", "MUG": "1ZPARCELTWO"}


def test_a_store_cancellation_cancels_the_tiktok_order(database_url: str, tmp_path: Path) -> None:
    with loop_world(database_url, tmp_path) as (world, store):
        external_id, order_id = released(world, {"MUG": 1})
        store.cancel(placed(world, store, external_id)["id"], reason="INVENTORY")
        wait_until(lambda: world.sandbox_order(external_id)["status"] == "CANCELLED", message="cancelled on TikTok")
        assert world.sandbox_order(external_id)["cancellation_initiator"] == "SELLER"
        wait_until(lambda: (order := world.hub_order(external_id)) and order["status"] == "cancelled",
                   message="the hub's order cancelled")  # fmt: skip
        assert link_state(world, order_id) == "cancelled"


def test_a_tiktok_cancellation_after_release_cancels_the_store_order(database_url: str, tmp_path: Path) -> None:
    with loop_world(database_url, tmp_path) as (world, store):
        external_id, order_id = released(world, {"TEE-M": 1})
        store_order = placed(world, store, external_id)
        world.buyer_cancel(external_id)  # after the hold: a request the seller answers
        request = wait_until(
            lambda: [found for found in world.api.get("/api/v1/cancellations").json()["cancellations"]
                     if found["external_order_id"] == external_id],
            message="the buyer's request in the hub",
        )[0]  # fmt: skip
        assert world.api.post(f"/api/v1/cancellations/{request['id']}/approve").status_code == 202
        wait_until(lambda: store.order(store_order["id"]).get("cancelled_at"), message="cancelled in the store")
        wait_until(lambda: link_state(world, order_id) == "cancelled", message="the link cancelled")
        wait_until(lambda: store.available("TEE-M") == STOCK, message="the unit back on sale in the store")


def test_a_store_order_joins_the_queue_and_takes_its_units_off_tiktok(database_url: str, tmp_path: Path) -> None:
    with loop_world(database_url, tmp_path) as (world, store):
        shown = pushed_to_tiktok(world, "MUG")
        store_order = store.place_order({"MUG": 3})
        order = wait_until(lambda: world.hub_order(store_order["gid"]), message="the store's order in the hub")
        assert order["channel"] == "shopify" and order["status"] == "awaiting_shipment"
        wait_until(lambda: tiktok_stock(world, "MUG") == shown - 3, message="TikTok's quantity after the store sale")
        assert store.available("MUG") == STOCK - 3, "the store's own sale is not taken a second time"
        assert [found["id"] for found in store.orders()] == [store_order["id"]], "nothing placed for it"


def test_later_tiktok_statuses_reach_the_hub(database_url: str, tmp_path: Path) -> None:
    with loop_world(database_url, tmp_path) as (world, store):
        external_id, _ = released(world, {"MUG": 1})
        store.fulfil(placed(world, store, external_id)["id"], tracking_number="1ZLATERSTATUSES")
        wait_until(lambda: world.sandbox_order(external_id)["status"] in ("AWAITING_COLLECTION", "IN_TRANSIT"),
                   message="shipped on TikTok")  # fmt: skip
        for step, status in (("collect", "in_transit"), ("deliver", "delivered")):
            if step == "collect" and world.sandbox_order(external_id)["status"] == "IN_TRANSIT":
                continue
            world.control.post(f"/_sandbox/orders/{external_id}/{step}").raise_for_status()
            wait_until(lambda: (order := world.hub_order(external_id)) and order["status"] == status,  # noqa: B023
                       message=f"the hub's order {status}")  # fmt: skip


def test_an_order_cancelled_during_its_hold_never_reaches_the_store(database_url: str, tmp_path: Path) -> None:
    with loop_world(database_url, tmp_path) as (world, store):
        external_id = world.place_order({"MUG": 1}, shipping_type="SELLER")
        wait_until(lambda: world.hub_order(external_id), message="the order in the hub")
        world.buyer_cancel(external_id)  # during the hold: cancelled at once
        wait_until(lambda: (order := world.hub_order(external_id)) and order["status"] == "cancelled",
                   message="the hub's order cancelled")  # fmt: skip
        world.advance(HOLD_SECONDS)
        released_later, _ = released(world, {"TEE-M": 1})  # a later order goes through: the pipeline is moving
        placed(world, store, released_later)
        assert [order for order in store.orders() if order.get("source_identifier") == external_id] == []
        assert world.hub_order(external_id)["released_at"] is None  # type: ignore[index]


def test_a_carrier_tiktok_does_not_list_ships_with_the_default_provider_and_an_issue(
    database_url: str, tmp_path: Path
) -> None:
    with loop_world(database_url, tmp_path) as (world, store):
        external_id, order_id = released(world, {"MUG": 1})
        store.fulfil(placed(world, store, external_id)["id"], carrier="Acme Parcel Co", tracking_number="ACME123456")
        tracked = wait_until(
            lambda: [item for item in world.sandbox_order(external_id)["line_items"] if item.get("tracking_number")],
            message="the tracking number on TikTok",
        )  # fmt: skip
        assert tracked[0]["tracking_number"] == "ACME123456" and tracked[0]["shipping_provider_name"]

        def issues() -> list[SyncIssue]:  # raised as the tracking push commits, just after TikTok has it
            with world.hub.sessions() as session:
                return list(session.scalars(select(SyncIssue).where(SyncIssue.kind == "unmapped_carrier")))

        (issue,) = wait_until(issues, message="the unmapped carrier raised")
        with world.hub.sessions() as session:
            shipment_id = session.scalar(select(Shipment.id).where(Shipment.order_id == order_id))
        assert issue.subject_type == "shipment" and issue.subject_id == str(shipment_id)
        assert "Acme Parcel Co" in issue.message


def test_lost_duplicated_and_reordered_store_webhooks_lose_and_double_nothing(
    database_url: str, tmp_path: Path
) -> None:
    """Every store webhook is lost, duplicated or held back at random; the poll backstop (every second here)
    finds what was lost. Orders are placed once, every fulfilment reaches TikTok once."""

    def stock(hub: Any) -> None:
        record_initial_stock(hub, dict.fromkeys(SKUS, STOCK), key_prefix="loop")

    with running_world(database_url, tmp_path, skus=SKUS, store=True, prepare_hub=stock,
                       shopify_poll_seconds=1.0) as world:  # fmt: skip
        store = world.store
        assert store is not None
        store.control.put(
            "/faults/webhooks",
            json={
                "topic": "*",
                "loss_rate": 0.3,
                "duplicate_rate": 0.3,
                "reorder_rate": 0.3,
                "reorder_max_hold_seconds": 2,
            },
        ).raise_for_status()
        orders = [released(world, {"MUG": 1}) for _ in range(3)]
        for number, (external_id, _) in enumerate(orders):
            store.fulfil(placed(world, store, external_id)["id"], tracking_number=f"1ZFAULTY{number:04d}")
        for number, (external_id, order_id) in enumerate(orders):
            wait_until(lambda: any(item.get("tracking_number") == f"1ZFAULTY{number:04d}"  # noqa: B023
                                   for item in world.sandbox_order(external_id)["line_items"]),  # noqa: B023
                       message=f"order {external_id}'s tracking on TikTok")  # fmt: skip
            with world.hub.sessions() as session:
                assert len(session.scalars(select(Shipment).where(Shipment.order_id == order_id)).all()) == 1
            placed(world, store, external_id)  # exactly one store order each
        store.place_order({"TEE-M": 1})
        wait_until(lambda: [order for order in world.hub_orders() if order["channel"] == "shopify"],
                   message="the store's own order found despite its lost webhooks")  # fmt: skip


def test_throttled_answers_are_waited_out(database_url: str, tmp_path: Path) -> None:
    with loop_world(database_url, tmp_path) as (world, store):
        # Every call throttled until the store has refused a few, then half of them: the hub must wait both out.
        store.control.put("/faults/api", json={"operation": "*", "throttle_rate": 1.0}).raise_for_status()
        external_id, _ = released(world, {"TEE-M": 1})
        wait_until(lambda: store.control.get("/stats").json()["throttled"] >= 2, message="the store throttling")
        store.control.put("/faults/api", json={"operation": "*", "throttle_rate": 0.5}).raise_for_status()
        store.fulfil(placed(world, store, external_id)["id"], tracking_number="1ZTHROTTLED")
        wait_until(lambda: any(item.get("tracking_number") == "1ZTHROTTLED"
                               for item in world.sandbox_order(external_id)["line_items"]),
                   message="the tracking on TikTok")  # fmt: skip
        assert store.control.get("/stats").json()["throttled"] > 0, "the store did throttle the hub"
        with world.hub.sessions() as session:
            dead = session.scalars(select(Job).where(Job.kind.like("shopify.%"), Job.state == "dead")).all()
        assert dead == []
