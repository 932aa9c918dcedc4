"""Users, roles and API tokens. A token is shown once; only its SHA-256 is stored."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from shopbridge.store.tables import ApiToken, User

ROLES = ("owner", "ops", "finance", "support", "viewer")
TOKEN_PREFIX = "sbt_"  # noqa: S105 - a public prefix that makes leaked tokens recognizable, not a secret


class AccessError(ValueError):
    pass


@dataclass(frozen=True)
class Caller:
    user_id: int
    email: str
    role: str


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def add_user(session: Session, email: str, role: str, *, display_name: str | None = None, now: datetime) -> User:
    if role not in ROLES:
        raise AccessError(f"role must be one of {', '.join(ROLES)}, got {role!r}")
    if "@" not in email:
        raise AccessError(f"{email!r} is not an e-mail address")
    if session.scalar(select(User.id).where(User.email == email)) is not None:
        raise AccessError(f"a user {email} already exists")
    user = User(email=email, display_name=display_name or email.split("@")[0], role=role, created_at=now)
    session.add(user)
    session.flush()
    return user


def issue_token(session: Session, email: str, name: str, *, now: datetime) -> str:
    """A new API token for the user; the returned value is the only time it is readable."""
    user = session.scalar(select(User).where(User.email == email))
    if user is None:
        raise AccessError(f"no user {email}; add one with `shopbridge users add`")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    session.add(ApiToken(user_id=user.id, name=name, token_hash=token_hash(token), created_at=now))
    return token


LAST_USED_RESOLUTION = timedelta(minutes=1)


def authenticate(session: Session, token: str, *, now: datetime) -> tuple[Caller, int | None] | None:
    """The caller a token belongs to, and the token's id when its last-used time is due for an update (kept to a
    minute's resolution, so a client polling the API does not turn every read into a write)."""
    row = session.execute(
        select(ApiToken, User).join(User, User.id == ApiToken.user_id).where(ApiToken.token_hash == token_hash(token))
    ).first()
    if row is None or row.User.disabled:
        return None
    last_used = row.ApiToken.last_used_at
    stale = last_used is None or now - last_used >= LAST_USED_RESOLUTION
    return Caller(row.User.id, row.User.email, row.User.role), row.ApiToken.id if stale else None


def mark_used(session: Session, token_id: int, *, now: datetime) -> None:
    session.execute(update(ApiToken).where(ApiToken.id == token_id).values(last_used_at=now))
