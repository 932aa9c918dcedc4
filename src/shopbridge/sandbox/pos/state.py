"""The POS's world, in memory: its stores with their stock and sequence, the catalogue, fulfilment tasks, till sales
and returns.

Everything is changed from the sandbox's one event loop, by synchronous code between two awaits, so no change is
ever seen half made and no lock is needed.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

from .config import LocationConfig
from .models import TaskStatus

FINAL_STATUSES: frozenset[TaskStatus] = frozenset({"shipped", "collected", "cancelled"})
# The forward order of a task's life; shipped and collected are two ends of the same step.
STATUS_RANK: dict[TaskStatus, int] = {
    "open": 0,
    "picking": 1,
    "picked": 2,
    "packed": 3,
    "shipped": 4,
    "collected": 4,
    "cancelled": 4,
}


@dataclass
class StockLevel:
    on_hand: int = 0
    allocated: int = 0

    @property
    def available(self) -> int:
        return self.on_hand - self.allocated


@dataclass
class Store:
    """A location: its stock per SKU and its sequence, which grows by one with every stock change there (§3)."""

    config: LocationConfig
    sequence: int
    levels: dict[str, StockLevel] = field(default_factory=dict)
    # Until when (sandbox time) the store is offline: its API operations answer 503 and its events wait.
    offline_until: float | None = None

    @property
    def location_id(self) -> str:
        return self.config.location_id

    def level(self, sku: str) -> StockLevel:
        return self.levels.setdefault(sku, StockLevel())

    def available(self, sku: str) -> int:
        level = self.levels.get(sku)
        return 0 if level is None else level.available

    def levels_json(self, skus: list[str]) -> list[dict[str, Any]]:
        """The absolute levels of ``skus`` (each once, in the order given), as every stock-changing event carries."""
        out = []
        for sku in dict.fromkeys(skus):
            level = self.level(sku)
            out.append({"sku": sku, "on_hand": level.on_hand, "allocated": level.allocated})
        return out


@dataclass
class Task:
    task_id: str
    task_ref: str
    location_id: str
    order_ref: dict[str, Any]
    lines: list[dict[str, Any]]
    ship_to: dict[str, Any] | None
    dispatch_by: str | None
    # The parsed request, to tell a replay (same body) from a conflict (different body).
    request: dict[str, Any]
    # Unix milliseconds.
    created_at: int
    updated_at: int
    # Grows with every change of any task: the order of GET /fulfilment-tasks?updated_since=.
    change_no: int
    status: TaskStatus = "open"
    shipment: dict[str, Any] | None = None
    cancel_reason: str | None = None
    # Every status it took: {"status", "at", "by", "silent"}.
    history: list[dict[str, Any]] = field(default_factory=list)

    @property
    def final(self) -> bool:
        return self.status in FINAL_STATUSES


@dataclass
class Sale:
    sale_id: str
    location_id: str
    currency: str
    lines: list[dict[str, Any]]
    occurred_at: int  # Unix milliseconds
    sequence: int
    levels: list[dict[str, Any]]
    silent: bool = False


@dataclass
class ReturnRecord:
    return_id: str
    number: int
    location_id: str
    order_ref: dict[str, Any]
    lines: list[dict[str, Any]]
    occurred_at: int  # Unix milliseconds
    sequence: int
    levels: list[dict[str, Any]]
    silent: bool = False


class World:
    def __init__(self, locations: tuple[LocationConfig, ...], sequence_start: int, id_start: int = 1) -> None:
        self.stores: dict[str, Store] = {loc.location_id: Store(loc, sequence_start) for loc in locations}
        # SKU -> unit price (a decimal string): the catalogue the tills sell from.
        self.catalogue: dict[str, str] = {}
        self.tasks: dict[str, Task] = {}
        self.task_refs: dict[str, str] = {}
        self.sales: dict[str, Sale] = {}
        self.returns: dict[str, ReturnRecord] = {}
        self._task_numbers = itertools.count(id_start)
        self._sale_numbers = itertools.count(id_start)
        self._return_numbers = itertools.count(id_start)
        self._changes = itertools.count(1)

    def next_task_id(self) -> str:
        return f"T-{next(self._task_numbers)}"

    def next_sale_id(self) -> str:
        return f"S-{next(self._sale_numbers)}"

    def next_return_number(self) -> int:
        return next(self._return_numbers)

    def next_change(self) -> int:
        return next(self._changes)

    def bump(self, store: Store) -> int:
        """A stock change at ``store``: its next sequence number."""
        store.sequence += 1
        return store.sequence

    def task_by_ref(self, task_ref: str) -> Task | None:
        task_id = self.task_refs.get(task_ref)
        return None if task_id is None else self.tasks.get(task_id)
