"""The finance page (``/finance``), where finance starts the day: the daily check of every shop for a day (each in
its own timezone), what couriers still owe for cash on delivery, reconciliation's open exceptions with the money at
stake (each acknowledged with a note, audited), and the newest payouts broken down; ``/finance/payouts/ID`` takes a
payout down to its statements and its orders. Owner and finance only: it is the shop's money."""

from __future__ import annotations

import re
from datetime import date, timedelta
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from shopbridge.bootstrap import Hub
from shopbridge.domain.finance import BREAKDOWN_LINES, Breakdown
from shopbridge.domain.money import CurrencyMismatch, Money
from shopbridge.services import audit, cod, finance_daily, payouts, reconciliation
from shopbridge.services.access import BrowserSession
from shopbridge.store.db import reading, transaction
from shopbridge.store.tables import ChannelAccount, FinanceException
from shopbridge.web.dashboard.guard import changer, viewer
from shopbridge.web.dashboard.rendering import Pages

FINANCE = ("owner", "finance")  # who reads the shop's money and acknowledges its exceptions (web/auth.py has none)
Id = Annotated[int, Path(ge=1, le=2**63 - 1)]
DAY = re.compile(r"\d{4}-\d{2}-\d{2}")
PAYOUTS_SHOWN = 20
EXCEPTIONS_SHOWN = 200
COD_DAYS = 30  # what couriers owe for the COD orders shipped in the month to the day shown


def money(minor: int, currency: str) -> str:
    return str(Money.from_minor(minor, currency))


def parse_day(text: str | None) -> date | None:
    """A day written YYYY-MM-DD; None for anything else."""
    if not text or not DAY.fullmatch(text):
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        return None


def _payout_row(found: payouts.Payout) -> dict[str, Any]:
    """A payout's line in the list: its breakdown in the settlement's currency, what the bank got in its own."""
    b, cur = found.breakdown, found.breakdown.currency
    return {
        "id": found.id, "external_id": found.external_id, "shop": found.shop, "status": found.status,
        "created_at": found.created_at, "paid_at": found.paid_at, "sales": money(b.sales, cur),
        "fees": money(b.fees, cur), "refunds": money(b.refunds, cur),
        "shipping_adjustments": money(b.shipping + b.adjustments + b.unexplained, cur),
        "reserve": money(b.reserve, cur), "paid": money(found.amount, found.currency), "adds_up": found.adds_up,
        "difference": money(found.difference, cur), "orders": b.orders,
    }  # fmt: skip


def _exception_row(found: FinanceException, shops: dict[int, str]) -> dict[str, Any]:
    return {
        "id": found.id, "kind": found.kind, "subject": found.subject, "shop": shops.get(found.channel_account_id, ""),
        "order_id": found.order_id, "external_order_id": found.external_order_id,
        "at_stake": money(found.amount_minor, found.currency), "detail": found.detail, "found_at": found.found_at,
        "expected_by": found.expected_by,
        "expected": money(found.expected_minor, found.currency) if found.expected_minor is not None else None,
        "actual": money(found.actual_minor, found.currency) if found.actual_minor is not None else None,
    }  # fmt: skip


def _payouts(session: Session) -> tuple[list[dict[str, Any]], str | None]:
    """The newest payouts broken down, or why they cannot be: a statement in another currency than its payout's."""
    try:
        return [_payout_row(found) for found in payouts.payouts(session, limit=PAYOUTS_SHOWN)], None
    except CurrencyMismatch as error:
        return [], f"the payouts cannot be broken down: {error}"


def _cod(session: Session, day: date, timezone: str) -> tuple[cod.CodSummary | None, str | None]:
    """The couriers' COD figures for the orders shipped in the COD_DAYS to ``day``, or why there are none."""
    try:
        return cod.cod_report(session, since=day - timedelta(days=COD_DAYS - 1), until=day, timezone=timezone), None
    except (cod.CodError, CurrencyMismatch) as error:
        return None, f"the COD report cannot be made: {error}"


def _statement_rows(found: payouts.Payout) -> list[tuple[str, list[str], str]]:
    """Each line of the breakdown: its label, its amount on each statement, and on the payout."""
    cur = found.breakdown.currency

    def amount(breakdown: Breakdown, key: str) -> str:
        return money(int(breakdown.as_dict()[key]), cur)

    return [(label, [amount(part.breakdown, key) for part in found.statements], amount(found.breakdown, key))
            for label, key in BREAKDOWN_LINES]  # fmt: skip


def _order_rows(parts: list[payouts.OrderPart], currency: str) -> tuple[list[dict[str, Any]], int]:
    """Each order's part of a payout (adjustments and the reserve as one part of no order), and their sum paid."""
    rows = []
    for part in parts:
        p = part.breakdown
        rows.append({"external_order_id": part.external_order_id, "order_id": part.order_id,
                     "sales": money(p.sales, currency), "refunds": money(p.refunds, currency),
                     "fees": money(p.fees, currency), "shipping": money(p.shipping, currency),
                     "adjustments": money(p.adjustments + p.unexplained + p.reserve, currency),
                     "paid": money(p.paid, currency)})  # fmt: skip
    return rows, sum(part.breakdown.paid for part in parts)


def router(hub: Hub, pages: Pages) -> APIRouter:
    routes = APIRouter(include_in_schema=False)
    reader = Depends(viewer(hub, FINANCE))
    acknowledger = Depends(changer(hub, FINANCE))

    def yesterday() -> date:
        """The day the page opens on: yesterday in the hub's timezone, the last whole day."""
        return hub.clock.now().astimezone(pages.zone).date() - timedelta(days=1)

    def back(day: str, **message: str) -> Response:
        query = {**({"day": day} if parse_day(day) else {}), **message}
        return RedirectResponse(f"/finance?{urlencode(query)}#exceptions", status_code=303)

    @routes.get("/finance")
    def finance_page(request: Request, day: str | None = None, browser: BrowserSession = reader) -> Response:
        error = request.query_params.get("error")
        shown = parse_day(day)
        if shown is None:
            shown = yesterday()
            if day:
                error = f"{day[:40]!r} is not a day written YYYY-MM-DD; showing {shown}"
        checks_error = None
        with reading(hub.sessions) as session:
            try:
                checks = finance_daily.daily_check(session, shown)
            except finance_daily.DailyCheckError as refused:
                checks, checks_error = [], str(refused)
            owed, cod_error = _cod(session, shown, hub.settings.timezone)
            shops = {shop: label for shop, label in session.execute(select(ChannelAccount.id, ChannelAccount.label))}
            open_ones = [_exception_row(found, shops)
                         for found in reconciliation.open_exceptions(session, limit=EXCEPTIONS_SHOWN)]  # fmt: skip
            kinds = [{"kind": kind, "count": count, "at_stake": money(at_stake, currency), "acknowledged": acked}
                     for kind, currency, count, at_stake, acked in reconciliation.summary(session)]  # fmt: skip
            listed, payouts_error = _payouts(session)
        return pages.render(
            request, "finance.html", day=shown, previous=shown - timedelta(days=1), next=shown + timedelta(days=1),
            checks=checks, checks_error=checks_error, percent=finance_daily.percent, owed=owed, cod_error=cod_error,
            cod_days=COD_DAYS, exceptions=open_ones, kinds=kinds, exceptions_shown=EXCEPTIONS_SHOWN, payouts=listed,
            payouts_shown=PAYOUTS_SHOWN, payouts_error=payouts_error, notice=request.query_params.get("notice"),
            error=error,
        )  # fmt: skip

    @routes.post("/finance/exceptions/{exception_id}/acknowledge")
    async def acknowledge(request: Request, exception_id: Id, browser: BrowserSession = acknowledger) -> Response:
        form = await request.form()
        note, day = (value if isinstance(value, str) else "" for value in (form.get("note"), form.get("day")))
        if not note.strip():
            return back(day, error=f"exception {exception_id} is not acknowledged: write a note saying why it is "
                                   "fine, or what was done about it")  # fmt: skip
        now = hub.clock.now()
        try:
            with transaction(hub.sessions) as session:
                found = reconciliation.acknowledge(session, exception_id, note, actor=browser.caller.email, now=now)
                audit.record(session, browser.caller.email, "finance.exception_acknowledged", "finance_exception",
                             exception_id, now=now, after={"kind": found.kind, "subject": found.subject,
                                                           "note": found.note, "amount_minor": found.amount_minor,
                                                           "currency": found.currency})  # fmt: skip
                done = f"exception {exception_id} ({found.kind.replace('_', ' ')}, {found.subject}) acknowledged"
        except (ValueError, reconciliation.ExceptionNotFound) as refused:
            return back(day, error=f"exception {exception_id} is not acknowledged: {refused}")
        return back(day, notice=done)

    @routes.get("/finance/payouts/{payout_id}")
    def payout_page(request: Request, payout_id: Id, browser: BrowserSession = reader) -> Response:
        with reading(hub.sessions) as session:
            try:
                found = payouts.payout(session, payout_id)
                parts = payouts.order_breakdowns(session, payout_id)
            except payouts.PayoutNotFound as error:
                return pages.render(request, "error.html", status_code=404, title="No such payout", message=str(error))
            except CurrencyMismatch as error:
                return pages.render(request, "error.html", status_code=409, title="Payout in two currencies",
                                    message=f"payout {payout_id} cannot be broken down: {error}")  # fmt: skip
        cur = found.breakdown.currency
        orders, orders_paid = _order_rows(parts, cur)
        return pages.render(
            request, "finance_payout.html", payout=found, amount=money(found.amount, found.currency),
            difference=money(found.difference, cur), rows=_statement_rows(found), orders=orders,
            orders_paid=money(orders_paid, cur), orders_add_up=orders_paid == found.breakdown.paid,
        )  # fmt: skip

    return routes
