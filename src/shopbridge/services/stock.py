"""The stock ledger: every change is a movement with an idempotency key, so a replayed event moves stock once."""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session

from shopbridge.services.availability import channel_view, mark_dirty
from shopbridge.store.db import insert_of
from shopbridge.store.sync_issues import raise_issue
from shopbridge.store.tables import Base, ChannelWarehouse, Location, StockLevel, StockMovement, Variant

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
) -> list[bool | None]:
    """Apply movements to the ledger, each idempotency key once: a line whose key is already recorded, or earlier
    in ``lines``, is False and moves nothing. A chunk of lines costs a few statements, not three per line. Levels
    move by the sum of the lines applied, in one order of (variant, location) for every writer (so two writers
    cannot deadlock), and the SKUs whose stock moved are marked for their channels together. A None line (nothing to
    write) comes back as None."""
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


# What each movement kind may carry when it comes from outside (an API client, a CSV, a POS).
SIGNS = {"restock": 1, "return": 1, "sale": -1, "adjustment": 0}


# Run on every stock change reported from outside and every answer about one; built once (see _ledger_statements).
_VARIANT_BY_SKU = select(Variant).where(Variant.sku == bindparam("sku"))
_LOCATION_BY_CODE = select(Location.id).where(Location.code == bindparam("code"))
_LEVELS_BY_LOCATION = (
    select(Location.code, StockLevel.on_hand, StockLevel.reserved)
    .join(StockLevel, StockLevel.location_id == Location.id)
    .where(StockLevel.variant_id == bindparam("variant"))
    .order_by(Location.code)
)


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
    return and sale, and a signed correction for adjustment. ``origin`` is ``hub`` (people and tools using the
    hub's own stock) or ``external`` (a master system the hub mirrors); a write from the side that is not the
    SKU's source of truth is refused. Returns False when the idempotency key was already applied."""
    if kind not in SIGNS:
        raise StockError(f"kind must be one of {', '.join(SIGNS)}, got {kind!r}")
    sign = SIGNS[kind]
    if sign and quantity <= 0:
        raise StockError(f"quantity must be a positive number of units for {kind}, got {quantity}")
    if not sign and quantity == 0:
        raise StockError("an adjustment of 0 units changes nothing")
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
    return record_movement(
        session, variant_id=variant.id, location_id=location_id, kind=kind, idempotency_key=idempotency_key,
        source=origin, now=now, on_hand_delta=quantity * sign if sign else quantity, reference=reference,
    )  # fmt: skip


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
