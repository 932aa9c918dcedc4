"""Periodic jobs. Each schedule's next run is persisted, so a restart neither forgets nor stampedes: missed
runs collapse into one, and of many processes ticking at once exactly one enqueues each due run."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from shopbridge.runtime.jobs import enqueue
from shopbridge.store.tables import Schedule


@dataclass(frozen=True)
class Periodic:
    name: str
    kind: str
    interval_seconds: float
    payload: dict[str, Any] = field(default_factory=dict)
    channel_account_id: int | None = None


class Scheduler:
    def __init__(self, periodics: list[Periodic], *, max_attempts: int = 8) -> None:
        self.periodics = {periodic.name: periodic for periodic in periodics}
        self.max_attempts = max_attempts

    def sync(self, session: Session, now: datetime) -> None:
        """Create missing schedules (first run now); keep the persisted next run of existing ones."""
        existing = {row.name: row for row in session.scalars(select(Schedule))}
        for periodic in self.periodics.values():
            row = existing.get(periodic.name)
            if row is None:
                session.add(
                    Schedule(
                        name=periodic.name,
                        kind=periodic.kind,
                        interval_seconds=periodic.interval_seconds,
                        payload=periodic.payload,
                        channel_account_id=periodic.channel_account_id,
                        next_run_at=now,
                    )
                )
                continue
            row.kind, row.payload = periodic.kind, periodic.payload
            if row.interval_seconds != periodic.interval_seconds:
                row.interval_seconds = periodic.interval_seconds
                if row.last_run_at is not None:
                    row.next_run_at = row.last_run_at + timedelta(seconds=periodic.interval_seconds)

    def tick(self, session: Session, now: datetime) -> list[str]:
        """Enqueue each due schedule once; returns the names enqueued by this call."""
        enqueued = []
        due = session.execute(
            select(
                Schedule.name, Schedule.next_run_at, Schedule.interval_seconds, Schedule.kind, Schedule.payload,
                Schedule.channel_account_id,
            ).where(Schedule.next_run_at <= now)
        ).all()  # fmt: skip
        for name, next_run_at, interval, kind, payload, channel_account_id in due:
            taken = session.execute(
                update(Schedule)
                .where(Schedule.name == name, Schedule.next_run_at == next_run_at)
                .values(last_run_at=now, next_run_at=now + timedelta(seconds=interval))
                .execution_options(synchronize_session=False)
            )
            if taken.rowcount != 1:  # type: ignore[attr-defined]
                continue  # another process took this run
            enqueue(
                session,
                kind,
                payload,
                now=now,
                identity_key=f"schedule:{name}",
                channel_account_id=channel_account_id,
                max_attempts=self.max_attempts,
            )
            enqueued.append(name)
        return enqueued


def ensure_schedule(session: Session, periodic: Periodic, *, now: datetime) -> None:
    """Add or update a schedule that belongs to data (a shop's order poll), not to the code's static list."""
    row = session.get(Schedule, periodic.name)
    if row is None:
        session.add(
            Schedule(
                name=periodic.name, kind=periodic.kind, interval_seconds=periodic.interval_seconds,
                payload=periodic.payload, channel_account_id=periodic.channel_account_id, next_run_at=now,
            )
        )  # fmt: skip
        return
    row.kind, row.payload, row.interval_seconds = periodic.kind, periodic.payload, periodic.interval_seconds
    row.channel_account_id = periodic.channel_account_id


def drop_schedules(session: Session, channel_account_id: int) -> None:
    session.execute(delete(Schedule).where(Schedule.channel_account_id == channel_account_id))
