"""What the platform does on its own, and when: hold ends, audits, automatic cancellations and approvals,
refunds settling, days closing into statements, payouts.

Every record that can change with time alone is put on a heap at its due time whenever it is saved, so a tick
only touches what is due instead of scanning the world. Entries can go stale (a record saved again with a new
due time); each handler re-checks that its record is really due, so a stale entry is harmless.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

from . import cancellations, finance, orders, products, returns
from .models import Adjustment, Cancellation, Order, Product, Record, Return, Statement

if TYPE_CHECKING:
    from .runtime import TikTokSandbox

Due = tuple[int, str, str]
R = TypeVar("R", bound=Record)


def dues_of(record: Record) -> list[Due]:
    """(when, kind, key) for everything this record has coming."""
    out: list[Due] = []

    def add(when: int | None, kind: str, key: str) -> None:
        if when is not None:
            out.append((when, kind, key))

    if isinstance(record, Product):
        add(products.audit_due(record), "product", record.id)
    elif isinstance(record, Order):
        add(orders.next_due(record), "order", record.id)
        add(finance.settlement_due(record), "settlement", record.shop_id)
    elif isinstance(record, Cancellation):
        add(cancellations.response_due(record), "cancellation", record.id)
    elif isinstance(record, Return):
        add(returns.next_due(record), "return", record.id)
        add(finance.settlement_due(record), "settlement", record.shop_id)
    elif isinstance(record, Adjustment):
        add(finance.settlement_due(record), "settlement", record.shop_id)
    elif isinstance(record, Statement):
        add(finance.payout_due(record), "payout", record.id)
    return out


class Timeline:
    def __init__(self, sandbox: TikTokSandbox) -> None:
        self.sb = sandbox
        self._heap: list[tuple[int, int, str, str]] = []
        self._order = itertools.count()
        self._handlers: dict[str, Callable[[str], None]] = {
            "product": self._on(Product, products.run_due_audit),
            "order": self._on(Order, orders.run_due_transition),
            "cancellation": self._on(Cancellation, cancellations.run_due),
            "return": self._on(Return, returns.run_due),
            "payout": self._on(Statement, finance.pay_out),
            "settlement": self._close_days,
        }

    def _close_days(self, shop_id: str) -> None:
        finance.close_days(self.sb, shop_id)

    def _on(self, cls: type[R], handler: Callable[[TikTokSandbox, R], None]) -> Callable[[str], None]:
        def run(key: str) -> None:
            record = self.sb.world.get(cls, key)
            if record is not None:
                handler(self.sb, record)

        return run

    def schedule(self, record: Record) -> None:
        for when, kind, key in dues_of(record):
            heapq.heappush(self._heap, (when, next(self._order), kind, key))

    def run_due(self) -> int:
        """Handle every entry due by now, earliest first; what a handler makes due meanwhile is handled too."""
        handled = 0
        now = self.sb.clock.now()
        while self._heap and self._heap[0][0] <= now:
            _, _, kind, key = heapq.heappop(self._heap)
            self._handlers[kind](key)
            handled += 1
        return handled
