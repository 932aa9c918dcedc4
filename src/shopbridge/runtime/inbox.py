"""The inbox: an inbound event is committed, once per (source, event id), before anyone acknowledges it."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, select, update
from sqlalchemy.orm import Session

from shopbridge.store.db import insert_of
from shopbridge.store.tables import InboundEvent


@dataclass(frozen=True)
class Recorded:
    id: int
    created: bool  # False: a duplicate of an event already in the inbox


def record(
    session: Session,
    *,
    source: str,
    event_id: str,
    payload: str,
    now: datetime,
    event_type: str | None = None,
    channel_account_id: int | None = None,
    status: str = "received",
    error: str | None = None,
) -> Recorded:
    """Insert the event unless (source, event_id) is already there. Commit before acknowledging the sender."""
    values = {"source": source, "event_id": event_id, "event_type": event_type,
              "channel_account_id": channel_account_id, "payload": payload, "status": status, "error": error,
              "received_at": now}  # fmt: skip
    new_id = session.execute(_record_statement(session.get_bind().dialect.name), values).scalar_one_or_none()
    if new_id is not None:
        return Recorded(int(new_id), created=True)
    existing = session.execute(
        select(InboundEvent.id).where(InboundEvent.source == source, InboundEvent.event_id == event_id)
    ).scalar_one()
    return Recorded(int(existing), created=False)


@functools.cache
def _record_statement(dialect: str) -> Any:
    """record's INSERT (values bound at execution), built once per dialect: it runs for every delivery."""
    table = cast(Table, InboundEvent.__table__)
    return insert_of(dialect)(table).on_conflict_do_nothing(index_elements=["source", "event_id"]).returning(table.c.id)


def mark(session: Session, event_id: int, *, status: str, now: datetime, error: str | None = None) -> None:
    session.execute(
        update(InboundEvent)
        .where(InboundEvent.id == event_id)
        .values(status=status, error=error, processed_at=now)
        .execution_options(synchronize_session=False)
    )


def mark_many(session: Session, event_ids: list[int], *, status: str, now: datetime) -> None:
    session.execute(
        update(InboundEvent)
        .where(InboundEvent.id.in_(event_ids))
        .values(status=status, processed_at=now)
        .execution_options(synchronize_session=False)
    )
