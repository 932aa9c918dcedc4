"""The returns page (``/returns``): the returns stores took back with their refunds on the order's channel (retry a
refused one), and buyers' return and refund requests on the channels with their deadlines (approve or reject one)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from shopbridge.bootstrap import Hub
from shopbridge.services import return_requests, returns
from shopbridge.services.access import BrowserSession
from shopbridge.store.db import reading, transaction
from shopbridge.store.tables import ReturnRequest, StoreReturn
from shopbridge.web.auth import OPERATORS, READERS
from shopbridge.web.dashboard.guard import changer, viewer
from shopbridge.web.dashboard.rendering import Pages

Id = Annotated[int, Path(ge=1, le=2**63 - 1)]
PAGE = 200
OPEN_REQUESTS = ("pending", "approving", "rejecting")
SOON_SECONDS = 24 * 3600
# Offered when rejecting a request. The channel sends the reject reason it offers for the request whose name or text
# this is (TikTok's texts for a return), else the account's own default reason, with other words as the comment.
REJECT_REASONS = ("Product is not defective", "Package is still in transit", "Returned item was damaged by the buyer")


def time_left(seconds: float) -> str:
    """A deadline as people read it: "2 d 3 h", "5 h 12 min", "40 min", or "passed"."""
    if seconds <= 0:
        return "passed"
    minutes = int(seconds // 60) or 1
    days, hours, minutes = minutes // 1440, minutes % 1440 // 60, minutes % 60
    if days:
        return f"{days} d {hours} h"
    return f"{hours} h {minutes} min" if hours else f"{minutes} min"


def _deadlines(requests: list[dict[str, Any]], now: datetime) -> list[dict[str, Any]]:
    """Each request with its time left (``due_in``), ``due`` ("late" once past, "at_risk" within 24 hours) and
    whether it can still be answered."""
    shown = []
    for request in requests:
        respond_by = datetime.fromisoformat(request["respond_by"]) if request["respond_by"] else None
        left = (respond_by - now).total_seconds() if respond_by is not None else None
        due = None if left is None or request["state"] != "pending" else "late" if left <= 0 else (
            "at_risk" if left < SOON_SECONDS else None)  # fmt: skip
        shown.append({**request, "due_in": time_left(left) if left is not None else None, "due": due,
                      "answerable": request["state"] == "pending" and (left is None or left > 0)})  # fmt: skip
    return shown


def _counts(session: Session, column: Any) -> dict[str, int]:
    return {str(state): int(count) for state, count in session.execute(select(column, func.count()).group_by(column))}


def router(hub: Hub, pages: Pages) -> APIRouter:
    routes = APIRouter(include_in_schema=False)
    reader = Depends(viewer(hub, READERS))
    operator = Depends(changer(hub, OPERATORS))

    def chosen(state: str | None, requests: str | None) -> dict[str, str]:
        """The page's filters, what is not one of them dropped: a store return's state, and the requests shown
        (open by default: pending, or answered and waiting for the channel; ``all``; or one state)."""
        kept = {"state": state or "" if state in return_requests.RETURN_STATES else "",
                "requests": requests or "" if requests in ("all", *return_requests.STATES) else ""}  # fmt: skip
        return {key: value for key, value in kept.items() if value}

    def link(filters: dict[str, str], **changed: str) -> str:
        """The page with one filter changed (an empty value drops it)."""
        query = {key: value for key, value in {**filters, **changed}.items() if value}
        return f"/returns?{urlencode(query)}" if query else "/returns"

    def back(notice: str, filters: dict[str, str]) -> Response:
        return RedirectResponse(f"/returns?{urlencode({**filters, 'notice': notice})}", status_code=303)

    @routes.get("/returns")
    def returns_page(request: Request, state: str | None = None, requests: str | None = None,
                     browser: BrowserSession = reader) -> Response:  # fmt: skip
        filters = chosen(state, requests)
        now = hub.clock.now()
        with reading(hub.sessions) as session:
            taken = return_requests.list_returns(session, filters.get("state"), limit=PAGE)
            shown_requests = filters.get("requests")
            if shown_requests is None:
                asked = [found for one in OPEN_REQUESTS for found in return_requests.list_requests(session, one)]
                asked.sort(key=lambda found: (found["respond_by"] is None, found["respond_by"] or "", -found["id"]))
            else:
                asked = return_requests.list_requests(session, None if shown_requests == "all" else shown_requests)
            return_counts = _counts(session, StoreReturn.state)
            request_counts = _counts(session, ReturnRequest.state)
        return pages.render(
            request, "returns.html", returns=taken, requests=_deadlines(asked, now), filters=filters,
            return_states=return_requests.RETURN_STATES, request_states=return_requests.STATES,
            return_counts=return_counts, request_counts=request_counts,
            open_count=sum(request_counts.get(one, 0) for one in OPEN_REQUESTS),
            reject_reasons=REJECT_REASONS, page_size=PAGE, notice=request.query_params.get("notice"),
            link=lambda **changed: link(filters, **changed),
        )  # fmt: skip

    async def filters_of(request: Request) -> dict[str, str]:
        form = await request.form()
        return chosen(str(form.get("state") or ""), str(form.get("requests") or ""))

    def acting(work: Callable[[Session], str], filters: dict[str, str]) -> Response:
        """Run one action in a transaction; back to the page with what it did or why it could not."""
        try:
            with transaction(hub.sessions) as session:
                done = work(session)
        except (returns.ReturnError, return_requests.ReturnRequestError) as error:
            return back(f"not done: {error}", filters)
        return back(done, filters)

    @routes.post("/returns/{return_id}/retry")
    async def retry_refund(request: Request, return_id: Id, browser: BrowserSession = operator) -> Response:
        def work(session: Session) -> str:
            job_id = returns.retry_refund(session, return_id, now=hub.clock.now(), actor=browser.caller.email)
            return f"store return {return_id}: its refund is asked again (job {job_id})"

        return acting(work, await filters_of(request))

    @routes.post("/returns/requests/{request_id}/approve")
    async def approve(request: Request, request_id: Id, browser: BrowserSession = operator) -> Response:
        def work(session: Session) -> str:
            return_requests.answer(session, request_id, True, actor=browser.caller.email, now=hub.clock.now())
            return f"return request {request_id} approved; the channel is told next"

        return acting(work, await filters_of(request))

    @routes.post("/returns/requests/{request_id}/reject")
    async def reject(request: Request, request_id: Id, browser: BrowserSession = operator) -> Response:
        filters = await filters_of(request)
        reason = str((await request.form()).get("reason") or "").strip()
        if reason and reason not in REJECT_REASONS:
            return back(f"not done: choose one of the reasons offered, not {reason[:100]!r}", filters)

        def work(session: Session) -> str:
            return_requests.answer(session, request_id, False, actor=browser.caller.email, now=hub.clock.now(),
                                   reason=reason or None)  # fmt: skip
            return f"return request {request_id} rejected; the channel is told next"

        return acting(work, filters)

    return routes
