"""Connections (``/connections``): every connected account's health; and the launch checklist (``/checklist``),
each item ticked from the hub's real state."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from shopbridge.bootstrap import Hub
from shopbridge.services import checklist, connections
from shopbridge.services.access import BrowserSession
from shopbridge.store.db import reading
from shopbridge.web.auth import READERS
from shopbridge.web.dashboard.guard import viewer
from shopbridge.web.dashboard.rendering import Pages


def router(hub: Hub, pages: Pages) -> APIRouter:
    routes = APIRouter(include_in_schema=False)
    reader = Depends(viewer(hub, READERS))

    @routes.get("/connections")
    def connections_page(request: Request, browser: BrowserSession = reader) -> Response:
        now = hub.clock.now()
        with reading(hub.sessions) as session, reading(hub.inbox_sessions) as inbox:
            accounts = connections.health(session, inbox, now=now)
        configured = {name: channel.configured for name, channel in hub.channels.items()}
        return pages.render(request, "connections.html", accounts=accounts, configured=configured, now=now)

    @routes.get("/checklist")
    def checklist_page(request: Request, browser: BrowserSession = reader) -> Response:
        with reading(hub.sessions) as session:
            items = checklist.items(session, hub.settings, now=hub.clock.now())
        return pages.render(request, "checklist.html", items=items, done=sum(item.done for item in items))

    return routes
