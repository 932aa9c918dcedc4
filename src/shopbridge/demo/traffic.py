"""Simulated buyers for the demo: orders at a steady pace, some cancelled during TikTok's one-hour hold, and some
brought back to a POS store's returns desk once delivered."""

from __future__ import annotations

import random
import threading
from collections import deque
from dataclasses import dataclass, field

import httpx
from sqlalchemy import select

from shopbridge.demo.world import World
from shopbridge.store.db import reading
from shopbridge.store.tables import ChannelAccount, Order, OrderLine, Shipment, StoreReturn


@dataclass
class TrafficStats:
    placed: int = 0
    refused: int = 0  # the sandbox had no stock for the basket
    cancelled: int = 0
    errors: list[str] = field(default_factory=list)


class BuyerTraffic:
    def __init__(self, world: World, *, orders_per_second: float = 0.5, cancel_share: float = 0.1,
                 seed: int = 7) -> None:  # fmt: skip
        self.world = world
        self.interval = 1.0 / orders_per_second
        self.cancel_share = cancel_share
        self.rng = random.Random(seed)
        self.stats = TrafficStats()
        self._recent: deque[str] = deque(maxlen=50)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="buyer-traffic", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)

    def _in_stock(self) -> list[str]:
        stock = self.world.control.get("/_sandbox/truth/stock", params={"shop_id": self.world.shop_id}).json()
        return [str(row["seller_sku"]) for row in stock if row["total"] > 3 and row["product_status"] == "ACTIVATE"]

    def _run(self) -> None:
        skus: list[str] = []
        while not self._stop.wait(self.interval):
            try:
                if self.stats.placed % 20 == 0 or not skus:
                    skus = self._in_stock()
                if not skus:
                    continue
                basket = {
                    sku: self.rng.randint(1, 2)
                    for sku in self.rng.sample(skus, k=min(len(skus), self.rng.randint(1, 3)))
                }
                try:
                    self._recent.append(self.world.place_order(basket))
                    self.stats.placed += 1
                except RuntimeError:
                    self.stats.refused += 1
                if self._recent and self.rng.random() < self.cancel_share:
                    order_id = self._recent.popleft()
                    if self.world.sandbox_order(order_id)["status"] == "ON_HOLD":
                        self.world.buyer_cancel(order_id)
                        self.stats.cancelled += 1
            except httpx.HTTPError as error:
                self.stats.errors.append(f"{type(error).__name__}: {error}")


@dataclass
class DeskStats:
    returned: int = 0
    errors: list[str] = field(default_factory=list)


class ReturnsDesk:
    """Buyers bringing TikTok orders back to a POS store: every ``every`` seconds, the oldest order whose tracking
    reached TikTok is delivered on the TikTok sandbox and one unit of it taken back at the downtown desk (restocked
    every other time, damaged otherwise). The hub then refunds it on TikTok."""

    def __init__(self, world: World, *, every: float = 20.0, location: str = "store-downtown") -> None:
        self.world = world
        self.every = every
        self.location = location
        self.stats = DeskStats()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="returns-desk", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)

    def _candidate(self) -> tuple[str, str] | None:
        """(TikTok order id, a SKU of it) of the oldest order shipped with tracking on TikTok and not yet returned."""
        with reading(self.world.hub.sessions) as session:
            returned = select(StoreReturn.order_id).where(StoreReturn.order_id.is_not(None))
            row = session.execute(
                select(Order.external_id, OrderLine.sku)
                .join(Shipment, Shipment.order_id == Order.id).join(OrderLine, OrderLine.order_id == Order.id)
                .join(ChannelAccount, ChannelAccount.id == Order.channel_account_id)
                .where(ChannelAccount.channel == "tiktok", Shipment.state == "sent", OrderLine.sku.is_not(None),
                       Order.id.not_in(returned))
                .order_by(Shipment.sent_at, Order.id).limit(1)
            ).first()  # fmt: skip
        return (str(row[0]), str(row[1])) if row else None

    def _run(self) -> None:
        assert self.world.pos is not None
        while not self._stop.wait(self.every):
            try:
                found = self._candidate()
                if found is None:
                    continue
                order_id, sku = found
                for step in ("collect", "deliver"):  # the carrier takes it; the buyer gets it
                    self.world.control.post(f"/_sandbox/orders/{order_id}/{step}")
                restock = 1 if self.stats.returned % 2 == 0 else 0
                self.world.pos.take_return(self.location, {"channel": "tiktok", "order_id": order_id},
                                           {sku: (1, restock)})  # fmt: skip
                self.stats.returned += 1
            except (httpx.HTTPError, RuntimeError) as error:
                self.stats.errors.append(f"{type(error).__name__}: {error}")
