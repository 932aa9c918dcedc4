"""Cancellations staff make: answering a buyer's request (approve or reject) before the channel's deadline, and
cancelling an order outright.

An answer is the channel's work (``<channel>.answer_cancellation``, services/fulfilment.py): the request waits as
``approving`` or ``rejecting`` until the channel confirms it. Cancelling an order is the work of the channel it was
taken in (``<channel>.cancel_order``), whose cancellation then comes back like any other (stock released, the store
order cancelled); an order staff entered in the hub is cancelled here at once."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import case, select
from sqlalchemy.orm import Session

from shopbridge.domain.orders import CancelReason, OrderStatus, progress
from shopbridge.runtime.jobs import enqueue
from shopbridge.services import audit, manual_orders, orders
from shopbridge.services.fulfilment import answer_cancellation_kind, cancel_kind
from shopbridge.store.tables import CancellationRequest, ChannelAccount, Order

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


class UnknownOrder(CancellationError):
    pass


class NotCancellable(CancellationError):
    """The order is cancelled or shipped already, or its channel's orders are cancelled in the channel itself."""


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
            identity_key=f"answer-cancellation:{request.id}", priority=10, order_id=request.order_id)  # fmt: skip
    audit.record(session, actor, "cancellation.approve" if approve else "cancellation.reject", "cancellation_request",
                 request.id, now=now, before=before,
                 after={"state": request.state, **({"reason": reason} if reason else {})})  # fmt: skip
    return request_view(request, account)


@dataclass(frozen=True)
class Cancelling:
    """What cancelling an order did: cancelled at once (an order of the hub's own), or asked of its channel."""

    order_id: int
    done: bool
    message: str


def can_cancel(status: str) -> bool:
    """An order can be cancelled until it ships (a shipped one comes back as a return)."""
    state = OrderStatus(status)
    return state is not OrderStatus.CANCELLED and progress(state) <= progress(OrderStatus.PARTIALLY_SHIPPED)


def cancels_from_hub(channel: str, cancelling_channels: frozenset[str]) -> bool:
    """Whether staff can cancel the orders of ``channel`` from the hub: the hub's own (entered by staff), or a
    channel in ``cancelling_channels`` (Hub.cancelling_channels)."""
    return channel == manual_orders.CHANNEL or channel in cancelling_channels


def cancel_order(session: Session, order_id: int, reason: str, *, actor: str, now: datetime,
                 cancelling_channels: frozenset[str]) -> Cancelling:  # fmt: skip
    """Cancel an order on staff's word, with a ``CancelReason``. An order entered in the hub is cancelled here; one
    of a channel in ``cancelling_channels`` is cancelled by that channel's ``cancel_order`` job (once). Refused for
    an order already cancelled or shipped, and for a channel whose orders are cancelled in its own admin."""
    if reason not in set(CancelReason):
        raise CancellationError(f"reason must be one of {', '.join(CancelReason)}, got {reason!r}")
    order = session.get(Order, order_id, with_for_update=True)
    if order is None:
        raise UnknownOrder(f"order {order_id} does not exist")
    account = session.get(ChannelAccount, order.channel_account_id)
    assert account is not None
    if order.status == OrderStatus.CANCELLED:
        raise NotCancellable(f"order {order.external_id} is cancelled already")
    if not can_cancel(order.status):
        raise NotCancellable(f"order {order.external_id} is {order.status.replace('_', ' ')}: it has shipped, so "
                                "it comes back as a return, not a cancellation")  # fmt: skip
    if not cancels_from_hub(account.channel, cancelling_channels):
        raise NotCancellable(f"{account.label} orders are cancelled in {account.label} itself; the hub follows")
    before = {"status": order.status, "channel_status": order.channel_status}
    if account.channel == manual_orders.CHANNEL:
        orders.cancel_here(session, order.id, now=now, source=f"hub:{actor}")
        result = Cancelling(order.id, True, f"order {order.external_id} cancelled; its units are free again")
    else:
        enqueue(session, cancel_kind(account.channel), {"order_id": order.id, "reason": reason, "source": "hub"},
                now=now, identity_key=f"cancel-origin:{order.id}", channel_account_id=account.id, priority=20,
                order_id=order.id)  # fmt: skip
        result = Cancelling(order.id, False, f"{account.label} is asked to cancel order {order.external_id}; the "
                            "order shows cancelled once it confirms")  # fmt: skip
    audit.record(session, actor, "order.cancel", "order", order.id, now=now, before=before,
                 after={"reason": reason, "done": result.done})  # fmt: skip
    return result
