"""Stock truth to TikTok: pushes after every change, reservations from orders, per-SKU refusals, drift, oversell.

The shop's default rule holds back 1 unit plus 4% of on-hand (rounded up), the hub's default buffer."""

from __future__ import annotations

from itertools import count
from pathlib import Path
from typing import Any

from sqlalchemy import select

from shopbridge.channels.tiktok.inventory import CHECK_STOCK
from shopbridge.channels.tiktok.sync import ORDER_DETAIL_PATH, POLL_ORDERS, SYNC_ORDERS
from shopbridge.runtime.jobs import enqueue
from shopbridge.services.availability import PushOutcome, record_push
from shopbridge.store.db import reading, transaction
from shopbridge.store.tables import (
    ChannelAccount,
    ChannelListing,
    InboundEvent,
    Job,
    Order,
    Product,
    SyncIssue,
    Variant,
)
from tests.integration.tiktok.harness import World, tiktok_world, wait_until

keys = count(1)
UPDATE = "/product/202309/products/{product_id}/inventory/update"


def move(world: World, sku: str, kind: str, quantity: int) -> dict[str, Any]:
    response = world.api.post("/api/v1/stock/movements", json={
        "sku": sku, "location": "MAIN", "kind": kind, "quantity": quantity, "idempotency_key": f"t{next(keys)}",
    })  # fmt: skip
    assert response.status_code == 200, response.text
    return dict(response.json()["stock"])


def on_tiktok(world: World, sku: str) -> int:
    rows = world.control.get("/_sandbox/truth/stock", params={"shop_id": world.shop_id}).json()
    return int(next(row["total"] for row in rows if row["seller_sku"] == sku))


def hub_stock(world: World, sku: str) -> dict[str, Any]:
    return dict(world.api.get(f"/api/v1/stock/{sku}").json())


def settled(world: World, sku: str, quantity: int) -> bool:
    """TikTok shows ``quantity`` and the hub has that push acknowledged."""
    channel = hub_stock(world, sku)["channels"][0]
    done = channel["acked_stock_version"] == channel["stock_version"] and channel["pushed_quantity"] == quantity
    return done and on_tiktok(world, sku) == quantity


def listings_imported(world: World) -> None:
    wait_until(lambda: len(hub_stock(world, "TEE-M")["channels"]) == 1, message="the shop's listings imported")


def first_poll_done(world: World) -> None:
    """The order poll that connecting the shop started has finished: orders placed from now on reach the hub only
    through their webhooks (the next poll is an hour away in these tests)."""

    def done() -> bool:
        with reading(world.hub.sessions) as session:
            return session.scalar(select(Job.id).where(Job.kind == POLL_ORDERS, Job.state == "succeeded")) is not None

    wait_until(done, message="the first order poll")


def mugs_on_sale(world: World) -> None:
    """10 MUGs in the hub, TikTok showing 8 (10 - 2 buffer), and the first order poll done, so orders from now on
    reach the hub through their webhooks."""
    listings_imported(world)
    first_poll_done(world)
    move(world, "MUG", "restock", 10)
    wait_until(lambda: settled(world, "MUG", 8), message="TikTok showing 8 = 10 - 2 buffer")


def order_whose_lines_come_late(world: World, *, detail_ms: int) -> str:
    """A TikTok order for 1 MUG whose webhooks the hub has acknowledged, while TikTok answers order details
    ``detail_ms`` late: the hub has heard of the order but learns its lines only that much later."""
    world.control.put("/_sandbox/faults/endpoints", json={
        "endpoint": f"GET {ORDER_DETAIL_PATH}", "latency": {"distribution": "fixed", "mean_ms": detail_ms},
    }).raise_for_status()  # fmt: skip
    order_id = world.place_order({"MUG": 1})
    deliveries = "/_sandbox/webhooks/deliveries"
    wait_until(lambda: all(d["status"] == "DELIVERED" for d in world.control.get(deliveries).json()
                           if order_id in d["body"]), message="the order's webhooks acknowledged")  # fmt: skip
    return order_id


def test_every_stock_change_reaches_tiktok_as_an_absolute_quantity(database_url: str, tmp_path: Path) -> None:
    with tiktok_world(database_url, tmp_path) as world:
        listings_imported(world)
        stock = move(world, "TEE-M", "restock", 40)
        assert stock["channels"][0]["available"] == 37  # 40 - 1 unit - 4% of 40 rounded up
        wait_until(lambda: settled(world, "TEE-M", 37), message="TikTok showing 37")
        move(world, "TEE-M", "sale", 10)  # sold in the store
        wait_until(lambda: settled(world, "TEE-M", 27), message="TikTok showing 27 after the store sale")
        # A SKU without a stock truth in the hub is never pushed: TikTok keeps what it had.
        assert on_tiktok(world, "TEE-L") == 5000


def test_a_tiktok_order_reserves_and_its_cancellation_releases(database_url: str, tmp_path: Path) -> None:
    with tiktok_world(database_url, tmp_path) as world:
        listings_imported(world)
        move(world, "MUG", "restock", 10)
        wait_until(lambda: settled(world, "MUG", 8), message="TikTok showing 8")
        order_id = world.place_order({"MUG": 3})
        wait_until(lambda: hub_stock(world, "MUG")["reserved"] == 3, message="the order's reservation")
        wait_until(lambda: settled(world, "MUG", 5), message="TikTok showing 5 = 10 - 3 reserved - 2 buffer")
        world.buyer_cancel(order_id)
        wait_until(lambda: hub_stock(world, "MUG")["reserved"] == 0, message="the cancellation's release")
        wait_until(lambda: settled(world, "MUG", 8), message="TikTok back at 8")
        assert hub_stock(world, "MUG")["on_hand"] == 10


def test_rapid_changes_under_slow_acknowledgements_end_at_the_latest_truth(database_url: str, tmp_path: Path) -> None:
    with tiktok_world(database_url, tmp_path) as world:
        listings_imported(world)
        world.control.put("/_sandbox/faults/endpoints", json={
            "endpoint": f"POST {UPDATE}", "latency": {"distribution": "uniform", "min_ms": 50, "max_ms": 400},
        }).raise_for_status()  # fmt: skip
        move(world, "TEE-M", "restock", 500)
        for _ in range(15):
            move(world, "TEE-M", "sale", 7)
            move(world, "TEE-L", "restock", 3)
        truth = hub_stock(world, "TEE-M")["channels"][0]["available"]
        assert truth == 500 - 105 - 1 - 16  # 4% of 395 rounds up to 16
        wait_until(lambda: settled(world, "TEE-M", truth), timeout=60, message="TikTok at the hub's latest truth")
        updates = world.control.get("/_sandbox/truth/inventory_updates").json()
        tee_m = [u for u in updates if u["sku_id"] == world.sku_ids["TEE-M"]]
        assert tee_m[-1]["quantity"] == truth, "the last quantity TikTok received is the newest"
        quantities = [u["quantity"] for u in tee_m]
        assert quantities == sorted(quantities, reverse=True), "an older (larger) quantity never followed a newer one"


def test_a_push_leaving_tiktok_low_waits_for_the_sync_of_a_sale_tiktok_already_made(
    database_url: str, tmp_path: Path
) -> None:
    with tiktok_world(database_url, tmp_path) as world:
        mugs_on_sale(world)
        order_whose_lines_come_late(world, detail_ms=1000)  # TikTok now shows 7 by itself
        seen = len(world.control.get("/_sandbox/truth/inventory_updates").json())
        assert move(world, "MUG", "sale", 1)["reserved"] == 0, "the store sale lands before the order's sync"

        # 9 on hand - 1 reserved - 2 buffer. Pushing what the hub knew at the sale (9 - 2 = 7) would have put the unit
        # TikTok had just sold back on sale; the push waited for the order's sync instead.
        wait_until(lambda: settled(world, "MUG", 6), message="TikTok showing 6", timeout=15)
        mug = [u["quantity"] for u in world.control.get("/_sandbox/truth/inventory_updates").json()[seen:]
               if u["sku_id"] == world.sku_ids["MUG"]]  # fmt: skip
        assert mug == [6]


def test_a_push_leaving_tiktok_low_leaves_out_a_sale_the_hub_has_not_heard_of(
    database_url: str, tmp_path: Path
) -> None:
    with tiktok_world(database_url, tmp_path) as world:
        mugs_on_sale(world)
        world.control.put("/_sandbox/faults/webhooks", json={"event_type": "*", "drop_rate": 1.0}).raise_for_status()
        order_id = world.place_order({"MUG": 1})  # TikTok shows 7 by itself; the order's webhooks are lost
        seen = len(world.control.get("/_sandbox/truth/inventory_updates").json())
        assert move(world, "MUG", "sale", 1)["reserved"] == 0, "the hub has not heard of the TikTok order"

        # The hub knows 9 on hand and nothing reserved (9 - 2 buffer = 7), but TikTok counts 1 unit committed to an
        # order the hub holds nothing for: 10 - 1 sold in the store - 1 sold on TikTok - 2 buffer = 6.
        wait_until(lambda: settled(world, "MUG", 6), message="TikTok showing 6", timeout=15)
        mug = [u["quantity"] for u in world.control.get("/_sandbox/truth/inventory_updates").json()[seen:]
               if u["sku_id"] == world.sku_ids["MUG"]]  # fmt: skip
        assert mug == [6], "the unit TikTok had sold was never put back on sale"

        with transaction(world.hub.sessions) as session:  # the order reaches the hub by the poll
            account_id = session.scalar(select(ChannelAccount.id))
            enqueue(session, POLL_ORDERS, now=world.hub.clock.now(), channel_account_id=account_id)
        wait_until(lambda: world.hub_order(order_id), message="the order polled")
        wait_until(lambda: hub_stock(world, "MUG")["reserved"] == 1, message="the order's reservation")
        wait_until(lambda: settled(world, "MUG", 6), message="TikTok still showing 6", timeout=15)


def test_a_push_that_only_takes_units_off_tiktok_does_not_wait_for_the_sync(database_url: str, tmp_path: Path) -> None:
    with tiktok_world(database_url, tmp_path) as world:
        mugs_on_sale(world)
        order_whose_lines_come_late(world, detail_ms=1500)
        move(world, "MUG", "sale", 10)  # the store sells the rest: nothing is left for TikTok

        # A 0 puts nothing back on sale, so it goes while the order's sync still waits for TikTok's answer.
        wait_until(lambda: settled(world, "MUG", 0), message="TikTok showing 0", timeout=15)
        assert hub_stock(world, "MUG")["reserved"] == 0, "the 0 reached TikTok before the order's sync finished"
        wait_until(lambda: hub_stock(world, "MUG")["reserved"] == 1, message="the order's reservation", timeout=15)


def test_an_order_sync_that_cannot_finish_delays_a_push_but_never_stops_it(database_url: str, tmp_path: Path) -> None:
    with tiktok_world(database_url, tmp_path) as world:
        mugs_on_sale(world)
        world.control.put(
            "/_sandbox/faults/endpoints", json={"endpoint": f"GET {ORDER_DETAIL_PATH}", "error_rate": 1.0}
        )
        world.place_order({"MUG": 1})  # the sync of its webhooks keeps failing
        move(world, "MUG", "sale", 1)
        # The hub cannot learn the order's lines, so after waiting for its sync the push goes anyway, without the
        # unit TikTok counts as committed to it: 9 - 1 - 2 buffer.
        wait_until(lambda: settled(world, "MUG", 6), message="the push, sent anyway", timeout=15)
        with reading(world.hub.inbox_sessions) as session:
            waiting = session.scalars(select(InboundEvent.status).where(InboundEvent.status == "received")).all()
        assert waiting, "the order's events are still waiting for their sync"


def test_a_sku_selling_faster_than_a_push_can_land_shows_0_until_the_pace_drops(
    database_url: str, tmp_path: Path
) -> None:
    with tiktok_world(database_url, tmp_path) as world:
        listings_imported(world)
        move(world, "MUG", "restock", 12)
        wait_until(lambda: settled(world, "MUG", 10), message="TikTok showing 10 = 12 - 2 buffer")
        seen = len(world.control.get("/_sandbox/truth/inventory_updates").json())
        world.place_order({"MUG": 8})  # 8 units at once: at that pace the 2 left would sell before a push landed
        wait_until(lambda: hub_stock(world, "MUG")["reserved"] == 8, message="the order's reservation")
        # The guard's window (2 s) passes with no further sale: the units go back on TikTok without a stock change.
        wait_until(lambda: settled(world, "MUG", 2), message="TikTok showing 2 again", timeout=15)
        mug = [u["quantity"] for u in world.control.get("/_sandbox/truth/inventory_updates").json()[seen:]
               if u["sku_id"] == world.sku_ids["MUG"]]  # fmt: skip
        assert mug == [0, 2]


def test_an_acknowledgement_never_moves_a_listing_back(database_url: str, tmp_path: Path) -> None:
    with tiktok_world(database_url, tmp_path) as world:
        listings_imported(world)
        move(world, "TEE-M", "restock", 40)
        wait_until(lambda: settled(world, "TEE-M", 37), message="TikTok showing 37")
        with transaction(world.hub.sessions) as session:
            listing = session.scalar(select(ChannelListing).where(ChannelListing.seller_sku == "TEE-M"))
            account = session.get(ChannelAccount, listing.channel_account_id) if listing else None
            assert listing is not None and account is not None
            newest = listing.acked_stock_version
            record_push(session, account, [PushOutcome(listing.id, newest - 1, 99)], now=world.hub.clock.now())
        channel = hub_stock(world, "TEE-M")["channels"][0]
        assert (channel["acked_stock_version"], channel["pushed_quantity"]) == (newest, 37)


def test_a_sku_tiktok_refuses_is_reported_on_its_own(database_url: str, tmp_path: Path) -> None:
    with tiktok_world(database_url, tmp_path) as world:
        listings_imported(world)
        with transaction(world.hub.sessions) as session:  # a listing whose SKU TikTok does not know in that product
            real = session.scalar(select(ChannelListing).where(ChannelListing.seller_sku == "TEE-M"))
            assert real is not None
            product = Product(title="Ghost")
            session.add(product)
            session.flush()
            ghost = Variant(product_id=product.id, sku="GHOST")
            session.add(ghost)
            session.flush()
            session.add(ChannelListing(channel_account_id=real.channel_account_id, variant_id=ghost.id,
                                       external_product_id=real.external_product_id, external_sku_id="1",
                                       seller_sku="GHOST"))  # fmt: skip
        move(world, "GHOST", "restock", 10)
        move(world, "TEE-M", "restock", 40)
        wait_until(lambda: settled(world, "TEE-M", 37), message="TEE-M pushed despite its neighbour's refusal")
        ghost_channel = hub_stock(world, "GHOST")["channels"][0]
        assert ghost_channel["push_error"] and "12052990" in ghost_channel["push_error"]
        assert ghost_channel["acked_stock_version"] < ghost_channel["stock_version"]
        with reading(world.hub.sessions) as session:
            issue = session.scalar(select(SyncIssue).where(SyncIssue.kind == "stock_push_failed"))
            assert issue is not None and "GHOST" in issue.message and issue.status == "open"


def test_a_sku_that_makes_tiktok_refuse_its_whole_product_is_set_aside(database_url: str, tmp_path: Path) -> None:
    """TikTok refuses a product's whole update (12019028) when one SKU has stock in a warehouse the push does not
    list: the product's other SKUs still land, and the one refused waits as a dead letter of its own."""
    with tiktok_world(database_url, tmp_path) as world:
        listings_imported(world)
        move(world, "TEE-L", "restock", 40)
        wait_until(lambda: settled(world, "TEE-L", 37), message="TEE-L on TikTok")
        added = world.control.post(f"/_sandbox/shops/{world.shop_id}/warehouses", json={"name": "Overflow"})
        assert added.status_code == 201, added.text
        stocked = world.control.put(
            "/_sandbox/stock",
            json={"sku_id": world.sku_ids["TEE-M"], "warehouse_id": added.json()["id"], "quantity": 3},
        )
        assert stocked.status_code == 200, stocked.text  # a warehouse the hub has not imported: TEE-M cannot be placed
        move(world, "TEE-M", "restock", 40)
        move(world, "TEE-L", "sale", 10)
        wait_until(lambda: settled(world, "TEE-L", 27), message="TEE-L pushed although TEE-M fails the product")
        with reading(world.hub.sessions) as session:
            issue = session.scalar(select(SyncIssue).where(SyncIssue.kind == "stock_push_failed"))
            dead = session.scalars(select(Job).where(Job.state == "dead")).all()
        assert issue is not None and "TEE-M" in issue.message and "12019028" in issue.message
        assert len(dead) == 1 and "12019028" in (dead[0].last_error or "")
        assert dead[0].kind == "tiktok.push_stock" and world.sku_ids["TEE-M"] in (dead[0].last_error or "")


def test_drift_is_reported_and_repaired(database_url: str, tmp_path: Path) -> None:
    with tiktok_world(database_url, tmp_path) as world:
        listings_imported(world)
        move(world, "TEE-L", "restock", 20)
        wait_until(lambda: settled(world, "TEE-L", 18), message="TikTok showing 18")
        world.control.put("/_sandbox/stock", json={"sku_id": world.sku_ids["TEE-L"], "quantity": 50}).raise_for_status()
        with transaction(world.hub.sessions) as session:
            account_id = session.scalar(select(ChannelAccount.id))
            enqueue(session, CHECK_STOCK, {}, now=world.hub.clock.now(), channel_account_id=account_id)
        wait_until(lambda: on_tiktok(world, "TEE-L") == 18, message="the hub's truth pushed again")
        with reading(world.hub.sessions) as session:
            issue = session.scalar(select(SyncIssue).where(SyncIssue.kind == "stock_mismatch"))
            assert issue is not None and "shows 50" in issue.message
            account = session.get(ChannelAccount, account_id)
            assert account is not None and account.settings["stock_drift"]["mismatched"] == 1


def test_a_tiktok_sale_the_hub_has_not_synced_yet_is_not_drift(database_url: str, tmp_path: Path) -> None:
    with tiktok_world(database_url, tmp_path) as world:
        mugs_on_sale(world)
        world.control.put("/_sandbox/faults/webhooks", json={"event_type": "*", "drop_rate": 1.0}).raise_for_status()
        world.place_order({"MUG": 1})  # TikTok shows 7 by itself, the hub still wants 8 shown
        with transaction(world.hub.sessions) as session:
            account_id = session.scalar(select(ChannelAccount.id))
            job_id = enqueue(session, CHECK_STOCK, {}, now=world.hub.clock.now(), channel_account_id=account_id)

        def checked() -> bool:
            with reading(world.hub.sessions) as session:
                return session.scalar(select(Job.state).where(Job.id == job_id)) == "succeeded"

        wait_until(checked, message="the drift check")
        with reading(world.hub.sessions) as session:
            account = session.get(ChannelAccount, account_id)
            assert account is not None and account.settings["stock_drift"]["mismatched"] == 0
            assert session.scalar(select(SyncIssue).where(SyncIssue.kind == "stock_mismatch")) is None
        assert on_tiktok(world, "MUG") == 7, "the sold unit was not put back on sale as a 'repair'"


def test_an_order_for_stock_the_hub_no_longer_has_is_flagged_oversold(database_url: str, tmp_path: Path) -> None:
    with tiktok_world(database_url, tmp_path) as world:
        listings_imported(world)
        move(world, "MUG", "restock", 12)
        wait_until(lambda: settled(world, "MUG", 10), message="TikTok showing 10")
        # TikTok stops taking updates, the store sells 10: TikTok still offers 10 while the hub has 2.
        world.control.put("/_sandbox/faults/endpoints", json={"endpoint": f"POST {UPDATE}", "error_rate": 1.0})
        move(world, "MUG", "sale", 10)
        order_id = world.place_order({"MUG": 4})
        order = wait_until(lambda: world.hub_order(order_id), message="the order in the hub")
        with reading(world.hub.sessions) as session:
            row = session.get(Order, order["id"])
            assert row is not None and row.oversold_units == 2
            issue = session.scalar(select(SyncIssue).where(SyncIssue.kind == "oversold"))
            assert issue is not None and "MUG: ordered 4, 2 free" in issue.message
        assert hub_stock(world, "MUG")["reserved"] == 4, "the order is owed: reserved all the same"
        assert hub_stock(world, "MUG")["channels"][0]["available"] == 0


def test_orders_synced_together_are_judged_oversold_in_turn(database_url: str, tmp_path: Path) -> None:
    """A chunk of orders settles its stock in one ledger write; the second order for the last units must still
    see the first order's reservation."""
    with tiktok_world(database_url, tmp_path) as world:
        listings_imported(world)
        move(world, "MUG", "restock", 12)
        wait_until(lambda: settled(world, "MUG", 10), message="TikTok showing 10")
        world.control.put("/_sandbox/faults/endpoints", json={"endpoint": f"POST {UPDATE}", "error_rate": 1.0})
        move(world, "MUG", "sale", 10)  # the hub has 2 left; TikTok still offers 10
        world.webhook_faults(drop_rate=1.0)  # both orders reach the hub through one poll
        first, second = world.place_order({"MUG": 2}), world.place_order({"MUG": 2})
        with transaction(world.hub.sessions) as session:
            account_id = session.scalar(select(ChannelAccount.id))
            enqueue(session, POLL_ORDERS, now=world.hub.clock.now(), channel_account_id=account_id)
        wait_until(lambda: world.hub_order(first) and world.hub_order(second), message="both orders polled")
        # The hub judges them in the order the poll read them (TikTok's order, not necessarily the placing order),
        # which is the order their rows were created in.
        with reading(world.hub.sessions) as session:
            in_turn = session.execute(select(Order.external_id, Order.oversold_units).order_by(Order.id)).all()
        assert {external_id for external_id, _ in in_turn} == {first, second}
        assert [units for _, units in in_turn] == [0, 2]
        assert hub_stock(world, "MUG")["reserved"] == 4


def test_oversold_units_can_be_cancelled_on_tiktok(database_url: str, tmp_path: Path) -> None:
    with tiktok_world(database_url, tmp_path, stock_cancel_oversold=True) as world:
        listings_imported(world)
        move(world, "MUG", "restock", 12)
        wait_until(lambda: settled(world, "MUG", 10), message="TikTok showing 10")
        world.control.put("/_sandbox/faults/endpoints", json={"endpoint": f"POST {UPDATE}", "error_rate": 1.0})
        move(world, "MUG", "sale", 12)  # the store sells everything; TikTok, not told, still offers 10
        order_id = world.place_order({"MUG": 1})
        wait_until(lambda: world.sandbox_order(order_id)["status"] == "CANCELLED", message="cancelled on TikTok")
        cancelled = wait_until(
            lambda: (o := world.hub_order(order_id)) and o["status"] == "cancelled" and o, message="and in the hub"
        )
        assert "oversold_cancel_requested" in [event["kind"] for event in cancelled["events"]]
        wait_until(lambda: hub_stock(world, "MUG")["reserved"] == 0, message="the reservation released")


def test_a_sku_the_hub_has_never_counted_is_reserved_but_never_called_oversold(
    database_url: str, tmp_path: Path
) -> None:
    with tiktok_world(database_url, tmp_path) as world:
        order_id = world.place_order({"TEE-L": 2})
        order = wait_until(lambda: world.hub_order(order_id), message="the order in the hub")
        assert hub_stock(world, "TEE-L")["reserved"] == 2
        with reading(world.hub.sessions) as session:
            row = session.get(Order, order["id"])
            assert row is not None and row.oversold_units == 0
            assert session.scalar(select(SyncIssue).where(SyncIssue.kind == "oversold")) is None
        assert on_tiktok(world, "TEE-L") == 4998, "and no quantity is pushed for it"


def test_an_order_first_seen_already_shipped_moves_no_stock(database_url: str, tmp_path: Path) -> None:
    with tiktok_world(database_url, tmp_path) as world:
        listings_imported(world)
        move(world, "MUG", "restock", 10)
        world.webhook_faults(drop_rate=1.0)  # the hub hears nothing until the order has shipped
        order_id = world.place_order({"MUG": 2})
        world.advance(3601)
        for step in ("ship", "collect"):
            world.control.post(f"/_sandbox/orders/{order_id}/{step}").raise_for_status()
        assert world.sandbox_order(order_id)["status"] == "IN_TRANSIT"
        with transaction(world.hub.sessions) as session:
            account_id = session.scalar(select(ChannelAccount.id))
            enqueue(session, SYNC_ORDERS, {"order_ids": [order_id], "source": "retry"}, now=world.hub.clock.now(),
                    channel_account_id=account_id, identity_key=f"test:{order_id}")  # fmt: skip
        order = wait_until(lambda: world.hub_order(order_id), message="the shipped order read by the hub")
        assert order["status"] == "in_transit"
        stock = hub_stock(world, "MUG")
        assert (stock["on_hand"], stock["reserved"]) == (10, 0), "counted stock is not moved a second time"
