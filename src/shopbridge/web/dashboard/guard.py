"""Who is looking at the dashboard: the session cookie, the role a page or action needs, and the CSRF token every
form and htmx request sends back.

The cookie is HttpOnly, SameSite=Lax and Secure when the request came over TLS (directly or, behind a proxy the
server trusts, ``X-Forwarded-Proto``). A page asked for without a live session redirects to the sign-in page; an
htmx request gets 401 with ``HX-Redirect`` so the whole page goes there. A change without the session's CSRF token
is refused with 403, before anything is read from the request's form beyond the token.
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from urllib.parse import quote

from fastapi import Request

from shopbridge.bootstrap import Hub
from shopbridge.services.access import BrowserSession, find_session, touch_session
from shopbridge.store.db import reading, transaction

COOKIE = "shopbridge_session"
CSRF_HEADER = "x-csrf-token"
CSRF_FIELD = "csrf_token"


class SignInNeeded(Exception):
    def __init__(self, path: str, htmx: bool) -> None:
        super().__init__("sign in first")
        self.path, self.htmx = path, htmx


class Forbidden(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def sign_in_url(path: str) -> str:
    return "/sign-in" if path in ("", "/") else f"/sign-in?next={quote(path, safe='/')}"


def safe_next(target: str | None) -> str:
    """Where to go after signing in: a path of this site only (never ``//host`` or a scheme)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


def current(hub: Hub, request: Request) -> BrowserSession | None:
    token = request.cookies.get(COOKIE)
    if not token or len(token) > 100:
        return None
    now = hub.clock.now()
    with reading(hub.sessions) as session:
        found = find_session(session, token, now=now)
    if found is None:
        return None
    browser, stale = found
    if stale:
        with transaction(hub.sessions) as session:
            touch_session(session, browser.id, now=now)
    return browser


def viewer(hub: Hub, roles: tuple[str, ...]) -> Callable[[Request], BrowserSession]:
    """A dependency: the signed-in session, whose role must be one of ``roles``."""

    def check(request: Request) -> BrowserSession:
        browser = current(hub, request)
        if browser is None:
            path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            raise SignInNeeded(path, request.headers.get("hx-request") == "true")
        if browser.caller.role not in roles:
            raise Forbidden(f"your role ({browser.caller.role}) may not do this; it needs one of: {', '.join(roles)}")
        request.state.browser = browser
        return browser

    return check


def changer(hub: Hub, roles: tuple[str, ...]) -> Callable[[Request], Awaitable[BrowserSession]]:
    """A dependency for a change: a signed-in session of one of ``roles`` that sent its CSRF token (the
    ``X-CSRF-Token`` header, or the ``csrf_token`` form field)."""
    see = viewer(hub, roles)

    async def check(request: Request) -> BrowserSession:
        browser = see(request)
        sent = request.headers.get(CSRF_HEADER)
        if sent is None and request.headers.get("content-type", "").startswith(
            ("application/x-www-form-urlencoded", "multipart/form-data")
        ):
            form = await request.form()
            value = form.get(CSRF_FIELD)
            sent = value if isinstance(value, str) else None
        if not sent or not secrets.compare_digest(sent.encode(), browser.csrf_token.encode()):
            raise Forbidden("this form has expired or did not come from the dashboard (missing CSRF token); reload "
                            "the page and try again")  # fmt: skip
        return browser

    return check
