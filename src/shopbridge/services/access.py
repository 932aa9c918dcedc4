"""Users, roles, passwords, browser sessions and API tokens. A token, a session cookie and a sign-in link are
shown once; only their SHA-256 is stored. Passwords are hashed with argon2id. Every change is audited."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from shopbridge.services import audit
from shopbridge.store.tables import ApiToken, SignInFailure, SignInLink, User, WebSession

ROLES = ("owner", "ops", "finance", "support", "viewer")
# Who may do what, the same from the dashboard, the API and the command line.
READERS = ROLES
OPERATORS = ("owner", "ops")
ENTERERS = ("owner", "ops", "support")  # who takes orders by hand (support answers WhatsApp and the phone)
OWNERS = ("owner",)
TOKEN_PREFIX = "sbt_"  # noqa: S105 - a public prefix that makes leaked tokens recognizable, not a secret


class AccessError(ValueError):
    pass


class SignInRefused(AccessError):
    """Wrong e-mail or password (which one is not said), or a disabled user."""


class TooManyFailures(AccessError):
    def __init__(self, message: str, retry_after: timedelta) -> None:
        super().__init__(message)
        self.retry_after = retry_after


MIN_PASSWORD_LENGTH = 10
MAX_PASSWORD_LENGTH = 1024
SESSION_LIFETIME = timedelta(days=7)
SESSION_IDLE = timedelta(hours=12)
SIGN_IN_LINK_LIFETIME = timedelta(hours=72)
FAILURE_WINDOW = timedelta(minutes=15)
FAILURES_PER_EMAIL = 5
FAILURES_PER_CLIENT = 20

_hasher = PasswordHasher()
# Verified when the e-mail is unknown, so an unknown address takes as long to refuse as a wrong password.
_DECOY_HASH = _hasher.hash("not a password of anyone")


@dataclass(frozen=True)
class Caller:
    user_id: int
    email: str
    role: str


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def add_user(session: Session, email: str, role: str, *, display_name: str | None = None, now: datetime,
             actor: str = "system") -> User:  # fmt: skip
    email = email.strip().lower()
    if role not in ROLES:
        raise AccessError(f"role must be one of {', '.join(ROLES)}, got {role!r}")
    if "@" not in email:
        raise AccessError(f"{email!r} is not an e-mail address")
    if session.scalar(select(User.id).where(User.email == email)) is not None:
        raise AccessError(f"a user {email} already exists")
    user = User(email=email, display_name=display_name or email.split("@")[0], role=role, created_at=now)
    session.add(user)
    session.flush()
    audit.record(session, actor, "user.add", "user", user.id, now=now, after={"email": email, "role": role})
    return user


def _user(session: Session, email: str) -> User:
    user = session.scalar(select(User).where(User.email == email.strip().lower()))
    if user is None:
        raise AccessError(f"no user {email}; add one with `shopbridge users add`")
    return user


def _check_password_rules(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise AccessError(f"a password needs at least {MIN_PASSWORD_LENGTH} characters")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise AccessError(f"a password may have at most {MAX_PASSWORD_LENGTH} characters")


def set_password(session: Session, email: str, password: str, *, now: datetime, actor: str,
                 keep_session: int | None = None) -> None:  # fmt: skip
    """Set a user's password; every browser session of theirs ends (but ``keep_session``, the one changing it)."""
    _check_password_rules(password)
    user = _user(session, email)
    user.password_hash = _hasher.hash(password)
    _end_sessions(session, user.id, now=now, keep=keep_session)
    audit.record(session, actor, "user.set_password", "user", user.id, now=now)


def disable_user(session: Session, email: str, *, now: datetime, actor: str) -> None:
    """A disabled user's sessions end and their tokens are refused at once."""
    user = _user(session, email)
    if user.disabled:
        return
    if user.role == "owner":
        owners = session.scalar(select(func.count()).where(User.role == "owner", User.disabled.is_(False)))
        if (owners or 0) <= 1:
            raise AccessError(f"{user.email} is the last owner; add another owner before disabling this one")
    user.disabled = True
    _end_sessions(session, user.id, now=now)
    audit.record(session, actor, "user.disable", "user", user.id, now=now, before={"disabled": False},
                 after={"disabled": True})  # fmt: skip


def list_users(session: Session) -> list[dict[str, object]]:
    return [
        {"id": u.id, "email": u.email, "name": u.display_name, "role": u.role, "disabled": u.disabled,
         "has_password": u.password_hash is not None}
        for u in session.scalars(select(User).order_by(User.id))
    ]  # fmt: skip


def _end_sessions(session: Session, user_id: int, *, now: datetime, keep: int | None = None) -> None:
    query = update(WebSession).where(WebSession.user_id == user_id, WebSession.ended_at.is_(None))
    if keep is not None:
        query = query.where(WebSession.id != keep)
    session.execute(query.values(ended_at=now))


# --- signing in ------------------------------------------------------------------------------------------


def _failures_since(session: Session, column: Any, value: str, since: datetime) -> tuple[int, datetime | None]:
    count, first = session.execute(
        select(func.count(), func.min(SignInFailure.at)).where(column == value, SignInFailure.at >= since)
    ).one()
    return int(count or 0), first


def check_password(session: Session, email: str, password: str, *, client: str, now: datetime) -> User:
    """The user whose e-mail and password these are. Refused without saying which was wrong; after
    FAILURES_PER_EMAIL failures for an address (or FAILURES_PER_CLIENT from one client) within FAILURE_WINDOW every
    try is refused until the oldest of them leaves the window. Failures are recorded by the caller's
    ``record_failure`` (in a transaction of its own, so a refusal does not roll it back)."""
    email = email.strip().lower()
    since = now - FAILURE_WINDOW
    for column, value, limit in ((SignInFailure.email, email, FAILURES_PER_EMAIL),
                                 (SignInFailure.client, client, FAILURES_PER_CLIENT)):  # fmt: skip
        count, first = _failures_since(session, column, value, since)
        if count >= limit and first is not None:
            wait = max(first + FAILURE_WINDOW - now, timedelta(seconds=1))
            raise TooManyFailures(f"too many failed sign-ins; try again in {_minutes(wait)}", wait)
    user = session.scalar(select(User).where(User.email == email))
    stored = user.password_hash if user is not None and user.password_hash else _DECOY_HASH
    try:
        _hasher.verify(stored, password[:MAX_PASSWORD_LENGTH])
        matched = user is not None and user.password_hash is not None
    except (VerificationError, InvalidHashError):
        matched = False
    if not matched or user is None:
        raise SignInRefused("wrong e-mail or password")
    if user.disabled:
        raise SignInRefused("this user is disabled; ask an owner")
    return user


def _minutes(wait: timedelta) -> str:
    minutes = max(1, round(wait.total_seconds() / 60))
    return f"{minutes} minute{'s' if minutes != 1 else ''}"


def record_failure(session: Session, email: str, *, client: str, now: datetime) -> None:
    session.add(SignInFailure(email=email.strip().lower()[:320], client=client[:64], at=now))
    session.execute(delete(SignInFailure).where(SignInFailure.at < now - FAILURE_WINDOW * 4))


@dataclass(frozen=True)
class BrowserSession:
    id: int
    caller: Caller
    csrf_token: str


def start_session(session: Session, user: User, *, now: datetime) -> tuple[str, str]:
    """A new browser session for the user: (the cookie's value, its CSRF token)."""
    token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    session.add(WebSession(token_hash=token_hash(token), user_id=user.id, csrf_token=csrf, created_at=now,
                           last_seen_at=now, expires_at=now + SESSION_LIFETIME))  # fmt: skip
    audit.record(session, user.email, "session.sign_in", "user", user.id, now=now)
    return token, csrf


def find_session(session: Session, token: str, *, now: datetime) -> tuple[BrowserSession, bool] | None:
    """The live browser session of a cookie value, and whether its last-seen time is due for an update (kept to a
    minute's resolution); none when it ended, expired, sat idle too long, or its user is disabled."""
    row = session.execute(
        select(WebSession, User).join(User, User.id == WebSession.user_id)
        .where(WebSession.token_hash == token_hash(token))
    ).first()  # fmt: skip
    if row is None:
        return None
    web, user = row.WebSession, row.User
    if web.ended_at is not None or web.expires_at <= now or web.last_seen_at + SESSION_IDLE <= now or user.disabled:
        return None
    stale = now - web.last_seen_at >= LAST_USED_RESOLUTION
    return BrowserSession(web.id, Caller(user.id, user.email, user.role), web.csrf_token), stale


def touch_session(session: Session, session_id: int, *, now: datetime) -> None:
    session.execute(update(WebSession).where(WebSession.id == session_id).values(last_seen_at=now))


def end_session(session: Session, session_id: int, *, now: datetime, actor: str) -> None:
    row = session.get(WebSession, session_id)
    if row is not None and row.ended_at is None:
        row.ended_at = now
        audit.record(session, actor, "session.sign_out", "user", row.user_id, now=now)


def create_sign_in_link(session: Session, email: str, *, now: datetime, actor: str) -> str:
    """A one-time token with which the user sets a password (first sign-in, or a reset)."""
    user = _user(session, email)
    token = secrets.token_urlsafe(32)
    session.add(SignInLink(token_hash=token_hash(token), user_id=user.id, created_at=now,
                           expires_at=now + SIGN_IN_LINK_LIFETIME))  # fmt: skip
    audit.record(session, actor, "user.sign_in_link", "user", user.id, now=now)
    return token


def _usable_link(session: Session, token: str, now: datetime) -> SignInLink | None:
    link = session.scalar(select(SignInLink).where(SignInLink.token_hash == token_hash(token)))
    return link if link is not None and link.used_at is None and link.expires_at > now else None


def use_sign_in_link(session: Session, token: str, password: str, *, now: datetime) -> User:
    """Set the password of the link's user; the link works once, before it expires."""
    link = _usable_link(session, token, now)
    if link is None:
        raise AccessError("this sign-in link is unknown, used or expired; ask an owner for a new one")
    user = session.get(User, link.user_id)
    if user is None or user.disabled:
        raise AccessError("this sign-in link's user is disabled; ask an owner")
    set_password(session, user.email, password, now=now, actor=user.email)
    link.used_at = now
    return user


def link_is_usable(session: Session, token: str, *, now: datetime) -> bool:
    return _usable_link(session, token, now) is not None


# --- API tokens ------------------------------------------------------------------------------------------


def issue_token(session: Session, email: str, name: str, *, now: datetime, expires_at: datetime | None = None,
                actor: str = "system") -> str:  # fmt: skip
    """A new API token for the user; the returned value is the only time it is readable."""
    user = _user(session, email)
    if expires_at is not None and expires_at <= now:
        raise AccessError("a token's expiry must be in the future")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    row = ApiToken(user_id=user.id, name=name, token_hash=token_hash(token), created_at=now, expires_at=expires_at)
    session.add(row)
    session.flush()
    audit.record(session, actor, "token.create", "api_token", row.id, now=now,
                 after={"user": user.email, "name": name, "expires_at": _iso(expires_at)})  # fmt: skip
    return token


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def list_tokens(session: Session, *, email: str | None = None) -> list[dict[str, object]]:
    query = select(ApiToken, User.email).join(User, User.id == ApiToken.user_id).order_by(ApiToken.id)
    if email:
        query = query.where(User.email == email.strip().lower())
    return [
        {"id": t.id, "user": user_email, "name": t.name, "created_at": _iso(t.created_at),
         "last_used_at": _iso(t.last_used_at), "expires_at": _iso(t.expires_at), "revoked_at": _iso(t.revoked_at)}
        for t, user_email in session.execute(query)
    ]  # fmt: skip


def revoke_token(session: Session, token_id: int, *, now: datetime, actor: str) -> None:
    row = session.get(ApiToken, token_id)
    if row is None:
        raise AccessError(f"no API token {token_id}; `shopbridge tokens list` shows them")
    if row.revoked_at is None:
        row.revoked_at = now
        audit.record(session, actor, "token.revoke", "api_token", row.id, now=now, before={"revoked_at": None},
                     after={"revoked_at": now.isoformat()})  # fmt: skip


LAST_USED_RESOLUTION = timedelta(minutes=1)


def authenticate(session: Session, token: str, *, now: datetime) -> tuple[Caller, int | None] | None:
    """The caller a token belongs to, and the token's id when its last-used time is due for an update (kept to a
    minute's resolution, so a client polling the API does not turn every read into a write)."""
    row = session.execute(
        select(ApiToken, User).join(User, User.id == ApiToken.user_id).where(ApiToken.token_hash == token_hash(token))
    ).first()
    if row is None or row.User.disabled or row.ApiToken.revoked_at is not None:
        return None
    if row.ApiToken.expires_at is not None and row.ApiToken.expires_at <= now:
        return None
    last_used = row.ApiToken.last_used_at
    stale = last_used is None or now - last_used >= LAST_USED_RESOLUTION
    return Caller(row.User.id, row.User.email, row.User.role), row.ApiToken.id if stale else None


def mark_used(session: Session, token_id: int, *, now: datetime) -> None:
    session.execute(update(ApiToken).where(ApiToken.id == token_id).values(last_used_at=now))


def acting_user(session: Session, email: str, roles: tuple[str, ...]) -> str:
    """The e-mail of an enabled user whose role is one of ``roles``, for a change made in their name (the command
    line's ``--as``); refused naming what is missing."""
    user = session.scalar(select(User).where(User.email == email.strip().lower()))
    if user is None or user.disabled:
        raise AccessError(f"no enabled user {email.strip().lower()}")
    if user.role not in roles:
        raise AccessError(f"{user.email} is {user.role}: this change needs one of: {', '.join(roles)}")
    return user.email
