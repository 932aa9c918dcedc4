"""Released marketplace orders placed in the Shopify sandbox, over HTTP, on the real database: placed once (a re-run,
a lost answer), committing the store's units while the hub's stock moves once, refused and retried, cancelled, and
a cancellation the store refuses."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, update

from shopbridge.bootstrap import Hub, build_hub, default_registry
from shopbridge.channels.shopify import catalog, orders, stock
from shopbridge.channels.shopify.connect import connect_with_token
from shopbridge.channels.shopify.context import HUB_MASTER, STORE_MASTER, ShopifyApp, ShopifyContext
from shopbridge.channels.shopify.kinds import (
    CANCEL_ORDER,
    CHECK_STOCK,
    IMPORT_CATALOG,
    OBSERVE_STOCK,
    PLACE_ORDER,
    PUSH_STOCK,
)
from shopbridge.config import Settings
from shopbridge.demo.world import free_port, serving
from shopbridge.domain.matching import BlockReason
from shopbridge.domain.money import Money
from shopbridge.domain.orders import Order, OrderLine, OrderStatus
from shopbridge.runtime import jobs
from shopbridge.sandbox.shopify.app import create_app
from shopbridge.sandbox.shopify.config import ShopifySandboxConfig
from shopbridge.services import fulfilment
from shopbridge.services.order_views import retry_order
from shopbridge.services.orders import upsert_order
from shopbridge.services.stock import apply_external_movement
from shopbridge.store.db import transaction
from shopbridge.store.secrets import SecretBox
from shopbridge.store.tables import (
    ChannelAccount,
    ChannelListing,
    Location,
    OrderLink,
    Product,
    StockLevel,
    StockMovement,
    SyncIssue,
    Variant,
)
from shopbridge.store.tables import Order as OrderRow

MAIN = "Main Warehouse"
TEE, CAP = "TEE-M", "CAP"
KINDS = frozenset({IMPORT_CATALOG, PUSH_STOCK, OBSERVE_STOCK, CHECK_STOCK, PLACE_ORDER, CANCEL_ORDER})
RESYNC = {"tiktok": "tiktok.sync_orders"}
RECIPIENT = {
    "name": "Ann Lee", "first_name": "Ann", "last_name": "Lee", "phone_number": "(+1)512-***-0100",
    "address_line1": "1 Main St", "address_line2": "Apt 2", "postal_code": "78701", "region_code": "US",
    "district_info": [{"address_level": "L0", "address_name": "United States"},
                      {"address_level": "L1", "address_name": "Texas", "iso_code": "US-TX"},
                      {"address_level": "L3", "address_name": "Austin"}],
}  # fmt: skip
Lines = dict[str, tuple[int, str]]  # SKU -> (quantity, unit price)
STORE_ORDER = """query ($id: ID!) { order(id: $id) {
  email sourceName sourceIdentifier tags note customAttributes { key value }
  shippingAddress { firstName lastName address1 address2 city zip countryCodeV2 provinceCode phone }
  shippingLines(first: 5) { nodes { title originalPriceSet { shopMoney { amount } } } }
  taxLines { title rate priceSet { shopMoney { amount } } }
  totalPriceSet { shopMoney { amount currencyCode } } displayFinancialStatus
  lineItems(first: 10) { nodes { sku quantity originalUnitPriceSet { shopMoney { amount } } } } } }"""


class LossyTransport(httpx.BaseTransport):
    """The hub's way to the sandbox, which can lose the answers of an operation: the sandbox did the work, the hub
    hears a timeout."""

    def __init__(self) -> None:
        self.inner = httpx.HTTPTransport()
        self.lose: dict[str, int] = {}

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self.inner.handle_request(request)
        for operation, left in self.lose.items():
            if left and operation.encode() in request.content:
                self.lose[operation] = left - 1
                response.read()
                response.close()
                raise httpx.ReadTimeout("the answer was lost on its way back", request=request)
        return response

    def close(self) -> None:
        self.inner.close()


def usd(amount: str) -> Money:
    return Money.parse(amount, "USD")


@dataclass
class World:
    hub: Hub
    context: ShopifyContext
    control: httpx.Client  # the sandbox's /_sandbox control API
    transport: LossyTransport
    store_id: int
    tiktok_id: int

    def now(self) -> datetime:
        return self.hub.clock.now()

    def run(self, *, later: timedelta = timedelta(0)) -> list[str]:
        """Run the due jobs of the store's kinds (``later``: as if that much time had passed, so retries are due)."""
        worker = self.hub.new_worker(name="test")
        outcomes = []
        for _ in range(100):
            with transaction(self.hub.sessions) as session:
                claimed = jobs.claim(session, worker.name, now=self.now() + later, lease_seconds=60, limit=1,
                                     serial_kinds=self.hub.registry.serial_kinds(), kinds=KINDS)  # fmt: skip
            if not claimed:
                return outcomes
            outcomes.append(worker.run_job(claimed[0]))
        raise AssertionError("the jobs never ran out")

    def sell(self, external_id: str, lines: Lines, *, status: OrderStatus = OrderStatus.AWAITING_SHIPMENT,
             updated: int = 0) -> int:  # fmt: skip
        """A TikTok order as its sync upserts it: past ON_HOLD it is released and handed to the store. Returns the
        hub's order id."""
        created = self.now() - timedelta(hours=2)
        goods = sum((usd(price) * quantity for quantity, price in lines.values()), usd("0"))
        order = Order(
            channel="tiktok", external_id=external_id, channel_status=status.value.upper(), status=status,
            currency="USD", total=goods + usd("8.49"), subtotal=goods, shipping=usd("4.99"), tax=usd("3.50"),
            lines=tuple(OrderLine(f"sku-{sku}", sku, f"{sku} title", quantity, usd(price),
                                  tuple(f"{external_id}-{sku}-{n}" for n in range(quantity)))
                        for sku, (quantity, price) in lines.items()),
            created_at=created, updated_at=created + timedelta(minutes=1 + updated),
            buyer={"buyer_email": "ann@example.com"}, recipient=RECIPIENT,
        )  # fmt: skip
        with transaction(self.hub.sessions) as session:
            tiktok = session.get(ChannelAccount, self.tiktok_id)
            assert tiktok is not None
            return upsert_order(session, tiktok, order, source="webhook", now=self.now()).order_id

    def cancel_on_tiktok(self, external_id: str, lines: Lines) -> None:
        self.sell(external_id, lines, status=OrderStatus.CANCELLED, updated=10)

    def link(self, order_id: int) -> OrderLink:
        with self.hub.sessions() as session:
            link = session.scalar(select(OrderLink).where(OrderLink.order_id == order_id))
            assert link is not None
            return link

    def order(self, order_id: int) -> OrderRow:
        with self.hub.sessions() as session:
            row = session.get(OrderRow, order_id)
            assert row is not None
            return row

    def issues(self, kind: str) -> list[SyncIssue]:
        with self.hub.sessions() as session:
            return list(session.scalars(select(SyncIssue).where(SyncIssue.kind == kind).order_by(SyncIssue.id)))

    def store_orders(self) -> list[dict[str, Any]]:
        return list(self.control.get("/orders").json())

    def store_order(self, gid: str) -> dict[str, Any]:
        data = self.context.client_for(self.store()).query(STORE_ORDER, {"id": gid})
        return dict(data["order"])

    def store(self) -> ChannelAccount:
        with self.hub.sessions() as session:
            account = session.get(ChannelAccount, self.store_id)
            assert account is not None
            session.expunge(account)
            return account

    def calls(self, operation: str) -> int:
        return int(self.control.get("/stats").json()["api_calls"].get(operation, 0))

    def level(self, sku: str) -> dict[str, int]:
        (variant,) = self.control.get("/inventory", params={"sku": sku}).json()
        level = next(level for level in variant["inventory"] if level["location"] == MAIN)
        return {"available": level["available"], "committed": level["committed"]}

    def hub_level(self, sku: str) -> tuple[int, int]:
        with self.hub.sessions() as session:
            row = session.execute(
                select(StockLevel.on_hand, StockLevel.reserved)
                .join(Variant, Variant.id == StockLevel.variant_id)
                .join(Location, Location.id == StockLevel.location_id)
                .where(Variant.sku == sku, Location.code == "MAIN")
            ).one()
            return int(row[0]), int(row[1])

    def movements(self, sku: str) -> int:
        with self.hub.sessions() as session:
            count = session.scalar(
                select(func.count())
                .select_from(StockMovement)
                .join(Variant, Variant.id == StockMovement.variant_id)
                .where(Variant.sku == sku)
            )
            return int(count or 0)

    def observe(self, sku: str) -> None:
        """What the webhook intake queues for the store's inventory_levels/update."""
        (variant,) = self.control.get("/inventory", params={"sku": sku}).json()
        location = next(level["location_gid"] for level in variant["inventory"] if level["location"] == MAIN)
        with transaction(self.hub.sessions) as session:
            stock.enqueue_observe(session, self.store_id, variant["inventory_item_gid"], location, now=self.now())

    def set_listing(self, sku: str, **values: Any) -> None:
        with transaction(self.hub.sessions) as session:
            session.execute(
                update(ChannelListing)
                .where(ChannelListing.channel_account_id == self.store_id, ChannelListing.seller_sku == sku)
                .values(**values)
            )


@contextmanager
def store_world(database_url: str, tmp_path: Path, *, master: str = HUB_MASTER) -> Iterator[World]:
    """A sandbox store selling TEE and CAP (10 each at MAIN), connected with ``master`` as its stock master and its
    catalogue imported; a hub with both SKUs (10 each when the hub is the master) and a TikTok shop selling them."""
    config = ShopifySandboxConfig()
    with serving(create_app(config), free_port()) as sandbox_url, \
            httpx.Client(base_url=f"{sandbox_url}/_sandbox") as control:  # fmt: skip
        control.post("/locations", json={"name": MAIN, "fulfills_online_orders": True}).raise_for_status()
        control.patch("/settings", json={"cancel_delay_seconds": 0}).raise_for_status()
        for title, sku, price in (("Cotton tee", TEE, "19.90"), ("Cap", CAP, "12.00")):
            variant = {"sku": sku, "price": price, "stock": {MAIN: 10}}
            control.post("/products", json={"title": title, "variants": [variant]}).raise_for_status()
        shop = control.get("/shop").json()
        settings = Settings(
            data_dir=tmp_path / "data", database_url=database_url, secret_key=SecretBox.generate_key(),
            shopify_admin_base_url=sandbox_url, shopify_api_secret=config.api_secret, currency=shop["currency"],
            timezone=shop["iana_timezone"], worker_poll_seconds=0.05, worker_process=False, log_level="warning",
        )  # fmt: skip
        hub = build_hub(settings, registry=default_registry())
        transport = LossyTransport()
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
            for module in (catalog, stock, orders):
                module.register(hub.registry, context)
            with transaction(hub.sessions) as session:
                tiktok = ChannelAccount(channel="tiktok", label="TikTok Shop Demo", external_id="7001",
                                        currency="USD", settings={})  # fmt: skip
                session.add_all([tiktok, Location(code="MAIN", name="Main")])
                for title, sku in (("Cotton tee", TEE), ("Cap", CAP)):
                    product = Product(title=title)
                    session.add(product)
                    session.flush()
                    session.add(Variant(product_id=product.id, sku=sku))
                session.flush()
                tiktok_id = tiktok.id
            connected = connect_with_token(context, config.shop_domain, config.access_token, stock_master=master,
                                           now=hub.clock.now())  # fmt: skip
            world = World(hub, context, control, transport, connected.account_id, tiktok_id)
            if master == HUB_MASTER:
                for sku in (TEE, CAP):
                    with transaction(hub.sessions) as session:
                        apply_external_movement(session, sku=sku, location_code="MAIN", kind="restock", quantity=10,
                                                idempotency_key=f"seed-{sku}", origin="hub",
                                                now=hub.clock.now())  # fmt: skip
            else:
                with transaction(hub.sessions) as session:
                    stock.claim_external_source(session, connected.account_id, hub.clock.now())
            world.run()
            yield world
        finally:
            http.close()
            hub.close()


def test_a_released_order_is_placed_once_as_the_buyer_paid_it(database_url: str, tmp_path: Path) -> None:
    with store_world(database_url, tmp_path) as world:
        order_id = world.sell("5001", {TEE: (2, "19.90"), CAP: (1, "11.50")})
        assert set(world.run()) == {"succeeded"}, "the placement and the pushes of the units it reserved"
        link = world.link(order_id)
        assert (link.state, link.external_name, link.error) == ("placed", "#1001", None)
        (placed,) = world.store_orders()
        assert placed["gid"] == link.external_id
        assert (placed["source_identifier"], placed["financial_status"], placed["inventory_behaviour"]) == (
            "5001", "PAID", "DECREMENT_IGNORING_POLICY")  # fmt: skip
        seen = world.store_order(str(link.external_id))
        lines = {line["sku"]: (line["quantity"], Decimal(line["originalUnitPriceSet"]["shopMoney"]["amount"]))
                 for line in seen["lineItems"]["nodes"]}  # fmt: skip
        assert lines == {TEE: (2, Decimal("19.90")), CAP: (1, Decimal("11.50"))}, "as sold, not the list prices"
        assert Decimal(seen["totalPriceSet"]["shopMoney"]["amount"]) == Decimal("39.80") + Decimal("11.50") + Decimal(
            "4.99") + Decimal("3.50"), "lines, shipping and tax"  # fmt: skip
        assert seen["displayFinancialStatus"] == "PAID"
        assert [Decimal(line["originalPriceSet"]["shopMoney"]["amount"]) for line in seen["shippingLines"]["nodes"]] \
            == [Decimal("4.99")]  # fmt: skip
        assert [Decimal(tax["priceSet"]["shopMoney"]["amount"]) for tax in seen["taxLines"]] == [Decimal("3.50")]
        assert (seen["email"], seen["sourceName"], seen["sourceIdentifier"]) == ("ann@example.com", "tiktok", "5001")
        assert set(seen["tags"]) == {"TikTok Shop Demo", "shopbridge"}
        attributes = {a["key"]: a["value"] for a in seen["customAttributes"]}
        assert attributes == {"shopbridge_order_id": str(order_id), "tiktok_order_id": "5001"}
        assert seen["shippingAddress"] == {
            "firstName": "Ann", "lastName": "Lee", "address1": "1 Main St", "address2": "Apt 2", "city": "Austin",
            "zip": "78701", "countryCodeV2": "US", "provinceCode": "TX", "phone": None,
        }  # fmt: skip


def test_a_lost_answer_or_a_rerun_never_places_a_second_order(database_url: str, tmp_path: Path) -> None:
    with store_world(database_url, tmp_path) as world:
        world.transport.lose["orderCreate"] = 1
        first = world.sell("5001", {TEE: (1, "19.90")})
        world.run()
        assert world.link(first).state == "placed", "the client's second try got the first one's answer back"
        assert (len(world.store_orders()), world.calls("orderCreate")) == (1, 2)

        world.transport.lose["orderCreate"] = 3  # every try of the job: the job is retried later
        second = world.sell("5002", {TEE: (1, "19.90")})
        assert "retry" in world.run(), "a lost answer is retried"
        assert world.link(second).state == "placing" and len(world.store_orders()) == 2
        world.run(later=timedelta(hours=1))
        link = world.link(second)
        assert (link.state, link.external_id) == ("placed", world.store_orders()[0]["gid"])
        assert (len(world.store_orders()), world.calls("orderCreate")) == (2, 5), "found in the store, not created"

        with transaction(world.hub.sessions) as session:  # as if the link had never heard back, and the job re-ran
            session.execute(update(OrderLink).where(OrderLink.id == link.id)
                            .values(state="placing", external_id=None, external_name=None))  # fmt: skip
            jobs.enqueue(session, PLACE_ORDER, {"order_id": second, "link_id": link.id}, now=world.now(),
                         channel_account_id=world.store_id)  # fmt: skip
        assert world.run() == ["succeeded"]
        assert (world.link(second).state, world.link(second).external_id) == ("placed", link.external_id)
        assert (len(world.store_orders()), world.calls("orderCreate")) == (2, 5)


@pytest.mark.parametrize("master", [HUB_MASTER, STORE_MASTER])
def test_the_store_commits_the_units_and_the_hub_moves_once(database_url: str, tmp_path: Path, master: str) -> None:
    with store_world(database_url, tmp_path, master=master) as world:
        assert world.hub_level(TEE) == (10, 0) and world.level(TEE) == {"available": 10, "committed": 0}
        movements = world.movements(TEE)
        order_id = world.sell("5001", {TEE: (2, "19.90")})
        world.run()
        assert world.link(order_id).state == "placed"
        assert world.level(TEE)["committed"] == 2, "the store order claimed its units"
        world.observe(TEE)  # the store's inventory_levels/update
        world.run()
        assert world.level(TEE) == {"available": 8, "committed": 2}
        assert world.hub_level(TEE) == (10, 2), "on the shelf, held for the order"
        assert world.movements(TEE) == movements + 1, "the order's reservation, and nothing for the store order"
        assert world.issues("store_stock_changed") == []


def test_a_refused_order_is_blocked_and_a_retry_places_it(database_url: str, tmp_path: Path) -> None:
    with store_world(database_url, tmp_path) as world:
        (tee,) = world.control.get("/inventory", params={"sku": TEE}).json()
        world.set_listing(TEE, external_sku_id="gid://shopify/ProductVariant/999999")  # deleted in the store
        order_id = world.sell("5001", {TEE: (1, "19.90"), CAP: (1, "12.00")})
        assert set(world.run()) == {"succeeded"}, "a refusal is no failure of the job"
        link = world.link(order_id)
        assert link.state == "refused" and "line TEE-M: Variant gid://shopify/ProductVariant/999999" in str(link.error)
        order = world.order(order_id)
        assert order.blocked_reason == BlockReason.STORE_REFUSED
        assert str(order.blocked_message).startswith("Shopify ") and "did not take the order: line TEE-M" in str(
            order.blocked_message)  # fmt: skip
        (issue,) = world.issues("order_blocked")
        assert (issue.status, issue.severity, issue.subject_type, issue.subject_id) == (
            "open", "error", "order", str(order_id))  # fmt: skip
        assert issue.details["reason"] == "store_refused" and "TikTok Shop Demo order 5001" in issue.message
        assert world.store_orders() == []

        world.set_listing(TEE, external_sku_id=tee["gid"])
        with transaction(world.hub.sessions) as session:
            retry_order(session, order_id, RESYNC, now=world.now())
        world.run()
        assert world.link(order_id).state == "placed" and len(world.store_orders()) == 1
        order = world.order(order_id)
        assert (order.blocked_reason, order.blocked_message) == (None, None)
        assert [issue.status for issue in world.issues("order_blocked")] == ["resolved"]


def test_a_sku_the_store_does_not_list_is_refused_without_asking_it(database_url: str, tmp_path: Path) -> None:
    with store_world(database_url, tmp_path) as world:
        world.set_listing(CAP, variant_id=None, link="unlinked")
        order_id = world.sell("5001", {CAP: (1, "12.00")})
        world.run()
        assert world.link(order_id).error == "SKU CAP has no listing in the store"
        assert world.order(order_id).blocked_reason == BlockReason.STORE_REFUSED
        assert world.calls("orderCreate") == 0

        with world.hub.sessions() as session:
            cap = session.scalar(select(Variant.id).where(Variant.sku == CAP))
        world.set_listing(CAP, variant_id=cap, link="manual")
        with transaction(world.hub.sessions) as session:
            retry_order(session, order_id, RESYNC, now=world.now())
        world.run()
        assert world.link(order_id).state == "placed" and world.order(order_id).blocked_reason is None


def test_a_cancellation_on_tiktok_cancels_the_store_order_and_restocks_it(database_url: str, tmp_path: Path) -> None:
    with store_world(database_url, tmp_path) as world:
        lines = {TEE: (2, "19.90")}
        order_id = world.sell("5001", lines)
        world.run()
        gid = str(world.link(order_id).external_id)
        world.cancel_on_tiktok("5001", lines)
        assert world.link(order_id).state == "cancel_requested"
        assert set(world.run()) == {"succeeded"}
        assert world.link(order_id).state == "cancelled"
        truth = world.control.get(f"/orders/{gid}").json()
        assert (truth["status"], truth["cancel_reason"]) == ("cancelled", "CUSTOMER")
        assert Decimal(truth["total_refunded"]) == 0, "the buyer is refunded on TikTok, not by the store"
        assert world.level(TEE) == {"available": 10, "committed": 0}, "restocked, and the hub's units are free again"
        assert world.hub_level(TEE) == (10, 0)


def test_an_order_cancelled_before_it_was_placed_is_never_placed(database_url: str, tmp_path: Path) -> None:
    with store_world(database_url, tmp_path) as world:
        lines = {TEE: (1, "19.90")}
        order_id = world.sell("5001", lines)
        world.cancel_on_tiktok("5001", lines)  # before the place job ran
        assert set(world.run()) == {"succeeded"}
        assert world.link(order_id).state == "cancelled"
        assert world.store_orders() == [] and world.calls("orderCreate") == 0


def test_the_store_refuses_to_cancel_a_fulfilled_order(database_url: str, tmp_path: Path) -> None:
    with store_world(database_url, tmp_path) as world:
        lines = {TEE: (1, "19.90")}
        fulfilled, cancelled = world.sell("5001", lines), world.sell("5002", lines)
        world.run()
        fulfilled_gid, cancelled_gid = str(world.link(fulfilled).external_id), str(world.link(cancelled).external_id)
        world.control.post(f"/orders/{fulfilled_gid}/fulfil", json={}).raise_for_status()
        world.control.post(f"/orders/{cancelled_gid}/cancel", json={}).raise_for_status()  # staff, in the admin
        world.cancel_on_tiktok("5001", lines)
        world.cancel_on_tiktok("5002", lines)
        assert set(world.run()) == {"succeeded"}
        link = world.link(fulfilled)
        assert link.state == "cancel_refused" and "fulfillments" in str(link.error)
        (issue,) = world.issues("store_cancel_refused")
        assert issue.status == "open" and issue.subject_id == str(fulfilled)
        assert "TikTok Shop Demo order 5001 was cancelled there" in issue.message and "Stop the parcel" in issue.message
        assert world.control.get(f"/orders/{fulfilled_gid}").json()["status"] != "cancelled"
        assert world.link(cancelled).state == "cancelled", "already cancelled in the store: nothing left to do"


def test_a_store_order_whose_answer_was_lost_is_found_and_cancelled(database_url: str, tmp_path: Path) -> None:
    with store_world(database_url, tmp_path) as world:
        lines = {TEE: (1, "19.90")}
        world.transport.lose["orderCreate"] = 3
        order_id = world.sell("5001", lines)
        assert "retry" in world.run(), "the store has the order, the hub does not know it"
        world.cancel_on_tiktok("5001", lines)
        assert set(world.run(later=timedelta(hours=1))) == {"succeeded"}
        link = world.link(order_id)
        (placed,) = world.store_orders()
        assert (link.state, link.external_id) == ("cancelled", placed["gid"])
        assert world.control.get(f"/orders/{placed['gid']}").json()["status"] == "cancelled"


def test_a_placement_that_lands_after_the_cancellation_is_cancelled_after_all(
    database_url: str, tmp_path: Path
) -> None:
    with store_world(database_url, tmp_path) as world:
        order_id = world.sell("5001", {TEE: (1, "19.90")})
        world.run()
        gid, name = str(world.link(order_id).external_id), world.link(order_id).external_name
        with transaction(world.hub.sessions) as session:  # the cancel job settled it as never placed meanwhile
            session.execute(update(OrderLink).values(state="cancelled", external_id=None, external_name=None))
        with transaction(world.hub.sessions) as session:  # then the placement's answer arrives
            fulfilment.placed_in_store(session, world.link(order_id).id, external_id=gid, external_name=name,
                                       now=world.now())  # fmt: skip
        assert world.link(order_id).state == "cancel_requested"
        world.run()
        assert world.link(order_id).state == "cancelled"
        assert world.control.get(f"/orders/{gid}").json()["status"] == "cancelled"
