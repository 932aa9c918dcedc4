"""Exceptions for people: open sync issues with the role that should act on each, and the jobs that gave up (dead
letters). Resolving an issue, retrying what it is about (its order's sync, its dead job, or a store return's refused
refund), retrying a dead job and replaying a finished one are the actions; each is audited."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from shopbridge.runtime import jobs
from shopbridge.services import audit, order_views, returns
from shopbridge.store.tables import ChannelAccount, Job, SyncIssue

PAGE = 100
# Who should act on an issue when the code that raised it did not say (its details' "act").
ACT_BY_KIND = {
    "needs_reauth": "owner", "authorization_expiring": "owner", "custom_app": "owner",
    "stock_mismatch": "ops", "store_stock_changed": "ops", "stock_source_conflict": "ops", "oversold": "ops",
    "order_blocked": "ops", "dead_letter": "ops", "stock_push_failed": "ops", "sla_at_risk": "ops",
}  # fmt: skip
SEVERITY_ORDER = {"critical": 0, "error": 1, "warning": 2, "info": 3}


class NotActionable(ValueError):
    pass


def act_of(issue: SyncIssue) -> str:
    return str((issue.details or {}).get("act") or ACT_BY_KIND.get(issue.kind, "ops"))


def open_issues(session: Session, *, kind: str | None = None, limit: int = PAGE) -> list[dict[str, Any]]:
    """Open issues, the most severe and most recent first."""
    labels = dict(session.execute(select(ChannelAccount.id, ChannelAccount.label)).all())
    query = select(SyncIssue).where(SyncIssue.status == "open")
    if kind:
        query = query.where(SyncIssue.kind == kind)
    rows = session.scalars(query.order_by(SyncIssue.last_seen_at.desc(), SyncIssue.id.desc()).limit(limit)).all()
    shown = [
        {"id": row.id, "kind": row.kind, "severity": row.severity, "message": row.message, "act": act_of(row),
         "account": labels.get(row.channel_account_id) if row.channel_account_id else None,
         "subject_type": row.subject_type, "subject_id": row.subject_id, "occurrences": row.occurrences,
         "first_seen_at": row.first_seen_at, "last_seen_at": row.last_seen_at,
         "retry": retry_target(row) is not None}
        for row in rows
    ]  # fmt: skip
    return sorted(shown, key=lambda issue: SEVERITY_ORDER.get(issue["severity"], 9))


def open_counts(session: Session) -> dict[str, int]:
    rows = session.execute(
        select(SyncIssue.kind, func.count()).where(SyncIssue.status == "open").group_by(SyncIssue.kind)
    )
    return {str(kind): int(count) for kind, count in rows}


def retry_target(issue: SyncIssue) -> tuple[str, int] | None:
    """What retrying the issue re-runs: its order's sync, its dead job, or the refund a store return's order channel
    refused (a return the hub could not match has nothing to retry: someone refunds it by hand)."""
    if not (issue.subject_id or "").isdigit():
        return None
    if issue.subject_type in ("order", "job") or (
        issue.subject_type == "store_return" and issue.kind == returns.REFUND_REFUSED
    ):
        return str(issue.subject_type), int(issue.subject_id or 0)
    return None


def resolve(session: Session, issue_id: int, *, now: datetime, actor: str) -> None:
    issue = session.get(SyncIssue, issue_id)
    if issue is None:
        raise NotActionable(f"sync issue {issue_id} does not exist")
    if issue.status != "open":
        raise NotActionable(f"sync issue {issue_id} is {issue.status} already")
    issue.status, issue.resolved_at = "resolved", now
    audit.record(session, actor, "issue.resolve", "sync_issue", issue.id, now=now, before={"status": "open"},
                 after={"status": "resolved", "kind": issue.kind})  # fmt: skip


def retry(session: Session, issue_id: int, resync_kinds: dict[str, str], *, now: datetime, actor: str) -> str:
    """Re-run what the issue is about; the issue stays open until the work succeeds (its code resolves it)."""
    issue = session.get(SyncIssue, issue_id)
    if issue is None:
        raise NotActionable(f"sync issue {issue_id} does not exist")
    target = retry_target(issue)
    if target is None:
        raise NotActionable(f"sync issue {issue_id} ({issue.kind}) has nothing to retry; fix its cause and resolve it")
    subject, subject_id = target
    if subject == "order":
        try:
            job_id = order_views.retry_order(session, subject_id, resync_kinds, now=now, actor=actor)
        except order_views.OrderNotFound as error:
            raise NotActionable(str(error)) from None
        return f"order {subject_id} queued again (job {job_id})"
    if subject == "store_return":
        try:
            job_id = returns.retry_refund(session, subject_id, now=now, actor=actor)
        except returns.NotRetryable as error:
            raise NotActionable(str(error)) from None
        return f"store return {subject_id}: its refund is asked again (job {job_id})"
    retry_job(session, subject_id, now=now, actor=actor)
    return f"job {subject_id} pending again"


def dead_jobs(session: Session, *, limit: int = PAGE) -> list[dict[str, Any]]:
    labels = dict(session.execute(select(ChannelAccount.id, ChannelAccount.label)).all())
    rows = session.scalars(select(Job).where(Job.state == "dead").order_by(Job.finished_at.desc(), Job.id.desc())
                           .limit(limit)).all()  # fmt: skip
    return [
        {"id": job.id, "kind": job.kind, "account": labels.get(job.channel_account_id) if job.channel_account_id
         else None, "attempts": job.attempts, "error": job.last_error, "finished_at": job.finished_at}
        for job in rows
    ]  # fmt: skip


def retry_job(session: Session, job_id: int, *, now: datetime, actor: str) -> None:
    try:
        job = jobs.retry_dead(session, job_id, now=now)
    except jobs.JobStateError as error:
        raise NotActionable(str(error)) from None
    audit.record(session, actor, "job.retry", "job", job.id, now=now, before={"state": "dead"},
                 after={"state": "pending", "kind": job.kind})  # fmt: skip


def replay_job(session: Session, job_id: int, *, now: datetime, actor: str) -> int:
    try:
        new_id = jobs.replay(session, job_id, now=now)
    except jobs.JobStateError as error:
        raise NotActionable(str(error)) from None
    audit.record(session, actor, "job.replay", "job", job_id, now=now, after={"replayed_as": new_id})
    return new_id
