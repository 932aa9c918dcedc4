"""The order queue over REST: list with filters and cursor pagination, one order with its history, retry, and
orders entered by hand (WhatsApp, phone, Facebook)."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Header, HTTPException, Path, Query, Response
from pydantic import AfterValidator, AwareDatetime, BaseModel, BeforeValidator, Field

from shopbridge.bootstrap import Hub
from shopbridge.domain.orders import CancelReason, OrderStatus
from shopbridge.services import cancellations, manual_orders, order_views
from shopbridge.services.access import Caller
from shopbridge.store.db import reading, transaction
from shopbridge.web.auth import ENTERERS, OPERATORS, READERS, require
from shopbridge.web.errors import refusals

BIGGEST_ID = 2**63 - 1  # a signed 64-bit column, in SQLite and PostgreSQL alike
_ISO_DATE_TIME = re.compile(r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}")


def _iso_date_time(value: object) -> object:
    """pydantic would take a number (or a numeric string) as Unix time, and a bare date as midnight."""
    if isinstance(value, str) and _ISO_DATE_TIME.match(value):
        return value
    raise ValueError("must be an ISO 8601 date-time with a timezone, e.g. 2026-11-23T10:00:00Z")


def _in_utc(moment: datetime) -> datetime:
    try:
        return moment.astimezone(UTC)
    except OverflowError:  # e.g. 0001-01-01T00:00:00+14:00 is in year 0 in UTC
        raise ValueError("must be a date-time of years 1 to 9999 in UTC") from None


OrderId = Annotated[int, Path(ge=1, le=BIGGEST_ID, description="The hub's order id.")]
IsoDateTime = Annotated[AwareDatetime, BeforeValidator(_iso_date_time), AfterValidator(_in_utc)]


class CancelIn(BaseModel):
    reason: CancelReason = Field(description="Why the order is cancelled; the channel gets its own reason for it.")


class CustomerIn(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    phone: str | None = Field(default=None, max_length=50)
    email: str | None = Field(default=None, max_length=320)


class AddressIn(BaseModel):
    line1: str | None = Field(default=None, max_length=300)
    line2: str | None = Field(default=None, max_length=300)
    city: str | None = Field(default=None, max_length=100)
    region: str | None = Field(default=None, max_length=100)
    postal_code: str | None = Field(default=None, max_length=20)
    country: str | None = Field(default=None, max_length=2, description="ISO 3166 alpha-2, e.g. ID.")


class LineIn(BaseModel):
    sku: str = Field(min_length=1, max_length=100)
    quantity: int = Field(strict=True, ge=1, le=manual_orders.MAX_UNITS)
    unit_price: Decimal | None = Field(default=None, ge=0, max_digits=14, description="Default: the SKU's price.")


class ManualOrderIn(BaseModel):
    source: Literal["whatsapp", "phone", "facebook"]
    customer: CustomerIn
    address: AddressIn = Field(default_factory=AddressIn)
    lines: list[LineIn] = Field(min_length=1, max_length=manual_orders.MAX_LINES)
    payment: Literal["paid", "cod"] = Field(description="paid, or cod: cash on delivery.")
    shipping: Decimal = Field(default=Decimal(0), ge=0, max_digits=14)
    note: str | None = Field(default=None, max_length=1000)


def router(hub: Hub) -> APIRouter:
    routes = APIRouter(prefix="/api/v1/orders", tags=["orders"])
    reader = Depends(require(hub, READERS))
    operator = Depends(require(hub, OPERATORS))
    enterer = Depends(require(hub, ENTERERS))

    @routes.get(
        "", summary="The order queue, oldest change first; follow next_cursor for more.",
        responses=refusals(400, 401, 403, 422),
    )  # fmt: skip
    def list_orders(
        caller: Caller = reader,
        channel: str | None = None,
        status: OrderStatus | None = None,
        blocked: bool | None = None,
        updated_since: Annotated[
            IsoDateTime | None, Query(description="Orders changed at or after this ISO 8601 date-time (with zone).")
        ] = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 50,
        cursor: str | None = None,
    ) -> dict[str, Any]:
        filters = order_views.OrderFilter(channel, status.value if status else None, blocked, updated_since)
        with reading(hub.sessions) as session:
            try:
                orders, next_cursor = order_views.list_orders(session, filters, limit=limit, cursor=cursor)
            except order_views.BadCursor as error:
                raise HTTPException(400, str(error)) from None
        return {"orders": orders, "next_cursor": next_cursor}

    @routes.post(
        "", status_code=201, summary="Enter a WhatsApp, phone or Facebook order; its units are reserved at once.",
        responses={200: {"description": "This Idempotency-Key made an order already: that order."},
                   **refusals(400, 401, 403, 409, 413, 422)},
    )  # fmt: skip
    def enter_order(
        body: ManualOrderIn,
        response: Response,
        idempotency_key: Annotated[str, Header(min_length=1, max_length=200, description="One order per key.")],
        caller: Caller = enterer,
    ) -> dict[str, Any]:
        entry = manual_orders.as_entry(body.model_dump())
        try:
            with transaction(hub.sessions) as session:
                entered = manual_orders.enter(
                    session, entry, idempotency_key=idempotency_key, currency=hub.settings.currency,
                    now=hub.clock.now(), actor=caller.email,
                )  # fmt: skip
        except manual_orders.KeyReused as error:
            raise HTTPException(409, str(error)) from None
        except manual_orders.EntryRefused as error:
            raise HTTPException(422, str(error)) from None
        if not entered.created:
            response.status_code = 200
        with reading(hub.sessions) as session:
            return order_views.order_detail(session, entered.order_id)

    @routes.get(
        "/{order_id}", summary="One order with its lines, status history and events.",
        responses=refusals(401, 403, 404, 422),
    )  # fmt: skip
    def get_order(order_id: OrderId, caller: Caller = reader) -> dict[str, Any]:
        with reading(hub.sessions) as session:
            try:
                return order_views.order_detail(session, order_id)
            except order_views.OrderNotFound as error:
                raise HTTPException(404, str(error)) from None

    @routes.post(
        "/{order_id}/retry", status_code=202, summary="Re-run the order's sync after fixing its cause.",
        responses=refusals(401, 403, 404, 422),
    )  # fmt: skip
    def retry(order_id: OrderId, caller: Caller = operator) -> dict[str, Any]:
        try:
            with transaction(hub.sessions) as session:
                job_id = order_views.retry_order(
                    session, order_id, hub.resync_kinds, now=hub.clock.now(), actor=caller.email
                )
        except order_views.OrderNotFound as error:
            raise HTTPException(404, str(error)) from None
        return {"order_id": order_id, "job_id": job_id}

    @routes.post(
        "/{order_id}/cancel", status_code=202,
        summary="Cancel the order: at once for one entered in the hub, else by asking its channel (done: false).",
        responses=refusals(400, 401, 403, 404, 409, 422),
    )  # fmt: skip
    def cancel(order_id: OrderId, body: CancelIn, caller: Caller = operator) -> dict[str, Any]:
        try:
            with transaction(hub.sessions) as session:
                done = cancellations.cancel_order(
                    session, order_id, body.reason, actor=caller.email, now=hub.clock.now(),
                    cancelling_channels=hub.cancelling_channels,
                )  # fmt: skip
        except cancellations.UnknownOrder as error:
            raise HTTPException(404, str(error)) from None
        except cancellations.CancellationError as error:
            raise HTTPException(409, str(error)) from None
        return {"order_id": done.order_id, "done": done.done, "message": done.message}

    return routes
