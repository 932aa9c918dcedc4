"""The stock ledger: every change is a movement with an idempotency key, so a replayed event moves stock once."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from shopbridge.store.db import dialect_insert
from shopbridge.store.tables import ChannelWarehouse, Location, StockLevel, StockMovement


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
    """Apply a movement once; False when its idempotency key was already recorded (nothing changes)."""
    inserted = session.execute(
        dialect_insert(session)(StockMovement)
        .values(
            idempotency_key=idempotency_key, variant_id=variant_id, location_id=location_id, kind=kind,
            on_hand_delta=on_hand_delta, reserved_delta=reserved_delta, source=source, reference=reference,
            occurred_at=now, recorded_at=now,
        )
        .on_conflict_do_nothing(index_elements=["idempotency_key"])
        .returning(StockMovement.id)
    ).scalar_one_or_none()  # fmt: skip
    if inserted is None:
        return False
    session.execute(
        dialect_insert(session)(StockLevel)
        .values(variant_id=variant_id, location_id=location_id, on_hand=0, reserved=0, updated_at=now)
        .on_conflict_do_nothing(index_elements=["variant_id", "location_id"])
    )
    session.execute(
        update(StockLevel)
        .where(StockLevel.variant_id == variant_id, StockLevel.location_id == location_id)
        .values(
            on_hand=StockLevel.on_hand + on_hand_delta,
            reserved=StockLevel.reserved + reserved_delta,
            updated_at=now,
        )
        .execution_options(synchronize_session=False)
    )
    return True


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
