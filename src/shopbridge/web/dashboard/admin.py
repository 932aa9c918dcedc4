"""Owners' pages: users (add with a one-time sign-in link, disable), API tokens (create with an optional expiry,
shown once; revoke) and the audit log, filterable by action and by who."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Path, Query, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.orm import Session

from shopbridge.bootstrap import Hub
from shopbridge.services import access, audit
from shopbridge.services.access import OWNERS, BrowserSession
from shopbridge.store.db import reading, transaction
from shopbridge.store.tables import User
from shopbridge.web.dashboard.guard import changer, viewer
from shopbridge.web.dashboard.rendering import Pages

AUDIT_PAGE = 100
Id = Annotated[int, Path(ge=1, le=2**63 - 1)]
Text = Annotated[str, Form(max_length=320)]


def router(hub: Hub, pages: Pages) -> APIRouter:
    routes = APIRouter(include_in_schema=False)
    owner = Depends(viewer(hub, OWNERS))
    change = Depends(changer(hub, OWNERS))

    def users_page(request: Request, status_code: int = 200, **shown: object) -> Response:
        with reading(hub.sessions) as session:
            users = access.list_users(session)
            tokens = access.list_tokens(session)
        base = f"{request.url.scheme}://{request.url.netloc}"
        return pages.render(request, "users.html", status_code=status_code, users=users, tokens=tokens,
                            roles=access.ROLES, base=base, now=hub.clock.now(), **shown)  # fmt: skip

    @routes.get("/admin/users")
    def users(request: Request, browser: BrowserSession = owner) -> Response:
        return users_page(request)

    @routes.post("/admin/users")
    def add_user(request: Request, email: Text, role: Text, browser: BrowserSession = change) -> Response:
        now = hub.clock.now()
        try:
            with transaction(hub.sessions) as session:
                user = access.add_user(session, email, role, now=now, actor=browser.caller.email)
                link = access.create_sign_in_link(session, user.email, now=now, actor=browser.caller.email)
        except access.AccessError as error:
            return users_page(request, status_code=422, error=str(error))
        return users_page(request, link=f"/sign-in/link/{link}", linked=user.email)

    @routes.post("/admin/users/{user_id}/link")
    def new_link(request: Request, user_id: Id, browser: BrowserSession = change) -> Response:
        try:
            with transaction(hub.sessions) as session:
                email = _email(session, user_id)
                link = access.create_sign_in_link(session, email, now=hub.clock.now(), actor=browser.caller.email)
        except access.AccessError as error:
            return users_page(request, status_code=422, error=str(error))
        return users_page(request, link=f"/sign-in/link/{link}", linked=email)

    @routes.post("/admin/users/{user_id}/disable")
    def disable(request: Request, user_id: Id, browser: BrowserSession = change) -> Response:
        try:
            with transaction(hub.sessions) as session:
                email = _email(session, user_id)
                access.disable_user(session, email, now=hub.clock.now(), actor=browser.caller.email)
        except access.AccessError as error:
            return users_page(request, status_code=422, error=str(error))
        return RedirectResponse("/admin/users", status_code=303)

    @routes.post("/admin/tokens")
    def create_token(request: Request, email: Text, name: Text, expires_in_days: Annotated[str, Form()] = "",
                     browser: BrowserSession = change) -> Response:  # fmt: skip
        now = hub.clock.now()
        try:
            days = int(expires_in_days) if expires_in_days.strip() else None
        except ValueError:
            return users_page(request, status_code=422, error="expiry: a whole number of days")
        if days is not None and not 1 <= days <= 3650:
            return users_page(request, status_code=422, error="expiry: 1 to 3650 days")
        try:
            with transaction(hub.sessions) as session:
                token = access.issue_token(session, email, name.strip() or "dashboard", now=now,
                                           expires_at=now + timedelta(days=days) if days else None,
                                           actor=browser.caller.email)  # fmt: skip
        except access.AccessError as error:
            return users_page(request, status_code=422, error=str(error))
        return users_page(request, token=token, token_for=email)

    @routes.post("/admin/tokens/{token_id}/revoke")
    def revoke(request: Request, token_id: Id, browser: BrowserSession = change) -> Response:
        try:
            with transaction(hub.sessions) as session:
                access.revoke_token(session, token_id, now=hub.clock.now(), actor=browser.caller.email)
        except access.AccessError as error:
            return users_page(request, status_code=422, error=str(error))
        return RedirectResponse("/admin/users", status_code=303)

    @routes.get("/admin/audit")
    def audit_log(request: Request, action: str = "", actor: str = "",
                  before: Annotated[int, Query(ge=0, le=2**63 - 1)] = 0,
                  browser: BrowserSession = owner) -> Response:  # fmt: skip
        action, actor = action.strip()[:100], actor.strip()[:200]
        with reading(hub.sessions) as session:
            entries = audit.entries(session, action=action, actor=actor, before=before, limit=AUDIT_PAGE + 1)
            actions = audit.actions(session)
        more = entries[AUDIT_PAGE - 1].id if len(entries) > AUDIT_PAGE else None
        return pages.render(request, "audit.html", entries=entries[:AUDIT_PAGE], action=action, actor=actor,
                            actions=actions, more=more)  # fmt: skip

    return routes


def _email(session: Session, user_id: int) -> str:
    user = session.get(User, user_id)
    if user is None:
        raise access.AccessError(f"no user {user_id}")
    return user.email
