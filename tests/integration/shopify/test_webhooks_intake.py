"""The store's webhooks and orders against the Shopify sandbox: the sandbox delivers real, signed webhooks to the
hub's web app (served with uvicorn and subscribed by the connection itself), and the hub's jobs read the orders
back through the Admin API. Checked: forged and unknown deliveries are refused and leave nothing behind, a duplicate
queues nothing new, a store order becomes a hub order of the channel shopify with its units reserved, a fulfilment
of an order the hub placed becomes one shipment per fulfillment and a ``tiktok.ship_order`` job, a cancellation in
the store queues ``tiktok.cancel_order``, and the poll finds an order whose webhooks were lost."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from shopbridge.bootstrap import Hub, build_hub
from shopbridge.channels.shopify.channel import context_of
from shopbridge.channels.shopify.connect import connect_with_token
from shopbridge.channels.shopify.context import ShopifyContext
from shopbridge.channels.shopify.intake import WATERMARK_STREAM
from shopbridge.channels.shopify.kinds import IMPORT_CATALOG, OBSERVE_STOCK, POLL_ORDERS, SYNC_ORDER, UNINSTALLED
from shopbridge.channels.shopify.mapping import HUB_ORDER_ATTRIBUTE
from shopbridge.channels.shopify.webhooks import PATH, signature, sync_identity
from shopbridge.config import Settings
from shopbridge.demo.world import free_port, serving, wait_until
from shopbridge.domain.clock import ManualClock
from shopbridge.runtime import inbox, jobs
from shopbridge.sandbox.shopify.app import create_app as create_sandbox_app
from shopbridge.sandbox.shopify.config import ShopifySandboxConfig
from shopbridge.services.stock import apply_external_movement
from shopbridge.store.db import transaction
from shopbridge.store.secrets import SecretBox
from shopbridge.store.tables import (
    ChannelAccount,
    InboundEvent,
    Job,
    Location,
    Order,
    OrderLink,
    Product,
    Shipment,
    StockLevel,
    SyncWatermark,
    Variant,
)
from shopbridge.web.app import create_app as create_hub_app

SKU = "TEE-M"
KINDS = frozenset({SYNC_ORDER, POLL_ORDERS, UNINSTALLED})  # the intake's jobs; the others are only looked at
CREATE_ORDER = """mutation ($order: OrderCreateOrderInput!, $options: OrderCreateOptionsInput) {
  orderCreate(order: $order, options: $options) { order { id } userErrors { field message } } }"""


@dataclass
class Store:
    hub: Hub
    clock: ManualClock
    context: ShopifyContext
    control: httpx.Client  # the sandbox's /_sandbox control API
    hooks: httpx.Client  # the hub's web app, as the store reaches it
    secret: str
    shop: str
    account_id: int
    variant_gid: str

    def run(self) -> list[str]:
        """Run the due jobs of the intake's kinds until none is left; their outcomes."""
        worker = self.hub.new_worker(name="test")
        outcomes = []
        for _ in range(100):
            with transaction(self.hub.sessions) as session:
                claimed = jobs.claim(session, worker.name, now=self.clock.now(), lease_seconds=60, limit=1,
                                     serial_kinds=self.hub.registry.serial_kinds(), kinds=KINDS)  # fmt: skip
            if not claimed:
                return outcomes
            outcomes.append(worker.run_job(claimed[0]))
        raise AssertionError("the jobs never ran out")

    def delivered(self, topic: str, count: int = 1) -> list[dict[str, Any]]:
        """Wait until the sandbox has delivered ``count`` webhooks of ``topic`` to the hub, and the hub has queued
        what every recorded event asks for; the deliveries."""

        def done() -> list[dict[str, Any]] | None:
            sent = self.control.get("/webhooks", params={"topic": topic, "status": "DELIVERED"}).json()
            return sent if len(sent) >= count and not self.waiting_events() else None

        found: list[dict[str, Any]] = wait_until(done, timeout=20, message=f"{count} {topic} webhook(s) taken")
        return found

    def waiting_events(self) -> int:
        with self.hub.inbox_sessions() as session:
            return int(session.scalar(select(func.count()).select_from(InboundEvent).where(
                InboundEvent.source == "shopify", InboundEvent.status == "received")) or 0)  # fmt: skip

    def events(self, **where: Any) -> list[InboundEvent]:
        with self.hub.inbox_sessions() as session:
            query = select(InboundEvent).where(InboundEvent.source == "shopify").order_by(InboundEvent.id)
            for column, value in where.items():
                query = query.where(getattr(InboundEvent, column) == value)
            return list(session.scalars(query))

    def jobs(self, kind: str, identity: str | None = None) -> list[Job]:
        with self.hub.sessions() as session:
            query = select(Job).where(Job.kind == kind).order_by(Job.id)
            if identity is not None:
                query = query.where(Job.identity_key == identity)
            return list(session.scalars(query))

    def store_order(self, quantity: int = 2, **attributes: Any) -> str:
        """A web customer's order in the store (the sandbox's control API); its GID."""
        created = self.control.post("/orders", json={"lines": [{"sku": SKU, "quantity": quantity}], **attributes})
        created.raise_for_status()
        return str(created.json()["gid"])

    def placed_order(self, hub_order_id: int, quantity: int = 2) -> str:
        """A store order as the hub places one for a marketplace order (orderCreate with the hub's attribute)."""
        client = self.context.client_for(self.account())
        answer = client.mutate(CREATE_ORDER, {"order": {
            "lineItems": [{"variantId": self.variant_gid, "quantity": quantity}], "financialStatus": "PAID",
            "sourceIdentifier": "576461413038", "customAttributes": [{"key": HUB_ORDER_ATTRIBUTE,
                                                                       "value": str(hub_order_id)}],
        }, "options": {"inventoryBehaviour": "DECREMENT_IGNORING_POLICY"}}, "orderCreate")  # fmt: skip
        return str(answer["order"]["id"])

    def account(self) -> ChannelAccount:
        with self.hub.sessions() as session:
            account = session.get(ChannelAccount, self.account_id)
            assert account is not None
            session.expunge(account)
            return account

    def marketplace_order(self) -> tuple[int, int]:
        """A released TikTok order the hub hands to the store: its id, and its link (still placing)."""
        now = self.clock.now()
        with transaction(self.hub.sessions) as session:
            tiktok = session.scalar(select(ChannelAccount).where(ChannelAccount.channel == "tiktok"))
            if tiktok is None:
                tiktok = ChannelAccount(channel="tiktok", label="TikTok shop", external_id="shop-1", settings={},
                                        created_at=now, updated_at=now)  # fmt: skip
                session.add(tiktok)
                session.flush()
            order = Order(channel_account_id=tiktok.id, external_id=f"5764{now.timestamp():.0f}{free_port()}",
                          channel_status="AWAITING_SHIPMENT", status="awaiting_shipment", currency="USD",
                          total_minor=3980, released_at=now, channel_created_at=now, channel_updated_at=now,
                          created_at=now, updated_at=now)  # fmt: skip
            session.add(order)
            session.flush()
            link = OrderLink(order_id=order.id, channel_account_id=self.account_id, state="placing", created_at=now,
                             updated_at=now)  # fmt: skip
            session.add(link)
            session.flush()
            return order.id, link.id

    def placed(self, link_id: int, store_order: str) -> None:
        """What place_order records once the store has the order."""
        with transaction(self.hub.sessions) as session:
            link = session.get(OrderLink, link_id)
            assert link is not None
            link.external_id, link.state = store_order, "placed"

    def post(self, body: bytes, *, topic: str = "orders/create", webhook_id: str = "wh-1", shop: str | None = None,
             signed: str | None = None) -> httpx.Response:  # fmt: skip
        return self.hooks.post(PATH, content=body, headers={
            "Content-Type": "application/json", "X-Shopify-Topic": topic, "X-Shopify-Shop-Domain": shop or self.shop,
            "X-Shopify-Hmac-Sha256": signed if signed is not None else signature(self.secret, body),
            "X-Shopify-Webhook-Id": webhook_id, "X-Shopify-Event-Id": "event-1", "X-Shopify-API-Version": "2026-07",
        })  # fmt: skip

    def reserved(self) -> int:
        with self.hub.sessions() as session:
            return int(session.scalar(
                select(StockLevel.reserved).join(Variant, Variant.id == StockLevel.variant_id)
                .join(Location, Location.id == StockLevel.location_id)
                .where(Variant.sku == SKU, Location.code == "MAIN")
            ) or 0)  # fmt: skip

    def hub_orders(self) -> list[Order]:
        with self.hub.sessions() as session:
            return list(session.scalars(
                select(Order).where(Order.channel_account_id == self.account_id).order_by(Order.id)
            ))  # fmt: skip


@contextmanager
def store_with_hub(database_url: str, tmp_path: Path) -> Iterator[Store]:
    """A sandbox store selling SKU (10 available), a hub serving its web app with 10 units of SKU, the store
    connected with a token (so subscribed to the hub's receiver) and its catalogue imported."""
    config = ShopifySandboxConfig()
    hub_port = free_port()
    with serving(create_sandbox_app(config), free_port()) as sandbox_url, \
            httpx.Client(base_url=f"{sandbox_url}/_sandbox", timeout=10) as control:  # fmt: skip
        control.post("/locations", json={"name": "Main Warehouse", "fulfills_online_orders": True}).raise_for_status()
        created = control.post("/products", json={"title": "Cotton tee", "variants": [
            {"sku": SKU, "price": "19.90", "stock": {"Main Warehouse": 10}}]})  # fmt: skip
        created.raise_for_status()
        shop = control.get("/shop").json()
        settings = Settings(
            data_dir=tmp_path / "data", database_url=database_url, secret_key=SecretBox.generate_key(),
            shopify_admin_base_url=sandbox_url, shopify_api_secret=config.api_secret, currency=shop["currency"],
            timezone=shop["iana_timezone"], public_url=f"http://127.0.0.1:{hub_port}", worker_poll_seconds=0.05,
            worker_process=False, log_level="warning", inbox_sweep_seconds=3600,
        )  # fmt: skip
        clock = ManualClock(datetime.now(UTC))
        hub = build_hub(settings, clock=clock)
        try:
            hub.migrate()
            context = context_of(hub.channels)
            assert context is not None
            with transaction(hub.sessions) as session:
                tee = Product(title="Cotton tee")
                session.add_all([tee, Location(code="MAIN", name="Main")])
                session.flush()
                session.add(Variant(product_id=tee.id, sku=SKU))
            with transaction(hub.sessions) as session:
                apply_external_movement(session, sku=SKU, location_code="MAIN", kind="restock", quantity=10,
                                        idempotency_key="seed", origin="hub", now=clock.now())  # fmt: skip
            with serving(create_hub_app(hub), hub_port) as hub_url, httpx.Client(base_url=hub_url) as hooks:
                connected = connect_with_token(context, config.shop_domain, config.access_token, now=clock.now())
                assert connected.webhooks_subscribed > 0, "the connection subscribed the store to the hub"
                store = Store(hub, clock, context, control, hooks, config.api_secret, config.shop_domain,
                              connected.account_id, created.json()["variants"][0]["gid"])  # fmt: skip
                worker = hub.new_worker(name="setup")
                with transaction(hub.sessions) as session:
                    (job,) = jobs.claim(session, worker.name, now=clock.now(), lease_seconds=60, limit=1,
                                        kinds=frozenset({IMPORT_CATALOG}))  # fmt: skip
                assert worker.run_job(job) == "succeeded", "the catalogue import linked SKU"
                yield store
        finally:
            hub.close()


def test_a_store_order_becomes_a_hub_order_of_the_store_with_its_units_reserved(
    database_url: str, tmp_path: Path
) -> None:
    with store_with_hub(database_url, tmp_path) as store:
        order_gid = store.store_order(quantity=2)
        store.delivered("orders/create")
        store.delivered("inventory_levels/update")
        (sync,) = store.jobs(SYNC_ORDER)  # one waiting sync of the order (orders/updated is not subscribed)
        assert sync.identity_key == sync_identity(store.account_id, order_gid)
        assert sync.payload == {"order_ids": [order_gid], "source": "webhook"}
        assert store.jobs(OBSERVE_STOCK), "inventory_levels/update asks the stock to observe the level"
        assert store.events(event_type="orders/create")[0].status == "processed"
        assert store.reserved() == 0, "nothing is reserved from the payload: the job reads the order"

        assert store.run() == ["succeeded"]
        (order,) = store.hub_orders()
        assert (order.external_id, order.status, order.channel_status) == (order_gid, "awaiting_shipment",
                                                                           "PAID/UNFULFILLED")  # fmt: skip
        truth = store.control.get(f"/orders/{order_gid}").json()
        assert order.blocked_reason is None and order.total_minor == round(float(truth["total_price"]) * 100)
        assert store.reserved() == 2, "the store's sale holds its units in the hub"

        store.control.post(f"/orders/{order_gid}/fulfil", json={"carrier": "UPS"}).raise_for_status()
        store.delivered("fulfillments/create")
        assert store.run() == ["succeeded"]
        (order,) = store.hub_orders()
        assert order.status in ("in_transit", "completed") and store.reserved() == 0, "shipped: the sale is taken"
        with store.hub.sessions() as session:
            assert session.scalar(select(func.count()).select_from(Shipment)) == 0, "its own orders ship themselves"


def test_forged_unknown_malformed_and_duplicate_deliveries(database_url: str, tmp_path: Path) -> None:
    with store_with_hub(database_url, tmp_path) as store:
        before = len(store.events())
        body = json.dumps({"id": 450789469, "admin_graphql_api_id": "gid://shopify/Order/450789469"}).encode()
        forged = store.post(body, signed=signature("not-the-secret", body))
        assert forged.status_code == 401
        assert forged.json() == {"error": "the X-Shopify-Hmac-Sha256 signature does not match the body"}
        assert store.post(body, signed="").status_code == 401, "no signature"
        unknown = store.post(body, shop="elsewhere.myshopify.com")
        assert (unknown.status_code, unknown.json()["error"]) == (
            401, "elsewhere.myshopify.com is not a store connected to this hub")  # fmt: skip
        assert len(store.events()) == before and store.jobs(SYNC_ORDER) == [], "nothing recorded, nothing queued"

        first, again = store.post(body, webhook_id="wh-dup"), store.post(body, webhook_id="wh-dup")
        assert (first.status_code, first.json()) == (200, {"message": "accepted"})
        assert (again.status_code, again.json()) == (200, {"message": "already received"})
        wait_until(lambda: not store.waiting_events(), message="the accepted delivery queued")
        assert len(store.events(event_id="wh-dup")) == 1
        (sync,) = store.jobs(SYNC_ORDER)
        assert sync.payload["order_ids"] == ["gid://shopify/Order/450789469"]

        malformed = store.post(b'{"id": 1,', webhook_id="wh-bad")
        assert malformed.status_code == 400 and "not JSON" in malformed.json()["error"]
        (kept,) = store.events(event_id="wh-bad")
        assert (kept.status, kept.payload) == ("rejected", '{"id": 1,'), "kept for inspection"
        no_order = store.post(b'{"name": "#1001"}', webhook_id="wh-no-id")
        assert (
            no_order.status_code == 400 and no_order.json()["error"] == "malformed orders/create: the payload has no id"
        )
        ignored = store.post(b'{"id": 5, "order_id": 450789469}', topic="refunds/create", webhook_id="wh-refund")
        assert ignored.status_code == 200 and store.events(event_id="wh-refund")[0].status == "ignored"
        assert len(store.jobs(SYNC_ORDER)) == 1

        # The sandbox sends every orders/create twice under one Webhook-Id (reference §7.4 duplicates).
        store.control.put("/faults/webhooks", json={"topic": "orders/create", "duplicate_rate": 1.0}).raise_for_status()
        order_gid = store.store_order(quantity=1)
        (first_copy, second_copy) = store.delivered("orders/create", 2)
        assert first_copy["webhook_id"] == second_copy["webhook_id"] and second_copy["duplicate"]
        assert len(store.events(event_id=first_copy["webhook_id"])) == 1
        assert len(store.jobs(SYNC_ORDER, sync_identity(store.account_id, order_gid))) == 1


def test_a_fulfilment_of_an_order_the_hub_placed_is_one_shipment_each_sent_to_its_channel(
    database_url: str, tmp_path: Path
) -> None:
    with store_with_hub(database_url, tmp_path) as store:
        hub_order, link_id = store.marketplace_order()
        store_order = store.placed_order(hub_order, quantity=2)
        store.delivered("orders/create")
        assert store.run() == [], "an order the hub placed has nothing to report until it ships or is cancelled"

        for number in ("1Z0001", "1Z0002"):  # two parcels: a partial fulfilment, then the rest
            fulfilled = store.control.post(f"/orders/{store_order}/fulfil", json={
                "carrier": "UPS", "tracking_number": number, "tracking_url": f"https://ups.example/{number}",
                "lines": [{"sku": SKU, "quantity": 1}]})  # fmt: skip
            fulfilled.raise_for_status()
        store.delivered("fulfillments/create", 2)
        assert store.run() == ["retry"], "the placing has not committed: the sync waits for it"
        store.placed(link_id, store_order)
        store.clock.advance(30)
        assert store.run() == ["succeeded"], "both fulfillments' webhooks joined one sync of the order"
        assert store.hub_orders() == [], "an order the hub placed is never taken as the store's own"
        assert store.reserved() == 0, "its units are the marketplace order's to reserve"
        with store.hub.sessions() as session:
            shipments = list(session.scalars(select(Shipment).order_by(Shipment.tracking_number)))
            variant_id = session.scalar(select(Variant.id).where(Variant.sku == SKU))
        assert [(s.order_id, s.carrier, s.tracking_number, s.tracking_url) for s in shipments] == [
            (hub_order, "UPS", "1Z0001", "https://ups.example/1Z0001"),
            (hub_order, "UPS", "1Z0002", "https://ups.example/1Z0002"),
        ]
        assert all(s.lines == [{"sku": SKU, "variant_id": variant_id, "quantity": 1}] for s in shipments)
        assert all(s.external_id.startswith("gid://shopify/Fulfillment/") for s in shipments)
        ships = store.jobs("tiktok.ship_order")
        assert sorted(job.payload["shipment_id"] for job in ships) == sorted(s.id for s in shipments)

        with transaction(store.hub.sessions) as session:  # a retry of the order reads it again: nothing new
            jobs.enqueue(session, SYNC_ORDER, {"order_ids": [store_order], "source": "retry"}, now=store.clock.now(),
                         channel_account_id=store.account_id)  # fmt: skip
        assert store.run() == ["succeeded"]
        assert len(store.jobs("tiktok.ship_order")) == 2


def test_a_cancellation_in_the_store_of_an_order_the_hub_placed_cancels_it_on_its_channel(
    database_url: str, tmp_path: Path
) -> None:
    with store_with_hub(database_url, tmp_path) as store:
        hub_order, link_id = store.marketplace_order()
        store_order = store.placed_order(hub_order)
        store.placed(link_id, store_order)
        store.delivered("orders/create")
        store.run()
        store.control.post(f"/orders/{store_order}/cancel", json={"reason": "INVENTORY"}).raise_for_status()
        store.delivered("orders/cancelled")
        assert store.run() == ["succeeded"]
        (cancel,) = store.jobs("tiktok.cancel_order")
        assert cancel.payload == {"order_id": hub_order, "reason": "out_of_stock", "source": "store"}
        with store.hub.sessions() as session:
            link = session.get(OrderLink, link_id)
            assert link is not None and link.state == "cancelled"


def test_the_poll_finds_an_order_whose_webhooks_were_lost_and_queues_what_a_crash_left(
    database_url: str, tmp_path: Path
) -> None:
    with store_with_hub(database_url, tmp_path) as store:
        store.control.put("/faults/webhooks", json={"topic": "*", "loss_rate": 1.0}).raise_for_status()
        order_gid = store.store_order(quantity=3)
        assert store.control.get("/webhooks", params={"status": "LOST", "topic": "orders/create"}).json()
        assert store.jobs(SYNC_ORDER) == []
        with transaction(store.hub.inbox_sessions) as session:  # recorded, then the web process stopped
            inbox.record(session, source="shopify", event_id="wh-crashed", event_type="products/update",
                         payload='{"id": 632910392}', channel_account_id=store.account_id,
                         now=store.clock.now())  # fmt: skip

        with transaction(store.hub.sessions) as session:
            jobs.enqueue(session, POLL_ORDERS, {}, now=store.clock.now(), channel_account_id=store.account_id)
        assert store.run() == ["succeeded"]
        (order,) = store.hub_orders()
        assert (order.external_id, order.status) == (order_gid, "awaiting_shipment")
        assert store.reserved() == 3
        with store.hub.sessions() as session:
            watermark = session.get(SyncWatermark, (store.account_id, WATERMARK_STREAM))
        assert watermark is not None and abs((watermark.value - order.channel_updated_at).total_seconds()) < 1
        assert store.events(event_id="wh-crashed")[0].status == "processed"
        assert len(store.jobs(IMPORT_CATALOG)) == 2, "the import the crashed event asked for, after the first"

        store.control.post(f"/orders/{order_gid}/cancel", json={"reason": "CUSTOMER"}).raise_for_status()
        store.clock.advance(60)
        with transaction(store.hub.sessions) as session:
            jobs.enqueue(session, POLL_ORDERS, {}, now=store.clock.now(), channel_account_id=store.account_id)
        assert store.run() == ["succeeded"]
        (order,) = store.hub_orders()
        assert order.status == "cancelled" and store.reserved() == 0, "the next poll saw the cancellation"


def test_an_uninstall_parks_the_store_until_it_is_reconnected(database_url: str, tmp_path: Path) -> None:
    with store_with_hub(database_url, tmp_path) as store:
        store.control.post("/app/uninstall").raise_for_status()
        store.delivered("app/uninstalled")
        assert store.run() == ["succeeded"]
        account = store.account()
        assert account.status == "needs_reauth" and "uninstalled" in (account.status_reason or "")


def test_the_receiver_queues_at_start_what_a_stopped_process_recorded(database_url: str, tmp_path: Path) -> None:
    with store_with_hub(database_url, tmp_path) as store:
        order_gid = "gid://shopify/Order/450789469"
        with transaction(store.hub.inbox_sessions) as session:  # recorded and acknowledged, never queued
            inbox.record(session, source="shopify", event_id="wh-left", event_type="fulfillments/create",
                         payload=json.dumps({"id": 1022782888, "order_id": 450789469}),
                         channel_account_id=store.account_id, now=store.clock.now())  # fmt: skip
        assert store.jobs(SYNC_ORDER) == []
        with TestClient(create_hub_app(store.hub)):  # another web process starts: its receiver sweeps the inbox
            wait_until(lambda: store.events(event_id="wh-left")[0].status == "processed", timeout=10,
                       message="the left event queued at start")  # fmt: skip
        (sync,) = store.jobs(SYNC_ORDER)
        assert (sync.identity_key, sync.payload) == (sync_identity(store.account_id, order_gid),
                                                     {"order_ids": [order_gid], "source": "webhook"})  # fmt: skip
