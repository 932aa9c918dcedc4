"""The dashboard's order queue: every channel's orders, the ones closest to their dispatch deadline first, then the
rest newest first; filters, search and keyset pagination that stay fast at hundreds of thousands of orders.

The order is (phase, key, id): phase 0 holds orders with a dispatch deadline (``Order.dispatch_by``, set only while
an order still has to be shipped) by deadline, then id; phase 1 the rest by id, newest first. A cursor names the last
row shown, so a page is one indexed range read whatever its depth.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Select, and_, or_, select, union
from sqlalchemy.orm import Session

from shopbridge.domain.orders import search_form
from shopbridge.services.order_views import SUMMARY_COLUMNS, BadCursor, summary
from shopbridge.store.tables import ChannelAccount, Order, OrderLine

PAGE_SIZE = 50
AT_RISK_WITHIN = timedelta(hours=6)

_COLUMNS = (*SUMMARY_COLUMNS, Order.dispatch_by, Order.deadlines)


@dataclass(frozen=True)
class QueueFilter:
    channel: str | None = None
    status: str | None = None
    blocked: bool = False
    at_risk: bool = False
    created_from: datetime | None = None  # inclusive, UTC
    created_to: datetime | None = None  # exclusive, UTC
    search: str | None = None


@dataclass
class QueuePage:
    rows: list[dict[str, Any]]
    next_cursor: str | None
    filters: QueueFilter = field(default_factory=QueueFilter)


def encode_cursor(phase: int, moment: datetime | None, order_id: int) -> str:
    raw = json.dumps([phase, moment.isoformat() if moment else None, order_id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode(cursor: str) -> tuple[int, datetime | None, int]:
    try:
        phase, moment, order_id = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        when = datetime.fromisoformat(moment).astimezone(UTC) if moment is not None else None
        order_id = int(order_id)
    except (ValueError, TypeError, OverflowError, RecursionError) as error:
        raise BadCursor(f"cursor {cursor!r} is not one this page gave out") from error
    if phase not in (0, 1) or (phase == 0) != (when is not None) or not 0 <= order_id < 2**63:
        raise BadCursor(f"cursor {cursor!r} is not one this page gave out")
    return phase, when, order_id


def _filtered(filters: QueueFilter, now: datetime) -> Select[Any]:
    query = select(*_COLUMNS).join(ChannelAccount, ChannelAccount.id == Order.channel_account_id)
    if filters.channel:
        query = query.where(ChannelAccount.channel == filters.channel)
    if filters.status:
        query = query.where(Order.status == filters.status)
    if filters.blocked:
        query = query.where(Order.blocked_reason.is_not(None))
    if filters.at_risk:
        query = query.where(Order.dispatch_by <= now + AT_RISK_WITHIN)
    if filters.created_from:
        query = query.where(Order.channel_created_at >= filters.created_from)
    if filters.created_to:
        query = query.where(Order.channel_created_at < filters.created_to)
    if filters.search:
        # The ids that match, each from its own index (one OR across the columns would read every order).
        term = filters.search.strip()
        matches = [select(OrderLine.order_id).where(OrderLine.sku == term),
                   select(Order.id).where(Order.external_id == term),
                   select(Order.id).where(Order.buyer_name == search_form(term))]  # fmt: skip
        if term.isdigit() and len(term) < 19:
            matches.append(select(Order.id).where(Order.id == int(term)))
        query = query.where(Order.id.in_(union(*matches)))
    return query


def page(session: Session, filters: QueueFilter, *, now: datetime, cursor: str | None = None,
         limit: int = PAGE_SIZE) -> QueuePage:  # fmt: skip
    """One page of the queue after ``cursor`` (the first page without one)."""
    phase, after, after_id = _decode(cursor) if cursor else (0, None, 0)
    base = _filtered(filters, now)
    rows: list[Any] = []
    if phase == 0:
        query = base.where(Order.dispatch_by.is_not(None))
        if after is not None:
            query = query.where(or_(Order.dispatch_by > after, and_(Order.dispatch_by == after, Order.id > after_id)))
        rows = list(session.execute(query.order_by(Order.dispatch_by, Order.id).limit(limit + 1)))
    if len(rows) <= limit and not filters.at_risk:
        query = base.where(Order.dispatch_by.is_(None))
        if phase == 1:
            query = query.where(Order.id < after_id)
        rows += list(session.execute(query.order_by(Order.id.desc()).limit(limit + 1 - len(rows))))
    shown = rows[:limit]
    next_cursor = None
    if len(rows) > limit:
        last = shown[-1]
        next_cursor = (
            encode_cursor(0, last.dispatch_by, last.id) if last.dispatch_by else encode_cursor(1, None, last.id)
        )
    return QueuePage([_row(row, now) for row in shown], next_cursor, filters)


def _row(row: Any, now: datetime) -> dict[str, Any]:
    shown = summary(row, row.channel, row.label)
    shown["dispatch_by"] = row.dispatch_by
    shown["risk"] = risk(row.dispatch_by, now)
    hold = (row.deadlines or {}).get("hold_until")
    shown["hold_until"] = (
        datetime.fromtimestamp(int(hold), UTC) if hold is not None and row.status == "on_hold" else None
    )
    return shown


def risk(dispatch_by: datetime | None, now: datetime) -> str | None:
    """late (past the deadline), at_risk (within AT_RISK_WITHIN), or none."""
    if dispatch_by is None:
        return None
    if dispatch_by <= now:
        return "late"
    return "at_risk" if dispatch_by <= now + AT_RISK_WITHIN else None


def channels(session: Session) -> list[str]:
    """The channels of the hub's accounts, for the filter."""
    return sorted(set(session.scalars(select(ChannelAccount.channel).distinct())))
