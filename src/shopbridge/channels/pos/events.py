"""What the POS tells the hub (docs/pos-protocol.md §3), read and acted on; and the backstop that reads what an
event lost on the way would have told.

``read_event`` checks an event's envelope and its data for its type, so that what the receiver accepts, the job can
act on: an unreadable event is refused at the door (kept as ``rejected``), never half-applied later.
``TAKE_EVENT`` acts on one event in one transaction:

- ``stock.levels``, ``sale.completed``: the levels are mirrored (stock.py; the sale itself stays the POS's);
- ``task.updated``: the task's progress (tasks.py), then its levels;
- ``return.completed``: the return is recorded once per return id and its refund queued on the order's channel
  (services/returns.py), then its levels (the POS restocked what it restocked; the hub mirrors that).

Whatever order events arrive in, and however often, the result is the same: levels carry sequences, tasks move
forward only, returns and shipments are kept once per id.

``POLL`` (per account, every ``pos_poll_seconds``) reads every mapped location's levels: a lost level's effect waits
at most that long. Lost task and return events are made good by the drift check (drift.py), which reads tasks and
returns on its own schedule and reports what it finds as drift.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any

from sqlalchemy.orm import Session

from shopbridge.channels.pos.client import PosUnavailable
from shopbridge.channels.pos.context import NAME, PosContext, mapped_locations, read_account
from shopbridge.channels.pos.kinds import POLL, TAKE_EVENT
from shopbridge.channels.pos.stock import PosLevel, apply_levels
from shopbridge.channels.pos.tasks import Task, parse_ref, task_progress
from shopbridge.domain.clock import parse_instant
from shopbridge.logs import get_logger
from shopbridge.runtime.errors import PermanentError
from shopbridge.runtime.registry import JobContext, JobRegistry
from shopbridge.services.returns import ReturnedLine, ReturnError, ReturnIn, record_store_return
from shopbridge.store.db import reading
from shopbridge.store.tables import ChannelAccount

log = get_logger("shopbridge.pos.events")

VERSION = 1
TYPES = ("stock.levels", "sale.completed", "return.completed", "task.updated")
MAX_ID = 100


class Unreadable(ValueError):
    """An event the hub cannot act on: the message names the field and what is wrong with it."""

    def __init__(self, message: str, code: str = "invalid_body") -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class Event:
    event_id: str
    type: str
    occurred_at: datetime
    location_id: str
    data: Mapping[str, Any]

    @property
    def acted_on(self) -> bool:
        return self.type in TYPES


def read_event(raw: bytes) -> Event:
    """The event in a delivery's body; Unreadable naming what is wrong (§3)."""
    try:
        body = json.loads(raw)
    except ValueError as error:
        raise Unreadable(f"the body is not JSON: {error}") from None
    if not isinstance(body, dict):
        raise Unreadable(f"the body is JSON but not an object ({type(body).__name__})")
    if body.get("version") != VERSION:
        raise Unreadable(f"version: this hub speaks version {VERSION}, got {body.get('version')!r}",
                         "unsupported_version")  # fmt: skip
    event_id = body.get("event_id")
    if not isinstance(event_id, str) or not event_id.strip() or len(event_id) > MAX_ID:
        raise Unreadable(f"event_id: a string of 1 to {MAX_ID} characters is required")
    kind, location = body.get("type"), body.get("location_id")
    if not isinstance(kind, str) or not kind:
        raise Unreadable("type: a string is required")
    if not isinstance(location, str) or not location.strip() or len(location) > MAX_ID:
        raise Unreadable(f"location_id: a string of 1 to {MAX_ID} characters is required")
    try:
        occurred_at = parse_instant(str(body.get("occurred_at") or ""))
    except ValueError as error:
        raise Unreadable(f"occurred_at: {error}") from None
    data = body.get("data")
    if not isinstance(data, dict):
        raise Unreadable("data: an object is required")
    event = Event(event_id.strip(), kind, occurred_at, location.strip(), data)
    if event.acted_on:
        check_data(event.type, data)
    return event


def _int(data: Mapping[str, Any], field: str, where: str, *, minimum: int | None = 0) -> int:
    value = data.get(field)
    if not isinstance(value, int) or isinstance(value, bool):
        raise Unreadable(f"{where}{field}: an integer is required, got {value!r}")
    if minimum is not None and value < minimum:
        raise Unreadable(f"{where}{field}: must be {minimum} or more, got {value}")
    return value


def _text(data: Mapping[str, Any], field: str, where: str) -> str:
    value = data.get(field)
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_ID:
        raise Unreadable(f"{where}{field}: a string of 1 to {MAX_ID} characters is required, got {value!r}")
    return value.strip()


def _list(data: Mapping[str, Any], field: str) -> list[Mapping[str, Any]]:
    value = data.get(field)
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        raise Unreadable(f"data.{field}: a list of objects is required")
    return value


def levels_of(data: Mapping[str, Any]) -> list[PosLevel]:
    """``data.levels`` (absent: none)."""
    if data.get("levels") is None:
        return []
    levels = []
    for index, level in enumerate(_list(data, "levels")):
        where = f"data.levels[{index}]."
        levels.append(PosLevel(_text(level, "sku", where), _int(level, "on_hand", where),
                               _int(level, "allocated", where)))  # fmt: skip
    return levels


def returned_lines(data: Mapping[str, Any]) -> list[ReturnedLine]:
    lines = []
    for index, line in enumerate(_list(data, "lines")):
        where = f"data.lines[{index}]."
        quantity = _int(line, "quantity", where, minimum=1)
        restock = _int(line, "restock_quantity", where)
        if restock > quantity:
            raise Unreadable(f"{where}restock_quantity: {restock} is more than the {quantity} units returned")
        lines.append(ReturnedLine(_text(line, "sku", where), quantity, restock))
    if not lines:
        raise Unreadable("data.lines: a return has at least one line")
    return lines


def check_data(kind: str, data: Mapping[str, Any]) -> None:
    """The data of an event of a type the hub acts on."""
    if kind != "task.updated" or data.get("levels") is not None:
        _int(data, "sequence", "data.")
    if kind in ("stock.levels", "sale.completed"):
        levels_of(data)
        if data.get("levels") is None:
            raise Unreadable("data.levels: a list of objects is required")
    elif kind == "return.completed":
        _text(data, "return_id", "data.")
        order_ref = data.get("order_ref")
        if not isinstance(order_ref, dict) or not (order_ref.get("task_ref") or order_ref.get("order_id")):
            raise Unreadable("data.order_ref: an object naming a task_ref, or a channel and an order_id, is required")
        returned_lines(data)
        levels_of(data)
    elif kind == "task.updated":
        try:
            Task.of(data)
        except ValueError as error:
            raise Unreadable(f"data.{error}") from None
        levels_of(data)


# --- acting on an event ----------------------------------------------------------------------------------------


def take(session: Session, account: ChannelAccount, event: Event, *, now: datetime) -> str:
    """Act on one event (see the module's docstring); returns what it did, for the log."""
    data = event.data
    did = "levels"
    if event.type == "task.updated":
        did = task_progress(session, account, Task.of(data, event.location_id), now=now)
    elif event.type == "return.completed":
        did = take_return(session, account, event.location_id, data, event.occurred_at, now=now)
    levels = levels_of(data)
    if levels:
        applied = apply_levels(session, account, event.location_id, int(data["sequence"]), levels, now=now)
        did += f"; {applied.applied} levels applied, {applied.stale} older than the hub's"
    return did


def take_return(session: Session, account: ChannelAccount, location_id: str, data: Mapping[str, Any],
                returned_at: datetime, *, now: datetime) -> str:  # fmt: skip
    order_ref: dict[str, Any] = dict(data.get("order_ref") or {})
    link_id = parse_ref(order_ref.get("task_ref"))
    if link_id is not None:
        order_ref["link_id"] = link_id
    returned = ReturnIn(str(data["return_id"]), location_id, order_ref, returned_lines(data), returned_at)
    try:
        returned.check()
        row, created = record_store_return(session, account, returned, now=now)
    except ReturnError as error:
        raise PermanentError(str(error)) from error
    return f"return {row.external_id} {'recorded' if created else 'known'} ({row.state})"


def take_event(context: PosContext, ctx: JobContext) -> None:
    account = ctx.session.get(ChannelAccount, _account_id(ctx))  # in the job's transaction: a batch reads it once
    if account is None or account.channel != NAME:
        raise PermanentError(f"{ctx.kind} job {ctx.job_id}: channel account {ctx.channel_account_id} is not a POS")
    try:
        event = Event(
            str(ctx.payload["event_id"]), str(ctx.payload["type"]), parse_instant(str(ctx.payload["occurred_at"])),
            str(ctx.payload["location_id"]), dict(ctx.payload["data"]),
        )  # fmt: skip
    except (KeyError, TypeError, ValueError) as error:
        raise PermanentError(f"{ctx.kind} job {ctx.job_id} has no readable event: {error}") from None
    did = take(ctx.session, account, event, now=ctx.write_time())
    log.info("pos.event_taken", account_id=account.id, event_id=event.event_id, type=event.type, did=did)


def event_payload(event: Event) -> dict[str, Any]:
    return {"event_id": event.event_id, "type": event.type, "occurred_at": event.occurred_at.isoformat(),
            "location_id": event.location_id, "data": dict(event.data)}  # fmt: skip


# --- the backstop ----------------------------------------------------------------------------------------------


def poll(context: PosContext, ctx: JobContext) -> None:
    """Read every mapped location's levels and apply them with the sequence read (§4.6): a lost ``stock.levels`` or
    ``sale.completed`` is made good here. A location that is offline is skipped until the next poll. (Lost task and
    return events are found by the drift check, drift.py.)"""
    account = read_account(context, _account_id(ctx))
    client = context.client_for(account)
    with reading(context.sessions) as session:
        locations = sorted(mapped_locations(session, account.id))
    read: dict[str, tuple[int, list[PosLevel]]] = {}
    for location in locations:
        try:
            sequence, levels = client.stock(location)
            read[location] = (sequence, levels_of({"levels": levels}))
        except PosUnavailable as unavailable:
            log.warning("pos.poll_location_unavailable", account_id=account.id, location=location,
                        reason=str(unavailable))  # fmt: skip
        except Unreadable as error:
            log.warning("pos.poll_levels_unreadable", account_id=account.id, location=location, reason=str(error))
    session, now = ctx.session, ctx.write_time()
    applied = sum(apply_levels(session, account, location, sequence, levels, now=now).applied
                  for location, (sequence, levels) in read.items())  # fmt: skip
    log.info("pos.polled", account_id=account.id, locations=len(read), applied=applied)


def _account_id(ctx: JobContext) -> int:
    if ctx.channel_account_id is None:
        raise PermanentError(f"{ctx.kind} job {ctx.job_id} names no channel account")
    return ctx.channel_account_id


def register(registry: JobRegistry, context: PosContext) -> None:
    # Database work only (the POS is not called): a worker takes a run of waiting events in one transaction.
    registry.register(TAKE_EVENT, partial(take_event, context), batch=True)
    registry.register(POLL, partial(poll, context), serial=True)
