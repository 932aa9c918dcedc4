"""The drift page (``/drift``): the status drift detector's figures over 24 hours, its newest checks, and the open
drift with the role that should act and the order each is about; "Check now" checks every account at once."""

from __future__ import annotations

from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response

from shopbridge.bootstrap import Hub
from shopbridge.domain.drift import DriftKind
from shopbridge.services import drift
from shopbridge.services.access import BrowserSession
from shopbridge.store.db import reading, transaction
from shopbridge.web.auth import OPERATORS, READERS
from shopbridge.web.dashboard.guard import changer, viewer
from shopbridge.web.dashboard.rendering import Pages


def router(hub: Hub, pages: Pages) -> APIRouter:
    routes = APIRouter(include_in_schema=False)
    reader = Depends(viewer(hub, READERS))
    operator = Depends(changer(hub, OPERATORS))

    @routes.get("/drift")
    def drift_page(request: Request, browser: BrowserSession = reader) -> Response:
        with reading(hub.sessions) as session:
            shown = drift.summary(session, now=hub.clock.now())
        return pages.render(request, "drift.html", rate=shown["last_24h"], checks=shown["checks"],
                            issues=shown["open"], kinds=[kind.value for kind in DriftKind],
                            interval=hub.settings.drift_check_seconds,
                            notice=request.query_params.get("notice"))  # fmt: skip

    @routes.post("/drift/check")
    def check_now(browser: BrowserSession = operator) -> Response:
        with transaction(hub.sessions) as session:
            queued = drift.check_now(
                session,
                frozenset(hub.registry.names()),
                now=hub.clock.now(),
                actor=browser.caller.email,
                settle_seconds=hub.settings.drift_settle_seconds,
            )
            accounts = ", ".join(account.label for account, _ in queued)
        notice = f"checking {accounts} now" if queued else "no connected account has a drift check"
        return RedirectResponse(f"/drift?{urlencode({'notice': notice})}", status_code=303)

    return routes
