"""What every Shopify routine needs, wired once by the composition root, and a connected store's client.

A store is a ``channel_accounts`` row with ``channel = "shopify"``, ``external_id`` its ``*.myshopify.com`` domain,
``credentials`` sealed as ``{"access_token", "webhook_secret"}`` and ``settings``:

- ``fulfils_orders`` (true): released orders of other channels are placed in this store (services/fulfilment.py);
- ``stock_master``: ``hub`` (the hub's truth is written to the store with compare-and-swap) or ``shopify`` (the
  store's quantities are the truth, mirrored by the hub and never written back);
- ``stock_push_mode``: ``event`` in the hub-master mode, ``mirror`` in the Shopify-master mode (nothing pushed);
- ``api_version``: the Admin API version it was connected with;
- ``discounts``: ``seller`` (each unit at its price after the seller's own discounts; a platform-funded discount
  stays in, as the platform pays it to the merchant) or ``all`` (the order's subtotal after every discount spread
  over its units, rounded to the cent);
- ``carrier_map``: store carrier name → the marketplace's provider name, read by the marketplace channel.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

import httpx
from sqlalchemy.orm import Session, sessionmaker

from shopbridge.channels.shopify.client import API_VERSION, ShopifyClient, ShopifyReauth, Store
from shopbridge.config import Settings
from shopbridge.domain.clock import Clock
from shopbridge.store.db import reading
from shopbridge.store.secrets import SecretBox
from shopbridge.store.tables import ChannelAccount

NAME = "shopify"
HUB_MASTER = "hub"
STORE_MASTER = "shopify"


@dataclass(frozen=True)
class ShopifyApp:
    """The hub's Shopify app, where there is one (OAuth installs, and the webhook secret of stores it installed)."""

    api_key: str | None
    api_secret: str | None
    api_version: str = API_VERSION
    base_url: str | None = None  # where every store's Admin API answers instead of https://{shop}
    scopes: str = ""


@dataclass
class ShopifyContext:
    app: ShopifyApp
    http: httpx.Client
    sessions: sessionmaker[Session]
    inbox_sessions: sessionmaker[Session]
    secrets: SecretBox
    clock: Clock
    settings: Settings
    _clients: dict[tuple[int, str], ShopifyClient] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def store(self, account: ChannelAccount) -> Store:
        credentials = self.secrets.open(account.credentials) if account.credentials else {}
        token = credentials.get("access_token")
        if not token:
            raise ShopifyReauth(f"{account.label} has no stored access token")
        version = str((account.settings or {}).get("api_version") or self.app.api_version)
        return Store(account.external_id, str(token), version, self.app.base_url)

    def client_for(self, account: ChannelAccount) -> ShopifyClient:
        """The store's client, one per account and token: it keeps what it learned of the store's cost bucket."""
        if account.status == "needs_reauth":
            raise ShopifyReauth(f"{account.label} needs to be reconnected: {account.status_reason}")
        store = self.store(account)
        key = (account.id, store.access_token)
        with self._lock:
            client = self._clients.get(key)
            if client is None:
                client = self._clients[key] = ShopifyClient(store, self.http)
            return client

    def webhook_secret(self, account: ChannelAccount) -> str | None:
        credentials = self.secrets.open(account.credentials) if account.credentials else {}
        return credentials.get("webhook_secret") or self.app.api_secret


def read_store(context: ShopifyContext, account_id: int) -> ChannelAccount:
    """A store's account row (detached), or ShopifyReauth if it is not a connected store."""
    with reading(context.sessions) as session:
        account = session.get(ChannelAccount, account_id)
        if account is not None:
            session.expunge(account)
    if account is None or account.channel != NAME:
        raise ShopifyReauth(f"channel account {account_id} is not a connected Shopify store")
    return account


def store_client(context: ShopifyContext, account_id: int) -> tuple[ChannelAccount, ShopifyClient]:
    account = read_store(context, account_id)
    return account, context.client_for(account)


def stock_master(account: ChannelAccount) -> str:
    return str((account.settings or {}).get("stock_master") or HUB_MASTER)


def setting(account: ChannelAccount, key: str, default: Any = None) -> Any:
    return (account.settings or {}).get(key, default)


def gid(kind: str, legacy_id: int | str) -> str:
    """``gid://shopify/{kind}/{id}`` from a REST id (webhook payloads carry both)."""
    text = str(legacy_id)
    return text if text.startswith("gid://") else f"gid://shopify/{kind}/{text}"


def legacy_id(global_id: str) -> str:
    return global_id.rsplit("/", 1)[-1].split("?", 1)[0]
