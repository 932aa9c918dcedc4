"""Signing in and out, a first-time sign-in link, and changing one's password.

The forms used before there is a session (signing in, setting a password from a link) carry a CSRF token too: the
page sets it in a short-lived cookie of its own (HttpOnly, SameSite=Strict) and in the form, and a post whose two
copies differ is refused, so another site cannot sign a browser in to an account of its choosing."""

from __future__ import annotations

from secrets import compare_digest, token_urlsafe
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


FORM_COOKIE = "shopbridge_form"
FORM_TOKEN_AGE = 3600


def _form_token(request: Request) -> str:
    """The pre-session token: the browser's own if it has a well-formed one, else a new one."""
    held = request.cookies.get(FORM_COOKIE, "")
    return held if 40 <= len(held) <= 64 and held.replace("-", "").replace("_", "").isalnum() else token_urlsafe(32)


def _with_form_token(request: Request, response: Response, token: str) -> Response:
    response.set_cookie(FORM_COOKIE, token, httponly=True, samesite="strict", secure=request.url.scheme == "https",
                        path="/sign-in", max_age=FORM_TOKEN_AGE)  # fmt: skip
    return response


def _form_token_sent(request: Request, sent: str) -> bool:
    held = request.cookies.get(FORM_COOKIE, "")
    return bool(held and sent) and compare_digest(held.encode(), sent.encode())


FORM_EXPIRED = "this form expired or did not come from this site; it has been renewed, so try again"


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

    def sign_in_form(request: Request, next: str, email: str = "", error: str | None = None,
                     status_code: int = 200) -> Response:  # fmt: skip
        token = _form_token(request)
        page = pages.render(request, "sign_in.html", status_code=status_code, next=safe_next(next), email=email,
                            error=error, csrf_token=token)  # fmt: skip
        return _with_form_token(request, page, token)

    @routes.get("/sign-in")
    def sign_in_page(request: Request, next: str = "/") -> Response:
        if current(hub, request) is not None:
            return RedirectResponse(safe_next(next), status_code=303)
        return sign_in_form(request, next)

    @routes.post("/sign-in")
    def sign_in(request: Request, email: Text, password: Text, next: Annotated[str, Form()] = "/",
                csrf_token: Annotated[str, Form(max_length=100)] = "") -> Response:  # fmt: skip
        if not _form_token_sent(request, csrf_token):
            return sign_in_form(request, next, email, FORM_EXPIRED, 403)
        now, client = hub.clock.now(), _client(request)
        try:
            with reading(hub.sessions) as session:
                user = check_password(session, email, password, client=client, now=now)
        except TooManyFailures as error:
            return sign_in_form(request, next, email, str(error), 429)
        except SignInRefused as error:
            with transaction(hub.sessions) as session:
                record_failure(session, email, client=client, now=now)
            return sign_in_form(request, next, email, str(error), 401)
        response = _signed_in(hub, request, user, next)
        response.delete_cookie(FORM_COOKIE, path="/sign-in")
        return response

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
        return password_form(request, token)

    def password_form(request: Request, token: str, error: str | None = None, status_code: int = 200) -> Response:
        form_token = _form_token(request)
        page = pages.render(request, "set_password.html", status_code=status_code, token=token, error=error,
                            csrf_token=form_token)  # fmt: skip
        return _with_form_token(request, page, form_token)

    @routes.post("/sign-in/link/{token}")
    def use_link(request: Request, token: str, password: Text, again: Text,
                 csrf_token: Annotated[str, Form(max_length=100)] = "") -> Response:  # fmt: skip
        if not _form_token_sent(request, csrf_token):
            return password_form(request, token, FORM_EXPIRED, 403)
        if password != again:
            return password_form(request, token, "the two passwords differ", 422)
        try:
            with transaction(hub.sessions) as session:
                user = use_sign_in_link(session, token, password, now=hub.clock.now())
        except AccessError as error:
            return password_form(request, token, str(error), 422)
        response = _signed_in(hub, request, user, "/")
        response.delete_cookie(FORM_COOKIE, path="/sign-in")
        return response

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
