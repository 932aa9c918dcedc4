"""Connecting a POS: its API's base URL, the account id and the shared secret (docs/pos-protocol.md §1).

The hub reads ``GET /locations`` with them (so a wrong secret or URL is refused at once, naming what the POS
said), maps each POS location to a hub location (the one named in ``location_map``, else the one whose code is
the POS location's id, else a new one), stores the account with its secret sealed, and schedules the backstop
poll, which also reads every location's levels at once: the POS becomes the stock master of the SKUs it carries.
Reconnecting with a new secret (or new locations) updates the same account."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from shopbridge.channels.pos.client import MIN_SECRET_LENGTH, PosAccount, PosClient, PosError, PosRefused
from shopbridge.channels.pos.context import NAME, STOCK_MASTER, PosContext
from shopbridge.channels.pos.kinds import POLL
from shopbridge.runtime.jobs import enqueue, resume_account
from shopbridge.runtime.scheduler import Periodic, ensure_schedule
from shopbridge.store.db import dialect_insert, transaction
from shopbridge.store.sync_issues import resolve_issue
from shopbridge.store.tables import ChannelAccount, ChannelWarehouse, Location

MAX_CODE = 50


class SetupError(Exception):
    """A connection that must not go ahead; the message says what to change."""


@dataclass(frozen=True)
class ConnectedPos:
    account_id: int
    account: str
    locations: dict[str, str]  # POS location id -> hub location code


def parse_pairs(text: str) -> dict[str, str]:
    """``store-downtown=MAIN, store-mall=MALL`` → {POS location: hub location code}."""
    pairs: dict[str, str] = {}
    for part in (piece.strip() for piece in text.replace("\n", ",").split(",")):
        if not part:
            continue
        pos_location, equals, hub_code = part.partition("=")
        if not equals or not pos_location.strip() or not hub_code.strip():
            raise SetupError(f"location map: {part!r} is not of the form pos-location=HUB-CODE")
        pairs[pos_location.strip()] = hub_code.strip()
    return pairs


def connect_pos(
    context: PosContext,
    base_url: str,
    account: str,
    secret: str,
    *,
    now: datetime,
    location_map: Mapping[str, str] | None = None,
    priorities: list[str] | None = None,
) -> ConnectedPos:
    base_url, account, secret = base_url.strip().rstrip("/"), account.strip(), secret.strip()
    if not base_url.startswith(("http://", "https://")):
        raise SetupError(f"the base URL must start with https:// (or http:// on a local network), got {base_url!r}")
    if not account or len(account) > 100:
        raise SetupError("the POS account id is required (at most 100 characters)")
    if len(secret) < MIN_SECRET_LENGTH:
        raise SetupError(f"the shared secret must be at least {MIN_SECRET_LENGTH} characters (§1)")
    client = PosClient(PosAccount(base_url, account, secret), context.http)
    try:
        listed = client.locations()
    except PosRefused as refused:
        raise SetupError(f"the POS refused to list its locations: {refused}") from None
    except PosError as error:
        raise SetupError(f"the POS did not answer with its locations: {error}") from None
    locations = [{"location_id": str(item.get("location_id")), "name": str(item.get("name") or item.get("location_id")),
                  "timezone": item.get("timezone"), "active": bool(item.get("active", True))}
                 for item in listed if item.get("location_id")]  # fmt: skip
    if not locations:
        raise SetupError("the POS lists no locations: there is nothing to mirror or fulfil from")
    known = {str(location["location_id"]) for location in locations}
    unknown = sorted(set(location_map or {}) - known) + sorted(set(priorities or []) - known)
    if unknown:
        raise SetupError(f"the POS has no location {', '.join(unknown)} (it lists {', '.join(sorted(known))})")
    order = list(dict.fromkeys([*(priorities or []), *(location["location_id"] for location in locations)]))
    ranked = sorted(locations, key=lambda location: order.index(str(location["location_id"])))
    with transaction(context.sessions) as session:
        account_id, mapped = _store(session, context, account, secret, base_url, ranked, dict(location_map or {}), now)
    return ConnectedPos(account_id, account, mapped)


def _store(session: Session, context: PosContext, account: str, secret: str, base_url: str,
           locations: list[dict[str, Any]], location_map: dict[str, str],
           now: datetime) -> tuple[int, dict[str, str]]:  # fmt: skip
    row = session.scalar(select(ChannelAccount).where(ChannelAccount.channel == NAME,
                                                      ChannelAccount.external_id == account))  # fmt: skip
    if row is None:
        row = ChannelAccount(channel=NAME, external_id=account, created_at=now, settings={})
        session.add(row)
    row.label = f"POS {account}"
    row.status, row.status_reason = "active", None
    row.currency, row.timezone = context.settings.currency, context.settings.timezone
    row.credentials = context.secrets.seal({"secret": secret})
    row.credentials_expire_at = None
    row.settings = {**(row.settings or {}), "base_url": base_url, "fulfils_orders": True,
                    "stock_master": STOCK_MASTER, "stock_push_mode": "mirror", "locations": locations}  # fmt: skip
    row.updated_at = now
    session.flush()
    mapped: dict[str, str] = {}
    used: dict[int, str] = {}
    for location in locations:
        pos_id = str(location["location_id"])
        hub = _hub_location(session, location_map.get(pos_id) or pos_id, location, create=pos_id not in location_map,
                            now=now)  # fmt: skip
        if hub.id in used:
            raise SetupError(f"{used[hub.id]} and {pos_id} would both be hub location {hub.code}: map each POS "
                             "location to a location of its own")  # fmt: skip
        used[hub.id] = pos_id
        mapped[pos_id] = hub.code
        session.execute(
            dialect_insert(session)(ChannelWarehouse)
            .values(channel_account_id=row.id, external_warehouse_id=pos_id, location_id=hub.id,
                    name=str(location["name"]))
            .on_conflict_do_update(index_elements=["channel_account_id", "external_warehouse_id"],
                                   set_={"location_id": hub.id, "name": str(location["name"])})
        )  # fmt: skip
    resume_account(session, row.id, now=now)
    resolve_issue(session, f"needs_reauth:{row.id}", now)
    every = context.settings.pos_poll_seconds
    ensure_schedule(session, Periodic(f"{POLL}:{row.id}", POLL, every, channel_account_id=row.id),
                    now=now + timedelta(seconds=every))  # fmt: skip
    enqueue(session, POLL, {}, now=now, channel_account_id=row.id, identity_key=f"{POLL}:{row.id}", priority=5)
    return row.id, mapped


def _hub_location(session: Session, code: str, location: Mapping[str, Any], *, create: bool,
                  now: datetime) -> Location:  # fmt: skip
    found = session.scalar(select(Location).where(func.lower(Location.code) == code.lower()))
    if found is not None:
        return found
    if not create:
        raise SetupError(f"location map: the hub has no location {code} (see shopbridge stock locations)")
    made = Location(code=code[:MAX_CODE], name=f"{location['name']} (POS)", timezone=location.get("timezone"),
                    active=True, created_at=now)  # fmt: skip
    session.add(made)
    session.flush()
    return made
