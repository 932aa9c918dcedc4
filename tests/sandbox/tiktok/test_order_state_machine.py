"""The order lifecycle as a hypothesis state machine, driven through the sandbox's own operations.

Invariants: stock never goes negative through the buyer side, no address is exposed before the hold ends, and
every status change seen by a webhook subscriber follows a documented edge.
"""

from __future__ import annotations

import contextlib
import itertools
import json
from collections.abc import Callable
from decimal import Decimal

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from shopbridge.sandbox.tiktok import SandboxClock, SandboxConfig, TikTokSandbox, cancellations
from shopbridge.sandbox.tiktok import orders as flow
from shopbridge.sandbox.tiktok.models import Delivery, Order, Subscription
from shopbridge.sandbox.tiktok.products import ProductIn, new_product
from shopbridge.sandbox.tiktok.sellers import create_seller, create_shop

from .conftest import T0, FakeWall

WEBHOOK_TO_ORDER = {"CANCEL": "CANCELLED"}
WITHHELD_KEYS = {"name", "first_name", "last_name", "phone_number", "full_address", "address_line1", "district_info"}


class OrderLifecycle(RuleBasedStateMachine):
    @initialize()
    def world(self) -> None:
        self.sb = TikTokSandbox(SandboxConfig(clock=SandboxClock(wall=FakeWall(), start=T0, speed=0.0), random_seed=1))
        seller = create_seller(self.sb, "Prop Seller")
        self.shop = create_shop(self.sb, seller, "Prop Shop", warehouse_names=["West", "East"])
        self.sb.world.save(
            Subscription(
                id=f"{self.shop.id}:ORDER_STATUS_CHANGE",
                shop_id=self.shop.id,
                event_type="ORDER_STATUS_CHANGE",
                address="https://hooks.invalid/",
                create_time=int(T0),
                update_time=int(T0),
            )
        )
        west, east = (w.id for w in self.shop.warehouses)
        listing = ProductIn.model_validate(
            {
                "title": "Prop Tee",
                "description": "<p>x</p>",
                "category_id": "601302",
                "main_images": [{"uri": "u"}],
                "skus": [
                    {
                        "seller_sku": f"P-{n}",
                        "price": {"amount": "9.99", "currency": "USD"},
                        "inventory": [{"warehouse_id": west, "quantity": 3}, {"warehouse_id": east, "quantity": 1}],
                    }
                    for n in range(3)
                ],
            }
        )
        self.product = new_product(self.sb, self.shop, listing)
        self.product.status = "ACTIVATE"
        self.product.has_live_version = True
        self.sb.world.save(self.product)
        self.order_ids: list[str] = []

    def _order(self, index: int) -> Order:
        order = self.sb.world.get(Order, self.order_ids[index % len(self.order_ids)])
        assert order is not None
        return order

    def _try(self, step: Callable[[], object]) -> None:
        # Refused operations (shipping an order on hold, paying twice...) are part of the exploration.
        with contextlib.suppress(flow.OrderRejected):
            step()
        self.sb.tick()

    @rule(sku=st.integers(0, 2), quantity=st.integers(1, 4), paid=st.booleans())
    def place(self, sku: int, quantity: int, paid: bool) -> None:
        line = flow.BuyerLine(self.product.skus[sku].id, quantity)
        try:
            order = flow.place_order(self.sb, self.shop, [line], paid=paid, shipping_fee=Decimal("1.00"))
        except flow.OrderRejected:
            return
        self.order_ids.append(order.id)

    @precondition(lambda self: self.order_ids)
    @rule(index=st.integers(0, 50))
    def pay(self, index: int) -> None:
        self._try(lambda: flow.pay_order(self.sb, self._order(index)))

    @precondition(lambda self: self.order_ids)
    @rule(index=st.integers(0, 50))
    def buyer_cancel(self, index: int) -> None:
        self._try(lambda: cancellations.buyer_cancel(self.sb, self._order(index), "Changed my mind"))

    @precondition(lambda self: self.order_ids)
    @rule(index=st.integers(0, 50), lines=st.integers(1, 3))
    def seller_cancels_lines(self, index: int, lines: int) -> None:
        order = self._order(index)
        line_ids = [i.id for i in flow.cancellable_items(order)][:lines]
        self._try(
            lambda: flow.cancel_order(
                self.sb, order, "SELLER", "Out of stock", self.sb.clock.now_s(), line_ids=line_ids
            )
        )

    @precondition(lambda self: self.order_ids)
    @rule(index=st.integers(0, 50), package=st.integers(0, 1))
    def ship(self, index: int, package: int) -> None:
        order = self._order(index)
        if order.packages:
            target = order.packages[package % len(order.packages)]
            self._try(
                lambda: flow.ship_package(
                    self.sb, order, target, provider_id="p", provider_name="Carrier", tracking="TRACK1"
                )
            )

    @precondition(lambda self: self.order_ids)
    @rule(index=st.integers(0, 50), step=st.sampled_from(["collect", "deliver", "complete"]))
    def carrier(self, index: int, step: str) -> None:
        order = self._order(index)
        self._try(lambda: getattr(flow, step)(self.sb, order))

    @rule(seconds=st.sampled_from([1, 600, 3599, 3600, 86_400, 4 * 86_400]))
    def advance(self, seconds: int) -> None:
        self.sb.clock.advance(seconds)
        self.sb.tick()

    @rule(sku=st.integers(0, 2), quantity=st.integers(0, 5))
    def seller_sets_stock(self, sku: int, quantity: int) -> None:
        # An absolute inventory update, as the connector sends it.
        self.product.skus[sku].inventory[self.shop.warehouses[0].id] = quantity
        self.sb.world.save(self.product)

    @invariant()
    def stock_never_negative(self) -> None:
        if hasattr(self, "product"):
            for sku in self.product.skus:
                assert all(q >= 0 for q in sku.inventory.values()), sku.inventory

    @invariant()
    def no_address_before_the_hold_ends(self) -> None:
        for order in self.sb.world.table(Order).values() if hasattr(self, "sb") else ():
            shown = flow.order_json(order)
            if order.status in ("UNPAID", "ON_HOLD"):
                assert not WITHHELD_KEYS & set(shown["recipient_address"])
                assert shown["buyer_email"] == ""
            else:
                assert shown["recipient_address"]["name"]

    @invariant()
    def transitions_follow_documented_edges(self) -> None:
        if not hasattr(self, "sb"):
            return
        history: dict[str, list[str]] = {}
        for delivery in sorted(self.sb.world.table(Delivery).values(), key=lambda d: d.seq):
            data = json.loads(delivery.body)["data"]
            status = WEBHOOK_TO_ORDER.get(data["order_status"], data["order_status"])
            history.setdefault(data["order_id"], []).append(status)
        for order_id, statuses in history.items():
            assert statuses[0] == "UNPAID", statuses
            for before, after in itertools.pairwise(statuses):
                assert after in flow.ALLOWED_EDGES[before], (order_id, statuses)
            order = self.sb.world.get(Order, order_id)
            assert order is not None and order.status == statuses[-1]

    @invariant()
    def cancelled_orders_hold_no_unshipped_stock(self) -> None:
        for order in self.sb.world.table(Order).values() if hasattr(self, "sb") else ():
            if order.status == "CANCELLED":
                assert all(p.status != "TO_FULFILL" for p in order.packages)
            if order.status in ("UNPAID",):
                assert not order.stock_held


OrderLifecycle.TestCase.settings = settings(
    max_examples=60, stateful_step_count=30, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
TestOrderLifecycle = OrderLifecycle.TestCase
