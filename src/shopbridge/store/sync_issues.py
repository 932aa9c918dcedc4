"""Sync issues: exceptions shown to humans. One open issue per fingerprint; a repeat counts an occurrence."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, select, text, update
from sqlalchemy.orm import Session

from shopbridge.store.db import dialect_insert
from shopbridge.store.tables import SyncIssue


def raise_issue(
    session: Session,
    *,
    kind: str,
    severity: str,
    fingerprint: str,
    message: str,
    now: datetime,
    channel_account_id: int | None = None,
    subject_type: str | None = None,
    subject_id: str | None = None,
    details: dict[str, Any] | None = None,
) -> int:
    """Open an issue, or count another occurrence of the open one with the same fingerprint; returns its id."""
    insert = dialect_insert(session)
    statement = (
        insert(SyncIssue)
        .values(
            kind=kind,
            severity=severity,
            status="open",
            fingerprint=fingerprint,
            message=message,
            channel_account_id=channel_account_id,
            subject_type=subject_type,
            subject_id=subject_id,
            details=details or {},
            occurrences=1,
            first_seen_at=now,
            last_seen_at=now,
        )
        .on_conflict_do_update(
            index_elements=["fingerprint"],
            index_where=text("status = 'open'"),
            set_={
                "message": message,
                "details": details or {},
                "last_seen_at": now,
                "occurrences": SyncIssue.occurrences + 1,
            },
        )
        .returning(SyncIssue.__table__.c.id)
    )
    issue_id: int = session.execute(statement).scalar_one()
    return issue_id


def resolve_issue(session: Session, fingerprint: str, now: datetime) -> bool:
    issue = session.scalar(select(SyncIssue).where(SyncIssue.fingerprint == fingerprint, SyncIssue.status == "open"))
    if issue is None:
        return False
    issue.status = "resolved"
    issue.resolved_at = now
    return True


def resolve_issues(session: Session, fingerprints: list[str], now: datetime) -> None:
    """Resolve whichever of these are open, in one statement."""
    if fingerprints:
        session.execute(_RESOLVE, {"fingerprints": fingerprints, "now": now})


# Every acknowledged push runs this; built once.
_RESOLVE = (
    update(SyncIssue)
    .where(SyncIssue.fingerprint.in_(bindparam("fingerprints", expanding=True)), SyncIssue.status == "open")
    .values(status="resolved", resolved_at=bindparam("now", type_=SyncIssue.__table__.c.resolved_at.type))
    .execution_options(synchronize_session=False)
)


def order_blocked_fingerprint(order_id: int) -> str:
    """The one open issue of a Blocked order, whatever blocks it (raised and resolved by services/orders.py for
    the order's own problems, by services/fulfilment.py for a store's refusal)."""
    return f"order_blocked:{order_id}"
