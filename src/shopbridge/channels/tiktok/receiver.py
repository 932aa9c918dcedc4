"""What happens to a signed TikTok delivery. The HTTP route verifies the signature, then ``receive`` records the
delivery in the inbox; the route acknowledges once that has committed. What the event asks for (a sync of the
shop's orders, parking a deauthorized account, an expiry warning) is queued afterwards, off the acknowledgement's
path, by a Dispatcher (runtime/dispatch.py) calling ``queue_work``; ``waiting_work`` is its sweep, which finds
what a stopped process had recorded but not yet queued."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from shopbridge.channels.tiktok import webhooks
from shopbridge.channels.tiktok.returns import queue_return_sync
from shopbridge.channels.tiktok.sync import (
    AUTHORIZATION_EXPIRING,
    DEAUTHORIZED,
    ORDER_EVENT_NAMES,
    SYNC_ORDERS,
    queue_identity,
    queue_sync,
)
from shopbridge.runtime import inbox, jobs
from shopbridge.store.db import WriteLane, reading, transaction
from shopbridge.store.tables import ChannelAccount, InboundEvent, Job

SOURCE = "tiktok"
ONE_OFF_EVENTS = {str(webhooks.SELLER_DEAUTHORIZATION): DEAUTHORIZED,
                  str(webhooks.UPCOMING_AUTHORIZATION_EXPIRATION): AUTHORIZATION_EXPIRING}  # fmt: skip
RETURN_CHANGED = "return_changed"  # the detail of an order sync a return event asks for: read the returns too


@dataclass(frozen=True)
class Work:
    """A job an inbox event asks for. Order events of one shop all ask for the same work, the shop's order sync,
    which reads them from the inbox itself and marks them processed. A one-off event (deauthorization, expiry
    warning) names its inbox row, marked processed once its job is queued, and carries what the job needs. A return
    event's order sync carries RETURN_CHANGED: the shop's return requests are read too."""

    account_id: int
    kind: str
    inbox_id: int | None = None
    detail: str | None = None


@dataclass(frozen=True)
class Receipt:
    outcome: str  # accepted, duplicate, ignored, malformed, unknown_shop
    status_code: int
    message: str
    work: Work | None = None  # to hand to the dispatcher once the inbox record has committed


class ConnectedShops:
    """TikTok shop id → the hub's channel account id, read from the hub's database and remembered (accounts are
    never deleted; a shop connected later is found on its first delivery)."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self.sessions = sessions
        self._known: dict[str, int] = {}
        self._lock = threading.Lock()

    def account_id(self, shop_id: str) -> int | None:
        with self._lock:
            known = self._known.get(shop_id)
        if known is not None:
            return known
        with reading(self.sessions) as session:
            found = session.scalar(
                select(ChannelAccount.id).where(
                    ChannelAccount.channel == "tiktok", ChannelAccount.external_id == shop_id
                )
            )
        if found is not None:
            with self._lock:
                self._known[shop_id] = int(found)
        return found


def receive(session: Session, raw_body: bytes, *, now: datetime, shops: ConnectedShops) -> Receipt:
    """Record a verified delivery in the inbox (the caller commits, acknowledges, then hands ``work`` on)."""
    text = raw_body.decode("utf-8", errors="replace")
    try:
        notification = webhooks.parse(raw_body)
    except webhooks.MalformedNotification as error:
        inbox.record(session, source=SOURCE, event_id=webhooks.notification_id(raw_body, None), payload=text, now=now,
                     status="rejected", error=str(error))  # fmt: skip
        return Receipt("malformed", 400, f"malformed notification: {error}")
    account_id = shops.account_id(notification.shop_id)
    if account_id is None:
        inbox.record(session, source=SOURCE, event_id=notification.notification_id, payload=text, now=now,
                     event_type=str(notification.type), status="rejected",
                     error=f"shop {notification.shop_id} is not connected to this hub")  # fmt: skip
        return Receipt("unknown_shop", 200, f"shop {notification.shop_id} is not connected; kept for inspection")
    work = _work(account_id, notification)
    known = notification.type in webhooks.KNOWN_TYPES
    recorded = inbox.record(session, source=SOURCE, event_id=notification.notification_id, payload=text, now=now,
                            event_type=str(notification.type), channel_account_id=account_id,
                            status="received" if work else "processed" if known else "ignored",
                            error=None if known else f"unknown TikTok event type {notification.type}")  # fmt: skip
    if not recorded.created:
        return Receipt("duplicate", 200, "already received")
    if not known:
        return Receipt("ignored", 200, f"event type {notification.type} is unknown to this hub; kept as ignored")
    if work is not None and work.kind != SYNC_ORDERS:
        work = replace(work, inbox_id=recorded.id)
    return Receipt("accepted", 200, "accepted", work)


def _work(account_id: int, notification: webhooks.Notification) -> Work | None:
    """What the event asks for. Product, message and other events are kept in the inbox (as processed) for the
    flows that will act on them; an order event naming no order asks for nothing."""
    kind = notification.type
    if kind in webhooks.ORDER_EVENT_TYPES:
        # The inbox is the queue: the record stays `received` until a sync re-reads its orders. One sync waits per
        # shop and takes every order event received meanwhile (one detail call covers up to 50 orders).
        if not webhooks.order_ids(notification):
            return None
        return Work(account_id, SYNC_ORDERS, detail=RETURN_CHANGED if kind == webhooks.RETURN_STATUS_CHANGE else None)
    if kind == webhooks.SELLER_DEAUTHORIZATION:
        return Work(account_id, DEAUTHORIZED, detail=_text(notification.data.get("message")))
    if kind == webhooks.UPCOMING_AUTHORIZATION_EXPIRATION:
        return Work(account_id, AUTHORIZATION_EXPIRING, detail=_text(notification.data.get("expiration_time")))
    return None


def _latest_sync_dead(sessions: sessionmaker[Session], account_ids: list[int]) -> set[int]:
    if not account_ids:
        return set()
    with reading(sessions) as session:
        latest = (
            select(Job.channel_account_id, func.max(Job.id).label("id"))
            .where(Job.kind == SYNC_ORDERS, Job.identity_key.in_([queue_identity(a) for a in account_ids]))
            .group_by(Job.channel_account_id)
            .subquery()
        )
        rows = session.execute(
            select(Job.channel_account_id).join(latest, Job.id == latest.c.id).where(Job.state == "dead")
        )
        return {int(account_id) for (account_id,) in rows if account_id is not None}


def _text(value: object) -> str | None:
    return None if value is None else str(value)


def queue_work(
    sessions: sessionmaker[Session], inbox_sessions: sessionmaker[Session], works: Iterable[Work], *, now: datetime
) -> None:
    """Queue the jobs ``works`` ask for in one transaction of the hub's database, then mark the one-off events
    processed in the inbox. Every job has an identity key, so work queued twice (a sweep after a crash between
    the two steps) waits once."""
    works = list(works)
    with transaction(sessions, lane=WriteLane.ENGINE) as session:
        for work in works:
            identity = f"{work.kind}:{work.account_id}"
            if work.kind == SYNC_ORDERS:
                queue_sync(session, work.account_id, now=now)
                if work.detail == RETURN_CHANGED:  # a buyer's return request may wait for the seller
                    queue_return_sync(session, work.account_id, now=now)
            elif work.kind == DEAUTHORIZED:
                jobs.enqueue(session, DEAUTHORIZED, {"message": work.detail}, now=now,
                             channel_account_id=work.account_id, identity_key=identity, priority=1)  # fmt: skip
            elif work.kind == AUTHORIZATION_EXPIRING:
                jobs.enqueue(session, AUTHORIZATION_EXPIRING, {"expiration_time": work.detail}, now=now,
                             channel_account_id=work.account_id, identity_key=identity)  # fmt: skip
    one_offs = [work.inbox_id for work in works if work.inbox_id is not None]
    if one_offs:
        with transaction(inbox_sessions) as session:
            inbox.mark_many(session, one_offs, status="processed", now=now)


def waiting_work(sessions: sessionmaker[Session], inbox_sessions: sessionmaker[Session]) -> list[Work]:
    """The work that `received` events in the inbox still ask for: a sync for every shop with order events
    waiting, and each one-off event not yet marked processed. A shop whose latest sync went dead is left out:
    re-queuing it every sweep would only stack dead letters behind the one already raised. Its events wait for
    `shopbridge jobs retry` or the shop's next webhook, as before the sweep existed."""
    with reading(inbox_sessions) as session:
        shops = session.scalars(
            select(InboundEvent.channel_account_id)
            .where(InboundEvent.source == SOURCE, InboundEvent.status == "received",
                   InboundEvent.event_type.in_(ORDER_EVENT_NAMES), InboundEvent.channel_account_id.is_not(None))
            .distinct()
        ).all()  # fmt: skip
        one_offs = session.execute(
            select(InboundEvent.id, InboundEvent.channel_account_id, InboundEvent.event_type, InboundEvent.payload)
            .where(InboundEvent.source == SOURCE, InboundEvent.status == "received",
                   InboundEvent.event_type.in_(list(ONE_OFF_EVENTS)), InboundEvent.channel_account_id.is_not(None))
        ).all()  # fmt: skip
    waiting = [int(account_id) for account_id in shops if account_id is not None]  # the query excludes None
    dead = _latest_sync_dead(sessions, waiting)
    works = [Work(account_id, SYNC_ORDERS) for account_id in waiting if account_id not in dead]
    for inbox_id, account_id, event_type, payload in one_offs:
        kind = ONE_OFF_EVENTS[str(event_type)]
        data = json.loads(payload).get("data") or {}  # the receiver stored it only after parsing it
        detail = _text(data.get("message" if kind == DEAUTHORIZED else "expiration_time"))
        works.append(Work(int(account_id or 0), kind, int(inbox_id), detail))
    return works
