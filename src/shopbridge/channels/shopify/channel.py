"""Shopify as a channel of the hub (channels/port.py): a merchant's store, connected with an Admin API token or
by installing the hub's app. The store fulfils released orders of the other channels, reports its fulfilments and
cancellations, sends its own orders to the hub's queue, and keeps stock with the hub in the mode its account names
(context.py)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

import httpx
from fastapi import APIRouter
from prometheus_client import Counter

from shopbridge.channels.port import Channel, ChannelSetup, ChannelWeb, ConnectField, Connecting, ConnectRefused
from shopbridge.channels.shopify import catalog, drift, intake, oauth, orders, stock, webhooks
from shopbridge.channels.shopify.connect import SetupError, connect_with_token
from shopbridge.channels.shopify.context import HUB_MASTER, NAME, STORE_MASTER, ShopifyApp, ShopifyContext
from shopbridge.channels.shopify.kinds import SYNC_ORDER
from shopbridge.config import Settings
from shopbridge.domain.clock import Clock
from shopbridge.runtime.registry import JobRegistry

INSTALL_HINT = "open this link as the store's owner to install the app (valid 30 minutes)"


@dataclass
class ShopifyChannel:
    """The channel. Stores are connected with their own token and webhook secret, so the channel works without an
    app of the hub's own; the app's keys (``shopify_api_key``, ``shopify_api_secret``) add the OAuth install."""

    settings: Settings
    clock: Clock
    context: ShopifyContext
    name: str = field(default=NAME, init=False)

    @property
    def configured(self) -> bool:
        return True

    @property
    def resync_kind(self) -> str:
        return SYNC_ORDER

    @property
    def cancels_own_orders(self) -> bool:
        return False  # its cancel_order cancels the orders the hub placed; the store's own are cancelled there

    def register_work(self, registry: JobRegistry) -> None:
        catalog.register(registry, self.context)
        stock.register(registry, self.context)
        orders.register(registry, self.context)
        intake.register(registry, self.context)
        drift.register(registry, self.context)

    def web(self, webhooks_received: Counter) -> ChannelWeb:
        router = APIRouter()
        router.include_router(webhooks.router(self.context, webhooks_received))
        router.include_router(oauth.web_routes(self.context, self.clock))
        return ChannelWeb(router)

    @property
    def connect_fields(self) -> tuple[ConnectField, ...]:
        return (
            ConnectField("shop", "Store domain", hint="your-store.myshopify.com"),
            ConnectField("access_token", "Admin API token", required=False, secret=True,
                         hint="a custom app's token; leave empty to install the hub's app instead"),
            ConnectField("webhook_secret", "Webhook secret", required=False, secret=True,
                         hint="the secret the store signs webhooks with (default: the hub app's secret)"),
            ConnectField("stock_master", "Stock truth", choices=(HUB_MASTER, STORE_MASTER),
                         hint="hub: the hub writes the store's quantities; shopify: the hub mirrors the store"),
        )  # fmt: skip

    def connect(self, values: Mapping[str, str], *, now: datetime) -> Connecting:
        shop, token = values.get("shop", "").strip(), values.get("access_token", "").strip()
        master = values.get("stock_master") or HUB_MASTER
        try:
            if not token:
                link = oauth.start(self.context, shop, stock_master=master)
                return Connecting(redirect_to=link, message=INSTALL_HINT)
            store = connect_with_token(self.context, shop, token, webhook_secret=values.get("webhook_secret") or None,
                                       stock_master=master, now=now)  # fmt: skip
        except SetupError as error:
            raise ConnectRefused(str(error)) from None
        connected = f"connected {store.name} ({store.shop_domain}) as channel account {store.account_id}"
        return Connecting(
            account_id=store.account_id,
            message=f"{connected}, stock master {store.stock_master}; its catalogue import is queued",
        )

    def close(self) -> None:
        self.context.http.close()


def build(setup: ChannelSetup) -> Channel:
    settings = setup.settings
    secret = settings.shopify_api_secret.get_secret_value() if settings.shopify_api_secret else None
    app = ShopifyApp(
        api_key=settings.shopify_api_key,
        api_secret=secret,
        api_version=settings.shopify_api_version,
        base_url=settings.shopify_admin_base_url.rstrip("/") if settings.shopify_admin_base_url else None,
        scopes=settings.shopify_scopes,
    )
    http = setup.http or httpx.Client(timeout=httpx.Timeout(15.0, connect=5.0))
    context = ShopifyContext(app=app, http=http, sessions=setup.sessions, inbox_sessions=setup.inbox_sessions,
                             secrets=setup.secrets, clock=setup.clock, settings=settings)  # fmt: skip
    return ShopifyChannel(settings, setup.clock, context)


def context_of(channels: dict[str, Channel]) -> ShopifyContext | None:
    """The Shopify channel's context among a hub's channels."""
    channel = channels.get(NAME)
    return channel.context if isinstance(channel, ShopifyChannel) else None
