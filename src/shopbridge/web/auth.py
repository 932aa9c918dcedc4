"""Every API route names the roles it admits; callers present ``Authorization: Bearer <API token>``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, HTTPException
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from shopbridge.bootstrap import Hub
from shopbridge.services.access import ENTERERS, OPERATORS, OWNERS, READERS, Caller, authenticate, mark_used
from shopbridge.store.db import reading, transaction

__all__ = ["ENTERERS", "OPERATORS", "OWNERS", "READERS", "bearer", "require"]


# Declares the bearer scheme in the OpenAPI document; the refusals below are the hub's own (401 with its message).
bearer = HTTPBearer(auto_error=False, description="An API token: `shopbridge tokens create EMAIL`.")
_CHALLENGE = {"WWW-Authenticate": "Bearer"}


def require(hub: Hub, roles: tuple[str, ...]) -> Callable[[HTTPAuthorizationCredentials | None], Caller]:
    def check(credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]) -> Caller:
        if credentials is None:
            raise HTTPException(401, "an API token is required: Authorization: Bearer <token>", headers=_CHALLENGE)
        now = hub.clock.now()
        with reading(hub.sessions) as session:
            found = authenticate(session, credentials.credentials.strip(), now=now)
        if found is None:
            raise HTTPException(401, "the API token is unknown or its user is disabled", headers=_CHALLENGE)
        caller, stale_token = found
        if stale_token is not None:
            with transaction(hub.sessions) as session:
                mark_used(session, stale_token, now=now)
        if caller.role not in roles:
            raise HTTPException(403, f"role {caller.role} may not do this; it needs one of: {', '.join(roles)}")
        return caller

    return check
