"""The exceptions page (``/exceptions``): open sync issues with the role that should act, resolve and retry; the
jobs that gave up, with retry and replay."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.orm import Session

from shopbridge.bootstrap import Hub
from shopbridge.services import exceptions
from shopbridge.services.access import BrowserSession
from shopbridge.store.db import reading, transaction
from shopbridge.web.auth import OPERATORS, READERS
from shopbridge.web.dashboard.guard import changer, viewer
from shopbridge.web.dashboard.rendering import Pages

Id = Annotated[int, Path(ge=1, le=2**63 - 1)]


def router(hub: Hub, pages: Pages) -> APIRouter:
    routes = APIRouter(include_in_schema=False)
    reader = Depends(viewer(hub, READERS))
    operator = Depends(changer(hub, OPERATORS))

    def back(notice: str, kind: str | None = None) -> Response:
        query = {"notice": notice, **({"kind": kind} if kind else {})}
        return RedirectResponse(f"/exceptions?{urlencode(query)}", status_code=303)

    @routes.get("/exceptions")
    def exceptions_page(request: Request, kind: str | None = None, browser: BrowserSession = reader) -> Response:
        kind = (kind or "")[:50] or None
        with reading(hub.sessions) as session:
            issues = exceptions.open_issues(session, kind=kind)
            counts = exceptions.open_counts(session)
            dead = exceptions.dead_jobs(session)
        return pages.render(request, "exceptions.html", issues=issues, counts=counts, dead=dead, kind=kind,
                            notice=request.query_params.get("notice"))  # fmt: skip

    def acting(work: Callable[[Session], str]) -> Response:
        """Run one action in a transaction; back to the page with what it did or why it could not."""
        try:
            with transaction(hub.sessions) as session:
                done = work(session)
        except exceptions.NotActionable as error:
            return back(str(error))
        return back(done)

    @routes.post("/exceptions/issues/{issue_id}/resolve")
    def resolve(issue_id: Id, browser: BrowserSession = operator) -> Response:
        def work(session: Session) -> str:
            exceptions.resolve(session, issue_id, now=hub.clock.now(), actor=browser.caller.email)
            return f"issue {issue_id} resolved"

        return acting(work)

    @routes.post("/exceptions/issues/{issue_id}/retry")
    def retry_issue(issue_id: Id, browser: BrowserSession = operator) -> Response:
        return acting(lambda session: exceptions.retry(session, issue_id, hub.resync_kinds, now=hub.clock.now(),
                                                       actor=browser.caller.email))  # fmt: skip

    @routes.post("/exceptions/jobs/{job_id}/retry")
    def retry_job(job_id: Id, browser: BrowserSession = operator) -> Response:
        def work(session: Session) -> str:
            exceptions.retry_job(session, job_id, now=hub.clock.now(), actor=browser.caller.email)
            return f"job {job_id} pending again"

        return acting(work)

    @routes.post("/exceptions/jobs/{job_id}/replay")
    def replay_job(job_id: Id, browser: BrowserSession = operator) -> Response:
        def work(session: Session) -> str:
            new_id = exceptions.replay_job(session, job_id, now=hub.clock.now(), actor=browser.caller.email)
            return f"job {job_id} replayed as job {new_id}"

        return acting(work)

    return routes
