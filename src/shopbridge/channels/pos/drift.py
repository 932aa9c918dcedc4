"""The POS's side of the status drift detector (services/drift.py): ``pos.check_drift`` reads what the POS shows of
the orders the hub placed there as fulfilment tasks, and of the returns its desks took back, and hands both to the
hub to compare. It is also the backstop for lost ``task.updated`` and ``return.completed`` events: what such an
event would have told the hub is found here, reported as drift, and repaired (a shipment recorded and its tracking
sent, a return recorded and refunded, a cancellation asked again or taken to the order's channel).

The tasks are read with ``GET /fulfilment-tasks?updated_since=`` from the oldest checked link's creation (a task is
created after its link, so every task of a checked link is in that listing; one that is not is missing at the POS).
The returns are read with ``GET /returns?updated_since=`` from the last check's start (less an overlap), and each
is matched to the order link it names; one whose order the hub cannot find is recorded as any return is (kept
unmatched, with an issue for ops).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from functools import partial
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from shopbridge.channels.pos.context import NAME, PosContext, read_account, setting
from shopbridge.channels.pos.events import returned_lines
from shopbridge.channels.pos.kinds import TAKE_EVENT
from shopbridge.channels.pos.tasks import DONE, Task, fulfilment_of, parse_ref
from shopbridge.domain.clock import parse_instant
from shopbridge.domain.drift import FulfillerStatus
from shopbridge.domain.orders import CancelReason
from shopbridge.logs import get_logger
from shopbridge.runtime.errors import PermanentError
from shopbridge.runtime.registry import JobContext, JobRegistry
from shopbridge.services import drift
from shopbridge.services.drift import FulfillerReading
from shopbridge.services.returns import ReturnIn, find_order, record_store_return
from shopbridge.store.db import reading
from shopbridge.store.tables import ChannelAccount, Job, OrderLink

log = get_logger("shopbridge.pos.drift")

CHECK_DRIFT = drift.check_kind(NAME)
OVERLAP = timedelta(minutes=2)  # returns are read this far before the last check's start: clocks differ
FIRST_LOOK = timedelta(days=1)  # a first check reads the returns of the last day

STATUS: dict[str, FulfillerStatus] = {
    "open": "open", "picking": "in_progress", "picked": "in_progress", "packed": "in_progress",
    "shipped": "shipped", "collected": "shipped", "cancelled": "cancelled",
}  # fmt: skip


def return_in(data: Mapping[str, Any]) -> ReturnIn:
    """A return as ``GET /returns`` lists it (§4.7), as the hub records returns; ValueError naming what is wrong."""
    order_ref: dict[str, Any] = dict(data.get("order_ref") or {})
    link_id = parse_ref(order_ref.get("task_ref"))
    if link_id is not None:
        order_ref["link_id"] = link_id
    return ReturnIn(str(data.get("return_id") or ""), str(data.get("location_id") or "") or None, order_ref,
                    returned_lines(data), parse_instant(str(data.get("occurred_at") or "")))  # fmt: skip


def _pending_refs(session: Session, account_id: int) -> set[int]:
    """The links named by events of the account the hub has taken but not yet applied (their jobs wait or run): a
    difference about them is a change on its way, not drift."""
    waiting = (Job.kind == TAKE_EVENT, Job.channel_account_id == account_id, Job.state.in_(("pending", "running")))
    payloads = session.scalars(select(Job.payload).where(*waiting))
    links: set[int] = set()
    for payload in payloads:
        data = (payload or {}).get("data") or {}
        for reference in (data.get("task_ref"), (data.get("order_ref") or {}).get("task_ref")):
            link_id = parse_ref(reference)
            if link_id is not None:
                links.add(link_id)
    return links


def check_drift(context: PosContext, ctx: JobContext) -> None:
    if ctx.channel_account_id is None:
        raise PermanentError(f"{ctx.kind} job {ctx.job_id} names no channel account")
    account = read_account(context, ctx.channel_account_id)
    if account.status != "active":
        return  # a POS being reconnected is checked once it is back
    with reading(context.sessions) as session:
        links = {link.id: (link.external_id, link.created_at)
                 for link in drift.links_to_check(session, account.id, ctx.payload, now=ctx.now)}  # fmt: skip
        named = ctx.payload.get("orders") if ctx.payload else None
        if named:  # a confirmation: the named orders' links, whatever their state (a return's order is delivered)
            links |= {link.id: (link.external_id, link.created_at) for link in session.scalars(
                select(OrderLink).where(OrderLink.channel_account_id == account.id,
                                        OrderLink.order_id.in_([int(order) for order in named])))}  # fmt: skip
        pending = _pending_refs(session, account.id)
    client = context.client_for(account)
    tasks: dict[int, Task] = {}
    if links:
        since = min(created for _, created in links.values()) - timedelta(minutes=1)
        for found in client.tasks_since(since.isoformat()):
            link_id = parse_ref(found.get("task_ref"))
            if link_id in links:
                try:
                    tasks[link_id] = Task.of(found)
                except ValueError as error:
                    log.warning("pos.drift_task_unreadable", account_id=account.id, task=found.get("task_id"),
                                reason=str(error))  # fmt: skip
    marks = dict(setting(account, "watermarks", {}) or {})
    returns_since = marks.get("returns") or (ctx.now - FIRST_LOOK).isoformat()
    returned: list[ReturnIn] = []
    for found in client.returns_since(returns_since):
        try:
            returned.append(return_in(found))
        except ValueError as error:
            log.warning("pos.drift_return_unreadable", account_id=account.id, ret=found.get("return_id"),
                        reason=str(error))  # fmt: skip
    session, now = ctx.session, ctx.write_time()
    stored = session.get(ChannelAccount, account.id, with_for_update=True)
    assert stored is not None
    by_link: dict[int, list[ReturnIn]] = {}
    for item in returned:
        order = find_order(session, account.id, item.order_ref)
        link_id = session.scalar(
            select(OrderLink.id).where(OrderLink.order_id == order.id, OrderLink.channel_account_id == account.id)
        ) if order is not None else None  # fmt: skip
        if link_id is None:
            record_store_return(session, stored, item, now=now)  # kept (unmatched: an issue says so), never lost
            continue
        by_link.setdefault(link_id, []).append(item)
    readings = []
    for link_id in sorted(set(links) | set(by_link)):
        task = tasks.get(link_id)
        if task is not None:
            status = STATUS[task.status]
        elif link_id not in links:
            status = "shipped"  # a delivered order's link, read for its returns only
        elif links[link_id][0]:
            status = "missing"  # placed, but the POS lists no task for it
        else:
            continue  # not placed yet: nothing at the POS to compare
        shipments = (fulfilment_of(session, task, now=now),) if task is not None and task.status in DONE else ()
        readings.append(FulfillerReading(
            link_id=link_id, status=status, shipments=shipments, returns=tuple(by_link.get(link_id, ())),
            words=task.status if task is not None else None, pending_event=link_id in pending,
            cancel_reason=CancelReason.STAFF if status == "cancelled" else None,
        ))  # fmt: skip
    drift.record_fulfiller_readings(session, stored, readings, payload=ctx.payload, now=now)
    if not named:
        watermark = (ctx.now - OVERLAP).isoformat()
        stored.settings = {**(stored.settings or {}), "watermarks": {**marks, "returns": watermark}}


def register(registry: JobRegistry, context: PosContext) -> None:
    registry.register(CHECK_DRIFT, partial(check_drift, context), serial=True, priority=drift.PRIORITY)
