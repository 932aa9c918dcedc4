"""TikTok's sync routines as jobs: re-read orders named by webhooks, the update_time poll backstop, token refresh,
and what deauthorization and expiry warnings do to an account."""

from __future__ import annotations

from contextlib import suppress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session

from shopbridge.channels.tiktok import cancellations, webhooks
from shopbridge.channels.tiktok.errors import TikTokPermanent, about_the_request
from shopbridge.channels.tiktok.orders import OrderPayloadError, map_order
from shopbridge.channels.tiktok.shop import Shop, TikTokContext
from shopbridge.domain.orders import Order
from shopbridge.runtime import inbox
from shopbridge.runtime.errors import PermanentError
from shopbridge.runtime.jobs import enqueue, park_account, set_aside
from shopbridge.runtime.registry import JobContext, JobRegistry
from shopbridge.services.availability import release_deferred_pushes
from shopbridge.services.orders import Settlement, block_unreadable, create_orders, read_catalogue, upsert_order
from shopbridge.store.db import WriteLane, dialect_insert, is_sqlite, reading, transaction
from shopbridge.store.sync_issues import raise_issue
from shopbridge.store.tables import ChannelAccount, InboundEvent, SyncWatermark
from shopbridge.store.tables import Order as OrderRow

SYNC_ORDERS = "tiktok.sync_orders"
POLL_ORDERS = "tiktok.poll_orders"
REFRESH_TOKENS = "tiktok.refresh_tokens"
DEAUTHORIZED = "tiktok.deauthorized"
AUTHORIZATION_EXPIRING = "tiktok.authorization_expiring"
ORDER_DETAIL_PATH = "/order/202309/orders"
ORDER_SEARCH_PATH = "/order/202309/orders/search"
DETAIL_BATCH = 50
INBOX_BATCH = 500  # order events per sync job
ORDER_EVENT_NAMES = [str(kind) for kind in webhooks.ORDER_EVENT_TYPES]  # as the inbox keeps event_type


def _account(ctx: JobContext, session: Session | None = None) -> ChannelAccount:
    """The job's channel account, through ``session`` (a read-only one) or else the job's unit of work."""
    account = (session or ctx.session).get(ChannelAccount, _ctx_account_id(ctx))
    if account is None:
        raise PermanentError(f"channel account {ctx.channel_account_id} no longer exists")
    return account


def _waiting_order_events(account_id: int) -> tuple[ColumnElement[bool], ...]:
    """The shop's order events in the inbox that no sync has taken yet."""
    return (InboundEvent.source == "tiktok", InboundEvent.channel_account_id == account_id,
            InboundEvent.status == "received", InboundEvent.event_type.in_(ORDER_EVENT_NAMES))  # fmt: skip


def unsynced_order_event(context: TikTokContext, account_id: int, *, up_to: int | None = None) -> int | None:
    """The newest of the shop's order events still waiting in the inbox for the sync (of those up to ``up_to``),
    or None once the sync has taken them all."""
    query = select(func.max(InboundEvent.id)).where(*_waiting_order_events(account_id))
    if up_to is not None:
        query = query.where(InboundEvent.id <= up_to)
    with reading(context.inbox_sessions) as session:
        newest = session.scalar(query)
    return int(newest) if newest is not None else None


def queue_sync(session: Session, account_id: int, *, now: datetime) -> None:
    """Make sure one sync of the shop's order events waits (one per shop: the identity key coalesces them)."""
    enqueue(session, SYNC_ORDERS, {"source": "webhook"}, now=now, channel_account_id=account_id,
            identity_key=queue_identity(account_id), priority=5)  # fmt: skip


def queue_identity(account_id: int) -> str:
    """The identity of the shop's own sync of its inbox (orders set aside or retried have identities of their own)."""
    return f"{SYNC_ORDERS}:{account_id}"


def _write_chunk(context: TikTokContext) -> int:
    """Orders per transaction. SQLite has one writer, and each transaction waits its turn behind the webhook
    intake: twenty per transaction keep one sync job (serial per shop) ahead of 50 orders/s, at the price of a
    longer hold for an acknowledgement that arrives meanwhile.
    PostgreSQL locks rows: one order per transaction, so no transaction holds stock rows of several orders
    (which could deadlock with another job taking them in another order)."""
    return 20 if is_sqlite(context.sessions.kw["bind"]) else 1


def _store(
    context: TikTokContext, ctx: JobContext, account: ChannelAccount, orders: list[dict[str, Any]], source: str
) -> list[datetime]:
    """Upsert each order read from TikTok, a few per transaction (see _write_chunk); an unreadable one is kept
    Blocked, naming the bad field. The upsert is idempotent, so a crash between chunks only means a re-read."""
    seen: list[datetime] = []
    chunk = _write_chunk(context)
    mapped: list[Order | tuple[dict[str, Any], str]] = []
    for payload in orders:  # mapping and matching reads before the write lock: they need none
        try:
            mapped.append(map_order(payload))
        except OrderPayloadError as error:
            mapped.append((payload, str(error)))
    with reading(context.sessions) as session:
        catalogue = read_catalogue(session, account.id, [order for order in mapped if isinstance(order, Order)])
    for start in range(0, len(mapped), chunk):
        # The engine's lane: on SQLite these writes go before API clients' (after the webhook intake's). An order
        # TikTok sold reserves its stock here; until then the hub could offer (and push) units already sold.
        with transaction(context.sessions, lane=WriteLane.ENGINE) as session:
            # Stamp after taking the write lock: on SQLite (one writer) updated_at then follows commit order, so a
            # client following GET /api/v1/orders by updated_at and cursor does not skip a row committed late.
            session.connection()
            now = ctx.write_time()
            settlement = Settlement()
            readable = [order for order in mapped[start : start + chunk] if isinstance(order, Order)]
            for order in mapped[start : start + chunk]:
                if not isinstance(order, Order):
                    payload, problem = order
                    block_unreadable(session, account, str(payload.get("id", "?")), payload.get("status"), problem,
                                     now=now)  # fmt: skip
            # Orders new to the hub are created together; those it has are upserted one by one.
            for order in create_orders(session, account, readable, source=source, now=now, catalogue=catalogue,
                                       settlement=settlement):  # fmt: skip
                upsert_order(session, account, order, source=source, now=now, force=source == "retry",
                             catalogue=catalogue, settlement=settlement, known=True)  # fmt: skip
            seen.extend(order.updated_at for order in readable)
            settlement.write(session, now=now)
            if any(payload.get("is_buyer_request_cancel") for payload in orders[start : start + chunk]):
                # A buyer asked to cancel: read the shop's requests now rather than at the next periodic read.
                cancellations.queue_cancellation_sync(session, account.id, now=now)
    return seen


class OrderRefused(PermanentError):
    """An order TikTok will not return (e.g. 21008111: not this seller's), set aside from the shop's sync."""


def _read_orders(
    shop: Shop, order_ids: list[str], batch_size: int = DETAIL_BATCH
) -> tuple[list[dict[str, Any]], dict[str, TikTokPermanent]]:
    """Every order's detail, ``batch_size`` per call. A batch TikTok refuses for one of its orders is read again
    one order at a time, so the orders it refuses come back apart (with TikTok's error) and the others are read.
    Retryable errors, and permanent ones about the app or the token rather than an order, fail the whole sync."""
    fetched: list[dict[str, Any]] = []
    refused: dict[str, TikTokPermanent] = {}
    for start in range(0, len(order_ids), batch_size):
        batch = order_ids[start : start + batch_size]
        try:
            fetched += shop.call("GET", ORDER_DETAIL_PATH, query={"ids": batch}).get("orders") or []
        except TikTokPermanent as error:
            if not about_the_request(error):
                raise
            if len(batch) == 1:
                refused[batch[0]] = error
            else:
                readable, apart = _read_orders(shop, batch, 1)
                fetched += readable
                refused.update(apart)
    return fetched, refused


def _set_aside_refused(
    context: TikTokContext, ctx: JobContext, account_id: int, refused: dict[str, TikTokPermanent]
) -> None:
    """Each order TikTok refused becomes a dead letter of its own (a sync of that order alone, to retry once its
    cause is fixed), committed before the events that named it are marked done; once per order (``set_aside``)."""
    with transaction(context.sessions, lane=WriteLane.ENGINE) as session:
        for order_id, error in refused.items():
            set_aside(session, SYNC_ORDERS, {"order_ids": [order_id], "source": "retry"},
                      error=OrderRefused(f"TikTok refused order {order_id}: {error}"), now=ctx.write_time(),
                      channel_account_id=account_id,
                      identity_key=f"{SYNC_ORDERS}:{account_id}:order:{order_id}")  # fmt: skip


def _read_account(context: TikTokContext, ctx: JobContext) -> ChannelAccount:
    with reading(context.sessions) as session:
        return _account(ctx, session)


def _changed(sessions: Any, account_id: int, orders: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The orders whose update time is newer than the hub's copy (read without the write lock), so a poll's
    overlap window costs the write transaction nothing for orders it already has."""
    ids = [str(order.get("id")) for order in orders]
    known: dict[str, int] = {}
    with reading(sessions) as session:
        for start in range(0, len(ids), 500):
            rows = session.execute(
                select(OrderRow.external_id, OrderRow.channel_updated_at).where(
                    OrderRow.channel_account_id == account_id, OrderRow.external_id.in_(ids[start : start + 500])
                )
            )
            known.update({external_id: int(updated.timestamp()) for external_id, updated in rows})
    return [
        order for order in orders if str(order.get("id")) not in known or _unix_int(order) > known[str(order["id"])]
    ]


def _unix_int(order: dict[str, Any]) -> int:
    value = order.get("update_time")
    return int(value) if isinstance(value, int) or (isinstance(value, str) and value.isdigit()) else 1 << 62


# Every handler here calls TikTok, and writes orders in transactions of their own, before it first touches
# ctx.session: on SQLite the job's unit of work holds the write lock from its first statement, and a token refresh
# or a chunk of orders (their own transactions) must be able to commit meanwhile.


@dataclass(frozen=True)
class SyncOptions:
    poll_overlap: timedelta  # how far before the watermark each poll starts again
    initial_lookback: timedelta  # the history a shop's first poll reads
    refresh_before: timedelta  # how long before expiry an access token is refreshed


def sync_orders(context: TikTokContext, ctx: JobContext) -> None:
    """Re-read the orders named by the shop's order events waiting in the inbox (or, for a retry, by the
    payload) and upsert them. Serial per shop, so two syncs never take the same events; a sync takes at most
    INBOX_BATCH events and leaves the rest to its successor, so no sync grows without bound under a burst."""
    account_id = _ctx_account_id(ctx)
    order_ids = [str(order_id) for order_id in ctx.payload.get("order_ids", [])]
    event_ids: list[int] = []
    event_orders: dict[int, list[str]] = {}
    if not order_ids:
        with reading(context.inbox_sessions) as session:
            rows = session.execute(
                select(InboundEvent.id, InboundEvent.payload)
                .where(*_waiting_order_events(account_id))
                .order_by(InboundEvent.id)
                .limit(INBOX_BATCH)
            ).all()  # fmt: skip
        for event_id, raw in rows:
            event_ids.append(event_id)
            with suppress(webhooks.MalformedNotification):  # the receiver keeps malformed ones as rejected
                event_orders[event_id] = webhooks.order_ids(webhooks.parse(raw.encode()))
                order_ids += event_orders[event_id]
    order_ids = list(dict.fromkeys(order_ids))
    refused: dict[str, TikTokPermanent] = {}
    if order_ids:
        shop = Shop(context, account_id)  # network first, writes after: no lock held across calls
        fetched, refused = _read_orders(shop, order_ids)
        if refused and ctx.payload.get("order_ids"):  # a retry of named orders: it fails as a whole
            raise next(iter(refused.values()))
        account = _read_account(context, ctx)
        _store(context, ctx, account, fetched, ctx.payload.get("source", "webhook"))
    if refused:
        _set_aside_refused(context, ctx, account_id, refused)
    if event_ids:  # the orders are committed (in _store's transactions): their events are done
        failed = {event_id for event_id in event_ids
                  if event_orders.get(event_id) and refused.keys() >= set(event_orders[event_id])}  # fmt: skip
        with transaction(context.inbox_sessions) as session:
            inbox.mark_many(session, [event_id for event_id in event_ids if event_id not in failed],
                            status="processed", now=ctx.write_time())  # fmt: skip
            for event_id in failed:
                reasons = "; ".join(str(refused[order_id]) for order_id in event_orders[event_id])
                inbox.mark(session, event_id, status="failed", now=ctx.write_time(), error=reasons)
        release_deferred_pushes(ctx.session, "tiktok", account_id, now=ctx.now)
    if len(event_ids) == INBOX_BATCH:  # more are waiting: the successor takes them
        queue_sync(ctx.session, account_id, now=ctx.now)


def poll_orders(context: TikTokContext, options: SyncOptions, ctx: JobContext) -> None:
    """The backstop: every order updated since the watermark, minus an overlap, sorted by update time. The
    watermark only ever becomes the largest update_time seen, never "now", so a late write is not skipped."""
    account_id = _ctx_account_id(ctx)
    with reading(context.sessions) as session:  # ctx.session must stay unused until the calls are done
        with_watermark = session.get(SyncWatermark, (account_id, "orders"))
    since = with_watermark.value - options.poll_overlap if with_watermark else ctx.now - options.initial_lookback
    shop = Shop(context, account_id)
    orders = list(
        shop.pages("POST", ORDER_SEARCH_PATH, "orders",
                   query={"sort_field": "update_time", "sort_order": "ASC"},
                   body={"update_time_ge": int(since.timestamp())})
    )  # fmt: skip
    changed = _changed(context.sessions, account_id, orders)
    account = _read_account(context, ctx)
    seen = _store(context, ctx, account, changed, "poll")
    seen += [datetime.fromtimestamp(_unix_int(order), UTC) for order in orders if _unix_int(order) < 1 << 62]
    if seen:
        newest = max(seen)
        if with_watermark is None or newest > with_watermark.value:
            ctx.session.execute(
                dialect_insert(ctx.session)(SyncWatermark)
                .values(channel_account_id=account_id, stream="orders", value=newest, updated_at=ctx.now)
                .on_conflict_do_update(
                    index_elements=["channel_account_id", "stream"], set_={"value": newest, "updated_at": ctx.now}
                )
            )


def refresh_tokens(context: TikTokContext, options: SyncOptions, ctx: JobContext) -> None:
    """Refresh well before expiry, so no call ever meets an expired token in the normal course."""
    with reading(context.sessions) as session:
        account = session.get(ChannelAccount, _ctx_account_id(ctx))
    if account is None or account.status != "active":
        return
    expires = account.credentials_expire_at
    if expires is not None and expires - ctx.now > options.refresh_before:
        return
    Shop(context, account.id).refresh(now=ctx.now)


def deauthorized(ctx: JobContext) -> None:
    account = _account(ctx)
    message = str(ctx.payload.get("message") or "the seller removed the app's authorization")
    park_account(ctx.session, account.id, reason=f"deauthorized by TikTok: {message}", now=ctx.now)


def authorization_expiring(ctx: JobContext) -> None:
    account = _account(ctx)
    expires_at = _unix(ctx.payload.get("expiration_time"))
    days = max(0, (expires_at - ctx.now).days) if expires_at else None
    left = f"in {days} day(s)" if days is not None else "soon"
    raise_issue(
        ctx.session, kind="authorization_expiring", severity="warning",
        fingerprint=f"authorization_expiring:{account.id}",
        message=f"TikTok authorization of {account.label} expires {left}; ask the seller to re-authorize",
        now=ctx.now, channel_account_id=account.id, subject_type="channel_account", subject_id=str(account.id),
        details={"expires_at": expires_at.isoformat() if expires_at else None, "days_left": days},
    )  # fmt: skip


def _ctx_account_id(ctx: JobContext) -> int:
    if ctx.channel_account_id is None:
        raise PermanentError(f"{ctx.kind} job {ctx.job_id} names no channel account")
    return ctx.channel_account_id


def _unix(value: Any) -> datetime | None:
    try:
        return datetime.fromtimestamp(int(value), UTC)
    except (TypeError, ValueError):
        return None


def register(registry: JobRegistry, context: TikTokContext, options: SyncOptions) -> None:
    registry.register(SYNC_ORDERS, partial(sync_orders, context), priority=5, serial=True)
    registry.register(POLL_ORDERS, partial(poll_orders, context, options))
    registry.register(REFRESH_TOKENS, partial(refresh_tokens, context, options))
    registry.register(DEAUTHORIZED, deauthorized)
    registry.register(AUTHORIZATION_EXPIRING, authorization_expiring)
