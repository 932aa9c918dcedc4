"""TikTok's side of the status drift detector (services/drift.py): ``tiktok.check_drift`` reads what TikTok shows
of the shop's open orders, and hands it to the hub to compare.

Each order is read with Get Order Detail (50 per call, reference §4.1): its status, and the tracking numbers of its
packages. An order with a store return the hub refunded (or is refunding) on TikTok also has its returns read
(Search Returns by order, §7.3), so a refund the hub recorded but TikTok does not show is found. An order whose
order event waits in the hub's inbox is in flight: the sync is about to apply what TikTok shows.

Handlers call TikTok before they touch ctx.session (see sync.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import suppress
from functools import partial
from typing import Any

from sqlalchemy import select

from shopbridge.channels.tiktok import webhooks
from shopbridge.channels.tiktok.errors import TikTokPermanent, about_the_request
from shopbridge.channels.tiktok.orders import normalize_status
from shopbridge.channels.tiktok.returns import CLOSED, REJECTED, SEARCH_PATH
from shopbridge.channels.tiktok.shop import Shop, TikTokContext
from shopbridge.channels.tiktok.sync import DETAIL_BATCH, ORDER_DETAIL_PATH, ORDER_EVENT_NAMES, SYNC_ORDERS
from shopbridge.domain.orders import OrderStatus, UnknownStatus
from shopbridge.runtime.errors import PermanentError
from shopbridge.runtime.registry import JobContext, JobRegistry
from shopbridge.services import drift
from shopbridge.services.drift import OriginReading
from shopbridge.store.db import reading
from shopbridge.store.tables import ChannelAccount, InboundEvent, StoreReturn

CHECK_DRIFT = drift.check_kind("tiktok")
RETURN_SEARCH_BATCH = 50  # orders named per Search Returns


def _details(shop: Shop, order_ids: Sequence[str], batch_size: int = DETAIL_BATCH) -> dict[str, dict[str, Any]]:
    """Each order's detail by id. A batch TikTok refuses for one of its orders is read again one order at a time;
    an order TikTok refuses alone is left out (the order's own sync reports why)."""
    found: dict[str, dict[str, Any]] = {}
    for start in range(0, len(order_ids), batch_size):
        batch = list(order_ids[start : start + batch_size])
        try:
            orders = shop.call("GET", ORDER_DETAIL_PATH, query={"ids": batch}).get("orders") or []
        except TikTokPermanent as error:
            if not about_the_request(error):
                raise
            if len(batch) > 1:
                found.update(_details(shop, batch, 1))
            continue
        found.update({str(order["id"]): dict(order) for order in orders if isinstance(order, dict) and order.get("id")})
    return found


def _refunds(shop: Shop, order_ids: Sequence[str]) -> dict[str, set[str]]:
    """The returns and refunds of these orders that TikTok has not rejected or cancelled, by order."""
    live: dict[str, set[str]] = {order_id: set() for order_id in order_ids}
    for start in range(0, len(order_ids), RETURN_SEARCH_BATCH):
        batch = list(order_ids[start : start + RETURN_SEARCH_BATCH])
        for found in shop.pages("POST", SEARCH_PATH, "return_orders", body={"order_ids": batch}):
            status = str(found.get("return_status") or "")
            order_id = str(found.get("order_id") or "")
            if order_id in live and found.get("return_id") and status not in REJECTED | CLOSED:
                live[order_id].add(str(found["return_id"]))
    return live


def _tracking(detail: dict[str, Any]) -> frozenset[str]:
    numbers = {str(item.get("tracking_number") or "").strip() for item in detail.get("line_items") or []}
    numbers.add(str(detail.get("tracking_number") or "").strip())
    return frozenset(number for number in numbers if number)


def _in_flight(context: TikTokContext, account_id: int) -> set[str]:
    """The orders named by the shop's order events that no sync has applied yet."""
    with reading(context.inbox_sessions) as session:
        raws = session.scalars(select(InboundEvent.payload).where(
            InboundEvent.source == "tiktok", InboundEvent.channel_account_id == account_id,
            InboundEvent.status == "received", InboundEvent.event_type.in_(ORDER_EVENT_NAMES)))  # fmt: skip
        named: set[str] = set()
        for raw in raws:
            with suppress(webhooks.MalformedNotification):
                named.update(webhooks.order_ids(webhooks.parse(raw.encode())))
    return named


def _status(detail: dict[str, Any]) -> OrderStatus | None:
    try:
        return normalize_status(str(detail.get("status") or ""))
    except UnknownStatus:
        return None


def check_drift(context: TikTokContext, ctx: JobContext) -> None:
    """Read what TikTok shows of the shop's open orders (``drift.orders_to_check``) and compare it with the hub
    (``drift.record_origin_readings``); the payload is the check's (services/drift.py)."""
    if ctx.channel_account_id is None:
        raise PermanentError(f"{ctx.kind} job {ctx.job_id} names no channel account")
    account_id = ctx.channel_account_id
    with reading(context.sessions) as session:
        account = session.get(ChannelAccount, account_id)
        if account is None or account.status != "active":
            return  # a shop being reconnected is checked once it is back
        orders = [(order.id, order.external_id)
                  for order in drift.orders_to_check(session, account_id, ctx.payload, now=ctx.now)]  # fmt: skip
        with_returns = set(session.scalars(select(StoreReturn.order_id).where(
            StoreReturn.order_id.in_([order_id for order_id, _ in orders]),
            StoreReturn.state.in_(("refunding", "refunded"))))) if orders else set()  # fmt: skip
    shop = Shop(context, account_id)
    details = _details(shop, [external_id for _, external_id in orders])
    refunds = _refunds(shop, [external_id for order_id, external_id in orders if order_id in with_returns])
    in_flight = _in_flight(context, account_id)
    readings = []
    for order_id, external_id in orders:
        detail = details.get(external_id)
        status = _status(detail) if detail is not None else None
        readings.append(OriginReading(
            order_id=order_id, status=status, words=str((detail or {}).get("status") or ""),
            tracking=_tracking(detail) if detail is not None else None,
            refunds=frozenset(refunds[external_id]) if external_id in refunds else None,
            pending_event=external_id in in_flight,
        ))  # fmt: skip
    session = ctx.session
    account = session.get(ChannelAccount, account_id)
    assert account is not None
    drift.record_origin_readings(session, account, readings, resync_kind=SYNC_ORDERS, payload=ctx.payload,
                                 now=ctx.write_time())  # fmt: skip


def register(registry: JobRegistry, context: TikTokContext) -> None:
    registry.register(CHECK_DRIFT, partial(check_drift, context), priority=drift.PRIORITY, serial=True)
