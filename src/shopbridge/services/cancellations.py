"""Buyers' cancellation requests across channels: list them, and answer one (approve or reject) before the
channel's deadline. The answer is the channel's work (``<channel>.answer_cancellation``, services/fulfilment.py):
the request waits as ``approving`` or ``rejecting`` until the channel confirms it."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import case, select
from sqlalchemy.orm import Session

from shopbridge.runtime.jobs import enqueue
from shopbridge.services import audit
from shopbridge.services.fulfilment import answer_cancellation_kind
from shopbridge.store.tables import CancellationRequest, ChannelAccount

STATES = ("pending", "approving", "rejecting", "approved", "rejected", "closed")
MAX_REASON = 500


class CancellationError(ValueError):
    """A request that cannot be answered; the message says why."""


class UnknownRequest(CancellationError):
    pass


class AlreadyAnswered(CancellationError):
    pass


class PastDeadline(CancellationError):
    pass


def request_view(request: CancellationRequest, account: ChannelAccount) -> dict[str, Any]:
    def at(moment: datetime | None) -> str | None:
        return moment.isoformat() if moment is not None else None

    return {
        "id": request.id, "channel": account.channel, "channel_account_id": account.id,
        "channel_label": account.label, "external_id": request.external_id,
        "external_order_id": request.external_order_id, "order_id": request.order_id, "state": request.state,
        "channel_status": request.channel_status, "reason": request.reason, "respond_by": at(request.respond_by),
        "requested_at": at(request.requested_at), "answered_at": at(request.answered_at),
        "answered_by": request.answered_by, "error": request.error,
    }  # fmt: skip


def list_requests(session: Session, state: str | None = None, *, limit: int = 500) -> list[dict[str, Any]]:
    """Requests, those due soonest first (then the newest); ``state`` keeps one state."""
    if state is not None and state not in STATES:
        raise CancellationError(f"state must be one of {', '.join(STATES)}, got {state!r}")
    query = (
        select(CancellationRequest, ChannelAccount)
        .join(ChannelAccount, ChannelAccount.id == CancellationRequest.channel_account_id)
        .order_by(case((CancellationRequest.respond_by.is_(None), 1), else_=0), CancellationRequest.respond_by,
                  CancellationRequest.id.desc())
        .limit(limit)
    )  # fmt: skip
    if state is not None:
        query = query.where(CancellationRequest.state == state)
    return [request_view(request, account) for request, account in session.execute(query).all()]


def answer(
    session: Session, request_id: int, approve: bool, *, actor: str, now: datetime, reason: str | None = None
) -> dict[str, Any]:
    """Approve or reject a pending request: it becomes ``approving`` or ``rejecting`` and the channel's answer job
    is queued (once per request). ``reason`` goes with a rejection. Refused for an unknown request, one already
    answered (or settled on the channel) and one whose deadline has passed (the channel decided it by then)."""
    request = session.scalar(select(CancellationRequest).where(CancellationRequest.id == request_id).with_for_update())
    if request is None:
        raise UnknownRequest(f"cancellation request {request_id} does not exist")
    if request.state != "pending":
        raise AlreadyAnswered(f"cancellation request {request_id} is {request.state}, not pending: it cannot be "
                              "answered again")  # fmt: skip
    if request.respond_by is not None and request.respond_by <= now:
        raise PastDeadline(f"cancellation request {request_id} had to be answered by {request.respond_by.isoformat()}")
    if reason is not None and len(reason) > MAX_REASON:
        raise CancellationError(f"the reason may hold at most {MAX_REASON} characters, got {len(reason)}")
    account = session.get(ChannelAccount, request.channel_account_id)
    assert account is not None
    before = {"state": request.state}
    request.state = "approving" if approve else "rejecting"
    request.answered_by, request.error, request.updated_at = actor, None, now
    payload: dict[str, Any] = {"request_id": request.id, "approve": approve}
    if reason and not approve:
        payload["reason"] = reason
    enqueue(session, answer_cancellation_kind(account.channel), payload, now=now, channel_account_id=account.id,
            identity_key=f"answer-cancellation:{request.id}", priority=10)  # fmt: skip
    audit.record(session, actor, "cancellation.approve" if approve else "cancellation.reject", "cancellation_request",
                 request.id, now=now, before=before,
                 after={"state": request.state, **({"reason": reason} if reason else {})})  # fmt: skip
    return request_view(request, account)
