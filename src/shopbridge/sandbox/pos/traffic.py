"""The stores' own life, only when asked (``--traffic``, ``PosSandboxConfig.traffic`` or ``POST /_sandbox/traffic``):

* **Tills** sell at ``sales_per_second`` across the active stores together (Poisson arrivals): one to three SKUs the
  store has available (``on_hand - allocated`` > 0), one or two units each.
* **Associates** take every open task to ``shipped`` in a time drawn from [``fulfil_delay_min_seconds``,
  ``fulfil_delay_max_seconds``] (1-5 s), passing through picking, picked and packed at even steps, and ship with
  UPS, USPS or FedEx and a tracking number of the carrier's shape; ``collect_share`` of tasks are collected at the
  store instead.
* **The returns desk** (``returns_per_second``) takes back part of a shipped task's units at one of the stores,
  mostly restocked, sometimes damaged; the order is named as on the packing slip (channel and order id) or by the
  task reference.
* **Receipts** (``receipts_per_second``) restock a SKU running low at a store (``stock.levels``, reason
  ``receipt``), so a long run does not sell out.

An offline store keeps working: its tills sell and its associates ship, and its events wait until it is back.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import math
import string
from collections import Counter
from typing import TYPE_CHECKING, Any

from .errors import PosError
from .fulfilment import advance_task
from .models import TaskStatus
from .state import Task
from .stock import LevelChange, ReturnedLine, SaleLine, sell, set_levels, take_return

if TYPE_CHECKING:
    from .runtime import PosSandbox

# The carriers TikTok Shop and the store also know, with weights, and their public tracking pages.
CARRIERS = ("USPS", "UPS", "FedEx")
CARRIER_WEIGHTS = (5, 3, 2)
TRACKING_URLS = {
    "USPS": "https://tools.usps.com/go/TrackConfirmAction?tLabels={n}",
    "UPS": "https://www.ups.com/track?loc=en_US&tracknum={n}",
    "FedEx": "https://www.fedex.com/fedextrack/?trknbr={n}",
}
STEPS: tuple[TaskStatus, ...] = ("picking", "picked", "packed")
# At most this much sandbox time is simulated in one pass, so a paused process does not wake to a burst.
MAX_STEP_SECONDS = 2.0


def tracking_number(carrier: str, rng: Any) -> str:
    """USPS 22 digits (9400…), UPS 1Z + 16 characters, FedEx 12 digits."""

    def digits(n: int) -> str:
        return "".join(rng.choice(string.digits) for _ in range(n))

    if carrier == "USPS":
        return "9400" + digits(18)
    if carrier == "UPS":
        return "1Z" + "".join(rng.choice(string.ascii_uppercase + string.digits) for _ in range(6)) + digits(10)
    return digits(12)


class Traffic:
    def __init__(self, sandbox: PosSandbox) -> None:
        self.sb = sandbox
        config = sandbox.config
        self.enabled = False
        self.sales_per_second = config.sales_per_second
        self.returns_per_second = config.returns_per_second
        self.receipts_per_second = config.receipts_per_second
        self.associates = config.associates
        self.fulfil_delay_min_seconds = config.fulfil_delay_min_seconds
        self.fulfil_delay_max_seconds = config.fulfil_delay_max_seconds
        self.collect_share = config.collect_share
        self._last: float | None = None
        # (due, order, task id, status): the associates' plan, and the tasks waiting for one.
        self._plan: list[tuple[float, int, str, TaskStatus]] = []
        self._order = itertools.count()
        self._planned: set[str] = set()
        self._unplanned: set[str] = set()
        # Units already returned per task, so the desk never takes back more than shipped.
        self._returned: dict[str, Counter[str]] = {}
        if config.traffic:
            self.configure(enabled=True)

    def settings(self) -> dict[str, Any]:
        return {
            "enabled": self.enabled,
            "sales_per_second": self.sales_per_second,
            "returns_per_second": self.returns_per_second,
            "receipts_per_second": self.receipts_per_second,
            "associates": self.associates,
            "fulfil_delay_min_seconds": self.fulfil_delay_min_seconds,
            "fulfil_delay_max_seconds": self.fulfil_delay_max_seconds,
            "collect_share": self.collect_share,
        }

    def configure(self, *, enabled: bool, **changes: Any) -> None:
        """Switch the simulation on or off and change its rates; switching it off drops the associates' plans."""
        for name, value in changes.items():
            if value is not None:
                setattr(self, name, value)
        if self.fulfil_delay_max_seconds < self.fulfil_delay_min_seconds:
            raise PosError(422, "invalid_body", "fulfil_delay_max_seconds must be >= fulfil_delay_min_seconds",
                           {"field": "fulfil_delay_max_seconds"})  # fmt: skip
        self.enabled = enabled
        self._last = None
        self._plan.clear()
        self._planned.clear()
        self._unplanned = {t.task_id for t in self.sb.world.tasks.values() if not t.final}

    # --- hooks from the task flow ----------------------------------------------------------------------------

    def task_opened(self, task: Task) -> None:
        self._unplanned.add(task.task_id)

    def task_closed(self, task: Task) -> None:
        self._unplanned.discard(task.task_id)
        self._planned.discard(task.task_id)

    # --- the background pass ---------------------------------------------------------------------------------

    def _poisson(self, lam: float) -> int:
        if lam <= 0:
            return 0
        limit, k, p = math.exp(-lam), 0, 1.0
        while True:
            p *= self.sb.rng.random()
            if p <= limit:
                return k
            k += 1

    def step(self) -> None:
        """Arrivals since the last pass, then the associates' due work."""
        if not self.enabled:
            self._last = None
            return
        now = self.sb.now()
        elapsed = 0.0 if self._last is None else min(max(now - self._last, 0.0), MAX_STEP_SECONDS)
        self._last = now
        for _ in range(self._poisson(self.sales_per_second * elapsed)):
            self.till_sale()
        for _ in range(self._poisson(self.returns_per_second * elapsed)):
            self.desk_return()
        for _ in range(self._poisson(self.receipts_per_second * elapsed)):
            self.receipt()
        if self.associates:
            self._plan_new()
            self._work(now)

    def _plan_new(self) -> None:
        rng = self.sb.rng
        for task_id in sorted(self._unplanned, key=lambda key: int(key.split("-")[1])):
            task = self.sb.world.tasks.get(task_id)
            if task is None or task.final:
                continue
            total = rng.uniform(self.fulfil_delay_min_seconds, self.fulfil_delay_max_seconds)
            end: TaskStatus = "collected" if rng.random() < self.collect_share else "shipped"
            start = self.sb.now()
            for index, status in enumerate((*STEPS, end), start=1):
                heapq.heappush(self._plan, (start + total * index / 4, next(self._order), task_id, status))
            self._planned.add(task_id)
        self._unplanned.clear()

    def _work(self, now: float) -> None:
        while self._plan and self._plan[0][0] <= now:
            _, _, task_id, status = heapq.heappop(self._plan)
            task = self.sb.world.tasks.get(task_id)
            if task is None or task_id not in self._planned or task.final:
                continue
            carrier = tracking = url = None
            if status == "shipped":
                carrier = self.sb.rng.choices(CARRIERS, weights=CARRIER_WEIGHTS)[0]
                tracking = tracking_number(carrier, self.sb.rng)
                url = TRACKING_URLS[carrier].format(n=tracking)
            with contextlib.suppress(PosError):  # the control API moved it on meanwhile
                advance_task(self.sb, task, status, carrier=carrier, tracking_number=tracking, tracking_url=url)

    # --- the tills, the returns desk, the stock room --------------------------------------------------------

    def till_sale(self) -> bool:
        """One sale at a random store that has something to sell; False when nothing is available anywhere."""
        sb = self.sb
        rng = sb.rng
        stores = [s for s in sb.world.stores.values() if s.config.active and any(
            level.available > 0 for level in s.levels.values())]  # fmt: skip
        if not stores:
            return False
        store = rng.choice(stores)
        sellable = sorted((sku, level.available) for sku, level in store.levels.items() if level.available > 0)
        picks = rng.sample(sellable, k=min(len(sellable), rng.choice((1, 1, 1, 2, 2, 3))))
        lines = [SaleLine(sku, min(available, rng.choice((1, 1, 1, 2)))) for sku, available in picks]
        sell(sb, store.location_id, lines)
        return True

    def desk_return(self) -> bool:
        """A buyer brings back part of a shipped task; False when nothing shipped is left to return."""
        sb = self.sb
        rng = sb.rng
        candidates = []
        for task in sb.world.tasks.values():
            if task.status != "shipped":
                continue
            returned = self._returned.get(task.task_id, Counter())
            left = [(line["sku"], line["quantity"] - returned[line["sku"]]) for line in task.lines]
            left = [(sku, n) for sku, n in left if n > 0]
            if left:
                candidates.append((task, left))
        if not candidates:
            return False
        task, left = rng.choice(candidates)
        sku, most = rng.choice(left)
        quantity = rng.randint(1, most)
        restock = quantity if rng.random() < 0.8 else rng.randint(0, quantity - 1)
        if rng.random() < 0.8:
            order_ref = {"channel": task.order_ref["channel"], "order_id": task.order_ref["order_id"]}
        else:
            order_ref = {"task_ref": task.task_ref}
        active = [s.location_id for s in sb.world.stores.values() if s.config.active]
        location_id = task.location_id if rng.random() < 0.6 or not active else rng.choice(active)
        take_return(sb, location_id, order_ref, [ReturnedLine(sku, quantity, restock)])
        self._returned.setdefault(task.task_id, Counter())[sku] += quantity
        return True

    def receipt(self) -> bool:
        """A delivery restocks the lowest SKU of a random store."""
        sb = self.sb
        rng = sb.rng
        stores = [s for s in sb.world.stores.values() if s.config.active and s.levels]
        if not stores:
            return False
        store = rng.choice(stores)
        sku, level = min(sorted(store.levels.items()), key=lambda pair: pair[1].available)
        set_levels(sb, store.location_id, "receipt", [LevelChange(sku, level.on_hand + rng.randint(6, 24))])
        return True
