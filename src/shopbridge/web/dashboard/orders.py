"""The queue at ``/`` (every channel's orders, deadlines first, filters, search, keyset pages, live refresh, bulk
retry of blocked orders) and one order's page."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Annotated, Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import select

from shopbridge.bootstrap import Hub
from shopbridge.domain.money import Money
from shopbridge.domain.orders import CancelReason, OrderStatus
from shopbridge.services import cancellations, manual_orders, order_views, queue
from shopbridge.services.access import BrowserSession
from shopbridge.store.db import reading, transaction
from shopbridge.store.tables import (
    CancellationRequest,
    ChannelAccount,
    OrderLink,
    ReturnRequest,
    Shipment,
    StoreReturn,
    SyncIssue,
)
from shopbridge.web.auth import OPERATORS, READERS
from shopbridge.web.dashboard.guard import changer, viewer
from shopbridge.web.dashboard.rendering import Pages

OrderId = Annotated[int, Path(ge=1, le=2**63 - 1)]
MAX_BULK = 200


def _day(value: str | None, zone: ZoneInfo, *, end: bool = False) -> datetime | None:
    """A YYYY-MM-DD in the shop's timezone as the UTC start of that day (or of the next, for an end)."""
    if not value:
        return None
    try:
        day = date.fromisoformat(value)
    except ValueError:
        return None
    moment = datetime.combine(day, time(), zone)
    return moment + timedelta(days=1) if end else moment


def router(hub: Hub, pages: Pages) -> APIRouter:
    routes = APIRouter(include_in_schema=False)
    reader = Depends(viewer(hub, READERS))
    operator = Depends(changer(hub, OPERATORS))
    zone = ZoneInfo(hub.settings.timezone)

    def filters_of(request: Request) -> tuple[queue.QueueFilter, dict[str, str]]:
        query = request.query_params
        status = query.get("status") or None
        if status not in {s.value for s in OrderStatus}:
            status = None
        chosen = {
            "channel": (query.get("channel") or "")[:50], "status": status or "",
            "blocked": "1" if query.get("blocked") else "", "at_risk": "1" if query.get("at_risk") else "",
            "from": (query.get("from") or "")[:10], "to": (query.get("to") or "")[:10],
            "q": (query.get("q") or "").strip()[:100],
        }  # fmt: skip
        filters = queue.QueueFilter(
            channel=chosen["channel"] or None, status=status, blocked=bool(chosen["blocked"]),
            at_risk=bool(chosen["at_risk"]), created_from=_day(chosen["from"], zone),
            created_to=_day(chosen["to"], zone, end=True), search=chosen["q"] or None,
        )  # fmt: skip
        return filters, {key: value for key, value in chosen.items() if value}

    def queue_page(request: Request) -> dict[str, Any]:
        filters, chosen = filters_of(request)
        cursor = request.query_params.get("after") or None
        now = hub.clock.now()
        with reading(hub.sessions) as session:
            try:
                shown = queue.page(session, filters, now=now, cursor=cursor)
            except order_views.BadCursor:
                shown = queue.page(session, filters, now=now)
                cursor = None
            channels = queue.channels(session)
        next_url = f"/?{urlencode({**chosen, 'after': shown.next_cursor})}" if shown.next_cursor else None
        return {"page": shown, "chosen": chosen, "channels": channels, "cursor": cursor, "now": now,
                "next_url": next_url, "first_url": f"/?{urlencode(chosen)}" if chosen else "/",
                "rows_url": f"/queue/rows?{urlencode(chosen)}"}  # fmt: skip

    @routes.get("/")
    def queue_view(request: Request, browser: BrowserSession = reader) -> Response:
        return pages.render(request, "queue.html", **queue_page(request), notice=request.query_params.get("notice"))

    @routes.get("/queue/rows")
    def queue_rows(request: Request, browser: BrowserSession = reader) -> Response:
        """The first page's rows alone, for the live refresh."""
        return pages.render(request, "_queue_rows.html", **queue_page(request))

    @routes.post("/orders/retry")
    async def bulk_retry(request: Request, browser: BrowserSession = operator) -> Response:
        form = await request.form()
        ids = sorted({int(value) for value in form.getlist("order_id")
                      if isinstance(value, str) and value.isdigit() and 0 < int(value) < 2**63})  # fmt: skip
        if not ids:
            return RedirectResponse("/?" + urlencode({"notice": "choose at least one blocked order"}), 303)
        if len(ids) > MAX_BULK:
            return RedirectResponse("/?" + urlencode({"notice": f"at most {MAX_BULK} orders at once"}), 303)
        retried, refused = _retry(hub, ids, browser.caller.email)
        notice = f"{retried} order{'s' if retried != 1 else ''} queued for retry"
        if refused:
            notice += f"; not retried: {', '.join(refused)}"
        return RedirectResponse("/?" + urlencode({"blocked": "1", "notice": notice}), 303)

    @routes.get("/orders/{order_id}")
    def order_page(request: Request, order_id: OrderId, browser: BrowserSession = reader) -> Response:
        with reading(hub.sessions) as session:
            try:
                order = order_views.order_detail(session, order_id)
            except order_views.OrderNotFound as error:
                return pages.render(request, "error.html", status_code=404, title="No such order", message=str(error))
            related = _related(session, order_id)
            attempts = order_views.sync_attempts(session, order_id)
            cancellable = cancellations.can_cancel(order["status"]) and cancellations.cancels_from_hub(
                order["channel"], hub.cancelling_channels
            )
        return pages.render(request, "order.html", order=order, now=hub.clock.now(),
                            notice=request.query_params.get("notice"), attempts=attempts, cancellable=cancellable,
                            cancel_reasons=list(CancelReason), **related)  # fmt: skip

    @routes.post("/orders/{order_id}/cancellation/{request_id}")
    async def answer_cancellation(request: Request, order_id: OrderId, request_id: OrderId,
                                  browser: BrowserSession = operator) -> Response:  # fmt: skip
        """Approve or reject the buyer's cancellation request of this order (the channel is told next)."""
        form = await request.form()
        approve = form.get("decision") == "approve"
        reason = str(form.get("reason") or "").strip()[: cancellations.MAX_REASON] or None
        try:
            with transaction(hub.sessions) as session:
                asked = session.get(CancellationRequest, request_id)
                if asked is None or asked.order_id != order_id:
                    raise cancellations.UnknownRequest(f"order {order_id} has no cancellation request {request_id}")
                cancellations.answer(session, request_id, approve, actor=browser.caller.email, now=hub.clock.now(),
                                     reason=None if approve else reason)  # fmt: skip
            notice = "cancellation approved; the channel is told next" if approve else "cancellation rejected"
        except cancellations.CancellationError as error:
            notice = f"not answered: {error}"
        return RedirectResponse(f"/orders/{order_id}?" + urlencode({"notice": notice}), 303)

    @routes.post("/orders/{order_id}/cancel")
    async def cancel(request: Request, order_id: OrderId, browser: BrowserSession = operator) -> Response:
        """Cancel the order: at once for one entered in the hub, else by asking its channel."""
        form = await request.form()
        try:
            with transaction(hub.sessions) as session:
                done = cancellations.cancel_order(
                    session, order_id, str(form.get("reason") or ""), actor=browser.caller.email,
                    now=hub.clock.now(), cancelling_channels=hub.cancelling_channels,
                )  # fmt: skip
            notice = done.message
        except cancellations.CancellationError as error:
            notice = f"not cancelled: {error}"
        return RedirectResponse(f"/orders/{order_id}?" + urlencode({"notice": notice}), 303)

    @routes.post("/orders/{order_id}/delivered")
    async def delivered(request: Request, order_id: OrderId, browser: BrowserSession = operator) -> Response:
        """An order entered in the hub, shipped, is delivered (the merchant's or the courier's word); at a time in
        the hub's timezone, or now."""
        form = await request.form()
        written = str(form.get("at") or "").strip()
        try:
            at = None
            if written:
                try:
                    at = datetime.fromisoformat(written).replace(tzinfo=ZoneInfo(hub.settings.timezone))
                except ValueError:
                    raise manual_orders.DeliveryRefused(f"{written[:40]!r} is not a date and time") from None
            with transaction(hub.sessions) as session:
                done = manual_orders.mark_delivered(session, order_id, actor=browser.caller.email,
                                                    now=hub.clock.now(), at=at)  # fmt: skip
            notice = f"order {done.external_id} delivered" if done.changed else "it was delivered already"
        except manual_orders.DeliveryRefused as error:
            notice = f"not marked delivered: {error}"
        return RedirectResponse(f"/orders/{order_id}?" + urlencode({"notice": notice}), 303)

    @routes.post("/orders/{order_id}/retry")
    def retry_one(order_id: OrderId, browser: BrowserSession = operator) -> Response:
        retried, refused = _retry(hub, [order_id], browser.caller.email)
        notice = "queued for retry" if retried else f"not retried: {', '.join(refused)}"
        return RedirectResponse(f"/orders/{order_id}?" + urlencode({"notice": notice}), 303)

    return routes


def _retry(hub: Hub, order_ids: list[int], actor: str) -> tuple[int, list[str]]:
    retried, refused = 0, []
    for order_id in order_ids:
        try:
            with transaction(hub.sessions) as session:
                order_views.retry_order(session, order_id, hub.resync_kinds, now=hub.clock.now(), actor=actor)
            retried += 1
        except order_views.OrderNotFound as error:
            refused.append(str(error))
    return retried, refused


def _related(session: Any, order_id: int) -> dict[str, Any]:
    """What happened to the order in other accounts: placements, shipments, cancellation requests, returns taken back
    in a store with their refunds, buyers' return requests, open issues."""
    labels = dict(session.execute(select(ChannelAccount.id, ChannelAccount.label)).all())
    placements = session.scalars(select(OrderLink).where(OrderLink.order_id == order_id).order_by(OrderLink.id)).all()
    shipments = session.scalars(select(Shipment).where(Shipment.order_id == order_id).order_by(Shipment.id)).all()
    requests = session.scalars(
        select(CancellationRequest).where(CancellationRequest.order_id == order_id).order_by(CancellationRequest.id)
    ).all()
    issues = session.scalars(
        select(SyncIssue)
        .where(SyncIssue.subject_type == "order", SyncIssue.subject_id == str(order_id), SyncIssue.status == "open")
        .order_by(SyncIssue.id)
    ).all()
    store_returns = [
        {"row": row, "lines": (row.lines or {}).get("lines", []),
         "refund": str(Money.from_minor(row.refund_minor, row.currency).amount)
         if row.refund_minor is not None and row.currency else None}
        for row in session.scalars(select(StoreReturn).where(StoreReturn.order_id == order_id)
                                   .order_by(StoreReturn.returned_at, StoreReturn.id))
    ]  # fmt: skip
    return_requests = session.scalars(
        select(ReturnRequest).where(ReturnRequest.order_id == order_id).order_by(ReturnRequest.id)
    ).all()
    return {"labels": labels, "placements": placements, "shipments": shipments, "requests": requests,
            "issues": issues, "store_returns": store_returns, "return_requests": return_requests}  # fmt: skip
