"""The order queue over REST: list with filters and cursor pagination, one order with its history, retry."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query

from shopbridge.bootstrap import Hub
from shopbridge.domain.orders import OrderStatus
from shopbridge.services import order_views
from shopbridge.services.access import Caller
from shopbridge.store.db import reading, transaction
from shopbridge.web.auth import OPERATORS, READERS, require


def router(hub: Hub) -> APIRouter:
    routes = APIRouter(prefix="/api/v1/orders", tags=["orders"])
    reader = Depends(require(hub, READERS))
    operator = Depends(require(hub, OPERATORS))

    @routes.get("", summary="The order queue, oldest change first; follow next_cursor for more.")
    def list_orders(
        caller: Caller = reader,
        channel: str | None = None,
        status: OrderStatus | None = None,
        blocked: bool | None = None,
        updated_since: datetime | None = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 50,
        cursor: str | None = None,
    ) -> dict[str, Any]:
        if updated_since is not None and updated_since.tzinfo is None:
            raise HTTPException(422, "updated_since needs a timezone, e.g. 2026-11-23T10:00:00Z")
        filters = order_views.OrderFilter(channel, status.value if status else None, blocked, updated_since)
        with reading(hub.sessions) as session:
            try:
                orders, next_cursor = order_views.list_orders(session, filters, limit=limit, cursor=cursor)
            except order_views.BadCursor as error:
                raise HTTPException(400, str(error)) from None
        return {"orders": orders, "next_cursor": next_cursor}

    @routes.get("/{order_id}", summary="One order with its lines, status history and events.")
    def get_order(order_id: int, caller: Caller = reader) -> dict[str, Any]:
        with reading(hub.sessions) as session:
            try:
                return order_views.order_detail(session, order_id)
            except order_views.OrderNotFound as error:
                raise HTTPException(404, str(error)) from None

    @routes.post("/{order_id}/retry", status_code=202, summary="Re-run the order's sync after fixing its cause.")
    def retry(order_id: int, caller: Caller = operator) -> dict[str, Any]:
        try:
            with transaction(hub.sessions) as session:
                job_id = order_views.retry_order(session, order_id, hub.resync_kinds, now=hub.clock.now())
        except order_views.OrderNotFound as error:
            raise HTTPException(404, str(error)) from None
        return {"order_id": order_id, "job_id": job_id}

    return routes
