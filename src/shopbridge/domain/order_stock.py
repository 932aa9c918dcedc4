"""The stock steps of an order's life, whatever its channel: a received order reserves its units; shipment turns the
reservation into a sale; a cancellation before shipment releases it. Each step happens once per order and SKU (the
ledger keys it), an order first seen already shipped moves nothing, and an order for units the truth no longer has
is oversold: reserved all the same (the units are owed), and flagged. Pure: services/orders.py reads what was done
and what is free, and writes the steps to the ledger."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

from shopbridge.domain.orders import OrderStatus, progress

SHIPPED = progress(OrderStatus.IN_TRANSIT)


class Step(StrEnum):
    RESERVE = "reserve"  # units held for the order: reserved + units
    UNRESERVE = "unreserve"  # the order was cancelled before shipping: reserved - units
    SHIP = "ship"  # the order left: on hand - units, reserved - units


@dataclass(frozen=True)
class LineStep:
    step: Step
    variant_id: int
    units: int
    short: int = 0  # of a reservation: units the truth no longer had (oversold)

    @property
    def on_hand_delta(self) -> int:
        return -self.units if self.step is Step.SHIP else 0

    @property
    def reserved_delta(self) -> int:
        return self.units if self.step is Step.RESERVE else -self.units


def stock_steps(
    status: OrderStatus,
    lines: Sequence[tuple[int, int]],
    done: Collection[tuple[Step, int]],
    *,
    free: Mapping[int, int],
    known: Collection[int],
) -> list[LineStep]:
    """The steps an order in ``status`` still needs, for ``lines`` (variant id, units), given the steps already
    ``done`` (step, variant id). ``free`` is on hand minus reserved per variant; a reservation is short of what
    ``free`` cannot cover, but only for the ``known`` variants (a SKU the hub never counted has no truth to run out
    of). ``free`` is not changed: the caller counts down the units of the orders it settles one after another."""
    steps: list[LineStep] = []
    cancelled = status is OrderStatus.CANCELLED
    shipped = not cancelled and progress(status) >= SHIPPED
    for variant_id, units in lines:
        reserved = (Step.RESERVE, variant_id) in done
        released = (Step.UNRESERVE, variant_id) in done
        sent = (Step.SHIP, variant_id) in done
        if cancelled:
            if reserved and not released and not sent:
                steps.append(LineStep(Step.UNRESERVE, variant_id, units))
            continue
        if not reserved:
            if shipped:
                # Shipped before the hub held its units (history read on connect, or shipped while the SKU was
                # unlinked): a count taken since already reflects it, so it moves nothing.
                continue
            available = max(free.get(variant_id, 0), 0)
            short = units - available if variant_id in known and available < units else 0
            steps.append(LineStep(Step.RESERVE, variant_id, units, short))
        if shipped and not sent and not released:
            steps.append(LineStep(Step.SHIP, variant_id, units))
    return steps
