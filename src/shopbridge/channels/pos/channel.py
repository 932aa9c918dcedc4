"""A point of sale (or an ERP) as a channel of the hub (channels/port.py), speaking the POS protocol
(docs/pos-protocol.md): the stock master of the SKUs its stores carry, mirrored by the hub; a fulfiller of
released orders of the other channels, as tasks at the store the routing rule picks; and a returns desk whose
returns of those orders become refunds on their channel."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

import httpx
from fastapi import APIRouter
from prometheus_client import Counter

from shopbridge.channels.port import Channel, ChannelSetup, ChannelWeb, ConnectField, Connecting, ConnectRefused
from shopbridge.channels.pos import drift, events, receiver, tasks
from shopbridge.channels.pos.connect import SetupError, connect_pos, parse_pairs
from shopbridge.channels.pos.context import NAME, PosContext
from shopbridge.channels.pos.kinds import POLL
from shopbridge.runtime.registry import JobRegistry


@dataclass
class PosChannel:
    context: PosContext
    name: str = field(default=NAME, init=False)

    @property
    def configured(self) -> bool:
        return True  # each POS account brings its own URL and secret

    @property
    def resync_kind(self) -> str:
        return POLL  # the POS takes no orders of its own: a retry reads its tasks and levels again

    @property
    def cancels_own_orders(self) -> bool:
        return False

    def register_work(self, registry: JobRegistry) -> None:
        events.register(registry, self.context)
        tasks.register(registry, self.context)
        drift.register(registry, self.context)

    def web(self, webhooks: Counter) -> ChannelWeb:
        router = APIRouter()
        router.include_router(receiver.router(self.context, webhooks))
        return ChannelWeb(router)

    @property
    def connect_fields(self) -> tuple[ConnectField, ...]:
        return (
            ConnectField("base_url", "API base URL", hint="e.g. https://pos.example.com/v1"),
            ConnectField("account", "POS account id", hint="the X-POS-Account the POS knows the merchant by"),
            ConnectField("secret", "Shared secret", secret=True, hint="at least 32 characters; signs both ways"),
            ConnectField("location_map", "Location map", required=False,
                         hint="pos-location=HUB-CODE pairs, e.g. store-downtown=MAIN (others get a location each)"),
            ConnectField("priorities", "Routing order", required=False,
                         hint="POS location ids, best first (default: the POS's order)"),
        )  # fmt: skip

    def connect(self, values: Mapping[str, str], *, now: datetime) -> Connecting:
        try:
            priorities = [part.strip() for part in values.get("priorities", "").split(",") if part.strip()]
            connected = connect_pos(
                self.context, values.get("base_url", ""), values.get("account", ""), values.get("secret", ""),
                now=now, location_map=parse_pairs(values.get("location_map", "")), priorities=priorities,
            )  # fmt: skip
        except SetupError as error:
            raise ConnectRefused(str(error)) from None
        mapped = ", ".join(f"{pos}→{hub}" for pos, hub in connected.locations.items())
        return Connecting(account_id=connected.account_id,
                          message=f"connected POS {connected.account} as channel account {connected.account_id} "
                          f"({mapped}); its levels are being read")  # fmt: skip

    def close(self) -> None:
        self.context.http.close()


def build(setup: ChannelSetup) -> Channel:
    http = setup.http or httpx.Client(timeout=httpx.Timeout(10.0, connect=5.0))
    context = PosContext(http=http, sessions=setup.sessions, inbox_sessions=setup.inbox_sessions,
                         secrets=setup.secrets, clock=setup.clock, settings=setup.settings)  # fmt: skip
    return PosChannel(context)


def context_of(channels: dict[str, Channel]) -> PosContext | None:
    """The POS channel's context among a hub's channels."""
    channel = channels.get(NAME)
    return channel.context if isinstance(channel, PosChannel) else None
