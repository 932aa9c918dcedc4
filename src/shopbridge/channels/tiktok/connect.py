"""Connecting a TikTok shop: the authorization link, then the callback that exchanges the code, stores the tokens
encrypted, discovers the shops and their ciphers, checks currency and timezone, subscribes the webhooks and
schedules the poll and the token refresh."""

from __future__ import annotations

import secrets as random_tokens
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from shopbridge.channels.tiktok.auth import TokenSet, authorization_url, exchange_code
from shopbridge.channels.tiktok.cancellations import ensure_cancellation_schedule
from shopbridge.channels.tiktok.errors import TikTokError
from shopbridge.channels.tiktok.finance import IMPORT_SECONDS, ensure_finance_schedule
from shopbridge.channels.tiktok.inventory import CHECK_STOCK, IMPORT_LISTINGS, PUSH_DIRTY
from shopbridge.channels.tiktok.returns import ensure_return_schedule
from shopbridge.channels.tiktok.shop import Shop, TikTokContext, seal_credentials
from shopbridge.channels.tiktok.sync import POLL_ORDERS, REFRESH_TOKENS
from shopbridge.channels.tiktok.webhooks import SUBSCRIBED_TOPICS
from shopbridge.config import Settings
from shopbridge.runtime.jobs import enqueue, resume_account
from shopbridge.runtime.scheduler import Periodic, ensure_schedule
from shopbridge.store.db import dialect_insert, transaction
from shopbridge.store.secrets import SecretKeyMissing
from shopbridge.store.sync_issues import resolve_issue
from shopbridge.store.tables import ChannelAccount, Location, OAuthState, StockRuleRow

STATE_TTL_SECONDS = 30 * 60  # TikTok's authorization code lives 30 minutes; the state no longer
SHOPS_PATH = "/authorization/202309/shops"
WEBHOOKS_PATH = "/event/202309/webhooks"

# TikTok's shops endpoint gives a region, not a currency or timezone: these are each market's.
REGIONS = {
    "US": ("USD", "America/Los_Angeles"), "GB": ("GBP", "Europe/London"), "ID": ("IDR", "Asia/Jakarta"),
    "MY": ("MYR", "Asia/Kuala_Lumpur"), "TH": ("THB", "Asia/Bangkok"), "VN": ("VND", "Asia/Ho_Chi_Minh"),
    "PH": ("PHP", "Asia/Manila"), "SG": ("SGD", "Asia/Singapore"), "MX": ("MXN", "America/Mexico_City"),
    "ES": ("EUR", "Europe/Madrid"), "DE": ("EUR", "Europe/Berlin"), "FR": ("EUR", "Europe/Paris"),
    "IT": ("EUR", "Europe/Rome"), "IE": ("EUR", "Europe/Dublin"), "JP": ("JPY", "Asia/Tokyo"),
    "BR": ("BRL", "America/Sao_Paulo"),
}  # fmt: skip


class SetupError(Exception):
    """A connection that must not go ahead; the message says what to change."""


@dataclass(frozen=True)
class HubSettings:
    currency: str
    timezone: str
    public_url: str | None
    poll_seconds: float
    refresh_check_seconds: float = 3600.0
    stock_push_mode: str = "event"
    stock_push_interval_seconds: float = 60.0
    stock_drift_check_seconds: float = 900.0
    stock_buffer_units: int = 0
    stock_buffer_percent: Decimal = Decimal(0)
    stock_cancel_oversold: bool = False
    finance_import_seconds: float = IMPORT_SECONDS

    @classmethod
    def of(cls, settings: Settings) -> HubSettings:
        return cls(
            settings.currency, settings.timezone, settings.public_url, settings.tiktok_poll_seconds,
            stock_push_mode=settings.stock_push_mode,
            stock_push_interval_seconds=settings.stock_push_interval_seconds,
            stock_drift_check_seconds=settings.stock_drift_check_seconds,
            stock_buffer_units=settings.stock_buffer_units, stock_buffer_percent=settings.stock_buffer_percent,
            stock_cancel_oversold=settings.stock_cancel_oversold,
            finance_import_seconds=settings.tiktok_finance_import_seconds,
        )  # fmt: skip


@dataclass(frozen=True)
class ConnectedShop:
    account_id: int
    shop_id: str
    name: str
    region: str
    webhooks_subscribed: int


def start(context: TikTokContext) -> str:
    """The link a seller opens to authorize the app; the state proves the callback is the answer to it."""
    state = context.secrets.seal({"nonce": random_tokens.token_urlsafe(16)}).decode()
    return authorization_url(context.app, state)


def check_state(context: TikTokContext, state: str, *, now: datetime) -> None:
    """The state must be one the hub sealed less than 30 minutes ago, and not used before: each link connects once
    (recorded in its own transaction, so a callback that fails later still uses its link up)."""
    try:
        sealed = context.secrets.open(state.encode(), ttl=STATE_TTL_SECONDS)
    except (SecretKeyMissing, ValueError) as error:
        raise SetupError("the authorization state is invalid or older than 30 minutes: start again") from error
    nonce = str(sealed.get("nonce") or "")
    if not nonce:
        raise SetupError("the authorization state is invalid: start again")
    with transaction(context.sessions) as session:
        session.execute(delete(OAuthState).where(OAuthState.used_at < now - timedelta(seconds=STATE_TTL_SECONDS)))
        first_use = session.scalar(
            dialect_insert(session)(OAuthState)
            .values(nonce=nonce, channel="tiktok", used_at=now)
            .on_conflict_do_nothing(index_elements=["nonce"])
            .returning(OAuthState.nonce)
        )
    if first_use is None:
        raise SetupError("this authorization link was already used: start again with a new link")


def complete(context: TikTokContext, hub: HubSettings, *, code: str, state: str, now: datetime) -> list[ConnectedShop]:
    """The callback's work. Every shop the seller authorized is checked before any is stored."""
    check_state(context, state, now=now)
    if not code:
        raise SetupError("TikTok sent no authorization code (did the seller decline?)")
    try:
        tokens = exchange_code(context.http, context.app, code)
        shops = context.client.call("GET", SHOPS_PATH, access_token=tokens.access_token).get("shops") or []
    except TikTokError as error:
        raise SetupError(f"TikTok refused the authorization: {error}") from error
    if not shops:
        raise SetupError("the authorization covers no shop")
    problems = []
    for shop in shops:
        currency, timezone = REGIONS.get(str(shop.get("region")), (None, None))
        if currency is None:
            problems.append(f"shop {shop.get('name')} is in region {shop.get('region')!r}, which the hub does not know")
        elif currency != hub.currency:
            problems.append(f"shop {shop.get('name')} sells in {currency} but the hub's currency is {hub.currency} "
                            f"(set SHOPBRIDGE_CURRENCY={currency})")  # fmt: skip
        elif timezone != hub.timezone:
            problems.append(f"shop {shop.get('name')} runs on {timezone} but the hub's timezone is {hub.timezone} "
                            f"(set SHOPBRIDGE_TIMEZONE={timezone})")  # fmt: skip
    if problems:
        raise SetupError("; ".join(problems))
    return [_store(context, hub, tokens, shop, now) for shop in shops]


def _store(
    context: TikTokContext, hub: HubSettings, tokens: TokenSet, shop: dict[str, str], now: datetime
) -> ConnectedShop:
    currency, timezone = REGIONS[str(shop["region"])]
    with transaction(context.sessions) as session:
        account = session.scalar(
            select(ChannelAccount).where(
                ChannelAccount.channel == "tiktok", ChannelAccount.external_id == str(shop["id"])
            )
        )
        if account is None:
            account = ChannelAccount(channel="tiktok", external_id=str(shop["id"]), created_at=now)
            session.add(account)
        account.label = f"TikTok Shop {shop.get('name') or shop['id']}"
        account.status, account.status_reason = "active", None
        account.currency, account.timezone = currency, timezone
        account.credentials = seal_credentials(context.secrets, tokens, str(shop["cipher"]))
        account.credentials_expire_at = tokens.access_token_expires_at
        account.settings = {**(account.settings or {}), "region": shop.get("region"), "shop_code": shop.get("code"),
                            "stock_push_mode": hub.stock_push_mode,
                            "cancel_oversold": hub.stock_cancel_oversold}  # fmt: skip
        account.updated_at = now
        session.flush()
        resume_account(session, account.id, now=now)
        resolve_issue(session, f"needs_reauth:{account.id}", now)
        ensure_schedule(session, Periodic(f"{POLL_ORDERS}:{account.id}", POLL_ORDERS, hub.poll_seconds,
                                          channel_account_id=account.id), now=now)  # fmt: skip
        ensure_schedule(session, Periodic(f"{REFRESH_TOKENS}:{account.id}", REFRESH_TOKENS, hub.refresh_check_seconds,
                                          channel_account_id=account.id), now=now + timedelta(minutes=5))  # fmt: skip
        ensure_cancellation_schedule(session, account.id, now)
        ensure_return_schedule(session, account.id, now)
        ensure_finance_schedule(session, account.id, now, hub.finance_import_seconds)
        if session.scalar(select(Location.id).limit(1)) is None:
            session.add(Location(code="MAIN", name="Main location", timezone=timezone, created_at=now))
        _stock_setup(session, hub, account.id, now)
        account_id = account.id
    subscribed = subscribe_webhooks(context, account_id, hub.public_url) if hub.public_url else 0
    return ConnectedShop(account_id, str(shop["id"]), str(shop.get("name") or ""), str(shop["region"]), subscribed)


def _stock_setup(session: Session, hub: HubSettings, account_id: int, now: datetime) -> None:
    """The shop's default stock rule (the hub's default buffer) unless one is set, the drift check, the interval
    push in interval mode, and the import of its listings and warehouses."""
    if session.scalar(select(StockRuleRow.id).where(StockRuleRow.channel_account_id == account_id,
                                                    StockRuleRow.variant_id.is_(None))) is None:  # fmt: skip
        session.add(StockRuleRow(channel_account_id=account_id, variant_id=None, buffer_units=hub.stock_buffer_units,
                                 buffer_percent=hub.stock_buffer_percent, updated_at=now))  # fmt: skip
    ensure_schedule(session, Periodic(f"{CHECK_STOCK}:{account_id}", CHECK_STOCK, hub.stock_drift_check_seconds,
                                      channel_account_id=account_id), now=now + timedelta(minutes=1))  # fmt: skip
    if hub.stock_push_mode == "interval":
        ensure_schedule(session, Periodic(f"{PUSH_DIRTY}:{account_id}", PUSH_DIRTY, hub.stock_push_interval_seconds,
                                          channel_account_id=account_id), now=now)  # fmt: skip
    enqueue(session, IMPORT_LISTINGS, {}, now=now, channel_account_id=account_id,
            identity_key=f"{IMPORT_LISTINGS}:{account_id}")  # fmt: skip


def subscribe_webhooks(context: TikTokContext, account_id: int, public_url: str) -> int:
    """Point every topic the hub acts on at our receiver; returns how many were subscribed."""
    shop = Shop(context, account_id)
    address = public_url.rstrip("/") + "/hooks/tiktok"
    for topic in SUBSCRIBED_TOPICS:
        shop.call("PUT", WEBHOOKS_PATH, body={"address": address, "event_type": topic})
    return len(SUBSCRIBED_TOPICS)
