"""Returns as staff see them: buyers' return and refund requests on a marketplace, answered (approve or reject)
before the channel's deadline, and the returns a store took back (services/returns.py) with their refunds.

An answer is the channel's work (``<channel>.answer_return``, payload ``{"request_id", "approve", "reason"?}``): the
request waits as ``approving`` or ``rejecting`` until the channel confirms it, and the channel chooses the decision
for the step it waits for (a refund, a return, the goods sent back)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import case, select
from sqlalchemy.orm import Session, aliased

from shopbridge.domain.money import Money
from shopbridge.runtime.jobs import enqueue
from shopbridge.services import audit
from shopbridge.store.tables import ChannelAccount, Order, ReturnRequest, StoreReturn

STATES = ("pending", "approving", "rejecting", "approved", "rejected", "closed")
RETURN_STATES = ("unmatched", "refunding", "refunded", "refused")
MAX_REASON = 500


def answer_return_kind(channel: str) -> str:
    """The job that answers a buyer's return request on ``channel``: payload ``{"request_id", "approve",
    "reason"?}``."""
    return f"{channel}.answer_return"


class ReturnRequestError(ValueError):
    """A request that cannot be answered (or a filter that cannot be used); the message says why."""


class UnknownRequest(ReturnRequestError):
    pass


class AlreadyAnswered(ReturnRequestError):
    pass


class PastDeadline(ReturnRequestError):
    pass


def _at(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def _amount(minor: int | None, currency: str | None) -> str | None:
    return str(Money.from_minor(minor, currency).amount) if minor is not None and currency else None


def request_view(request: ReturnRequest, account: ChannelAccount) -> dict[str, Any]:
    return {
        "id": request.id, "channel": account.channel, "channel_account_id": account.id,
        "channel_label": account.label, "external_id": request.external_id,
        "external_order_id": request.external_order_id, "order_id": request.order_id,
        "request_type": request.request_type, "state": request.state, "channel_status": request.channel_status,
        "next_action": request.next_action, "reason": request.reason,
        "refund": _amount(request.refund_minor, request.currency), "currency": request.currency,
        "lines": list((request.lines or {}).get("lines", [])), "respond_by": _at(request.respond_by),
        "requested_at": _at(request.requested_at), "answered_at": _at(request.answered_at),
        "answered_by": request.answered_by, "error": request.error,
    }  # fmt: skip


def list_requests(session: Session, state: str | None = None, *, limit: int = 500) -> list[dict[str, Any]]:
    """Requests, those due soonest first (then the newest); ``state`` keeps one state."""
    if state is not None and state not in STATES:
        raise ReturnRequestError(f"state must be one of {', '.join(STATES)}, got {state!r}")
    query = (
        select(ReturnRequest, ChannelAccount)
        .join(ChannelAccount, ChannelAccount.id == ReturnRequest.channel_account_id)
        .order_by(case((ReturnRequest.respond_by.is_(None), 1), else_=0), ReturnRequest.respond_by,
                  ReturnRequest.id.desc())
        .limit(limit)
    )  # fmt: skip
    if state is not None:
        query = query.where(ReturnRequest.state == state)
    return [request_view(request, account) for request, account in session.execute(query).all()]


def answer(
    session: Session, request_id: int, approve: bool, *, actor: str, now: datetime, reason: str | None = None
) -> dict[str, Any]:
    """Approve or reject a pending request: it becomes ``approving`` or ``rejecting`` and the channel's answer job
    is queued (once per request). ``reason`` goes with a rejection. Refused for an unknown request, one already
    answered (or settled on the channel) and one whose deadline has passed (the channel decided it by then)."""
    request = session.scalar(select(ReturnRequest).where(ReturnRequest.id == request_id).with_for_update())
    if request is None:
        raise UnknownRequest(f"return request {request_id} does not exist")
    if request.state != "pending":
        raise AlreadyAnswered(f"return request {request_id} is {request.state}, not pending: it cannot be answered "
                              "again")  # fmt: skip
    if request.respond_by is not None and request.respond_by <= now:
        raise PastDeadline(f"return request {request_id} had to be answered by {request.respond_by.isoformat()}")
    if reason is not None and len(reason) > MAX_REASON:
        raise ReturnRequestError(f"the reason may hold at most {MAX_REASON} characters, got {len(reason)}")
    account = session.get(ChannelAccount, request.channel_account_id)
    assert account is not None
    before = {"state": request.state, "next_action": request.next_action}
    request.state = "approving" if approve else "rejecting"
    request.answered_by, request.error, request.updated_at = actor, None, now
    payload: dict[str, Any] = {"request_id": request.id, "approve": approve}
    if reason and not approve:
        payload["reason"] = reason
    enqueue(session, answer_return_kind(account.channel), payload, now=now, channel_account_id=account.id,
            identity_key=f"answer-return:{request.id}", priority=10, order_id=request.order_id)  # fmt: skip
    audit.record(session, actor, "return_request.approve" if approve else "return_request.reject", "return_request",
                 request.id, now=now, before=before,
                 after={"state": request.state, **({"reason": reason} if reason else {})})  # fmt: skip
    return request_view(request, account)


def return_view(row: StoreReturn, taken_by: ChannelAccount, order: Order | None,
                sold_by: ChannelAccount | None) -> dict[str, Any]:  # fmt: skip
    return {
        "id": row.id, "channel_account_id": taken_by.id, "channel_label": taken_by.label,
        "external_id": row.external_id, "external_location_id": row.external_location_id,
        "order_id": row.order_id, "external_order_id": order.external_id if order is not None else None,
        "order_channel": sold_by.channel if sold_by is not None else None,
        "order_channel_label": sold_by.label if sold_by is not None else None,
        "lines": list((row.lines or {}).get("lines", [])), "state": row.state,
        "refund_external_id": row.refund_external_id, "refund_status": row.refund_status,
        "refund": _amount(row.refund_minor, row.currency), "currency": row.currency, "error": row.error,
        "returned_at": _at(row.returned_at), "updated_at": _at(row.updated_at),
    }  # fmt: skip


def list_returns(session: Session, state: str | None = None, *, limit: int = 500) -> list[dict[str, Any]]:
    """Returns stores took back, the newest first, with the order they name and its refund; ``state`` keeps one
    state (unmatched, refunding, refunded, refused)."""
    if state is not None and state not in RETURN_STATES:
        raise ReturnRequestError(f"state must be one of {', '.join(RETURN_STATES)}, got {state!r}")
    taken_by, sold_by = aliased(ChannelAccount), aliased(ChannelAccount)
    query = (
        select(StoreReturn, taken_by, Order, sold_by)
        .join(taken_by, taken_by.id == StoreReturn.channel_account_id)
        .outerjoin(Order, Order.id == StoreReturn.order_id)
        .outerjoin(sold_by, sold_by.id == Order.channel_account_id)
        .order_by(StoreReturn.returned_at.desc(), StoreReturn.id.desc())
        .limit(limit)
    )  # fmt: skip
    if state is not None:
        query = query.where(StoreReturn.state == state)
    return [return_view(*row) for row in session.execute(query).all()]
