"""Entering a WhatsApp, phone or Facebook order by hand (``/orders/new``): customer, address, lines by SKU with
the units free to sell shown as they are typed, paid or cash on delivery."""

from __future__ import annotations

import uuid
from decimal import Decimal, InvalidOperation
from itertools import zip_longest
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import select

from shopbridge.bootstrap import Hub
from shopbridge.services import manual_orders
from shopbridge.services.access import BrowserSession
from shopbridge.services.stock import fulfilment_location
from shopbridge.store.db import reading, transaction
from shopbridge.store.tables import ChannelAccount, Variant
from shopbridge.web.auth import ENTERERS
from shopbridge.web.dashboard.guard import changer, viewer
from shopbridge.web.dashboard.rendering import Pages

LINE_ROWS = 5
ADDRESS_FIELDS = ("line1", "line2", "city", "region", "postal_code", "country")
SUGGESTED_SKUS = 500


def router(hub: Hub, pages: Pages) -> APIRouter:
    routes = APIRouter(include_in_schema=False)
    see = Depends(viewer(hub, ENTERERS))
    enter = Depends(changer(hub, ENTERERS))

    def location_id(session: Any, source: str) -> int | None:
        account = session.scalar(select(ChannelAccount.id).where(ChannelAccount.channel == manual_orders.CHANNEL,
                                                                 ChannelAccount.external_id == source))  # fmt: skip
        return fulfilment_location(session, account or 0, None)

    def form_page(request: Request, values: dict[str, Any], error: str | None, status_code: int = 200) -> Response:
        with reading(hub.sessions) as session:
            skus = list(session.scalars(select(Variant.sku).order_by(Variant.sku).limit(SUGGESTED_SKUS)))
        return pages.render(request, "order_new.html", status_code=status_code, values=values, error=error,
                            skus=skus, sources=manual_orders.SOURCES, currency=hub.settings.currency,
                            rows=range(LINE_ROWS))  # fmt: skip

    @routes.get("/orders/new")
    def new_order(request: Request, browser: BrowserSession = see) -> Response:
        return form_page(request, {"key": uuid.uuid4().hex, "source": "whatsapp", "payment": "paid"}, None)

    @routes.get("/orders/new/stock")
    def free_stock(request: Request, sku: str = "", source: str = "whatsapp",
                   browser: BrowserSession = see) -> Response:  # fmt: skip
        """The units of a SKU free to sell where manual orders ship from, as a line's hint."""
        sku = sku.strip()[:100]
        if not sku:
            return HTMLResponse("")
        with reading(hub.sessions) as session:
            known = session.scalar(select(Variant.id).where(Variant.sku == sku)) is not None
            free = manual_orders.free_units(session, [sku], location_id(session, source))[sku] if known else None
        text = "unknown SKU" if free is None else f"{free} free"
        return pages.render(request, "_free.html", text=text, unknown=free is None)

    @routes.post("/orders/new")
    async def create(request: Request, browser: BrowserSession = enter) -> Response:
        form = await request.form()
        values: dict[str, Any] = {name: str(form.get(name) or "").strip() for name in (
            "key", "source", "name", "phone", "email", "payment", "shipping", "note", *ADDRESS_FIELDS)}  # fmt: skip
        skus = [str(v).strip() for v in form.getlist("sku")]
        quantities = [str(v).strip() for v in form.getlist("quantity")]
        prices = [str(v).strip() for v in form.getlist("price")]
        values["lines"] = list(zip_longest(skus, quantities, prices, fillvalue=""))
        try:
            entry = _entry(values)
            with transaction(hub.sessions) as session:
                entered = manual_orders.enter(session, entry, idempotency_key=values["key"] or uuid.uuid4().hex,
                                              currency=hub.settings.currency, now=hub.clock.now(),
                                              actor=browser.caller.email)  # fmt: skip
        except manual_orders.EntryRefused as error:
            return form_page(request, values, str(error), status_code=422)
        notice = "order entered" if entered.created else "this order was entered already"
        return RedirectResponse(f"/orders/{entered.order_id}?notice={notice.replace(' ', '+')}", status_code=303)

    return routes


def _decimal(text: str, name: str) -> Decimal | None:
    if not text:
        return None
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise manual_orders.EntryRefused(f"{name}: {text!r} is not a number") from None
    if not value.is_finite():
        raise manual_orders.EntryRefused(f"{name}: {text!r} is not a number")
    return value


def _entry(values: dict[str, Any]) -> manual_orders.Entry:
    lines = []
    for number, (sku, quantity, price) in enumerate(values["lines"], start=1):
        if not sku and not quantity and not price:
            continue
        if not sku:
            raise manual_orders.EntryRefused(f"line {number}: choose a SKU")
        if not quantity.isdigit():
            raise manual_orders.EntryRefused(f"line {number} ({sku}): quantity must be a whole number")
        lines.append(manual_orders.EntryLine(sku, int(quantity), _decimal(price, f"line {number} ({sku}) price")))
    return manual_orders.Entry(
        source=values["source"], customer_name=values["name"], phone=values["phone"] or None,
        email=values["email"] or None, address={name: values[name] for name in ADDRESS_FIELDS if values[name]},
        lines=tuple(lines), cash_on_delivery=values["payment"] == "cod",
        shipping=_decimal(values["shipping"], "shipping") or Decimal(0), note=values["note"] or None,
    )  # fmt: skip
