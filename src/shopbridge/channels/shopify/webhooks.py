"""The store's webhooks (reference §7): ``POST /hooks/shopify``.

A delivery is taken in three steps, as TikTok's (channels/tiktok/receiver.py):

1. **Verified.** The store is found by ``X-Shopify-Shop-Domain``; the body must carry ``X-Shopify-Hmac-Sha256``, the
   base64 HMAC-SHA256 of the raw body keyed with that store's webhook secret, compared in constant time (§7.3). A
   missing or wrong signature, and a shop that is not connected to this hub (whose secret the hub does not hold, so
   it cannot verify anything), are answered 401 and nothing is recorded. Bodies are capped at web/limits.WEBHOOK
   before any of this (413).
2. **Recorded** in the inbox (runtime/inbox.py, source ``shopify``), committed before the answer. The inbox key is
   ``X-Shopify-Webhook-Id``: Shopify keeps it on every retry of a delivery, so a retry or a duplicate answers 200
   and queues nothing new. ``X-Shopify-Event-Id`` cannot be the key: one merchant action shares it across every
   topic it fires (orders/create, orders/paid, inventory_levels/update… all carry the same one; §7.2, and the
   sandbox does so), and keying on it would drop all but the first. A signed body that is not a JSON object, or
   does not name what its topic needs (an order id, say), is answered 400 and kept as ``rejected`` for inspection;
   a topic the hub does not act on is kept as ``ignored`` and answered 200.
3. **Queued**, off the answer's path, by a Dispatcher (runtime/dispatch.py), which then marks the event processed:
   orders/* and fulfillments/* → ``SYNC_ORDER`` of that order (one waiting job per order: a burst of its webhooks
   joins it, and the job reads the order from the API, never the payload's state); inventory_levels/update →
   ``stock.enqueue_observe`` of that level (a second later where the hub is the stock's master:
   stock.observe_due); products/* → ``IMPORT_CATALOG`` of the store (one waiting per store, due after
   CATALOG_SETTLE, because products/update fires for every order too); app/uninstalled → ``UNINSTALLED``
   (the account parked for reconnection). The dispatcher's sweep, at start and every ``inbox_sweep_seconds``,
   queues what a stopped process recorded but had not queued; the store's poll (intake.POLL_ORDERS) does the same
   for its store, so nothing waits for the web process to run.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import threading
import time
from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from prometheus_client import Counter
from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool

from shopbridge.channels.shopify import stock
from shopbridge.channels.shopify.context import NAME, ShopifyContext, gid
from shopbridge.channels.shopify.kinds import IMPORT_CATALOG, OBSERVE_STOCK, SYNC_ORDER, UNINSTALLED
from shopbridge.channels.shopify.mapping import HUB_ORDER_ATTRIBUTE
from shopbridge.logs import get_logger
from shopbridge.runtime import inbox
from shopbridge.runtime.dispatch import Dispatcher
from shopbridge.runtime.group_commit import GroupCommitter
from shopbridge.runtime.jobs import enqueue
from shopbridge.store.db import WriteLane, reading, transaction
from shopbridge.store.tables import ChannelAccount, InboundEvent
from shopbridge.web.errors import ErrorBody
from shopbridge.web.limits import WEBHOOK

log = get_logger("shopbridge.shopify.webhooks")

SOURCE = NAME  # the inbox's source of the store's deliveries
PATH = "/hooks/shopify"
CATALOG_SETTLE = timedelta(seconds=60)  # a product change's import waits this long, taking every change meanwhile
STORE_MEMORY_SECONDS = 60.0  # how long a store's account and secret are remembered between deliveries
SWEEP_BATCH = 1000  # events a sweep hands over at once (the next sweep takes the rest)


# --- signature -------------------------------------------------------------------------------------------------


def signature(secret: str, raw_body: bytes) -> str:
    """§7.3: base64(HMAC-SHA256(key = the store's webhook secret, message = the raw body))."""
    return base64.b64encode(hmac.new(secret.encode(), raw_body, hashlib.sha256).digest()).decode()


def verify(secret: str | None, raw_body: bytes, header: str | None) -> bool:
    """Whether ``header`` is the body's signature under ``secret``, compared in constant time. No secret, no header
    or an empty body never verify."""
    if not secret or not header or not raw_body:
        return False
    return hmac.compare_digest(signature(secret, raw_body).encode(), header.strip().encode())


def delivery_key(webhook_id: str | None, topic: str | None, raw_body: bytes) -> str:
    """The inbox key of a delivery: its Webhook-Id, which every retry of it keeps. Shopify always sends one; without
    it, the topic and a digest of the body, so a resent body is still found."""
    if webhook_id and webhook_id.strip():
        return webhook_id.strip()[:200]
    return f"{topic or 'unknown'}:sha256:{hashlib.sha256(raw_body).hexdigest()}"


# --- what a delivery asks for ------------------------------------------------------------------------------------


class Unusable(ValueError):
    """A signed delivery the hub cannot act on: says what is missing."""


@dataclass(frozen=True)
class Work:
    """The job one inbox event asks for, with what that job needs (``subject``: the order GID, or the inventory
    item and location GIDs). ``inbox_id`` is marked processed once the job is queued."""

    account_id: int
    kind: str
    inbox_id: int
    subject: tuple[str, ...] = ()


def work_for(account_id: int, topic: str, payload: Mapping[str, Any], inbox_id: int = 0) -> Work | None:
    """What a delivery of ``topic`` asks for (None: nothing, the topic is only kept). Unusable when the payload
    lacks what the topic's work needs."""
    resource = topic.split("/", 1)[0]
    if resource == "orders":
        order = payload.get("admin_graphql_api_id") or payload.get("id")
        subject = (_gid("Order", order, "id"),)
        if placed_and_quiet(payload):
            return None
        return Work(account_id, SYNC_ORDER, inbox_id, subject)
    if resource == "fulfillments":
        return Work(account_id, SYNC_ORDER, inbox_id, (_gid("Order", payload.get("order_id"), "order_id"),))
    if topic == "inventory_levels/update":
        item = _gid("InventoryItem", payload.get("inventory_item_id"), "inventory_item_id")
        return Work(account_id, OBSERVE_STOCK, inbox_id, (item, _gid("Location", payload.get("location_id"),
                                                                        "location_id")))  # fmt: skip
    if resource == "products":
        return Work(account_id, IMPORT_CATALOG, inbox_id)
    if topic == "app/uninstalled":
        return Work(account_id, UNINSTALLED, inbox_id)
    return None


def placed_and_quiet(order: Mapping[str, Any]) -> bool:
    """An order the hub placed in the store, with neither a fulfilment nor a cancellation in this payload: nothing
    to send back, so no read of it is spent (Shopify's cost bucket is the store loop's narrowest resource). Its
    orders/create, orders/paid and the like are such; a later payload with a fulfilment or a cancellation, its
    fulfillments/* topics and the poll all lead to the read that matters."""
    attributes = order.get("note_attributes")
    placed = isinstance(attributes, list) and any(
        isinstance(attribute, Mapping) and attribute.get("name") == HUB_ORDER_ATTRIBUTE for attribute in attributes
    )
    return placed and not order.get("fulfillments") and not order.get("cancelled_at")


def _gid(kind: str, value: Any, field: str) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, str)) or str(value).strip() == "":
        raise Unusable(f"the payload has no {field}")
    return gid(kind, str(value).strip())


# --- recording ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Delivery:
    """A verified delivery, as the receiver records it."""

    account_id: int
    key: str  # delivery_key
    topic: str | None
    raw_body: bytes


@dataclass(frozen=True)
class Receipt:
    outcome: str  # accepted, duplicate, ignored, malformed
    status_code: int
    message: str
    work: Work | None = None  # to hand to the dispatcher once the inbox record has committed


def receive(session: Session, delivery: Delivery, *, now: datetime) -> Receipt:
    """Record a verified delivery in the inbox (the caller commits, answers, then hands ``work`` on)."""
    text = delivery.raw_body.decode("utf-8", errors="replace")
    topic = (delivery.topic or "").strip().lower()
    try:
        payload = json.loads(delivery.raw_body)
        if not topic:
            raise Unusable("the X-Shopify-Topic header is missing")
        if not isinstance(payload, dict):
            raise Unusable(f"the body is JSON but not an object ({type(payload).__name__})")
        work = work_for(delivery.account_id, topic, payload)
    except (ValueError, Unusable) as error:  # json.JSONDecodeError and UnicodeDecodeError are ValueErrors
        problem = str(error) if isinstance(error, Unusable) else f"the body is not JSON: {error}"
        inbox.record(session, source=SOURCE, event_id=delivery.key, payload=text, now=now, event_type=topic or None,
                     channel_account_id=delivery.account_id, status="rejected", error=problem)  # fmt: skip
        return Receipt("malformed", 400, f"malformed {topic or 'delivery'}: {problem}")
    recorded = inbox.record(session, source=SOURCE, event_id=delivery.key, payload=text, now=now, event_type=topic,
                            channel_account_id=delivery.account_id, status="received" if work else "ignored",
                            error=None if work else f"the hub does not act on {topic}")  # fmt: skip
    if not recorded.created:
        return Receipt("duplicate", 200, "already received")
    if work is None:
        return Receipt("ignored", 200, f"{topic} is not acted on; kept as ignored")
    return Receipt("accepted", 200, "accepted", replace(work, inbox_id=recorded.id))


# --- queuing ------------------------------------------------------------------------------------------------


def sync_identity(account_id: int, order_id: str) -> str:
    """One waiting sync per store order: a burst of its webhooks (created, paid, updated, fulfilled) joins it."""
    return f"{SYNC_ORDER}:{account_id}:{gid('Order', order_id)}"


def queue_work(
    sessions: sessionmaker[Session], inbox_sessions: sessionmaker[Session], works: Iterable[Work], *, now: datetime
) -> None:
    """Queue the jobs ``works`` ask for in one transaction of the hub's database, then mark their events processed.
    Every job has an identity key, so work handed over twice (a sweep after a crash between the two steps) waits
    once."""
    works = list(works)
    if not works:
        return
    with transaction(sessions, lane=WriteLane.ENGINE) as session:
        for work in works:
            account = work.account_id
            if work.kind == SYNC_ORDER:
                (order,) = work.subject
                enqueue(session, SYNC_ORDER, {"order_ids": [order], "source": "webhook"}, now=now, priority=5,
                        channel_account_id=account, identity_key=sync_identity(account, order))  # fmt: skip
            elif work.kind == OBSERVE_STOCK:
                item, location = work.subject
                stock.enqueue_observe(session, account, item, location, now=now,
                                      due_at=stock.observe_due(session, account, now))  # fmt: skip
            elif work.kind == IMPORT_CATALOG:
                enqueue(session, IMPORT_CATALOG, {}, now=now, due_at=now + CATALOG_SETTLE, channel_account_id=account,
                        identity_key=f"{IMPORT_CATALOG}:{account}")  # fmt: skip
            elif work.kind == UNINSTALLED:
                enqueue(session, UNINSTALLED, {}, now=now, priority=1, channel_account_id=account,
                        identity_key=f"{UNINSTALLED}:{account}")  # fmt: skip
            else:
                raise ValueError(f"no Shopify webhook work of kind {work.kind!r}")
    with transaction(inbox_sessions) as session:
        inbox.mark_many(session, sorted({work.inbox_id for work in works}), status="processed", now=now)


def waiting_work(
    sessions: sessionmaker[Session],
    inbox_sessions: sessionmaker[Session],
    *,
    now: datetime,
    account_id: int | None = None,
) -> list[Work]:
    """The work that the store's events still ``received`` in the inbox ask for (of one store, if given): each was
    recorded, but the process stopped before it was queued. Recorded events parsed when they were taken; one that
    no longer does is marked rejected, naming why."""
    query = (
        select(InboundEvent.id, InboundEvent.channel_account_id, InboundEvent.event_type, InboundEvent.payload)
        .where(InboundEvent.source == SOURCE, InboundEvent.status == "received",
               InboundEvent.channel_account_id.is_not(None))
        .order_by(InboundEvent.id)
        .limit(SWEEP_BATCH)
    )  # fmt: skip
    if account_id is not None:
        query = query.where(InboundEvent.channel_account_id == account_id)
    with reading(inbox_sessions) as session:
        rows = session.execute(query).all()
    works: list[Work] = []
    unusable: list[tuple[int, str]] = []
    for inbox_id, account, topic, payload in rows:
        try:
            body = json.loads(payload)
            work = work_for(int(account or 0), str(topic or ""), body if isinstance(body, dict) else {}, int(inbox_id))
        except (ValueError, Unusable) as error:
            unusable.append((int(inbox_id), str(error)))
            continue
        if work is not None:
            works.append(work)
    if unusable:
        with transaction(inbox_sessions) as session:
            for inbox_id, problem in unusable:
                inbox.mark(session, inbox_id, status="rejected", now=now, error=problem)
    return works


def queue_waiting(context: ShopifyContext, account_id: int, *, now: datetime) -> int:
    """Queue what the store's recorded events still ask for; returns how many events were handed over."""
    works = waiting_work(context.sessions, context.inbox_sessions, now=now, account_id=account_id)
    queue_work(context.sessions, context.inbox_sessions, works, now=now)
    return len(works)


# --- the stores --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class KnownStore:
    account_id: int
    secret: str | None
    read_at: float


class ConnectedStores:
    """Shop domain → its account and webhook secret, read from the hub's database and remembered for
    STORE_MEMORY_SECONDS (a reconnected store's new secret is read again at once when a signature fails)."""

    def __init__(self, context: ShopifyContext) -> None:
        self.context = context
        self._known: dict[str, KnownStore] = {}
        self._lock = threading.Lock()

    def remembered(self, shop: str) -> KnownStore | None:
        with self._lock:
            known = self._known.get(shop)
        return known if known is not None and time.monotonic() - known.read_at < STORE_MEMORY_SECONDS else None

    def read(self, shop: str) -> KnownStore | None:
        with reading(self.context.sessions) as session:
            account = session.scalar(
                select(ChannelAccount).where(ChannelAccount.channel == NAME, ChannelAccount.external_id == shop)
            )
            found = None if account is None else KnownStore(account.id, self.context.webhook_secret(account),
                                                            time.monotonic())  # fmt: skip
        with self._lock:
            if found is None:
                self._known.pop(shop, None)
            else:
                self._known[shop] = found
        return found


# --- the route ---------------------------------------------------------------------------------------------------


class Acknowledged(BaseModel):
    message: str


class Refused(BaseModel):
    """What the store is answered when a delivery is not taken (Shopify reads only the status, and retries)."""

    error: str


_HEADERS = [
    ("X-Shopify-Hmac-Sha256", True, "Base64 HMAC-SHA256 of the raw body, keyed with the store's webhook secret."),
    ("X-Shopify-Shop-Domain", True, "The store, e.g. `my-store.myshopify.com`; it must be connected to this hub."),
    ("X-Shopify-Topic", True, "The topic, e.g. `orders/create`."),
    ("X-Shopify-Webhook-Id", False, "Unique per delivery and kept on its retries: the hub deduplicates on it."),
    ("X-Shopify-Event-Id", False, "Shared by every delivery one merchant action produced."),
    ("X-Shopify-API-Version", False, "The Admin API version the payload is serialized in."),
    ("X-Shopify-Triggered-At", False, "When Shopify triggered the delivery."),
]
_DELIVERY = {
    "parameters": [{"name": name, "in": "header", "required": required, "schema": {"type": "string"},
                    "description": description} for name, required, description in _HEADERS],
    "requestBody": {"required": True, "content": {"application/json": {"schema": {
        "type": "object", "description": "The REST resource of the topic (an order, a fulfillment, an inventory "
                                         "level, a product, the shop).",
    }}}},
}  # fmt: skip


def router(context: ShopifyContext, webhooks: Counter) -> APIRouter:
    """The receiver, with the group committer that records deliveries and the dispatcher that queues their work;
    both run for the web app's lifetime (the router's lifespan, merged into the app's)."""
    stores = ConnectedStores(context)
    intake: GroupCommitter[Delivery, Receipt] = GroupCommitter(
        context.inbox_sessions, lambda session, delivery: receive(session, delivery, now=context.clock.now()),
        name="shopify-intake",
    )  # fmt: skip
    dispatch: Dispatcher[Work] = Dispatcher(
        lambda works: queue_work(context.sessions, context.inbox_sessions, works, now=context.clock.now()),
        sweep=lambda: waiting_work(context.sessions, context.inbox_sessions, now=context.clock.now()),
        sweep_seconds=context.settings.inbox_sweep_seconds, name="shopify-dispatch",
    )  # fmt: skip

    @asynccontextmanager
    async def lifespan(_: Any) -> AsyncIterator[None]:
        dispatch.start()  # its first sweep queues what a previous run recorded but did not queue
        try:
            yield
        finally:
            intake.stop()
            dispatch.stop()

    routes = APIRouter(tags=["shopify"], lifespan=lifespan)

    def refuse(outcome: str, status: int, message: str, **details: Any) -> JSONResponse:
        webhooks.labels(NAME, outcome).inc()
        log.warning("webhook.refused", channel=NAME, outcome=outcome, reason=message, **details)
        return JSONResponse({"error": message}, status_code=status)

    @routes.post(
        PATH, summary="Shopify webhook deliveries (signed).", response_model=None,
        description=f"The raw body is signed (header `X-Shopify-Hmac-Sha256`); at most {WEBHOOK.shown}.",
        openapi_extra=_DELIVERY,
        responses={
            200: {"model": Acknowledged, "description": "Taken (committed to the inbox), a duplicate of a delivery "
                                                        "already taken, or a topic the hub keeps but does not act on."},
            400: {"model": Refused, "description": "Signed, but not a delivery the hub can read (kept as rejected)."},
            401: {"model": Refused, "description": "No signature, a signature that does not match the body, or a "
                                                   "shop that is not connected to this hub."},
            413: {"model": ErrorBody, "description": f"The body is larger than {WEBHOOK.shown}."},
        },
    )  # fmt: skip
    async def shopify_webhook(request: Request) -> JSONResponse:
        raw = await request.body()
        headers = request.headers
        shop = headers.get("x-shopify-shop-domain", "").strip().lower()
        signed = headers.get("x-shopify-hmac-sha256")
        if not signed:
            return refuse("forged", 401, "the X-Shopify-Hmac-Sha256 header is missing", shop=shop)
        if not shop:
            return refuse("forged", 401, "the X-Shopify-Shop-Domain header is missing")
        store = stores.remembered(shop) or await run_in_threadpool(stores.read, shop)
        if store is not None and not verify(store.secret, raw, signed):
            store = await run_in_threadpool(stores.read, shop)  # the store may have been reconnected with a new secret
        if store is None:
            return refuse("unknown_shop", 401, f"{shop} is not a store connected to this hub", shop=shop)
        if store.secret is None:
            return refuse(
                "forged", 401, f"the hub holds no webhook secret for {shop}: reconnect it with one", shop=shop
            )
        if not verify(store.secret, raw, signed):
            return refuse("forged", 401, "the X-Shopify-Hmac-Sha256 signature does not match the body", shop=shop,
                          bytes=len(raw))  # fmt: skip
        topic = headers.get("x-shopify-topic")
        delivery = Delivery(store.account_id, delivery_key(headers.get("x-shopify-webhook-id"), topic, raw), topic, raw)
        receipt = await asyncio.wrap_future(intake.submit(delivery))  # committed (with its batch) before we answer
        webhooks.labels(NAME, receipt.outcome).inc()
        if receipt.work is not None:
            dispatch.notify((receipt.work,))  # queued off this request's path
        if receipt.status_code >= 400:
            log.warning("webhook.malformed", channel=NAME, shop=shop, topic=topic, reason=receipt.message)
            return JSONResponse({"error": receipt.message}, status_code=receipt.status_code)
        return JSONResponse({"message": receipt.message})

    return routes
