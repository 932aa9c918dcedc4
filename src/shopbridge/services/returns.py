"""Returns taken by a channel that fulfils orders (a POS returns desk) for an order taken in another channel (TikTok),
turned into one refund on the order's channel for exactly the returned lines and units.

The hub's part is channel-neutral:

- ``record_store_return`` keeps each return once per (account, return id), whatever is replayed; finds the order
  its reference names; checks its lines against what the order sold and what earlier returns took back; restocks
  the restockable units of SKUs whose stock the hub keeps (a SKU an external master keeps is restocked there and
  mirrored); and queues ``<channel>.refund_return`` on the order's channel (payload ``{"return_id"}``);
- the channel's job reports ``refunded`` (the refund's id, status and amount, from the channel's own calculation)
  or ``refund_refused`` (the channel's reason: a ``refund_refused`` sync issue with a retry);
- a return whose order the hub cannot find is kept ``unmatched`` with a ``return_unmatched`` issue for ops.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from shopbridge.domain.money import Money
from shopbridge.runtime.jobs import enqueue
from shopbridge.services import audit
from shopbridge.services.stock import LedgerLine, record_movements
from shopbridge.store.sync_issues import raise_issue, resolve_issue
from shopbridge.store.tables import ChannelAccount, ChannelWarehouse, Order, OrderLine, OrderLink, StoreReturn, Variant

RETURN_UNMATCHED = "return_unmatched"
REFUND_REFUSED = "refund_refused"
OPEN_STATES = ("unmatched", "refunding", "refused")


def refund_kind(channel: str) -> str:
    """The job that refunds a store return on the order's ``channel``: payload ``{"return_id"}``. It reports back
    with ``refunded`` or ``refund_refused``."""
    return f"{channel}.refund_return"


class ReturnError(ValueError):
    """A return that cannot be taken as it is; the message names what is wrong."""


@dataclass(frozen=True)
class ReturnedLine:
    sku: str
    quantity: int
    restock_quantity: int


@dataclass(frozen=True)
class ReturnIn:
    """A return as the fulfilling channel reports it."""

    external_id: str
    external_location_id: str | None
    order_ref: Mapping[str, Any]  # {"channel", "order_id"} | {"link_id"} | {"hub_order_id"}, and what the channel sent
    lines: Sequence[ReturnedLine]
    returned_at: datetime

    def check(self) -> None:
        if not self.external_id.strip():
            raise ReturnError("the return has no id")
        if not self.lines:
            raise ReturnError(f"return {self.external_id} has no lines")
        for line in self.lines:
            if line.quantity <= 0:
                raise ReturnError(f"return {self.external_id}: {line.sku} has quantity {line.quantity}; it must be 1 "
                                  "or more")  # fmt: skip
            if not 0 <= line.restock_quantity <= line.quantity:
                raise ReturnError(
                    f"return {self.external_id}: {line.sku} restocks {line.restock_quantity} of {line.quantity} units;"
                    " it must be 0 to the units returned"
                )


def find_order(session: Session, account_id: int, order_ref: Mapping[str, Any]) -> Order | None:
    """The hub order a return names: by the hub's link to the fulfilling account (``link_id``: the channel reads it
    from its own reference, a POS task's), by the order's own channel and id there, or by the hub's id."""
    link_id = order_ref.get("link_id")
    if isinstance(link_id, int) and not isinstance(link_id, bool):
        link = session.get(OrderLink, link_id)
        if link is not None and link.channel_account_id == account_id:
            return session.get(Order, link.order_id)
    channel, external = str(order_ref.get("channel") or "").strip(), str(order_ref.get("order_id") or "").strip()
    if channel and external:
        found = session.scalar(
            select(Order).join(ChannelAccount, ChannelAccount.id == Order.channel_account_id)
            .where(ChannelAccount.channel == channel, Order.external_id == external)
            .order_by(Order.id).limit(1)
        )  # fmt: skip
        if found is not None:
            return found
    hub_id = order_ref.get("hub_order_id")
    if isinstance(hub_id, int) and not isinstance(hub_id, bool):
        return session.get(Order, hub_id)
    return None


def returned_before(session: Session, order_id: int, *, besides: int | None = None) -> dict[str, int]:
    """Units per SKU that earlier returns of the order (not refused) took back."""
    units: dict[str, int] = defaultdict(int)
    query = select(StoreReturn).where(StoreReturn.order_id == order_id, StoreReturn.state != "refused")
    for row in session.scalars(query):
        if row.id == besides:
            continue
        for line in (row.lines or {}).get("lines", []):
            units[str(line["sku"])] += int(line["quantity"])
    return dict(units)


def record_store_return(session: Session, account: ChannelAccount, returned: ReturnIn, *,
                        now: datetime) -> tuple[StoreReturn, bool]:  # fmt: skip
    """Keep a return once, and start its refund. Returns the row and whether it is new (a replay is not)."""
    returned.check()
    known = session.scalar(
        select(StoreReturn).where(
            StoreReturn.channel_account_id == account.id, StoreReturn.external_id == returned.external_id
        )
    )
    if known is not None:
        return known, False
    order = find_order(session, account.id, returned.order_ref)
    row = StoreReturn(
        channel_account_id=account.id, external_id=returned.external_id,
        external_location_id=returned.external_location_id, order_ref=dict(returned.order_ref),
        order_id=order.id if order is not None else None, returned_at=returned.returned_at,
        lines={"lines": [{"sku": line.sku, "quantity": line.quantity, "restock_quantity": line.restock_quantity}
                         for line in returned.lines]},
        state="refunding", created_at=now, updated_at=now,
    )  # fmt: skip
    session.add(row)
    session.flush()
    if order is None:
        row.state = "unmatched"
        row.error = f"no order matches {_described(returned.order_ref)}"
        raise_issue(
            session, kind=RETURN_UNMATCHED, severity="error", fingerprint=f"{RETURN_UNMATCHED}:{row.id}",
            message=f"{account.label} return {row.external_id} names an order the hub does not know "
            f"({_described(returned.order_ref)}): refund the buyer on the order's channel by hand, then resolve this",
            now=now, channel_account_id=account.id, subject_type="store_return", subject_id=str(row.id),
            details={"order_ref": dict(returned.order_ref), "act": "ops"},
        )  # fmt: skip
        return row, True
    problem = _lines_problem(session, order, row, returned.lines)
    if problem is not None:
        _refuse(session, row, order, problem, now=now)
        return row, True
    _restock(session, account, row, returned, now=now)
    origin = session.get(ChannelAccount, order.channel_account_id)
    assert origin is not None
    _ask_refund(session, origin, row, now=now)
    return row, True


def _described(order_ref: Mapping[str, Any]) -> str:
    return ", ".join(f"{key} {value}" for key, value in sorted(order_ref.items())) or "no reference"


def _lines_problem(session: Session, order: Order, row: StoreReturn, lines: Sequence[ReturnedLine]) -> str | None:
    sold: dict[str, int] = defaultdict(int)
    for order_line in session.scalars(select(OrderLine).where(OrderLine.order_id == order.id)):
        sold[order_line.sku or order_line.external_sku_id or ""] += order_line.quantity
    before = returned_before(session, order.id, besides=row.id)
    asked: dict[str, int] = defaultdict(int)
    for line in lines:
        asked[line.sku] += line.quantity
    for sku, units in sorted(asked.items()):
        if sku not in sold:
            return f"{sku} is not on order {order.external_id}"
        left = sold[sku] - before.get(sku, 0)
        if units > left:
            return f"{units} units of {sku} returned, but order {order.external_id} has {left} left to return"
    return None


def _restock(session: Session, account: ChannelAccount, row: StoreReturn, returned: ReturnIn, *,
             now: datetime) -> None:  # fmt: skip
    """Restockable units of SKUs the hub keeps go back to the location the return desk is mapped to (a SKU an
    external master keeps is restocked by that master, and mirrored); damaged units are not restocked."""
    location = session.scalar(
        select(ChannelWarehouse.location_id).where(
            ChannelWarehouse.channel_account_id == account.id,
            ChannelWarehouse.external_warehouse_id == (returned.external_location_id or ""),
        )
    )
    if location is None:
        return
    lines = []
    for line in returned.lines:
        variant = session.scalar(select(Variant).where(Variant.sku == line.sku))
        if variant is None or variant.stock_source != "hub" or not line.restock_quantity:
            continue
        lines.append(LedgerLine(f"return:{row.id}:{variant.id}", variant.id, location, "return", line.restock_quantity,
                                f"return:{row.id}"))  # fmt: skip
    if lines:
        record_movements(session, lines, source="hub", now=now)


def _ask_refund(session: Session, origin: ChannelAccount, row: StoreReturn, *, now: datetime) -> int:
    row.state, row.error, row.updated_at = "refunding", None, now
    return enqueue(session, refund_kind(origin.channel), {"return_id": row.id}, now=now,
                   identity_key=f"refund:{row.id}", channel_account_id=origin.id, priority=5,
                   order_id=row.order_id)  # fmt: skip


def refunded(session: Session, return_id: int, *, external_id: str, status: str | None, amount: Money | None,
             now: datetime) -> None:  # fmt: skip
    """The order's channel has the refund (just opened, or found from an attempt whose answer was lost)."""
    row = session.get(StoreReturn, return_id, with_for_update=True)
    if row is None:
        return
    row.state, row.refund_external_id, row.refund_status, row.error = "refunded", external_id, status, None
    if amount is not None:
        row.refund_minor, row.currency = amount.to_minor(), amount.currency
    row.updated_at = now
    resolve_issue(session, f"{REFUND_REFUSED}:{row.id}", now)


def refund_refused(session: Session, return_id: int, problem: str, *, now: datetime) -> None:
    """The order's channel would not refund the return (``problem``: its reason): kept as refused, with a
    ``refund_refused`` issue whose retry asks again."""
    row = session.get(StoreReturn, return_id, with_for_update=True)
    if row is None or row.state == "refunded":
        return
    order = session.get(Order, row.order_id) if row.order_id is not None else None
    _refuse(session, row, order, problem, now=now)


def _refuse(session: Session, row: StoreReturn, order: Order | None, problem: str, *, now: datetime) -> None:
    row.state, row.error, row.updated_at = "refused", problem, now
    account = session.get(ChannelAccount, row.channel_account_id)
    label = account.label if account is not None else "the store"
    about = f" of order {order.external_id}" if order is not None else ""
    raise_issue(
        session, kind=REFUND_REFUSED, severity="error", fingerprint=f"{REFUND_REFUSED}:{row.id}",
        message=f"{label} return {row.external_id}{about} was not refunded: {problem}. Fix the cause, then retry",
        now=now, channel_account_id=row.channel_account_id, subject_type="store_return", subject_id=str(row.id),
        details={"order_id": row.order_id, "act": "ops"},
    )  # fmt: skip


class NotRetryable(ReturnError):
    pass


def retry_refund(session: Session, return_id: int, *, now: datetime, actor: str) -> int:
    """Ask the order's channel again for a refused return's refund (its cause fixed). Returns the job id."""
    row = session.get(StoreReturn, return_id, with_for_update=True)
    if row is None:
        raise NotRetryable(f"return {return_id} does not exist")
    if row.state != "refused" or row.order_id is None:
        raise NotRetryable(f"return {row.external_id} is {row.state}: only a refused refund can be retried")
    order = session.get(Order, row.order_id)
    assert order is not None
    origin = session.get(ChannelAccount, order.channel_account_id)
    assert origin is not None
    job_id = _ask_refund(session, origin, row, now=now)
    audit.record(session, actor, "return.retry_refund", "store_return", row.id, now=now,
                 before={"state": "refused"}, after={"state": "refunding"})  # fmt: skip
    return job_id


def returns_of(session: Session, *, state: str | None = None, limit: int = 200) -> list[StoreReturn]:
    query = select(StoreReturn).order_by(StoreReturn.returned_at.desc(), StoreReturn.id.desc()).limit(limit)
    if state:
        query = query.where(StoreReturn.state == state)
    return list(session.scalars(query))
