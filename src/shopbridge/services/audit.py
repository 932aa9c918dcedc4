"""The audit log: who changed what, when, with the before and after. Every route, page and command that changes
something writes one entry, in the same transaction as the change."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from shopbridge.store.tables import AuditEntry


def record(
    session: Session,
    actor: str,
    action: str,
    subject_type: str,
    subject_id: str | int,
    *,
    now: datetime,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> None:
    session.add(AuditEntry(actor=actor, action=action, subject_type=subject_type, subject_id=str(subject_id), at=now,
                           before=before, after=after))  # fmt: skip


def entries(session: Session, *, action: str | None = None, actor: str | None = None, before: int = 0,
            limit: int = 100) -> list[AuditEntry]:  # fmt: skip
    """The newest entries first (those older than entry ``before``, when given), filtered by action and by who."""
    query = select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit)
    if action:
        query = query.where(AuditEntry.action == action)
    if actor:
        query = query.where(AuditEntry.actor == actor)
    if before > 0:
        query = query.where(AuditEntry.id < before)
    return list(session.scalars(query))


def actions(session: Session) -> list[str]:
    """Every action recorded so far, for the filter."""
    return sorted(set(session.scalars(select(AuditEntry.action).distinct())))
