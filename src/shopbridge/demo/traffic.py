"""Simulated buyers for the demo: orders at a steady pace, some cancelled during TikTok's one-hour hold."""

from __future__ import annotations

import random
import threading
from collections import deque
from dataclasses import dataclass, field

import httpx

from shopbridge.demo.world import World


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
