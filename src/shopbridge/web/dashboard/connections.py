"""Connections (``/connections``): every connected account's health, and a connect form per channel (the fields
each channel declares on its port: none for TikTok, whose seller authorizes on TikTok; a store's domain and token
for Shopify); and the launch checklist (``/checklist``), each item ticked from the hub's real state."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlencode

import anyio.to_thread
from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import RedirectResponse, Response

from shopbridge.bootstrap import Hub
from shopbridge.channels.port import ConnectRefused
from shopbridge.services import checklist, connections
from shopbridge.services.access import BrowserSession
from shopbridge.store.db import reading
from shopbridge.web.auth import OWNERS, READERS
from shopbridge.web.dashboard.guard import changer, viewer
from shopbridge.web.dashboard.rendering import Pages


def router(hub: Hub, pages: Pages) -> APIRouter:
    routes = APIRouter(include_in_schema=False)
    reader = Depends(viewer(hub, READERS))
    owner = Depends(changer(hub, OWNERS))

    def back(message: str, *, error: bool = False) -> Response:
        return RedirectResponse(f"/connections?{urlencode({'error' if error else 'notice': message})}", 303)

    @routes.get("/connections")
    def connections_page(request: Request, browser: BrowserSession = reader) -> Response:
        now = hub.clock.now()
        with reading(hub.sessions) as session, reading(hub.inbox_sessions) as inbox:
            accounts = connections.health(session, inbox, now=now)
        channels = [{"name": name, "configured": port.configured, "fields": port.connect_fields}
                    for name, port in hub.channels.items()]  # fmt: skip
        query = request.query_params
        return pages.render(request, "connections.html", accounts=accounts, channels=channels, now=now,
                            notice=query.get("notice"), error=query.get("error"))  # fmt: skip

    @routes.post("/connections/{channel}")
    async def connect(request: Request, channel: Annotated[str, Path(max_length=50)],
                      browser: BrowserSession = owner) -> Response:  # fmt: skip
        """Connect an account of a channel from its form: an OAuth authorization to go to, or the account made."""
        port = hub.channels.get(channel)
        if port is None:
            return back(f"no channel {channel!r}", error=True)
        form = await request.form()
        given = {field.name: str(form.get(field.name) or "") for field in port.connect_fields}
        now = hub.clock.now()
        try:
            connecting = await anyio.to_thread.run_sync(
                lambda: connections.connect(hub.sessions, port, given, now=now, actor=browser.caller.email)
            )
        except ConnectRefused as error:
            return back(str(error), error=True)
        if connecting.redirect_to:
            return RedirectResponse(connecting.redirect_to, status_code=303)
        return back(connecting.message)

    @routes.get("/checklist")
    def checklist_page(request: Request, browser: BrowserSession = reader) -> Response:
        with reading(hub.sessions) as session:
            items = checklist.items(session, hub.settings, now=hub.clock.now())
        return pages.render(request, "checklist.html", items=items, done=sum(item.done for item in items))

    return routes
