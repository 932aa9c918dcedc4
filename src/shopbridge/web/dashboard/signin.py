"""Signing in and out, a first-time sign-in link, and changing one's password."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response

from shopbridge.bootstrap import Hub
from shopbridge.services.access import (
    AccessError,
    BrowserSession,
    SignInRefused,
    TooManyFailures,
    check_password,
    end_session,
    link_is_usable,
    record_failure,
    set_password,
    start_session,
    use_sign_in_link,
)
from shopbridge.store.db import reading, transaction
from shopbridge.store.tables import User
from shopbridge.web.auth import READERS
from shopbridge.web.dashboard.guard import COOKIE, changer, current, safe_next, viewer
from shopbridge.web.dashboard.rendering import Pages

Text = Annotated[str, Form(max_length=1024)]


def _client(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _signed_in(hub: Hub, request: Request, user: User, target: str) -> Response:
    with transaction(hub.sessions) as session:
        token, _ = start_session(session, user, now=hub.clock.now())
    response = RedirectResponse(safe_next(target), status_code=303)
    response.set_cookie(COOKIE, token, httponly=True, samesite="lax", secure=request.url.scheme == "https",
                        path="/", max_age=7 * 24 * 3600)  # fmt: skip
    return response


def router(hub: Hub, pages: Pages) -> APIRouter:
    routes = APIRouter(include_in_schema=False)
    signed_in = Depends(viewer(hub, READERS))
    change_own = Depends(changer(hub, READERS))

    @routes.get("/sign-in")
    def sign_in_page(request: Request, next: str = "/") -> Response:
        if current(hub, request) is not None:
            return RedirectResponse(safe_next(next), status_code=303)
        return pages.render(request, "sign_in.html", next=safe_next(next), email="", error=None)

    @routes.post("/sign-in")
    def sign_in(request: Request, email: Text, password: Text, next: Annotated[str, Form()] = "/") -> Response:
        now, client = hub.clock.now(), _client(request)
        try:
            with reading(hub.sessions) as session:
                user = check_password(session, email, password, client=client, now=now)
        except TooManyFailures as error:
            return pages.render(request, "sign_in.html", status_code=429, next=safe_next(next), email=email,
                                error=str(error))  # fmt: skip
        except SignInRefused as error:
            with transaction(hub.sessions) as session:
                record_failure(session, email, client=client, now=now)
            return pages.render(request, "sign_in.html", status_code=401, next=safe_next(next), email=email,
                                error=str(error))  # fmt: skip
        return _signed_in(hub, request, user, next)

    @routes.post("/sign-out")
    def sign_out(request: Request, browser: BrowserSession = change_own) -> Response:
        with transaction(hub.sessions) as session:
            end_session(session, browser.id, now=hub.clock.now(), actor=browser.caller.email)
        response = RedirectResponse("/sign-in", status_code=303)
        response.delete_cookie(COOKIE, path="/")
        return response

    @routes.get("/sign-in/link/{token}")
    def link_page(request: Request, token: str) -> Response:
        with reading(hub.sessions) as session:
            usable = link_is_usable(session, token, now=hub.clock.now())
        if not usable:
            message = "This sign-in link is unknown, used or expired; ask an owner for a new one."
            return pages.render(request, "error.html", status_code=404, title="Link not usable", message=message)
        return pages.render(request, "set_password.html", token=token, error=None)

    @routes.post("/sign-in/link/{token}")
    def use_link(request: Request, token: str, password: Text, again: Text) -> Response:
        if password != again:
            return pages.render(request, "set_password.html", status_code=422, token=token,
                                error="the two passwords differ")  # fmt: skip
        try:
            with transaction(hub.sessions) as session:
                user = use_sign_in_link(session, token, password, now=hub.clock.now())
        except AccessError as error:
            return pages.render(request, "set_password.html", status_code=422, token=token, error=str(error))
        return _signed_in(hub, request, user, "/")

    @routes.get("/account")
    def account(request: Request, browser: BrowserSession = signed_in) -> Response:
        return pages.render(request, "account.html", error=None, done=False)

    @routes.post("/account/password")
    def change_password(request: Request, current_password: Text, password: Text, again: Text,
                        browser: BrowserSession = change_own) -> Response:  # fmt: skip
        now = hub.clock.now()
        try:
            if password != again:
                raise AccessError("the two new passwords differ")
            with reading(hub.sessions) as session:
                check_password(session, browser.caller.email, current_password, client=_client(request), now=now)
            with transaction(hub.sessions) as session:
                set_password(session, browser.caller.email, password, now=now, actor=browser.caller.email,
                             keep_session=browser.id)  # fmt: skip
        except SignInRefused:
            with transaction(hub.sessions) as session:
                record_failure(session, browser.caller.email, client=_client(request), now=now)
            return pages.render(request, "account.html", status_code=422, error="the current password is wrong",
                                done=False)  # fmt: skip
        except AccessError as error:
            return pages.render(request, "account.html", status_code=422, error=str(error), done=False)
        return pages.render(request, "account.html", error=None, done=True)

    return routes
