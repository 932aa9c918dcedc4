"""The operations dashboard: server-rendered pages (Jinja2 and htmx, vendored, no front-end build) over the same
services as the API and the CLI, behind sign-in with roles, CSRF tokens and an audit entry for every change."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from shopbridge.bootstrap import Hub
from shopbridge.web.dashboard import (
    admin,
    connections,
    drift,
    entry,
    exceptions,
    finance,
    orders,
    returns,
    signin,
    stock,
)
from shopbridge.web.dashboard.guard import Forbidden, SignInNeeded, sign_in_url
from shopbridge.web.dashboard.rendering import STATIC, Pages


def mount(app: FastAPI, hub: Hub) -> None:
    pages = Pages(hub.settings.timezone)
    app.include_router(signin.router(hub, pages))
    app.include_router(entry.router(hub, pages))  # before orders: /orders/new is not an order id
    app.include_router(orders.router(hub, pages))
    app.include_router(exceptions.router(hub, pages))
    app.include_router(drift.router(hub, pages))
    app.include_router(returns.router(hub, pages))
    app.include_router(finance.router(hub, pages))
    app.include_router(stock.router(hub, pages))
    app.include_router(connections.router(hub, pages))
    app.include_router(admin.router(hub, pages))
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    async def sign_in_needed(request: Request, error: Exception) -> Response:
        assert isinstance(error, SignInNeeded)
        target = sign_in_url(error.path)
        if error.htmx:
            return Response(status_code=401, headers={"HX-Redirect": target})
        return RedirectResponse(target, status_code=303)

    async def forbidden(request: Request, error: Exception) -> Response:
        assert isinstance(error, Forbidden)
        return pages.render(request, "error.html", status_code=403, title="Not allowed", message=error.message)

    app.add_exception_handler(SignInNeeded, sign_in_needed)
    app.add_exception_handler(Forbidden, forbidden)
