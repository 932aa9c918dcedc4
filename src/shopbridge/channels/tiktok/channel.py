"""TikTok Shop as a channel of the hub (channels/port.py): its Partner Center app and client, its job kinds, and its
routes (the webhook receiver and the OAuth callback)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import httpx
from prometheus_client import Counter

from shopbridge.channels.port import Channel, ChannelSetup, ChannelWeb, ConnectField, Connecting, ConnectRefused
from shopbridge.channels.tiktok import (
    cancellations,
    connect,
    drift,
    finance,
    fulfilment,
    inventory,
    returns,
    routes,
    sync,
)
from shopbridge.channels.tiktok.client import TikTokApp, TikTokClient
from shopbridge.channels.tiktok.connect import HubSettings
from shopbridge.channels.tiktok.shop import TikTokContext
from shopbridge.config import Settings
from shopbridge.domain.clock import Clock
from shopbridge.runtime.registry import JobRegistry

NAME = "tiktok"


@dataclass
class TikTokChannel:
    """The channel; ``context`` is None when no Partner Center app is configured (its routes then answer 503)."""

    settings: Settings
    clock: Clock
    context: TikTokContext | None
    name: str = field(default=NAME, init=False)

    @property
    def configured(self) -> bool:
        return self.context is not None

    @property
    def resync_kind(self) -> str:
        return sync.SYNC_ORDERS

    @property
    def cancels_own_orders(self) -> bool:
        return True  # as the seller, with the seller reason for the hub's (fulfilment.cancel_order)

    def hub_settings(self) -> HubSettings:
        return HubSettings.of(self.settings)

    def register_work(self, registry: JobRegistry) -> None:
        if self.context is None:
            return
        sync.register(registry, self.context, sync.SyncOptions(
            poll_overlap=timedelta(seconds=self.settings.tiktok_poll_overlap_seconds),
            initial_lookback=timedelta(hours=self.settings.tiktok_initial_lookback_hours),
            refresh_before=timedelta(hours=self.settings.tiktok_refresh_before_hours),
        ))  # fmt: skip
        inventory.register(registry, self.context)
        fulfilment.register(registry, self.context)
        cancellations.register(registry, self.context)
        returns.register(registry, self.context)
        drift.register(registry, self.context)
        finance.register(registry, self.context)

    def web(self, webhooks: Counter) -> ChannelWeb:
        return routes.web(self, webhooks)

    @property
    def connect_fields(self) -> tuple[ConnectField, ...]:
        return ()  # the seller authorizes the app on TikTok; the callback connects the shops

    def connect(self, values: Mapping[str, str], *, now: datetime) -> Connecting:
        if self.context is None:
            raise ConnectRefused("no TikTok app configured: set SHOPBRIDGE_TIKTOK_APP_KEY, "
                                 "SHOPBRIDGE_TIKTOK_APP_SECRET and SHOPBRIDGE_TIKTOK_SERVICE_ID")  # fmt: skip
        return Connecting(
            redirect_to=connect.start(self.context),
            message="open this link as the seller to authorize the app (valid 30 minutes)",
        )

    def close(self) -> None:
        if self.context is not None:
            self.context.http.close()


def build(setup: ChannelSetup) -> Channel:
    settings = setup.settings
    if not (settings.tiktok_app_key and settings.tiktok_app_secret):
        return TikTokChannel(settings, setup.clock, None)
    app = TikTokApp(
        app_key=settings.tiktok_app_key,
        app_secret=settings.tiktok_app_secret.get_secret_value(),
        service_id=settings.tiktok_service_id or "",
        api_base_url=settings.tiktok_api_base_url.rstrip("/"),
        auth_base_url=settings.tiktok_auth_base_url.rstrip("/"),
        authorize_base_url=settings.tiktok_authorize_base_url.rstrip("/"),
    )
    http = setup.http or httpx.Client(timeout=httpx.Timeout(15.0, connect=5.0))
    client = TikTokClient(app, http, limiter=setup.limiter)
    context = TikTokContext(app=app, http=http, sessions=setup.sessions, inbox_sessions=setup.inbox_sessions,
                            secrets=setup.secrets, client=client)  # fmt: skip
    return TikTokChannel(settings, setup.clock, context)


def context_of(channels: dict[str, Channel]) -> TikTokContext | None:
    """The TikTok app's context among a hub's channels, or None when no app is configured."""
    channel = channels.get(NAME)
    return channel.context if isinstance(channel, TikTokChannel) else None
