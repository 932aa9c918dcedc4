"""Connecting a Shopify store: by an Admin API access token (a custom app's ``shpat_…``), or through the OAuth
install of the hub's app (oauth.py). Either way the token is checked against the store, the store's currency and
timezone against the hub's, the account is stored with its credentials sealed, the webhooks are subscribed when
the hub has a public URL, and the poll backstop, the stock check and the catalog import are scheduled."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from shopbridge.channels.shopify.client import ShopifyClient, ShopifyError, Store
from shopbridge.channels.shopify.context import HUB_MASTER, NAME, STORE_MASTER, ShopifyContext, read_store
from shopbridge.channels.shopify.kinds import CHECK_STOCK, IMPORT_CATALOG, POLL_ORDERS, SUBSCRIBED_TOPICS
from shopbridge.runtime.jobs import enqueue, resume_account
from shopbridge.runtime.scheduler import Periodic, ensure_schedule
from shopbridge.store.db import transaction
from shopbridge.store.sync_issues import resolve_issue
from shopbridge.store.tables import ChannelAccount, StockRuleRow

SHOP_QUERY = "{ shop { name myshopifyDomain currencyCode ianaTimezone } }"
SUBSCRIBE = """mutation ($topic: WebhookSubscriptionTopic!, $sub: WebhookSubscriptionInput!) {
  webhookSubscriptionCreate(topic: $topic, webhookSubscription: $sub) {
    webhookSubscription { id } userErrors { field message } } }"""
EXISTING_SUBSCRIPTIONS = """query ($first: Int!, $after: String) {
  webhookSubscriptions(first: $first, after: $after) { nodes { id topic uri } pageInfo { hasNextPage endCursor } } }"""
STOCK_MASTERS = (HUB_MASTER, STORE_MASTER)
DISCOUNT_MODES = ("seller", "all")


class SetupError(Exception):
    """A connection that must not go ahead; the message says what to change."""


@dataclass(frozen=True)
class ConnectedStore:
    account_id: int
    shop_domain: str
    name: str
    stock_master: str
    webhooks_subscribed: int


def normalise_domain(shop: str) -> str:
    """``my-store``, ``my-store.myshopify.com`` or ``https://my-store.myshopify.com/`` → ``my-store.myshopify.com``."""
    domain = shop.strip().lower().removeprefix("https://").removeprefix("http://").split("/", 1)[0]
    if not domain:
        raise SetupError("a store domain is required (e.g. my-store.myshopify.com)")
    if "." not in domain:
        domain = f"{domain}.myshopify.com"
    if not domain.endswith(".myshopify.com") or not domain.removesuffix(".myshopify.com").replace("-", "").isalnum():
        raise SetupError(f"{shop!r} is not a store domain of the form my-store.myshopify.com")
    return domain


def connect_with_token(
    context: ShopifyContext,
    shop: str,
    access_token: str,
    *,
    webhook_secret: str | None = None,
    stock_master: str = HUB_MASTER,
    now: datetime,
    extra_settings: dict[str, Any] | None = None,
) -> ConnectedStore:
    """Connect (or reconnect) a store with an Admin API token. ``webhook_secret`` is the app's client secret the
    store signs webhooks with (the hub's own app secret if not given)."""
    domain = normalise_domain(shop)
    if not access_token.strip():
        raise SetupError("an Admin API access token is required")
    if not (access_token.strip().isascii() and access_token.strip().isprintable()):
        raise SetupError("the access token has characters no Admin API token has (printable ASCII only)")
    if stock_master not in STOCK_MASTERS:
        raise SetupError(f"stock master must be one of {', '.join(STOCK_MASTERS)}, got {stock_master!r}")
    if not (webhook_secret or context.app.api_secret):
        raise SetupError("a webhook secret (the app's client secret) is required: without it the hub cannot verify "
                         "the store's webhooks (or set SHOPBRIDGE_SHOPIFY_API_SECRET)")  # fmt: skip
    client = ShopifyClient(Store(domain, access_token.strip(), context.app.api_version, context.app.base_url),
                           context.http)  # fmt: skip
    try:
        info = client.query(SHOP_QUERY, cost=1)["shop"]
    except ShopifyError as error:
        raise SetupError(f"the store refused the token: {error}") from error
    currency, timezone = str(info.get("currencyCode")), str(info.get("ianaTimezone"))
    settings = context.settings
    if currency != settings.currency:
        raise SetupError(f"store {info.get('name')} sells in {currency} but the hub's currency is {settings.currency} "
                         f"(set SHOPBRIDGE_CURRENCY={currency})")  # fmt: skip
    if timezone != settings.timezone:
        raise SetupError(f"store {info.get('name')} runs on {timezone} but the hub's timezone is {settings.timezone} "
                         f"(set SHOPBRIDGE_TIMEZONE={timezone})")  # fmt: skip
    credentials = {
        "access_token": access_token.strip(),
        **({"webhook_secret": webhook_secret} if webhook_secret else {}),
    }
    with transaction(context.sessions) as session:
        account_id = _store(session, context, domain, str(info.get("name") or domain), credentials, currency,
                            timezone, stock_master, extra_settings or {}, now)  # fmt: skip
    subscribed = subscribe_webhooks(context, account_id) if settings.public_url else 0
    return ConnectedStore(account_id, domain, str(info.get("name") or domain), stock_master, subscribed)


def _store(
    session: Session, context: ShopifyContext, domain: str, name: str, credentials: dict[str, str], currency: str,
    timezone: str, stock_master: str, extra: dict[str, Any], now: datetime,
) -> int:  # fmt: skip
    account = session.scalar(
        select(ChannelAccount).where(ChannelAccount.channel == NAME, ChannelAccount.external_id == domain)
    )
    if account is None:
        account = ChannelAccount(channel=NAME, external_id=domain, created_at=now, settings={})
        session.add(account)
    account.label = f"Shopify {name}"
    account.status, account.status_reason = "active", None
    account.currency, account.timezone = currency, timezone
    account.credentials = context.secrets.seal(credentials)
    account.credentials_expire_at = None
    account.settings = {
        "fulfils_orders": True, "discounts": "seller", "carrier_map": {},
        **(account.settings or {}), **extra,
        "stock_master": stock_master, "api_version": context.app.api_version,
        "stock_push_mode": "event" if stock_master == HUB_MASTER else "mirror",
    }  # fmt: skip
    account.updated_at = now
    session.flush()
    resume_account(session, account.id, now=now)
    resolve_issue(session, f"needs_reauth:{account.id}", now)
    poll = context.settings.shopify_poll_seconds
    ensure_schedule(session, Periodic(f"{POLL_ORDERS}:{account.id}", POLL_ORDERS, poll, channel_account_id=account.id),
                    now=now + timedelta(seconds=poll))  # fmt: skip
    ensure_schedule(session, Periodic(f"{CHECK_STOCK}:{account.id}", CHECK_STOCK,
                                      context.settings.stock_drift_check_seconds, channel_account_id=account.id),
                    now=now + timedelta(minutes=1))  # fmt: skip
    if session.scalar(select(StockRuleRow.id).where(StockRuleRow.channel_account_id == account.id,
                                                    StockRuleRow.variant_id.is_(None))) is None:  # fmt: skip
        # The store shows the hub's whole truth: a buffer there would hide units from the merchant's own store.
        session.add(StockRuleRow(channel_account_id=account.id, variant_id=None, buffer_units=0, updated_at=now))
    enqueue(session, IMPORT_CATALOG, {}, now=now, channel_account_id=account.id,
            identity_key=f"{IMPORT_CATALOG}:{account.id}")  # fmt: skip
    return account.id


def subscribe_webhooks(context: ShopifyContext, account_id: int) -> int:
    """Point every topic the hub acts on at its receiver (topics already pointing there are left as they are);
    returns how many subscriptions the store has for the hub."""
    public_url = context.settings.public_url
    if not public_url:
        return 0
    account = read_store(context, account_id)
    client = context.client_for(account)
    address = public_url.rstrip("/") + "/hooks/shopify"
    existing = {(str(node["topic"]), str(node["uri"]))
                for node in client.nodes(EXISTING_SUBSCRIPTIONS, {}, ("webhookSubscriptions",))}  # fmt: skip
    for topic in SUBSCRIBED_TOPICS:
        if (topic, address) not in existing:
            client.mutate(SUBSCRIBE, {"topic": topic, "sub": {"uri": address, "format": "JSON"}},
                          "webhookSubscriptionCreate")  # fmt: skip
    return len(SUBSCRIBED_TOPICS)
