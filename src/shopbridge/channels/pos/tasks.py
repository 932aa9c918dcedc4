"""Released orders of other channels as POS fulfilment tasks (docs/pos-protocol.md §4.1-4.4, §3.4).

**PLACE_ORDER** routes the order to one of the POS's locations (domain/routing.py: a location with every unit first,
then the merchant's order of locations) by the levels the hub mirrors, and creates the task there. The task's
``task_ref`` is the hub's order link (``sb-<link id>``), so the POS answers a repeated creation with the task it
made: a lost answer is found, never doubled. A location that answers ``insufficient_stock`` (a till sold the last
unit meanwhile) or is inactive or offline is passed over for the next; when none can take it, the link is refused
and the order Blocked (``store_refused``) naming each location's shortage, until a retry routes it again. Once
placed, the hub's reservation follows the order to the routed location (services.fulfilment.route_to) and that
location's mirror counts it as held.

**CANCEL_ORDER** cancels the task of an order cancelled on its channel. A task already shipped or collected answers
``409 already_shipped``: the link is ``cancel_refused`` with an issue for ops to stop the parcel.

**Task progress** (the ``task.updated`` event, or the backstop's read) moves the link forward only. ``shipped``
records the shipment once per task (services.fulfilment.record_shipment), which sends the tracking to the order's
channel; ``collected`` records a handover without tracking. A task the store cancelled itself (not asked to) is
cancelled on the order's channel too, as a cancellation in any store is (services.fulfilment.cancelled_in_store).

Handlers call the POS before they first touch ctx.session; reads go through store.db.reading().
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from shopbridge.channels.pos.client import PosClient, PosRefused, PosUnavailable
from shopbridge.channels.pos.context import (
    TASK_REF_PREFIX,
    PosContext,
    mapped_locations,
    read_account,
    routing_order,
)
from shopbridge.channels.pos.kinds import CANCEL_ORDER, PLACE_ORDER
from shopbridge.channels.pos.stock import remirror_link, sellable
from shopbridge.domain.clock import parse_instant
from shopbridge.domain.orders import CancelReason
from shopbridge.domain.routing import route
from shopbridge.logs import get_logger
from shopbridge.runtime.errors import PermanentError, RetryableError
from shopbridge.runtime.registry import JobContext, JobRegistry
from shopbridge.services.fulfilment import (
    Fulfilment,
    cancel_confirmed,
    cancel_refused_by_store,
    cancelled_in_store,
    placed_in_store,
    record_shipment,
    refused_by_store,
    route_to,
)
from shopbridge.store.db import reading
from shopbridge.store.tables import ChannelAccount, Order, OrderLine, OrderLink, Variant

log = get_logger("shopbridge.pos.tasks")

# A task's statuses in the order they happen (§3.4); a task never moves back.
STATUSES = ("open", "picking", "picked", "packed", "shipped", "collected", "cancelled")
RANK = {status: rank for rank, status in enumerate(STATUSES)}
DONE = ("shipped", "collected")
CANCELLABLE = ("cancel_requested", "cancel_refused")  # cancel_refused: a replayed job tries again
PASSED_OVER = ("insufficient_stock", "location_inactive", "unknown_location")


# --- references ------------------------------------------------------------------------------------------------


def task_ref(link_id: int) -> str:
    return f"{TASK_REF_PREFIX}{link_id}"


def parse_ref(reference: object) -> int | None:
    """The link a task reference the hub gave names, or None for any other reference."""
    text = str(reference or "")
    number = text.removeprefix(TASK_REF_PREFIX)
    return int(number) if text.startswith(TASK_REF_PREFIX) and number.isdigit() else None


# --- a task as the POS describes it ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Task:
    """A task as an event or an API answer gives it (the fields the hub reads)."""

    task_id: str
    task_ref: str
    status: str
    location_id: str | None
    shipment: Mapping[str, Any] | None

    @classmethod
    def of(cls, data: Mapping[str, Any], location_id: str | None = None) -> Task:
        """Read a task; ValueError naming the field that is wrong."""
        task_id, reference, status = data.get("task_id"), data.get("task_ref"), data.get("status")
        if not isinstance(task_id, str) or not task_id.strip():
            raise ValueError("task_id: a non-empty string is required")
        if not isinstance(reference, str) or not reference.strip():
            raise ValueError("task_ref: a non-empty string is required")
        if status not in RANK:
            raise ValueError(f"status: one of {', '.join(STATUSES)} is required, got {status!r}")
        shipment = data.get("shipment")
        if shipment is not None and not isinstance(shipment, Mapping):
            raise ValueError("shipment: an object or null is required")
        if status in DONE and shipment is None:
            raise ValueError(f"shipment: a {status} task must carry its shipment")
        where = data.get("location_id") or location_id
        return cls(task_id.strip(), reference.strip(), str(status), str(where) if where else None, shipment)


def fulfilment_of(session: Session, task: Task, *, now: datetime) -> Fulfilment:
    """The task's shipment as the hub records it (collected at the store: no carrier, no tracking)."""
    shipment = task.shipment or {}
    lines = [line for line in shipment.get("lines") or [] if isinstance(line, Mapping)]
    skus = sorted({str(line.get("sku")) for line in lines})
    variants = dict(session.execute(select(Variant.sku, Variant.id).where(Variant.sku.in_(skus))).all())
    shipped_at = parse_instant(str(shipment.get("shipped_at") or "")) if shipment.get("shipped_at") else None
    return Fulfilment(
        external_id=task.task_id,
        carrier=_text(shipment.get("carrier")),
        tracking_number=_text(shipment.get("tracking_number")),
        tracking_url=_text(shipment.get("tracking_url")),
        lines=[
            {
                "sku": str(line.get("sku")),
                "variant_id": variants.get(str(line.get("sku"))),
                "quantity": int(line.get("quantity") or 0),
            }
            for line in lines
        ],
        shipped_at=shipped_at or now,
    )


def _text(value: Any) -> str | None:
    text = str(value).strip() if value is not None else ""
    return text or None


# --- the hub's side of a task -----------------------------------------------------------------------------------


def adopt(session: Session, link_id: int, task: Task, *, now: datetime) -> OrderLink | None:
    """The POS has a task for the link (just created, or found after a lost answer, or announced by an event): the
    order's reservation follows it to the task's location, and the link is placed there."""
    link = session.get(OrderLink, link_id, with_for_update=True, populate_existing=True)
    if link is None or (link.state == "cancelled" and link.external_id == task.task_id):
        return link
    location = task.location_id
    hub_location = mapped_locations(session, link.channel_account_id).get(location or "") if location else None
    if hub_location is not None:
        route_to(session, link.order_id, hub_location, now=now)
    link.external_location_id = location or link.external_location_id
    _advance(link, task.status, now)
    placed_in_store(session, link.id, external_id=task.task_id, external_name=task.task_ref, now=now)
    session.flush()
    remirror_link(session, link, now=now)
    return link


def _advance(link: OrderLink, status: str, now: datetime) -> bool:
    """Move the link's task status forward (never back); whether it moved."""
    if link.external_status in RANK and RANK[status] <= RANK[link.external_status]:
        return False
    link.external_status, link.updated_at = status, now
    return True


def task_progress(session: Session, account: ChannelAccount, task: Task, *, now: datetime) -> str:
    """Take a task's progress (an event, or the backstop's read). Returns what it did, for the log."""
    link_id = parse_ref(task.task_ref)
    if link_id is None:
        return "not the hub's task"
    link = session.get(OrderLink, link_id, with_for_update=True, populate_existing=True)
    if link is None or link.channel_account_id != account.id:
        return "no such link"
    if link.external_id not in (None, task.task_id):
        return "another task of the link"  # not the one the hub holds: it changes nothing
    if task.status == "cancelled":
        return _task_cancelled(session, link, task, now)
    if link.state == "placing" or link.external_id is None:
        adopted = adopt(session, link.id, task, now=now)
        if adopted is None:
            return "no such link"
        link = adopted
    else:
        _advance(link, task.status, now)
    if task.status in DONE:
        shipment = record_shipment(session, link, fulfilment_of(session, task, now=now), now=now)
        return "shipment recorded" if shipment is not None else "shipment known"
    return f"task {task.status}"


def _task_cancelled(session: Session, link: OrderLink, task: Task, now: datetime) -> str:
    _advance(link, "cancelled", now)
    if link.state == "cancelled":
        return "cancellation known"
    if link.state in CANCELLABLE:
        cancel_confirmed(session, link.id, now=now)
        remirror_link(session, link, now=now)
        return "cancellation confirmed"
    # The store cancelled the task on its own (it cannot fulfil it): as for any store, the order is cancelled on
    # its channel, once.
    cancelled_in_store(session, link, CancelReason.STAFF, now=now)
    remirror_link(session, link, now=now)
    return "cancelled by the store"


# --- the jobs -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Placement:
    link_id: int
    account_id: int
    task_ref: str
    order_ref: dict[str, Any]
    lines: dict[str, int]
    problems: tuple[str, ...]
    dispatch_by: str | None
    ship_to: dict[str, str] | None


def read_placement(session: Session, link: OrderLink) -> Placement:
    order = session.get(Order, link.order_id)
    assert order is not None
    origin = session.get(ChannelAccount, order.channel_account_id)
    assert origin is not None
    lines: dict[str, int] = {}
    problems: list[str] = []
    for row in session.scalars(select(OrderLine).where(OrderLine.order_id == order.id).order_by(OrderLine.id)):
        if row.variant_id is None or not row.sku:
            problems.append(f"line {row.title or row.external_sku_id} has no SKU of the catalogue")
            continue
        lines[row.sku] = lines.get(row.sku, 0) + row.quantity
    if not lines and not problems:
        problems.append("the order has no lines")
    return Placement(
        link_id=link.id, account_id=link.channel_account_id, task_ref=task_ref(link.id),
        order_ref={"channel": origin.channel, "order_id": order.external_id, "hub_order_id": order.id},
        lines=lines, problems=tuple(problems),
        dispatch_by=order.dispatch_by.isoformat().replace("+00:00", "Z") if order.dispatch_by else None,
        ship_to=ship_to(order.recipient or {}),
    )  # fmt: skip


def ship_to(recipient: Mapping[str, Any]) -> dict[str, str] | None:
    """§4.1's ``ship_to`` from a recipient as the order's channel gave it, or None without a name, street, city and
    country (it is optional: the store then prints what it knows)."""
    levels = {d.get("address_level"): d for d in recipient.get("district_info") or [] if isinstance(d, Mapping)}
    name = recipient.get("name") or " ".join(str(recipient.get(part) or "") for part in ("first_name", "last_name"))
    address = {
        "name": str(name or "").strip(),
        "address_line1": str(recipient.get("address_line1") or "").strip(),
        "address_line2": str(recipient.get("address_line2") or "").strip(),
        "city": str(recipient.get("city") or (levels.get("L3") or levels.get("L2") or {}).get("address_name") or ""),
        "region": str((levels.get("L1") or {}).get("address_name") or recipient.get("region") or ""),
        "postal_code": str(recipient.get("postal_code") or ""),
        "country_code": str(recipient.get("region_code") or recipient.get("country_code") or ""),
        "phone": str(recipient.get("phone_number") or ""),
    }
    if not all(address[key] for key in ("name", "address_line1", "city", "country_code")):
        return None
    return {key: value for key, value in address.items() if value}


def place_order(context: PosContext, ctx: JobContext) -> None:
    """Create the order's task at the routed location, once (see the module's docstring)."""
    link_id = _payload_id(ctx, "link_id")
    with reading(context.sessions) as session:
        link = session.get(OrderLink, link_id)
        if link is None or link.state != "placing":
            log.info("pos.place_skipped", link_id=link_id, state=link.state if link else None)
            return
        placement = read_placement(session, link)
        available = sellable(session, placement.account_id, placement.lines)
    account = read_account(context, placement.account_id)
    client = context.client_for(account)
    if placement.problems:
        refused_by_store(ctx.session, link_id, "; ".join(placement.problems), now=ctx.write_time())
        return
    routed = route(placement.lines, routing_order(account), available)
    outcome = _create(client, placement, list(routed.candidates))
    if isinstance(outcome, Task):
        log.info("pos.placed", link_id=link_id, task=outcome.task_id, location=outcome.location_id)
        adopt(ctx.session, link_id, outcome, now=ctx.write_time())
        return
    refusals, offline = outcome
    if offline and not refusals:
        raise RetryableError(f"every location able to fulfil it is offline: {', '.join(offline)}", retry_after=10)
    said = "; ".join([*refusals, *(f"{where} is offline" for where in offline)]) or routed.explain()
    refused_by_store(ctx.session, link_id, said if routed.candidates else routed.explain(), now=ctx.write_time())


def _create(client: PosClient, placement: Placement, candidates: list[str]) -> Task | tuple[list[str], list[str]]:
    """Try the candidates in order: the task made (or found), or what each refused and which were offline."""
    refusals: list[str] = []
    offline: list[str] = []
    for location in candidates:
        body: dict[str, Any] = {
            "task_ref": placement.task_ref,
            "location_id": location,
            "order_ref": placement.order_ref,
            "lines": [{"sku": sku, "quantity": units} for sku, units in placement.lines.items()],
        }
        if placement.dispatch_by:
            body["dispatch_by"] = placement.dispatch_by
        if placement.ship_to:
            body["ship_to"] = placement.ship_to
        try:
            return Task.of(client.create_task(body))
        except PosRefused as refused:
            if refused.code == "task_ref_conflict":
                found = client.task_by_ref(placement.task_ref)  # an earlier attempt made it elsewhere
                if found is not None:
                    return Task.of(found)
            if refused.code in PASSED_OVER:
                refusals.append(f"{location}: {refused.message}")
                continue
            refusals.append(f"{location}: {refused}")
            return refusals, offline  # the request itself is refused: another location would refuse it too
        except PosUnavailable as unavailable:
            if "location_offline" not in str(unavailable):
                raise
            offline.append(location)
        except ValueError as unreadable:
            raise PermanentError(f"the POS answered a task the hub cannot read: {unreadable}") from unreadable
    return refusals, offline


def cancel_order(context: PosContext, ctx: JobContext) -> None:
    """Cancel the task of an order cancelled on its channel (see the module's docstring)."""
    link_id = _payload_id(ctx, "link_id")
    with reading(context.sessions) as session:
        link = session.get(OrderLink, link_id)
        if link is None or link.state not in CANCELLABLE:
            log.info("pos.cancel_skipped", link_id=link_id, state=link.state if link else None)
            return
        account_id, task_id, reference = link.channel_account_id, link.external_id, link.external_name
    client = context.client_for(read_account(context, account_id))
    found: Task | None = None
    if task_id is None:
        answer = client.task_by_ref(reference or task_ref(link_id))
        if answer is None:
            cancel_confirmed(ctx.session, link_id, now=ctx.write_time())
            return
        found = Task.of(answer)
        task_id = found.task_id
    reason = str(ctx.payload.get("reason") or CancelReason.OTHER)
    problem: str | None = None
    try:
        client.cancel_task(task_id, reason)
    except PosRefused as refused:
        if refused.code != "unknown_task":
            problem = str(refused)
    session, now = ctx.session, ctx.write_time()
    if found is not None:
        adopt(session, link_id, found, now=now)
    if problem is not None:
        cancel_refused_by_store(session, link_id, problem, now=now)
        return
    log.info("pos.cancelled", link_id=link_id, task=task_id)
    cancel_confirmed(session, link_id, now=now)
    link = session.get(OrderLink, link_id)
    if link is not None:
        _advance(link, "cancelled", now)
        remirror_link(session, link, now=now)


def _payload_id(ctx: JobContext, key: str) -> int:
    value = ctx.payload.get(key)
    if not isinstance(value, int) or isinstance(value, bool):
        raise PermanentError(f"{ctx.kind} job {ctx.job_id} has no {key} in its payload")
    return value


def register(registry: JobRegistry, context: PosContext) -> None:
    registry.register(PLACE_ORDER, partial(place_order, context), serial=True)
    registry.register(CANCEL_ORDER, partial(cancel_order, context), serial=True)
