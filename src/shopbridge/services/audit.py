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


def entries(session: Session, *, limit: int = 100, action: str | None = None) -> list[dict[str, Any]]:
    """The newest entries first."""
    query = select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit)
    if action:
        query = query.where(AuditEntry.action == action)
    return [
        {"id": e.id, "at": e.at.isoformat(), "actor": e.actor, "action": e.action, "subject_type": e.subject_type,
         "subject_id": e.subject_id, "before": e.before, "after": e.after}
        for e in session.scalars(query)
    ]  # fmt: skip
