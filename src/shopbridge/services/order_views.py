"""Reading the order queue (API and CLI) and retrying a blocked order."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from shopbridge.domain.money import Money
from shopbridge.runtime.jobs import enqueue
from shopbridge.services import audit, fulfilment
from shopbridge.store.tables import ChannelAccount, Job, JobAttempt, Order, OrderEvent, OrderLine, OrderStatusChange


class OrderNotFound(LookupError):
    pass


class BadCursor(ValueError):
    pass


@dataclass(frozen=True)
class OrderFilter:
    channel: str | None = None
    status: str | None = None
    blocked: bool | None = None
    updated_since: datetime | None = None


def _money(minor: int | None, currency: str) -> str | None:
    return None if minor is None else str(Money.from_minor(minor, currency).amount)


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


# The columns a summary needs: lists read just these, not whole rows with their JSON documents.
SUMMARY_COLUMNS = (
    Order.id, Order.channel_account_id, Order.external_id, Order.channel_status, Order.status, Order.currency,
    Order.total_minor, Order.blocked_reason, Order.blocked_message, Order.released_at, Order.channel_created_at,
    Order.channel_updated_at, Order.updated_at, ChannelAccount.channel, ChannelAccount.label,
)  # fmt: skip


def summary(order: Any, channel: str, label: str) -> dict[str, Any]:
    """One order's summary, from an Order row or a row of SUMMARY_COLUMNS."""
    return {
        "id": order.id,
        "channel": channel,
        "channel_label": label,
        "channel_account_id": order.channel_account_id,
        "external_id": order.external_id,
        "channel_status": order.channel_status,
        "status": order.status,
        "currency": order.currency,
        "total": _money(order.total_minor, order.currency),
        "blocked": {"reason": order.blocked_reason, "message": order.blocked_message} if order.blocked_reason else None,
        "released_at": _iso(order.released_at),
        "channel_created_at": _iso(order.channel_created_at),
        "channel_updated_at": _iso(order.channel_updated_at),
        "updated_at": _iso(order.updated_at),
    }


def encode_cursor(order: Any) -> str:
    raw = json.dumps([order.updated_at.isoformat(), order.id]).encode()
    return base64.urlsafe_b64encode(raw).decode()


def decode_cursor(cursor: str) -> tuple[datetime, int]:
    try:
        moment, order_id = json.loads(base64.urlsafe_b64decode(cursor.encode()))
        after, after_id = datetime.fromisoformat(moment).astimezone(UTC), int(order_id)
    except (ValueError, TypeError, OverflowError, RecursionError) as error:  # a forged one: a date out of range...
        raise BadCursor(f"cursor {cursor!r} is not one this API gave out") from error
    if not 0 <= after_id < 2**63:  # ... or an id no 64-bit column holds
        raise BadCursor(f"cursor {cursor!r} is not one this API gave out")
    return after, after_id


def _filtered(filters: OrderFilter) -> Any:
    query = select(*SUMMARY_COLUMNS).join(ChannelAccount, ChannelAccount.id == Order.channel_account_id)
    if filters.channel:
        query = query.where(ChannelAccount.channel == filters.channel)
    if filters.status:
        query = query.where(Order.status == filters.status)
    if filters.blocked is not None:
        query = query.where(Order.blocked_reason.is_not(None) if filters.blocked else Order.blocked_reason.is_(None))
    if filters.updated_since:
        query = query.where(Order.updated_at >= filters.updated_since)
    return query


def recent_orders(session: Session, filters: OrderFilter, *, limit: int = 50) -> list[dict[str, Any]]:
    """The most recently changed orders, newest first (for people; clients follow list_orders)."""
    rows = session.execute(_filtered(filters).order_by(Order.updated_at.desc(), Order.id.desc()).limit(limit))
    return [summary(row, row.channel, row.label) for row in rows]


def list_orders(
    session: Session, filters: OrderFilter, *, limit: int = 50, cursor: str | None = None
) -> tuple[list[dict[str, Any]], str | None]:
    """Orders in the order they last changed in the hub (oldest first), so a client can follow the queue."""
    query = _filtered(filters)
    if cursor:
        after, after_id = decode_cursor(cursor)
        query = query.where(or_(Order.updated_at > after, and_(Order.updated_at == after, Order.id > after_id)))
    rows = session.execute(query.order_by(Order.updated_at, Order.id).limit(limit + 1)).all()
    page = rows[:limit]
    next_cursor = encode_cursor(page[-1]) if len(rows) > limit else None
    return [summary(row, row.channel, row.label) for row in page], next_cursor


def order_detail(session: Session, order_id: int) -> dict[str, Any]:
    order = session.get(Order, order_id)
    if order is None:
        raise OrderNotFound(f"order {order_id} does not exist")
    account = session.get(ChannelAccount, order.channel_account_id)
    assert account is not None
    lines = session.scalars(select(OrderLine).where(OrderLine.order_id == order_id).order_by(OrderLine.id))
    history = session.scalars(
        select(OrderStatusChange).where(OrderStatusChange.order_id == order_id).order_by(OrderStatusChange.id)
    )
    events = session.scalars(select(OrderEvent).where(OrderEvent.order_id == order_id).order_by(OrderEvent.id))
    return {
        **summary(order, account.channel, account.label),
        "subtotal": _money(order.subtotal_minor, order.currency),
        "shipping": _money(order.shipping_minor, order.currency),
        "tax": _money(order.tax_minor, order.currency),
        "payment_method": order.payment_method,
        "is_cod": order.is_cod,
        "buyer": order.buyer,
        "recipient": order.recipient,
        "deadlines": {key: datetime.fromtimestamp(value, UTC).isoformat() for key, value in order.deadlines.items()},
        "packages": (order.packages or {}).get("packages", []),
        "lines": [_line(line) for line in lines],
        "history": [
            {
                "channel_status": change.channel_status,
                "status": change.status,
                "source": change.source,
                "occurred_at": _iso(change.occurred_at),
                "recorded_at": _iso(change.recorded_at),
            }
            for change in history
        ],
        "events": [{"kind": event.kind, "at": _iso(event.created_at)} for event in events],
    }


MAX_JOBS_SHOWN = 50


def sync_attempts(session: Session, order_id: int, *, limit: int = MAX_JOBS_SHOWN) -> list[dict[str, Any]]:
    """The work done for one order (placing it in a store, sending its tracking, cancelling it, re-reading it, its
    release), newest first, each with its attempts: what, when, the outcome and the error."""
    jobs = session.scalars(select(Job).where(Job.order_id == order_id).order_by(Job.id.desc()).limit(limit)).all()
    attempts: dict[int, list[dict[str, Any]]] = {job.id: [] for job in jobs}
    if jobs:
        for attempt in session.scalars(
            select(JobAttempt).where(JobAttempt.job_id.in_(list(attempts))).order_by(JobAttempt.id)
        ):
            attempts[attempt.job_id].append({
                "attempt": attempt.attempt, "started_at": _iso(attempt.started_at),
                "finished_at": _iso(attempt.finished_at), "outcome": attempt.outcome,
                "error": f"{attempt.error_type}: {attempt.error_message}" if attempt.error_type else None,
            })  # fmt: skip
    return [
        {"job_id": job.id, "kind": job.kind, "state": job.state, "attempts": attempts[job.id],
         "created_at": _iso(job.created_at), "due_at": _iso(job.due_at), "last_error": job.last_error,
         "replay_of": job.replay_of}
        for job in jobs
    ]  # fmt: skip


def _line(line: OrderLine) -> dict[str, Any]:
    return {
        "sku": line.sku,
        "external_sku_id": line.external_sku_id,
        "variant_id": line.variant_id,
        "title": line.title,
        "quantity": line.quantity,
        "unit_price": _money(line.unit_price_minor, line.currency),
        "line_item_ids": (line.line_item_ids or {}).get("ids", []),
    }


def retry_order(session: Session, order_id: int, resync_kinds: dict[str, str], *, now: datetime,
                actor: str = "system") -> int:  # fmt: skip
    """Re-run the order's sync (after its cause was fixed), and place it again in every store that refused it;
    returns the sync's job id (the first placement's, for a channel that cannot be re-synced)."""
    order = session.get(Order, order_id)
    if order is None:
        raise OrderNotFound(f"order {order_id} does not exist")
    account = session.get(ChannelAccount, order.channel_account_id)
    assert account is not None
    placements = fulfilment.place_again(session, order.id, now=now)
    kind = resync_kinds.get(account.channel)
    if kind is None:
        if not placements:
            raise OrderNotFound(f"orders of channel {account.channel} cannot be re-synced")
        job_id = placements[0]
    else:
        job_id = enqueue(
            session, kind, {"order_ids": [order.external_id], "source": "retry"}, now=now,
            channel_account_id=account.id, identity_key=f"{kind}:{account.id}:retry:{order.external_id}", priority=10,
            order_id=order.id,
        )  # fmt: skip
    audit.record(session, actor, "order.retry", "order", order.id, now=now,
                 before={"blocked_reason": order.blocked_reason}, after={"job_id": job_id})  # fmt: skip
    return job_id
