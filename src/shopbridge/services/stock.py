"""The stock ledger: every change is a movement with an idempotency key, so a replayed event moves stock once."""

from __future__ import annotations

import functools
from collections import defaultdict
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, func, select, update
from sqlalchemy.orm import Session

from shopbridge.services.availability import channel_view, mark_dirty
from shopbridge.store.db import insert_of
from shopbridge.store.sync_issues import raise_issue
from shopbridge.store.tables import (
    Base,
    ChannelWarehouse,
    Location,
    Order,
    OrderLink,
    StockLevel,
    StockMovement,
    Variant,
)

# The states of an order link whose order the other account has taken on (order_links.state).
PLACED_STATES = ("placed", "cancel_requested", "cancel_refused")
LEDGER_CHUNK = 500  # lines per ledger statement, well under SQLite's limit on bound parameters


@dataclass(frozen=True)
class LedgerLine:
    """One movement to record (see record_movements)."""

    idempotency_key: str
    variant_id: int
    location_id: int
    kind: str
    on_hand_delta: int
    reference: str | None = None
    reserved_delta: int = 0


@functools.cache
def _ledger_statements(dialect: str) -> tuple[Any, Any, Any]:
    """record_movements' three statements (values bound at execution), built once per dialect: every stock change
    runs them, and building them cost more than running them. Insert movements (each key once), create missing
    levels, add to levels."""
    movements = Base.metadata.tables[StockMovement.__tablename__]
    levels = Base.metadata.tables[StockLevel.__tablename__]
    insert = insert_of(dialect)
    return (
        insert(movements).on_conflict_do_nothing(index_elements=["idempotency_key"])
        .returning(movements.c.idempotency_key),
        insert(levels).on_conflict_do_nothing(index_elements=["variant_id", "location_id"]),
        update(levels)
        .where(levels.c.variant_id == bindparam("variant"), levels.c.location_id == bindparam("location"))
        .values(on_hand=levels.c.on_hand + bindparam("on_hand"), reserved=levels.c.reserved + bindparam("reserved"),
                updated_at=bindparam("now", type_=levels.c.updated_at.type)),
    )  # fmt: skip


def record_movements(
    session: Session,
    lines: Sequence[LedgerLine | None],
    *,
    source: str,
    now: datetime,
    progress: Callable[[int, int], None] | None = None,
    after_chunk: Callable[[int, Sequence[bool | None]], None] | None = None,
) -> list[bool | None]:
    """Apply movements to the ledger, each idempotency key once: a line whose key is already recorded, or earlier
    in ``lines``, is False and moves nothing. A chunk of lines costs a few statements, not three per line. Levels
    move by the sum of the lines applied, in one order of (variant, location) for every writer (so two writers
    cannot deadlock), and the SKUs whose stock moved are marked for their channels together. A None line (nothing to
    write) comes back as None. ``after_chunk(start, applied)`` is called once each chunk is written, with the
    chunk's first position and outcomes (see ``OutsideCheck``); what it raises stops the writing."""
    insert_movements, ensure_levels, add_to_level = _ledger_statements(session.get_bind().dialect.name)
    applied: list[bool | None] = []
    seen: set[str] = set()
    moved: set[int] = set()
    for start in range(0, len(lines), LEDGER_CHUNK):
        chunk = lines[start : start + LEDGER_CHUNK]
        first: dict[str, LedgerLine] = {}  # each key's first line, unless an earlier chunk had the key
        for line in chunk:
            if line is not None and line.idempotency_key not in seen:
                first.setdefault(line.idempotency_key, line)
        seen.update(first)
        inserted: set[str] = set()
        if first:
            rows = [{"idempotency_key": line.idempotency_key, "variant_id": line.variant_id,
                     "location_id": line.location_id, "kind": line.kind, "on_hand_delta": line.on_hand_delta,
                     "reserved_delta": line.reserved_delta, "source": source, "reference": line.reference,
                     "occurred_at": now, "recorded_at": now} for line in first.values()]  # fmt: skip
            inserted = set(session.scalars(insert_movements, rows))
        deltas: dict[tuple[int, int], tuple[int, int]] = {}
        for key in inserted:
            line = first[key]
            on_hand, reserved = deltas.get((line.variant_id, line.location_id), (0, 0))
            deltas[line.variant_id, line.location_id] = (on_hand + line.on_hand_delta, reserved + line.reserved_delta)
            if line.on_hand_delta or line.reserved_delta:
                moved.add(line.variant_id)
        if deltas:
            touched = sorted(deltas)
            session.execute(
                ensure_levels,
                [{"variant_id": variant_id, "location_id": location_id, "on_hand": 0, "reserved": 0,
                  "updated_at": now} for variant_id, location_id in touched],
            )  # fmt: skip
            session.execute(
                add_to_level,
                [{"variant": variant_id, "location": location_id, "on_hand": deltas[variant_id, location_id][0],
                  "reserved": deltas[variant_id, location_id][1], "now": now} for variant_id, location_id in touched],
            )  # fmt: skip
        applied.extend(
            None if line is None else line.idempotency_key in inserted and first[line.idempotency_key] is line
            for line in chunk
        )
        if after_chunk is not None:
            after_chunk(start, applied[start:])
        if progress is not None:
            progress(start + len(chunk), len(lines))
    mark_dirty(session, moved, now=now)
    return applied


def record_movement(
    session: Session,
    *,
    variant_id: int,
    location_id: int,
    kind: str,
    idempotency_key: str,
    source: str,
    now: datetime,
    on_hand_delta: int = 0,
    reserved_delta: int = 0,
    reference: str | None = None,
) -> bool:
    """Apply one movement once; False when its idempotency key was already recorded (nothing changes)."""
    line = LedgerLine(idempotency_key, variant_id, location_id, kind, on_hand_delta, reference, reserved_delta)
    return bool(record_movements(session, [line], source=source, now=now)[0])


def fulfilment_location(session: Session, channel_account_id: int, warehouse_id: str | None) -> int | None:
    """The location an order's stock comes from: the one mapped to its channel warehouse, else the first active."""
    if warehouse_id:
        mapped = session.scalar(
            select(ChannelWarehouse.location_id).where(
                ChannelWarehouse.channel_account_id == channel_account_id,
                ChannelWarehouse.external_warehouse_id == warehouse_id,
            )
        )
        if mapped is not None:
            return mapped
    return session.scalar(select(Location.id).where(Location.active.is_(True)).order_by(Location.id).limit(1))


class StockError(ValueError):
    """A stock write that cannot be applied; the message names what was wrong."""


class UnknownSku(StockError):
    pass


class StockSourceConflict(StockError):
    """A write from the side that is not the SKU's source of truth: refused, and raised as a sync issue."""


class IdempotencyKeyReused(StockError):
    """A key already recorded for another movement: the new movement is refused rather than dropped as a replay."""


class LinesRefused(StockError):
    """Lines of a batch refused as it was written (see ``OutsideCheck``): each line's position and what was wrong.
    The writer's transaction must be rolled back."""

    def __init__(self, refused: Sequence[tuple[int, StockError]]) -> None:
        self.refused = sorted(refused, key=lambda item: item[0])
        super().__init__("; ".join(str(error) for _, error in self.refused[:20]))


# What each movement kind may carry when it comes from outside (an API client, a CSV, a POS).
SIGNS = {"restock": 1, "return": 1, "sale": -1, "adjustment": 0}

# The range of stock reported from outside. The stock columns are 32-bit integers on PostgreSQL: a ledger chunk
# (LEDGER_CHUNK lines of at most MAX_QUANTITY) written on a level at the ceiling stays well inside them, and a batch
# stops at the first chunk that takes a level past the ceiling, so no write from outside can overflow a column.
MAX_QUANTITY = 1_000_000  # units in one movement or count
MAX_ON_HAND = 1_000_000_000  # units on hand at one location, either side of zero


def outside_change(kind: str, quantity: int) -> int:
    """The on-hand change of a movement reported from outside: ``quantity`` units (positive) for restock, return
    and sale, a signed correction for adjustment, at most ``MAX_QUANTITY`` either way."""
    if kind not in SIGNS:
        raise StockError(f"kind must be one of {', '.join(SIGNS)}, got {kind!r}")
    if abs(quantity) > MAX_QUANTITY:
        raise StockError(f"quantity {quantity} is out of range: at most {MAX_QUANTITY:,} units in one movement")
    sign = SIGNS[kind]
    if sign and quantity <= 0:
        raise StockError(f"quantity must be a positive number of units for {kind}, got {quantity}")
    if not sign and quantity == 0:
        raise StockError("an adjustment of 0 units changes nothing")
    return quantity * sign if sign else quantity


def describe(kind: str, on_hand_delta: int | None, reserved_delta: int, sku: str, location: str) -> str:
    """A movement as its sender names it (``restock of 10 TEE-M at MAIN``, ``adjustment of -2 TEE-M at MAIN``);
    without a change, a count (``count of TEE-M at MAIN``)."""
    if on_hand_delta is None:
        return f"count of {sku} at {location}"
    if SIGNS.get(kind):
        return f"{kind} of {on_hand_delta * SIGNS[kind]} {sku} at {location}"
    if kind == "adjustment":
        return f"adjustment of {on_hand_delta:+d} {sku} at {location}"
    return f"{kind} of {sku} at {location} (on hand {on_hand_delta:+d}, reserved {reserved_delta:+d})"


def key_reused(key: str, used_for: str, this: str, *, also_on: str | None = None) -> IdempotencyKeyReused:
    """The refusal of ``key`` for ``this`` movement, already ``used_for`` another (by row ``also_on`` of a batch)."""
    used = f"is also on {also_on}, for" if also_on else "was already used for"
    return IdempotencyKeyReused(
        f"idempotency_key {key!r} {used} {used_for}; this is {this} (another movement needs a key of its own)"
    )


# Run on every stock change reported from outside and every answer about one; built once (see _ledger_statements).
_VARIANT_BY_SKU = select(Variant).where(Variant.sku == bindparam("sku"))
_LOCATION_BY_CODE = select(Location.id).where(Location.code == bindparam("code"))
_LEVELS_BY_LOCATION = (
    select(Location.code, StockLevel.on_hand, StockLevel.reserved)
    .join(StockLevel, StockLevel.location_id == Location.id)
    .where(StockLevel.variant_id == bindparam("variant"))
    .order_by(Location.code)
)
_LEVELS_OF_VARIANTS = select(StockLevel.variant_id, StockLevel.location_id, StockLevel.on_hand).where(
    StockLevel.variant_id.in_(bindparam("variants", expanding=True))
)
_MOVEMENTS_BY_KEY = (
    select(StockMovement.idempotency_key, StockMovement.variant_id, StockMovement.location_id, StockMovement.kind,
           StockMovement.on_hand_delta, StockMovement.reserved_delta, Variant.sku, Location.code)
    .join(Variant, Variant.id == StockMovement.variant_id)
    .join(Location, Location.id == StockMovement.location_id)
    .where(StockMovement.idempotency_key.in_(bindparam("keys", expanding=True)))
)  # fmt: skip


class OutsideCheck:
    """The rules for stock reported from outside, applied while ``record_movements`` writes a batch (pass the
    check as its ``after_chunk``, then call ``finish``), in the writer's transaction, which a refusal rolls back:

    - a key already recorded for another movement is refused (``IdempotencyKeyReused``). A movement is its SKU,
      location, kind and quantity; a count (``counts``) is its SKU and location, as the ledger keeps the difference
      a count made, not the figure counted;
    - nothing may take on-hand past ``MAX_ON_HAND`` either side of zero, and an adjustment may not take it below
      zero (a count is checked for that before it is written);
    - a sale that takes on-hand below zero is recorded, and raised as an ``oversold`` sync issue by ``finish``.

    Only replays cost a read of their keys; the levels a chunk moved are read once it is written, when the writer
    holds their rows, so what each line found on hand is exact however many writers run. A refused line is left out
    of what the lines after it find. ``places`` names each line's SKU and location for the messages."""

    def __init__(
        self,
        session: Session,
        lines: Sequence[LedgerLine | None],
        places: Sequence[tuple[str, str]],
        *,
        now: datetime,
        counts: bool = False,
    ) -> None:
        self.session = session
        self.lines = lines
        self.places = places
        self.now = now
        self.counts = counts
        self.refused: list[tuple[int, StockError]] = []
        self.withheld: dict[tuple[int, int], int] = {}  # the on-hand change of the lines refused, per level
        self.oversold: dict[tuple[str, str], tuple[int, int]] = {}  # units sold short and on-hand after, per place

    def __call__(self, start: int, applied: Sequence[bool | None]) -> None:
        replays = [start + offset for offset, outcome in enumerate(applied) if outcome is False]
        if replays:
            self._check_keys(replays)
        written = [start + offset for offset, outcome in enumerate(applied) if outcome]
        if written:
            self._check_levels(written)

    def finish(self) -> None:
        """Raise ``LinesRefused`` if any line was refused; otherwise raise the oversold issues."""
        if self.refused:
            raise LinesRefused(self.refused)
        for (sku, location), (units, on_hand) in sorted(self.oversold.items()):
            raise_issue(
                self.session, kind="oversold", severity="error", fingerprint=f"oversold:sku:{sku}:{location}",
                message=f"{sku} at {location}: a sale reported from outside sold {units} unit(s) more than the hub "
                f"had ({on_hand} on hand)",
                now=self.now, subject_type="sku", subject_id=sku,
                details={"location": location, "oversold_units": units, "on_hand": on_hand},
            )  # fmt: skip

    def _line(self, index: int) -> LedgerLine:
        line = self.lines[index]
        assert line is not None, "a line without a movement has no outcome to check"
        return line

    def _check_keys(self, indexes: list[int]) -> None:
        keys = sorted({self._line(index).idempotency_key for index in indexes})
        recorded = {row.idempotency_key: row for row in self.session.execute(_MOVEMENTS_BY_KEY, {"keys": keys})}
        for index in indexes:
            line = self._line(index)
            row = recorded.get(line.idempotency_key)
            if row is None:
                continue
            same = (row.variant_id, row.location_id, row.kind) == (line.variant_id, line.location_id, line.kind)
            if not self.counts:
                same = same and (row.on_hand_delta, row.reserved_delta) == (line.on_hand_delta, line.reserved_delta)
            if not same:
                used_for = describe(row.kind, row.on_hand_delta, row.reserved_delta, row.sku, row.code)
                sku, location = self.places[index]
                this = describe(line.kind, None if self.counts else line.on_hand_delta, line.reserved_delta, sku,
                                location)  # fmt: skip
                self.refused.append((index, key_reused(line.idempotency_key, used_for, this)))

    def _check_levels(self, indexes: list[int]) -> None:
        moved = {(line.variant_id, line.location_id) for line in map(self._line, indexes)}
        variants = sorted({variant_id for variant_id, _ in moved})
        rows = self.session.execute(_LEVELS_OF_VARIANTS, {"variants": variants})
        level = {(variant_id, location_id): on_hand for variant_id, location_id, on_hand in rows
                 if (variant_id, location_id) in moved}  # fmt: skip
        found = {place: on_hand - self.withheld.get(place, 0) for place, on_hand in level.items()}
        for line in map(self._line, indexes):
            found[line.variant_id, line.location_id] -= line.on_hand_delta  # as found before this chunk
        for index in indexes:
            line = self._line(index)
            place = (line.variant_id, line.location_id)
            before, after = found[place], found[place] + line.on_hand_delta
            problem = self._level_problem(index, line, before, after)
            if problem is not None:
                self.refused.append((index, problem))
                self.withheld[place] = self.withheld.get(place, 0) + line.on_hand_delta
                continue
            found[place] = after
            if line.kind == "sale" and after < 0:
                units, _ = self.oversold.get(self.places[index], (0, 0))
                self.oversold[self.places[index]] = (units + min(-line.on_hand_delta, -after), after)
        if self.refused and any(abs(on_hand) > MAX_ON_HAND for on_hand in level.values()):
            raise LinesRefused(self.refused)  # stop here: further chunks could overflow the column

    def _level_problem(self, index: int, line: LedgerLine, before: int, after: int) -> StockError | None:
        sku, location = self.places[index]
        change = line.on_hand_delta
        quantity = f"{change:+d}" if line.kind == "adjustment" else str(abs(change))
        what = f"{'an' if line.kind[0] in 'aeiou' else 'a'} {line.kind} of {quantity}"
        found = f"{sku} at {location} has {before} on hand; {what} would take it to {after}"
        if change > 0 and after > MAX_ON_HAND:
            return StockError(f"{found}, above the ceiling of {MAX_ON_HAND:,} units")
        if change < 0 and after < -MAX_ON_HAND:
            return StockError(f"{found}, below the floor of {-MAX_ON_HAND:,} units")
        if change < 0 and after < 0 and line.kind == "adjustment" and not self.counts:
            return StockError(f"{found}, below zero")
        return None


def apply_external_movement(
    session: Session,
    *,
    sku: str,
    location_code: str,
    kind: str,
    quantity: int,
    idempotency_key: str,
    origin: str,
    now: datetime,
    reference: str | None = None,
) -> bool:
    """A stock change reported from outside the hub. ``quantity`` is a count of units (positive) for restock,
    return and sale, and a signed correction for adjustment, at most ``MAX_QUANTITY``. ``origin`` is ``hub``
    (people and tools using the hub's own stock) or ``external`` (a master system the hub mirrors); a write from the
    side that is not the SKU's source of truth is refused, and so is what ``OutsideCheck`` refuses (a key used for
    another movement, an adjustment below zero, on-hand past the ceiling). Returns False when the idempotency key
    was already applied to this same movement."""
    on_hand_delta = outside_change(kind, quantity)
    if origin not in ("hub", "external"):
        raise StockError(f"origin must be 'hub' or 'external', got {origin!r}")
    variant = session.scalar(_VARIANT_BY_SKU, {"sku": sku})
    if variant is None:
        raise UnknownSku(f"unknown SKU {sku!r}")
    location_id = session.scalar(_LOCATION_BY_CODE, {"code": location_code})
    if location_id is None:
        raise StockError(f"unknown location {location_code!r}")
    if variant.stock_source != origin:
        raise StockSourceConflict(
            f"{sku}'s stock is kept by the {variant.stock_source} side; a write from the {origin} side is refused"
        )
    lines = [LedgerLine(idempotency_key, variant.id, location_id, kind, on_hand_delta, reference)]
    check = OutsideCheck(session, lines, [(sku, location_code)], now=now)
    try:
        applied = record_movements(session, lines, source=origin, now=now, after_chunk=check)
        check.finish()
    except LinesRefused as refused:
        raise refused.refused[0][1] from None
    return bool(applied[0])


def record_refusal(session: Session, sku: str, origin: str, message: str, *, now: datetime) -> None:
    """Keep a refused write as a sync issue (in its own transaction: the write itself was rolled back)."""
    raise_issue(
        session, kind="stock_source_conflict", severity="error", fingerprint=f"stock_source:{sku}:{origin}",
        message=message, now=now, subject_type="sku", subject_id=sku, details={"origin": origin},
    )  # fmt: skip


def stock_of(session: Session, sku: str, *, now: datetime) -> dict[str, Any]:
    """A SKU's stock per location (on hand, reserved, and what is free: on hand minus reserved) and per channel
    listing (what the channel should show now, and what it last confirmed)."""
    variant = session.scalar(_VARIANT_BY_SKU, {"sku": sku})
    if variant is None:
        raise UnknownSku(f"unknown SKU {sku!r}")
    rows = session.execute(_LEVELS_BY_LOCATION, {"variant": variant.id}).all()
    locations = [{"location": code, "on_hand": on_hand, "reserved": reserved, "free": on_hand - reserved}
                 for code, on_hand, reserved in rows]  # fmt: skip
    return {
        "sku": sku,
        "source_of_truth": variant.stock_source,
        "on_hand": sum(row["on_hand"] for row in locations),
        "reserved": sum(row["reserved"] for row in locations),
        "locations": locations,
        "channels": channel_view(session, variant, now=now),
    }


_OPEN_ORDER_HOLDS = (
    select(StockMovement.reference, StockMovement.variant_id, StockMovement.location_id,
           func.sum(StockMovement.reserved_delta))
    .where(StockMovement.reference.like("order:%"))
    .group_by(StockMovement.reference, StockMovement.variant_id, StockMovement.location_id)
    .having(func.sum(StockMovement.reserved_delta) != 0)
)  # fmt: skip


def held_for_account(session: Session, account_id: int, variant_ids: Collection[int]) -> dict[tuple[int, int], int]:
    """Units the hub holds (reserved, not yet shipped or released) per (variant, hub location) for the orders an
    outside account has taken on: its own orders, and orders the hub placed there (``PLACED_STATES``). Where that
    account is a stock master, its own count of what it can sell leaves these out, so the hub adds them back."""
    if not variant_ids:
        return {}
    rows = session.execute(_OPEN_ORDER_HOLDS.where(StockMovement.variant_id.in_(sorted(variant_ids)))).all()
    by_order: dict[int, list[tuple[int, int, int]]] = defaultdict(list)
    for reference, variant_id, location_id, units in rows:
        order_text = str(reference).removeprefix("order:")
        if order_text.isdigit():
            by_order[int(order_text)].append((int(variant_id), int(location_id), int(units or 0)))
    if not by_order:
        return {}
    ids = sorted(by_order)
    mine = set(session.scalars(select(Order.id).where(Order.id.in_(ids), Order.channel_account_id == account_id)))
    mine |= set(session.scalars(select(OrderLink.order_id).where(
        OrderLink.order_id.in_(ids), OrderLink.channel_account_id == account_id, OrderLink.state.in_(PLACED_STATES)
    )))  # fmt: skip
    holds: dict[tuple[int, int], int] = defaultdict(int)
    for order_id in mine:
        for variant_id, location_id, units in by_order[order_id]:
            holds[variant_id, location_id] += units
    return dict(holds)
