"""Stock pages: every SKU's truth (on hand, reserved, free), one SKU's page (per location, what each channel should
show and shows now, its rules with an editable override, its movement history), and a CSV import checked whole
before anything is applied."""

from __future__ import annotations

import io
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Annotated
from urllib.parse import quote, urlencode
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import func, select
from starlette.datastructures import UploadFile

from shopbridge.bootstrap import Hub
from shopbridge.services import stock, stock_counts, stock_rules
from shopbridge.services.access import BrowserSession
from shopbridge.store.db import reading, transaction
from shopbridge.store.tables import StockLevel, Variant
from shopbridge.web.auth import OPERATORS, READERS
from shopbridge.web.dashboard.guard import changer, viewer
from shopbridge.web.dashboard.rendering import Pages

PAGE = 50
MAX_IMPORT_BYTES = 4 * 1024 * 1024  # as PUT /api/v1/stock/levels
Sku = Annotated[str, Path(min_length=1, max_length=100)]


def router(hub: Hub, pages: Pages) -> APIRouter:
    routes = APIRouter(include_in_schema=False)
    reader = Depends(viewer(hub, READERS))
    operator = Depends(changer(hub, OPERATORS))
    zone = ZoneInfo(hub.settings.timezone)

    @routes.get("/stock")
    def stock_list(request: Request, q: str = "", after: str = "", browser: BrowserSession = reader) -> Response:
        q, after = q.strip()[:100], after[:100]
        query = (
            select(Variant.sku, Variant.title, func.coalesce(func.sum(StockLevel.on_hand), 0).label("on_hand"),
                   func.coalesce(func.sum(StockLevel.reserved), 0).label("reserved"))
            .outerjoin(StockLevel, StockLevel.variant_id == Variant.id)
            .group_by(Variant.id, Variant.sku, Variant.title).order_by(Variant.sku).limit(PAGE + 1)
        )  # fmt: skip
        if q:
            query = query.where(Variant.sku >= q, Variant.sku < q + "\uffff")
        if after:
            query = query.where(Variant.sku > after)
        with reading(hub.sessions) as session:
            rows = session.execute(query).all()
        shown = rows[:PAGE]
        next_url = f"/stock?{urlencode({'q': q, 'after': shown[-1].sku})}" if len(rows) > PAGE else None
        return pages.render(request, "stock.html", rows=shown, q=q, next_url=next_url, after=after,
                            notice=request.query_params.get("notice"), problems=None)  # fmt: skip

    @routes.get("/stock/{sku:path}")
    def stock_page(request: Request, sku: Sku, browser: BrowserSession = reader) -> Response:
        now = hub.clock.now()
        with reading(hub.sessions) as session:
            try:
                shown = stock.stock_of(session, sku, now=now)
            except stock.UnknownSku as error:
                return pages.render(request, "error.html", status_code=404, title="No such SKU", message=str(error))
            variant = session.scalar(select(Variant).where(Variant.sku == sku))
            assert variant is not None
            rules = stock_rules.rules_of(session, variant)
            movements = stock_rules.movements_of(session, variant.id)
        labels = {rule["account_id"]: rule["label"] for rule in rules}
        query = request.query_params
        return pages.render(request, "stock_sku.html", stock=shown, rules=rules, movements=movements, labels=labels,
                            notice=query.get("notice"), error=query.get("error"))  # fmt: skip

    @routes.post("/stock/{sku:path}/rule")
    async def set_rule(request: Request, sku: Sku, browser: BrowserSession = operator) -> Response:
        form = await request.form()
        values = {name: str(form.get(name) or "").strip() for name in ("account_id", "clear", *stock_rules.FIELDS)}
        target = f"/stock/{quote(sku, safe='')}"
        try:
            rule = None if values["clear"] else _rule(values, zone)
            with transaction(hub.sessions) as session:
                stock_rules.set_override(session, sku, int(values["account_id"] or 0), rule, now=hub.clock.now(),
                                         actor=browser.caller.email)  # fmt: skip
        except (stock_rules.RuleRefused, ValueError) as error:
            return RedirectResponse(f"{target}?{urlencode({'error': str(error)})}", status_code=303)
        notice = "override removed" if rule is None else "rule saved; the channels get the new quantity now"
        return RedirectResponse(f"{target}?{urlencode({'notice': notice})}", status_code=303)

    @routes.post("/stock/import")
    async def import_csv(request: Request, browser: BrowserSession = operator) -> Response:
        form = await request.form()
        upload, mode, origin = form.get("file"), str(form.get("mode") or "counts"), str(form.get("origin") or "hub")
        problems: list[str] = []
        if not isinstance(upload, UploadFile) or not upload.filename:
            problems.append("choose a CSV file")
        elif mode not in ("counts", "movements"):
            problems.append("mode must be counts or movements")
        else:
            raw = await upload.read(MAX_IMPORT_BYTES + 1)
            if len(raw) > MAX_IMPORT_BYTES:
                problems.append(f"the file is over {MAX_IMPORT_BYTES // (1024 * 1024)} MiB; split it")
            else:
                try:
                    text = raw.decode("utf-8-sig")
                except UnicodeDecodeError as error:
                    problems.append(f"the file is not UTF-8 text ({error})")
                else:
                    chosen: stock_counts.Mode = "counts" if mode == "counts" else "movements"
                    result = _apply(hub, text, chosen, origin, upload.filename, browser.caller.email)
                    if isinstance(result, str):
                        return RedirectResponse(f"/stock?{urlencode({'notice': result})}", status_code=303)
                    problems = result
        return pages.render(request, "stock.html", status_code=422, rows=[], q="", next_url=None, after="",
                            notice=None, problems=problems)  # fmt: skip

    return routes


def _apply(hub: Hub, text: str, mode: stock_counts.Mode, origin: str, name: str, actor: str) -> str | list[str]:
    """Apply the file whole, or nothing: a summary, or every bad line."""
    parsed = stock_counts.read_csv(io.StringIO(text, newline=""), mode)
    try:
        with transaction(hub.sessions) as session:
            summary = stock_counts.import_csv(session, parsed, origin=origin, now=hub.clock.now(), reference=name[:200],
                                              actor=actor, name=name)  # fmt: skip
    except stock_counts.RowsRefused as refused:
        return [str(problem) for problem in refused.problems]
    except stock.StockError as error:
        return [str(error)]
    return (f"{name}: {parsed.rows} row(s): {summary.applied} applied, {summary.already_applied} already applied, "
            f"{summary.unchanged} unchanged")  # fmt: skip


def _rule(values: dict[str, str], zone: ZoneInfo) -> stock_rules.RuleInput:
    def whole(name: str) -> int:
        text = values[name] or "0"
        if not text.isdigit() or len(text) > 9:
            raise ValueError(f"{name.replace('_', ' ')} must be a whole number of units, got {text!r}")
        return int(text)

    try:
        percent = Decimal(values["buffer_percent"] or "0")
    except InvalidOperation:
        raise ValueError(f"buffer percent must be a number, got {values['buffer_percent']!r}") from None
    until = None
    if values["protect_until"]:
        try:
            until = datetime.fromisoformat(values["protect_until"]).replace(tzinfo=zone)
        except ValueError:
            raise ValueError(f"protect until must be a date and time, got {values['protect_until']!r}") from None
    return stock_rules.RuleInput(whole("buffer_units"), percent, whole("out_of_stock_threshold"),
                                 whole("protect_units"), until)  # fmt: skip
