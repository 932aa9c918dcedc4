"""Shopify stock against the Shopify sandbox: the hub's truth written with compare-and-swap when the hub is the
master, the store's quantities mirrored into the hub when the store is, and the periodic check in both modes."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from shopbridge.bootstrap import Hub, build_hub, default_registry
from shopbridge.channels.shopify import catalog, stock
from shopbridge.channels.shopify.connect import connect_with_token
from shopbridge.channels.shopify.context import HUB_MASTER, STORE_MASTER, ShopifyApp, ShopifyContext
from shopbridge.channels.shopify.kinds import CHECK_STOCK, IMPORT_CATALOG, OBSERVE_STOCK, PUSH_STOCK
from shopbridge.config import Settings
from shopbridge.demo.world import free_port, serving
from shopbridge.runtime import jobs
from shopbridge.sandbox.shopify.app import create_app
from shopbridge.sandbox.shopify.config import ShopifySandboxConfig
from shopbridge.services.access import add_user, issue_token
from shopbridge.services.availability import enqueue_push
from shopbridge.services.stock import StockSourceConflict, apply_external_movement
from shopbridge.store.db import transaction
from shopbridge.store.secrets import SecretBox
from shopbridge.store.tables import (
    ChannelAccount,
    ChannelListing,
    Job,
    Location,
    Order,
    Product,
    StockLevel,
    StockMovement,
    SyncIssue,
    Variant,
)
from shopbridge.web.app import create_app as create_hub_app

SKU = "TEE-M"
MAIN = "Main Warehouse"
STORE = "Downtown Store"
KINDS = frozenset({IMPORT_CATALOG, PUSH_STOCK, OBSERVE_STOCK, CHECK_STOCK})


class RacingTransport(httpx.BaseTransport):
    """The hub's way to the sandbox, which can let the store change just before the hub's next stock write lands
    (the race compare-and-swap exists for). The sandbox itself answers every request."""

    def __init__(self) -> None:
        self.inner = httpx.HTTPTransport()
        self.before_next_write: Callable[[], None] | None = None

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if self.before_next_write is not None and b"inventorySetQuantities" in request.content:
            change, self.before_next_write = self.before_next_write, None
            change()
        return self.inner.handle_request(request)

    def close(self) -> None:
        self.inner.close()


@dataclass
class StoreWorld:
    hub: Hub
    context: ShopifyContext
    control: httpx.Client  # the sandbox's /_sandbox control API
    transport: RacingTransport
    account_id: int
    product_gid: str
    item_gid: str

    def run(self) -> list[str]:
        """Run the due jobs of the Shopify stock kinds (and the catalogue import) until none is left."""
        worker = self.hub.new_worker(name="test")
        outcomes = []
        for _ in range(100):
            with transaction(self.hub.sessions) as session:
                claimed = jobs.claim(session, worker.name, now=self.hub.clock.now(), lease_seconds=60, limit=1,
                                     serial_kinds=self.hub.registry.serial_kinds(), kinds=KINDS)  # fmt: skip
            if not claimed:
                return outcomes
            outcomes.append(worker.run_job(claimed[0]))
        raise AssertionError("the jobs never ran out")

    def queue(self, action: Callable[[Any], Any]) -> Any:
        with transaction(self.hub.sessions) as session:
            return action(session)

    def move(self, kind: str, quantity: int, key: str) -> None:
        self.queue(lambda session: apply_external_movement(
            session, sku=SKU, location_code="MAIN", kind=kind, quantity=quantity, idempotency_key=key, origin="hub",
            now=self.hub.clock.now(),
        ))  # fmt: skip

    def observe(self, location: str = MAIN) -> None:
        """What the webhook intake queues for inventory_levels/update."""
        place = self.location_gid(location)
        self.queue(lambda session: stock.enqueue_observe(session, self.account_id, self.item_gid, place,
                                                         now=self.hub.clock.now()))  # fmt: skip

    def check(self) -> None:
        self.queue(lambda session: jobs.enqueue(session, CHECK_STOCK, {}, now=self.hub.clock.now(),
                                                channel_account_id=self.account_id))  # fmt: skip

    def location_gid(self, name: str) -> str:
        return str(next(loc["gid"] for loc in self.control.get("/locations").json() if loc["name"] == name))

    def available(self, location: str = MAIN) -> int:
        levels = self.control.get("/inventory", params={"sku": SKU}).json()[0]["inventory"]
        return int(next(level["available"] for level in levels if level["location"] == location))

    def writes(self) -> int:
        return int(self.control.get("/stats").json()["api_calls"].get("inventorySetQuantities", 0))

    def on_hand(self, code: str = "MAIN") -> int:
        with self.hub.sessions() as session:
            return int(session.scalar(
                select(StockLevel.on_hand).join(Variant, Variant.id == StockLevel.variant_id)
                .join(Location, Location.id == StockLevel.location_id).where(Variant.sku == SKU, Location.code == code)
            ) or 0)  # fmt: skip

    def listing(self) -> ChannelListing:
        with self.hub.sessions() as session:
            row = session.scalar(select(ChannelListing).where(ChannelListing.channel_account_id == self.account_id))
            assert row is not None
            return row

    def issues(self, kind: str) -> list[SyncIssue]:
        with self.hub.sessions() as session:
            return list(session.scalars(select(SyncIssue).where(SyncIssue.kind == kind).order_by(SyncIssue.id)))


@contextmanager
def store_world(database_url: str, tmp_path: Path, *, master: str, stock_at: dict[str, int],
                hub_stock: int | None = None) -> Iterator[StoreWorld]:  # fmt: skip
    """A sandbox store selling SKU from ``stock_at`` (available per location), a hub with that SKU (and
    ``hub_stock`` units of it at MAIN), the store connected with ``master`` as stock master and its catalogue
    imported."""
    config = ShopifySandboxConfig()
    with serving(create_app(config), free_port()) as sandbox_url, \
            httpx.Client(base_url=f"{sandbox_url}/_sandbox") as control:  # fmt: skip
        for name in stock_at:
            control.post("/locations", json={"name": name, "fulfills_online_orders": name == MAIN}).raise_for_status()
        created = control.post("/products", json={
            "title": "Cotton tee", "variants": [{"sku": SKU, "price": "19.90", "stock": stock_at}],
        })  # fmt: skip
        created.raise_for_status()
        product = created.json()
        shop = control.get("/shop").json()
        settings = Settings(
            data_dir=tmp_path / "data", database_url=database_url, secret_key=SecretBox.generate_key(),
            shopify_admin_base_url=sandbox_url, shopify_api_secret=config.api_secret, currency=shop["currency"],
            timezone=shop["iana_timezone"], worker_poll_seconds=0.05, worker_process=False, log_level="warning",
        )  # fmt: skip
        hub = build_hub(settings, registry=default_registry())
        transport = RacingTransport()
        http = httpx.Client(transport=transport, timeout=10)
        try:
            hub.migrate()
            assert settings.shopify_api_secret is not None
            context = ShopifyContext(
                app=ShopifyApp(None, settings.shopify_api_secret.get_secret_value(), settings.shopify_api_version,
                               settings.shopify_admin_base_url),
                http=http, sessions=hub.sessions, inbox_sessions=hub.inbox_sessions, secrets=hub.secrets,
                clock=hub.clock, settings=settings,
            )  # fmt: skip
            catalog.register(hub.registry, context)
            stock.register(hub.registry, context)
            with transaction(hub.sessions) as session:
                tee = Product(title="Cotton tee")
                session.add_all([tee, Location(code="MAIN", name="Main")])
                session.flush()
                session.add(Variant(product_id=tee.id, sku=SKU))
            connected = connect_with_token(context, config.shop_domain, config.access_token, stock_master=master,
                                           now=hub.clock.now())  # fmt: skip
            world = StoreWorld(hub, context, control, transport, connected.account_id, product["gid"],
                               product["variants"][0]["inventory_item_gid"])  # fmt: skip
            if hub_stock is not None:
                world.move("restock", hub_stock, "seed")
            world.run()
            yield world
        finally:
            http.close()
            hub.close()


# --- hub master ----------------------------------------------------------------------------------------------


def test_a_hub_stock_change_reaches_the_store_by_compare_and_swap(database_url: str, tmp_path: Path) -> None:
    with store_world(database_url, tmp_path, master=HUB_MASTER, stock_at={MAIN: 5}, hub_stock=10) as world:
        assert world.available() == 10, "the first push put the hub's truth in the store"
        listing = world.listing()
        assert listing.pushed_quantity == 10 and listing.acked_stock_version == listing.stock_version
        world.move("restock", 3, "restock-1")
        world.move("sale", 1, "sale-1")
        assert world.run() == ["succeeded"], "one push for both changes"
        assert world.available() == 12
        assert world.listing().pushed_quantity == 12
        assert world.issues("store_stock_changed") == [], "the store took only what the hub wrote"
        writes = world.writes()
        enqueue = lambda session: enqueue_push(session, "shopify", world.account_id, world.product_gid,  # noqa: E731
                                               now=world.hub.clock.now())  # fmt: skip
        world.queue(enqueue)
        world.run()
        assert world.writes() == writes, "a push with nothing dirty writes nothing"


def test_a_store_change_between_read_and_write_fails_the_compare_and_the_retry_converges(
    database_url: str, tmp_path: Path
) -> None:
    with store_world(database_url, tmp_path, master=HUB_MASTER, stock_at={MAIN: 10}, hub_stock=10) as world:
        writes = world.writes()

        def staff_sets_4() -> None:
            world.control.put("/inventory", json={"sku": SKU, "location": MAIN, "available": 4}).raise_for_status()

        world.transport.before_next_write = staff_sets_4
        world.move("sale", 3, "sale-1")
        assert world.run() == ["succeeded"]
        assert world.available() == 7, "the write that lost the race was read again and retried"
        assert world.writes() == writes + 2, "one stale compare, one write that landed"
        (issue,) = world.issues("store_stock_changed")
        assert issue.details == {"sku": SKU, "location": world.location_gid(MAIN), "expected": 10, "found": 4,
                                 "act": "ops"}  # fmt: skip


def test_a_change_made_in_the_store_is_reported_and_overwritten(database_url: str, tmp_path: Path) -> None:
    with store_world(database_url, tmp_path, master=HUB_MASTER, stock_at={MAIN: 0}, hub_stock=10) as world:
        world.control.post("/inventory/sale", json={"sku": SKU, "location": MAIN, "quantity": 2}).raise_for_status()
        assert world.available() == 8
        world.observe()  # its inventory_levels/update
        assert world.run() == ["succeeded", "succeeded"], "the observation found a difference and queued a push"
        assert world.available() == 10, "the hub is the master: its truth is written back"
        (issue,) = world.issues("store_stock_changed")
        assert (issue.details["expected"], issue.details["found"], issue.details["act"]) == (10, 8, "ops")
        assert world.on_hand() == 10
        with world.hub.sessions() as session:
            sources = set(session.scalars(select(StockMovement.source)))
        assert sources == {"hub"}, "nothing of the store's change went into the ledger"
        world.observe()  # the echo of the hub's own write
        assert world.run() == ["succeeded"], "an echo queues no push"


def test_a_store_order_the_hub_has_not_synced_is_not_put_back_on_sale(database_url: str, tmp_path: Path) -> None:
    with store_world(database_url, tmp_path, master=HUB_MASTER, stock_at={MAIN: 10}, hub_stock=10) as world:
        world.control.post("/orders", json={"lines": [{"sku": SKU, "quantity": 2}]}).raise_for_status()
        assert world.available() == 8
        world.move("restock", 1, "restock-1")
        world.run()
        assert world.available() == 9, "11 in the hub, less the 2 the store committed to an order the hub lacks"
        assert world.issues("store_stock_changed") == [], "an order explains the drop"


def test_the_check_reports_drift_and_the_push_repairs_it(database_url: str, tmp_path: Path) -> None:
    with store_world(database_url, tmp_path, master=HUB_MASTER, stock_at={MAIN: 10}, hub_stock=10) as world:
        world.check()
        world.run()
        assert world.issues("stock_mismatch") == []
        world.control.put("/inventory", json={"sku": SKU, "location": MAIN, "available": 6}).raise_for_status()
        world.check()
        assert world.run() == ["succeeded", "succeeded"], "the check, then the push of the drifted SKU"
        (issue,) = world.issues("stock_mismatch")
        assert issue.details["mismatched"] == 1 and issue.details["compared"] == 1
        assert world.available() == 10
        world.check()
        world.run()
        assert [issue.status for issue in world.issues("stock_mismatch")] == ["resolved"]


def test_a_push_for_a_store_that_is_its_stocks_master_writes_nothing(database_url: str, tmp_path: Path) -> None:
    with store_world(database_url, tmp_path, master=STORE_MASTER, stock_at={MAIN: 10}) as world:
        world.queue(lambda session: stock.claim_external_source(session, world.account_id, world.hub.clock.now()))
        world.run()
        world.queue(lambda session: enqueue_push(session, "shopify", world.account_id, world.product_gid,
                                                 now=world.hub.clock.now()))  # fmt: skip
        assert world.run() == ["succeeded"]
        assert world.writes() == 0 and world.available() == 10


# --- Shopify master ------------------------------------------------------------------------------------------


def store_master_world(database_url: str, tmp_path: Path) -> Any:
    return store_world(database_url, tmp_path, master=STORE_MASTER, stock_at={MAIN: 10, STORE: 4})


def claim(world: StoreWorld) -> None:
    """The catalogue import made the store the master of the SKU it linked (and its check mirrored it): claiming
    again changes nothing."""
    with world.hub.sessions() as session:
        assert session.scalar(select(Variant.stock_source).where(Variant.sku == SKU)) == "external"
    claimed = world.queue(lambda session: stock.claim_external_source(session, world.account_id, world.hub.clock.now()))
    assert claimed == 0
    world.run()


def test_an_in_store_sale_moves_the_hub_exactly_once(database_url: str, tmp_path: Path) -> None:
    with store_master_world(database_url, tmp_path) as world:
        with transaction(world.hub.sessions) as session:  # a marketplace selling the same SKU
            tiktok = ChannelAccount(channel="tiktok", label="TikTok shop", external_id="shop-1", settings={})
            session.add(tiktok)
            session.flush()
            variant_id = session.scalar(select(Variant.id).where(Variant.sku == SKU))
            session.add(ChannelListing(channel_account_id=tiktok.id, variant_id=variant_id, external_product_id="P1",
                                       external_sku_id="S1", seller_sku=SKU))  # fmt: skip
        claim(world)
        store_code = f"SHOPIFY-{world.location_gid(STORE).rsplit('/', 1)[-1]}"
        assert (world.on_hand(), world.on_hand(store_code)) == (10, 4), "the check mirrored every level"
        world.control.post("/inventory/sale", json={"sku": SKU, "location": STORE, "quantity": 2}).raise_for_status()
        world.observe(STORE)
        world.run()
        world.observe(STORE)  # a duplicate webhook
        world.run()
        assert (world.on_hand(), world.on_hand(store_code)) == (10, 2)
        with world.hub.sessions() as session:
            changes = session.scalars(
                select(StockMovement.on_hand_delta).where(StockMovement.source == "external").order_by(StockMovement.id)
            ).all()
            pushes = session.scalar(select(Job.id).where(Job.kind == "tiktok.push_stock", Job.state == "pending"))
        assert sorted(changes[:2]) == [4, 10] and changes[2:] == [-2], "the sale moved the hub once"
        assert pushes is not None, "the marketplace's push is queued"
        assert world.writes() == 0, "nothing is ever written to a store that is the master"


def test_the_mirror_counts_units_the_store_committed_to_orders_the_hub_holds(database_url: str, tmp_path: Path) -> None:
    with store_master_world(database_url, tmp_path) as world:
        claim(world)
        order = world.control.post("/orders", json={"lines": [{"sku": SKU, "quantity": 3}]})
        order.raise_for_status()
        with transaction(world.hub.sessions) as session:  # the hub synced the store's order: it holds its units
            now = world.hub.clock.now()
            synced = Order(channel_account_id=world.account_id, external_id=str(order.json()["gid"]),
                           channel_status="UNFULFILLED", status="AWAITING_SHIPMENT", currency="USD", total_minor=5970,
                           channel_created_at=now, channel_updated_at=now)  # fmt: skip
            session.add(synced)
            session.flush()
            variant_id = session.scalar(select(Variant.id).where(Variant.sku == SKU))
            main = session.scalar(select(Location.id).where(Location.code == "MAIN"))
            assert variant_id is not None and main is not None
            session.add(StockMovement(idempotency_key=f"order:{synced.id}:reserve", variant_id=variant_id,
                                      location_id=main, kind="reservation", reserved_delta=3, source="shopify",
                                      reference=f"order:{synced.id}", occurred_at=now, recorded_at=now))  # fmt: skip
        assert world.available() == 7
        world.observe()
        world.run()
        assert world.on_hand() == 10, "7 the store can sell, 3 on the shelf for the order the hub holds"


def test_a_hub_write_to_a_sku_the_store_masters_is_refused(database_url: str, tmp_path: Path) -> None:
    with store_master_world(database_url, tmp_path) as world:
        claim(world)
        with pytest.raises(StockSourceConflict, match="kept by the external side"):
            world.move("restock", 5, "restock-1")
        with transaction(world.hub.sessions) as session:
            add_user(session, "ops@example.com", "ops", now=world.hub.clock.now())
            token = issue_token(session, "ops@example.com", "tests", now=world.hub.clock.now())
        with TestClient(create_hub_app(world.hub), headers={"authorization": f"Bearer {token}"}) as client:
            response = client.post("/api/v1/stock/movements", json={
                "sku": SKU, "location": "MAIN", "kind": "restock", "quantity": 5, "idempotency_key": "api-1",
            })  # fmt: skip
        assert response.status_code == 409
        assert response.json()["detail"] == f"{SKU}'s stock is kept by the external side; a write from the hub side " \
            "is refused"  # fmt: skip
        assert world.on_hand() == 10


def test_the_check_observes_levels_whose_mirror_drifted(database_url: str, tmp_path: Path) -> None:
    with store_master_world(database_url, tmp_path) as world:
        claim(world)
        world.control.put("/inventory", json={"sku": SKU, "location": MAIN, "available": 6}).raise_for_status()
        world.check()  # the webhook was lost: the periodic check finds the difference
        assert world.run() == ["succeeded", "succeeded"], "the check, then the observation it queued"
        assert world.on_hand() == 6
        (issue,) = [found for found in world.issues("stock_mismatch") if found.status == "open"]
        assert issue.details["mismatched"] == 1 and issue.details["compared"] == 2
        world.check()
        world.run()
        assert {issue.status for issue in world.issues("stock_mismatch")} == {"resolved"}
