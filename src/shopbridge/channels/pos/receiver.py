"""The POS's events (docs/pos-protocol.md §2-3): ``POST /hooks/pos``.

A delivery is taken in three steps, as the other channels' webhooks are:

1. **Verified**, in the protocol's order: the account (``X-POS-Account``, a connected POS), the signature
   (``X-POS-Signature``, HMAC-SHA256 over the timestamp, method, path as it arrived and raw body, keyed with that
   account's secret, compared in constant time), the timestamp (within 300 s of the hub's clock). A failed check
   is answered 401 naming it, and nothing is recorded. Bodies are capped at web/limits.WEBHOOK before this (413).
2. **Recorded** in the inbox (source ``pos``, keyed on the account and ``event_id``), committed before the answer:
   a replay answers 200 ``already received`` and changes nothing. A signed body the hub cannot read is answered
   400 naming the field and kept as ``rejected`` for inspection; a type the hub does not act on is kept as
   ``ignored``.
3. **Queued**, off the answer's path, by a Dispatcher: one ``TAKE_EVENT`` job per event (events.py), carrying the
   event; its sweep queues what a stopped process recorded but had not queued.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import threading
import time
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from prometheus_client import Counter
from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool

from shopbridge.channels.pos.client import ACCOUNT_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, check_signature
from shopbridge.channels.pos.context import NAME, PosContext
from shopbridge.channels.pos.events import Unreadable, event_payload, read_event
from shopbridge.channels.pos.kinds import TAKE_EVENT
from shopbridge.logs import get_logger
from shopbridge.runtime import inbox
from shopbridge.runtime.dispatch import Dispatcher
from shopbridge.runtime.group_commit import GroupCommitter
from shopbridge.runtime.jobs import enqueue
from shopbridge.store.db import WriteLane, reading, transaction
from shopbridge.store.tables import ChannelAccount, InboundEvent
from shopbridge.web.limits import WEBHOOK

log = get_logger("shopbridge.pos.receiver")

SOURCE = NAME
PATH = "/hooks/pos"
ACCOUNT_MEMORY_SECONDS = 60.0
SWEEP_BATCH = 1000


def inbox_key(account_id: int, event_id: str) -> str:
    """Event ids are the POS's, unique per POS account: the hub keys them per connected account."""
    return f"{account_id}:{event_id}"


@dataclass(frozen=True)
class Work:
    """An event to queue: the inbox row to mark processed, and the event as JSON (hashable for the dispatcher)."""

    account_id: int
    inbox_id: int
    event: str


@dataclass(frozen=True)
class Delivery:
    account_id: int
    raw_body: bytes


@dataclass(frozen=True)
class Receipt:
    outcome: str  # accepted, duplicate, ignored, malformed
    status_code: int
    message: str
    code: str | None = None
    work: Work | None = None


def receive(session: Session, delivery: Delivery, *, now: datetime) -> Receipt:
    """Record a verified delivery in the inbox (the caller commits, answers, then hands ``work`` on)."""
    text = delivery.raw_body.decode("utf-8", errors="replace")
    try:
        event = read_event(delivery.raw_body)
    except Unreadable as error:
        key = f"{delivery.account_id}:unreadable:{hash_of(delivery.raw_body)}"
        inbox.record(session, source=SOURCE, event_id=key, payload=text, now=now, event_type=None,
                     channel_account_id=delivery.account_id, status="rejected", error=str(error))  # fmt: skip
        return Receipt("malformed", 400, str(error), error.code)
    recorded = inbox.record(
        session, source=SOURCE, event_id=inbox_key(delivery.account_id, event.event_id), payload=text, now=now,
        event_type=event.type, channel_account_id=delivery.account_id,
        status="received" if event.acted_on else "ignored",
        error=None if event.acted_on else f"the hub does not act on {event.type}",
    )  # fmt: skip
    if not recorded.created:
        return Receipt("duplicate", 200, "already received")
    if not event.acted_on:
        return Receipt("ignored", 200, f"{event.type} is not acted on; kept as ignored")
    work = Work(delivery.account_id, recorded.id, json.dumps(event_payload(event), separators=(",", ":")))
    return Receipt("accepted", 200, "accepted", work=work)


def hash_of(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()


def queue_work(
    sessions: sessionmaker[Session], inbox_sessions: sessionmaker[Session], works: Iterable[Work], *, now: datetime
) -> None:
    """One TAKE_EVENT job per event (keyed on it, so an event handed over twice is queued once), then the events
    marked processed."""
    works = list(works)
    if not works:
        return
    with transaction(sessions, lane=WriteLane.ENGINE) as session:
        for work in works:
            payload = json.loads(work.event)
            enqueue(session, TAKE_EVENT, payload, now=now, priority=5, channel_account_id=work.account_id,
                    identity_key=f"{TAKE_EVENT}:{inbox_key(work.account_id, payload['event_id'])}")  # fmt: skip
    with transaction(inbox_sessions) as session:
        inbox.mark_many(session, sorted({work.inbox_id for work in works}), status="processed", now=now)


def waiting_work(sessions: sessionmaker[Session], inbox_sessions: sessionmaker[Session], *,
                 now: datetime) -> list[Work]:  # fmt: skip
    """Events still ``received`` in the inbox: recorded, but the process stopped before they were queued."""
    query = (
        select(InboundEvent.id, InboundEvent.channel_account_id, InboundEvent.payload)
        .where(InboundEvent.source == SOURCE, InboundEvent.status == "received",
               InboundEvent.channel_account_id.is_not(None))
        .order_by(InboundEvent.id)
        .limit(SWEEP_BATCH)
    )  # fmt: skip
    with reading(inbox_sessions) as session:
        rows = session.execute(query).all()
    works: list[Work] = []
    unreadable: list[tuple[int, str]] = []
    for inbox_id, account_id, payload in rows:
        try:
            event = read_event(str(payload).encode())
        except Unreadable as error:
            unreadable.append((int(inbox_id), str(error)))
            continue
        works.append(Work(int(account_id or 0), int(inbox_id), json.dumps(event_payload(event), separators=(",", ":"))))
    if unreadable:
        with transaction(inbox_sessions) as session:
            for inbox_id, problem in unreadable:
                inbox.mark(session, inbox_id, status="rejected", now=now, error=problem)
    return works


# --- the accounts ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class KnownAccount:
    account_id: int
    secret: str | None
    read_at: float


class ConnectedAccounts:
    """POS account id → its hub account and secret, remembered for ACCOUNT_MEMORY_SECONDS (read again at once when
    a signature fails: the account may have been reconnected with a new secret)."""

    def __init__(self, context: PosContext) -> None:
        self.context = context
        self._known: dict[str, KnownAccount] = {}
        self._lock = threading.Lock()

    def remembered(self, account: str) -> KnownAccount | None:
        with self._lock:
            known = self._known.get(account)
        return known if known is not None and time.monotonic() - known.read_at < ACCOUNT_MEMORY_SECONDS else None

    def read(self, account: str) -> KnownAccount | None:
        with reading(self.context.sessions) as session:
            row = session.scalar(
                select(ChannelAccount).where(ChannelAccount.channel == NAME, ChannelAccount.external_id == account)
            )
            found = None if row is None else KnownAccount(row.id, self.context.secret(row), time.monotonic())
        with self._lock:
            if found is None:
                self._known.pop(account, None)
            else:
                self._known[account] = found
        return found


# --- the route ---------------------------------------------------------------------------------------------------


class Acknowledged(BaseModel):
    message: str


class Problem(BaseModel):
    code: str
    message: str


class Refused(BaseModel):
    """§3's error body."""

    error: Problem


_HEADERS = [
    (ACCOUNT_HEADER, "The POS account id; it must be connected to this hub."),
    (TIMESTAMP_HEADER, "When the event was sent, Unix seconds; within 300 s of the hub's clock."),
    (SIGNATURE_HEADER, "`v1=` and the hex HMAC-SHA256 of `{timestamp}\\n{METHOD}\\n{path}\\n{raw body}`."),
]
_DELIVERY = {
    "parameters": [{"name": name, "in": "header", "required": True, "schema": {"type": "string"},
                    "description": description} for name, description in _HEADERS],
    "requestBody": {"required": True, "content": {"application/json": {"schema": {
        "type": "object", "description": "One event: version, event_id, type, occurred_at, location_id, data "
                                         "(docs/pos-protocol.md §3).",
    }}}},
}  # fmt: skip


def signed_path(request: Request) -> str:
    """The path as the bytes arrived, with the query string: what the POS signed (§2)."""
    raw = request.scope.get("raw_path") or request.url.path.encode()
    query = request.scope.get("query_string") or b""
    path = bytes(raw).decode("latin-1")
    return f"{path}?{bytes(query).decode('latin-1')}" if query else path


def router(context: PosContext, webhooks: Counter) -> APIRouter:
    accounts = ConnectedAccounts(context)
    intake: GroupCommitter[Delivery, Receipt] = GroupCommitter(
        context.inbox_sessions, lambda session, delivery: receive(session, delivery, now=context.clock.now()),
        name="pos-intake",
    )  # fmt: skip
    dispatch: Dispatcher[Work] = Dispatcher(
        lambda works: queue_work(context.sessions, context.inbox_sessions, works, now=context.clock.now()),
        sweep=lambda: waiting_work(context.sessions, context.inbox_sessions, now=context.clock.now()),
        sweep_seconds=context.settings.inbox_sweep_seconds, name="pos-dispatch",
    )  # fmt: skip

    @asynccontextmanager
    async def lifespan(_: Any) -> AsyncIterator[None]:
        dispatch.start()
        try:
            yield
        finally:
            intake.stop()
            dispatch.stop()

    routes = APIRouter(tags=["pos"], lifespan=lifespan)

    def refuse(outcome: str, status: int, code: str, message: str, **details: Any) -> JSONResponse:
        webhooks.labels(NAME, outcome).inc()
        log.warning("webhook.refused", channel=NAME, outcome=outcome, code=code, reason=message, **details)
        return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)

    @routes.post(
        PATH, summary="POS events (signed).", response_model=None,
        description=f"One event per request (docs/pos-protocol.md §3), signed as §2 says; at most {WEBHOOK.shown}.",
        openapi_extra=_DELIVERY,
        responses={
            200: {"model": Acknowledged, "description": "Taken (committed to the inbox), a replay of an event "
                                                        "already taken, or a type the hub keeps but does not act on."},
            400: {"model": Refused, "description": "Signed, but not an event the hub can read (kept as rejected)."},
            401: {"model": Refused, "description": "An unknown account, a wrong signature or a timestamp outside "
                                                   "the replay window; the code names which."},
            413: {"model": Refused, "description": f"The body is larger than {WEBHOOK.shown}."},
        },
    )  # fmt: skip
    async def pos_event(request: Request) -> JSONResponse:
        raw = await request.body()
        headers = request.headers
        name = headers.get(ACCOUNT_HEADER, "").strip()
        if not name:
            return refuse("unknown_account", 401, "unknown_account", f"the {ACCOUNT_HEADER} header is missing")
        known = accounts.remembered(name) or await run_in_threadpool(accounts.read, name)
        path, timestamp, signature = signed_path(request), headers.get(TIMESTAMP_HEADER), headers.get(SIGNATURE_HEADER)
        failed = _check(known, timestamp, path, raw, signature)
        if failed == "bad_signature" and known is not None:
            known = await run_in_threadpool(accounts.read, name)  # reconnected with a new secret?
            failed = _check(known, timestamp, path, raw, signature)
        if known is None:
            return refuse("unknown_account", 401, "unknown_account", f"{name} is not a POS account connected to this "
                          "hub", account=name)  # fmt: skip
        if failed == "bad_signature":
            return refuse("forged", 401, "bad_signature", f"the {SIGNATURE_HEADER} signature does not match the "
                          "request", account=name, bytes=len(raw))  # fmt: skip
        if failed == "stale_timestamp":
            return refuse("stale", 401, "stale_timestamp", f"{TIMESTAMP_HEADER} {timestamp!r} is not within 300 s of "
                          "the hub's clock (a replay, or a clock to set right)", account=name)  # fmt: skip
        receipt = await asyncio.wrap_future(intake.submit(Delivery(known.account_id, raw)))
        webhooks.labels(NAME, receipt.outcome).inc()
        if receipt.work is not None:
            dispatch.notify((receipt.work,))
        if receipt.status_code >= 400:
            log.warning("webhook.malformed", channel=NAME, account=name, reason=receipt.message)
            return JSONResponse({"error": {"code": receipt.code or "invalid_body", "message": receipt.message}},
                                status_code=receipt.status_code)  # fmt: skip
        return JSONResponse({"message": receipt.message})

    def _check(known: KnownAccount | None, timestamp: str | None, path: str, raw: bytes,
               signature: str | None) -> str | None:  # fmt: skip
        if known is None:
            return "unknown_account"
        if known.secret is None:
            return "bad_signature"
        return check_signature(known.secret, timestamp, "POST", path, raw, signature, now=time.time())

    return routes
