"""What every POS routine needs, wired once by the composition root, and a connected POS account's client.

A POS account is a ``channel_accounts`` row with ``channel = "pos"``, ``external_id`` the POS's account id
(``X-POS-Account``), ``credentials`` sealed as ``{"secret"}`` and ``settings``:

- ``base_url``: where its API answers, ending in ``/v1``;
- ``fulfils_orders`` (true): released orders of other channels become fulfilment tasks at one of its locations
  (services/fulfilment.py, tasks.py);
- ``stock_master`` (``pos``): its levels are the truth of the SKUs it carries; the hub mirrors them and never
  writes back (stock.py);
- ``stock_push_mode`` (``mirror``): nothing is pushed to it;
- ``locations``: its locations in routing order, best first, each ``{"location_id", "name", "active"}``; each is
  mapped to a hub location by a ``channel_warehouses`` row (``external_warehouse_id`` = the POS location id);
- ``watermarks``: where the backstop reads of tasks and returns start (tasks.py, returns in events.py).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

import httpx
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from shopbridge.channels.pos.client import PosAccount, PosClient, PosReauth
from shopbridge.config import Settings
from shopbridge.domain.clock import Clock
from shopbridge.store.db import reading
from shopbridge.store.secrets import SecretBox
from shopbridge.store.tables import ChannelAccount, ChannelWarehouse

NAME = "pos"
STOCK_MASTER = "pos"
TASK_REF_PREFIX = "sb-"  # a task's reference is the hub's order link: sb-<order_links.id>


@dataclass
class PosContext:
    http: httpx.Client
    sessions: sessionmaker[Session]
    inbox_sessions: sessionmaker[Session]
    secrets: SecretBox
    clock: Clock
    settings: Settings
    _clients: dict[tuple[int, str, str], PosClient] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def secret(self, account: ChannelAccount) -> str | None:
        credentials = self.secrets.open(account.credentials) if account.credentials else {}
        secret = credentials.get("secret")
        return str(secret) if secret else None

    def client_for(self, account: ChannelAccount) -> PosClient:
        if account.status == "needs_reauth":
            raise PosReauth(f"{account.label} needs to be reconnected: {account.status_reason}")
        secret = self.secret(account)
        base_url = str(setting(account, "base_url") or "")
        if not secret or not base_url:
            raise PosReauth(f"{account.label} has no stored secret or base URL")
        key = (account.id, base_url, secret)
        with self._lock:
            client = self._clients.get(key)
            if client is None:
                client = self._clients[key] = PosClient(PosAccount(base_url, account.external_id, secret), self.http)
            return client


def setting(account: ChannelAccount, key: str, default: Any = None) -> Any:
    return (account.settings or {}).get(key, default)


def read_account(context: PosContext, account_id: int) -> ChannelAccount:
    """A POS account's row (detached), or PosReauth if it is not a connected POS."""
    with reading(context.sessions) as session:
        account = session.get(ChannelAccount, account_id)
        if account is not None:
            session.expunge(account)
    if account is None or account.channel != NAME:
        raise PosReauth(f"channel account {account_id} is not a connected POS")
    return account


def mapped_locations(session: Session, account_id: int) -> dict[str, int]:
    """POS location id → hub location id, for the account's locations mapped to one."""
    rows = session.execute(
        select(ChannelWarehouse.external_warehouse_id, ChannelWarehouse.location_id).where(
            ChannelWarehouse.channel_account_id == account_id, ChannelWarehouse.location_id.is_not(None)
        )
    )
    return {str(external): int(location) for external, location in rows if location is not None}


def routing_order(account: ChannelAccount) -> list[str]:
    """The account's active locations, best first (the order it was connected with)."""
    return [str(location["location_id"]) for location in setting(account, "locations", [])
            if isinstance(location, dict) and location.get("active", True)]  # fmt: skip
