"""Every API route names the roles it admits; callers present ``Authorization: Bearer <API token>``."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import HTTPException, Request

from shopbridge.bootstrap import Hub
from shopbridge.services.access import Caller, authenticate, mark_used
from shopbridge.store.db import reading, transaction

READERS = ("owner", "ops", "finance", "support", "viewer")
OPERATORS = ("owner", "ops")


def require(hub: Hub, roles: tuple[str, ...]) -> Callable[[Request], Caller]:
    def check(request: Request) -> Caller:
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise HTTPException(401, "an API token is required: Authorization: Bearer <token>")
        now = hub.clock.now()
        with reading(hub.sessions) as session:
            found = authenticate(session, token.strip(), now=now)
        if found is None:
            raise HTTPException(401, "the API token is unknown or its user is disabled")
        caller, stale_token = found
        if stale_token is not None:
            with transaction(hub.sessions) as session:
                mark_used(session, stale_token, now=now)
        if caller.role not in roles:
            raise HTTPException(403, f"role {caller.role} may not do this; it needs one of: {', '.join(roles)}")
        return caller

    return check
