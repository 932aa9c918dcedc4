"""The channel port: what an outside system (a marketplace, a store, a POS) implements to be a channel of the hub.

A channel is one package under ``channels/`` with a ``build(setup)`` function returning a ``Channel``, listed once in
``bootstrap.CHANNELS``. The hub then registers the work kinds the channel declares, serves its routes (webhook intake
with its own signature check, the connect callbacks) beside the API, runs the background services those routes need
for the web process's lifetime, and re-reads an order through the channel's resync kind when someone retries it.
What every channel shares lives outside the channels: order intake and upsert (``services/orders.py``), the stock
ledger and the push bookkeeping (``services/stock.py``, ``services/availability.py``), the inbox and the work engine
(``runtime/``), and the rules themselves (``domain/``). No channel imports another.

Channels meet through the hub's tables and job kinds named by convention (``services/fulfilment.py``): a channel
whose accounts fulfil orders (a store) registers ``<name>.place_order`` and ``<name>.cancel_order`` and reports its
fulfilments with ``fulfilment.record_shipment``; a channel whose orders are fulfilled elsewhere (a marketplace)
registers ``<name>.ship_order`` (send a shipment's tracking), ``<name>.cancel_order`` (cancel an order there, with a
``domain.orders.CancelReason``) and, where buyers ask to cancel, ``<name>.answer_cancellation``."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

import httpx
from fastapi import APIRouter
from prometheus_client import Counter
from sqlalchemy.orm import Session, sessionmaker

from shopbridge.config import Settings
from shopbridge.domain.clock import Clock
from shopbridge.runtime.ratelimit import RateLimiter
from shopbridge.runtime.registry import JobRegistry
from shopbridge.store.secrets import SecretBox


@dataclass(frozen=True)
class ChannelSetup:
    """What the composition root hands every channel's ``build``."""

    settings: Settings
    sessions: sessionmaker[Session]
    inbox_sessions: sessionmaker[Session]  # the inbox's database (the hub's own, or a file of its own on SQLite)
    secrets: SecretBox
    limiter: RateLimiter
    clock: Clock
    http: httpx.Client | None = None  # a transport to use instead of the channel's own (tests, in-process sandboxes)


@dataclass(frozen=True)
class ChannelWeb:
    """A channel's part of the web app: its routes, and the services they need while the app runs (started when the
    app starts, stopped when it stops)."""

    router: APIRouter
    start: Callable[[], None] = lambda: None
    stop: Callable[[], None] = lambda: None


@dataclass(frozen=True)
class ConnectField:
    """One field of a channel's connect form in the dashboard."""

    name: str
    label: str
    required: bool = True
    secret: bool = False
    choices: tuple[str, ...] = ()  # a choice among these (the first is the default)
    hint: str = ""


@dataclass(frozen=True)
class Connecting:
    """What connecting asked for: a page the person must go to (an OAuth authorization), or the account made."""

    redirect_to: str | None = None
    account_id: int | None = None
    message: str = ""


class ConnectRefused(ValueError):
    """The connect form's values cannot connect an account; the message says which and why."""


class Channel(Protocol):
    """One outside system, as the hub sees it."""

    @property
    def name(self) -> str:
        """The channel's name as stored on its accounts (``channel_accounts.channel``), e.g. ``tiktok``."""

    @property
    def configured(self) -> bool:
        """Whether the hub holds what the channel needs to connect accounts (an app's keys, say)."""

    @property
    def resync_kind(self) -> str:
        """The job kind that re-reads orders named in its payload (``order_ids``): what an order's retry queues."""

    @property
    def cancels_own_orders(self) -> bool:
        """Whether staff can cancel an order taken in this channel from the hub: its ``<name>.cancel_order`` then
        takes ``{"order_id", "reason", "source"}`` and cancels the order there (the channel reports it back)."""

    def register_work(self, registry: JobRegistry) -> None:
        """Register the channel's job kinds (nothing when it is not configured)."""

    def web(self, webhooks: Counter) -> ChannelWeb:
        """The channel's routes; ``webhooks`` counts deliveries by channel and outcome."""

    @property
    def connect_fields(self) -> tuple[ConnectField, ...]:
        """The dashboard's connect form for this channel (empty: a button, e.g. to an OAuth authorization)."""

    def connect(self, values: Mapping[str, str], *, now: datetime) -> Connecting:
        """Connect an account from the form's values, or say where the person must go to authorize; raises
        ``ConnectRefused`` naming what is wrong."""

    def close(self) -> None:
        """Release what the channel holds (its HTTP client)."""


Build = Callable[[ChannelSetup], Channel]
