"""Connecting an account through its channel's port, and each connected account's health: its state, when its
authorization expires, when its last webhook came, whether a channel that sends webhooks has gone silent, and which
hub location each of its warehouses or stores is mapped to."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from shopbridge.channels.port import Channel, Connecting, ConnectRefused
from shopbridge.services import audit
from shopbridge.store.db import transaction
from shopbridge.store.sync_issues import raise_issue, resolve_issue
from shopbridge.store.tables import ChannelAccount, ChannelWarehouse, InboundEvent, Location, SyncIssue

EXPIRY_WARNING = timedelta(days=7)
SILENCE_AFTER = timedelta(hours=6)
WEBHOOK_CHANNELS = frozenset({"tiktok", "shopify"})  # channels whose accounts send webhooks (manual ones do not)


@dataclass(frozen=True)
class Health:
    account_id: int
    channel: str
    label: str
    external_id: str
    state: str  # healthy, needs_reauth, expiring, silent, disconnected
    reason: str | None
    credentials_expire_at: datetime | None
    last_webhook_at: datetime | None
    open_issues: int
    # The account's warehouses or stores (their name there) and the hub location each is mapped to (None: unmapped).
    locations: list[tuple[str, str | None]] = field(default_factory=list)


def health(session: Session, inbox: Session, *, now: datetime) -> list[Health]:
    accounts = session.scalars(select(ChannelAccount).order_by(ChannelAccount.channel, ChannelAccount.id)).all()
    issues = dict(session.execute(
        select(SyncIssue.channel_account_id, func.count()).where(SyncIssue.status == "open")
        .group_by(SyncIssue.channel_account_id)
    ).all())  # fmt: skip
    mapped: dict[int, list[tuple[str, str | None]]] = {}
    for account_id, name, external, code in session.execute(
        select(ChannelWarehouse.channel_account_id, ChannelWarehouse.name, ChannelWarehouse.external_warehouse_id,
               Location.code)
        .outerjoin(Location, Location.id == ChannelWarehouse.location_id)
        .order_by(ChannelWarehouse.channel_account_id, ChannelWarehouse.id)
    ):  # fmt: skip
        mapped.setdefault(account_id, []).append((str(name or external), code))
    shown = []
    for account in accounts:
        last = inbox.scalar(select(func.max(InboundEvent.received_at))
                            .where(InboundEvent.channel_account_id == account.id))  # fmt: skip
        state, reason = _state(account, last, now)
        shown.append(Health(account.id, account.channel, account.label, account.external_id, state, reason,
                            account.credentials_expire_at, last, int(issues.get(account.id, 0)),
                            mapped.get(account.id, [])))  # fmt: skip
    return shown


def _state(account: ChannelAccount, last_webhook: datetime | None, now: datetime) -> tuple[str, str | None]:
    if account.status == "needs_reauth":
        return "needs_reauth", account.status_reason or "the channel refused the hub's authorization"
    if account.status != "active":
        return "disconnected", account.status_reason or account.status
    expires = account.credentials_expire_at
    if expires is not None and expires <= now + EXPIRY_WARNING:
        return "expiring", f"the authorization ends {'in ' + _days(expires - now) if expires > now else 'now'}"
    if account.channel in WEBHOOK_CHANNELS:
        heard = last_webhook or account.created_at
        if heard is not None and now - heard > SILENCE_AFTER:
            return "silent", f"no webhook for {_hours(now - heard)}; the order poll is the only source"
    return "healthy", None


def _days(span: timedelta) -> str:
    days = max(0, round(span.total_seconds() / 86400))
    return f"{days} day{'s' if days != 1 else ''}"


def _hours(span: timedelta) -> str:
    hours = int(span.total_seconds() // 3600)
    return f"{hours} hour{'s' if hours != 1 else ''}"


def connect(sessions: sessionmaker[Session], port: Channel, given: Mapping[str, str], *, now: datetime,
            actor: str) -> Connecting:  # fmt: skip
    """Connect an account of a channel from the values of its connect form (the dashboard's or the command line's):
    a choice left empty takes its first option; a required field left empty, or the channel's own refusal, raises
    ``ConnectRefused``. One audit entry (never a secret field's value)."""
    fields = port.connect_fields
    values = {field.name: (given.get(field.name) or "").strip()[:500] or (field.choices[0] if field.choices else "")
              for field in fields}  # fmt: skip
    missing = [field.label for field in fields if field.required and not values[field.name]]
    if missing:
        raise ConnectRefused(f"{', '.join(missing)}: required")
    connecting = port.connect(values, now=now)
    shown = {field.name: values[field.name] for field in fields if not field.secret}
    with transaction(sessions) as session:
        audit.record(session, actor, f"connection.{port.name}",
                     "channel_account" if connecting.account_id else "channel", connecting.account_id or port.name,
                     now=now, after={**shown, "redirected": connecting.redirect_to is not None})  # fmt: skip
    return connecting


SILENCE_CHECK = "connections.silence_check"
SILENCE_CHECK_SECONDS = 600.0
WEBHOOK_SILENCE = "webhook_silence"


def check_silence(session: Session, inbox: Session, *, now: datetime) -> int:
    """Raise a "webhook silence" issue for each active account of a webhook channel that has sent none for
    SILENCE_AFTER (the poll is then its only source: changes arrive minutes late), and resolve it once one comes.
    Returns how many accounts are silent."""
    silent = 0
    for item in health(session, inbox, now=now):
        fingerprint = f"{WEBHOOK_SILENCE}:{item.account_id}"
        if item.state == "silent":
            silent += 1
            raise_issue(session, kind=WEBHOOK_SILENCE, severity="warning", fingerprint=fingerprint, now=now,
                        message=f"{item.label}: {item.reason}; check the webhook subscriptions and the hub's public "
                        "URL", channel_account_id=item.account_id, details={"act": "owner"})  # fmt: skip
        else:
            resolve_issue(session, fingerprint, now)
    return silent
