"""The launch-week checklist (docs/product.md, "Connect and set up"): each item is read from the hub's state, never
ticked by hand, and says what is missing while it is not done."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from shopbridge.config import Settings
from shopbridge.store.tables import (
    ChannelAccount,
    ChannelListing,
    ChannelWarehouse,
    Order,
    StockMovement,
    SyncIssue,
    Variant,
)

MARKETPLACE = "tiktok"  # the launch this checklist follows is a TikTok Shop launch (docs/product.md)
MANUAL = "manual"


@dataclass(frozen=True)
class Item:
    title: str
    done: bool
    detail: str
    link: str | None = None


def items(session: Session, settings: Settings, *, now: datetime) -> list[Item]:
    accounts = session.scalars(select(ChannelAccount).order_by(ChannelAccount.id)).all()
    active = [a for a in accounts if a.status == "active"]
    marketplace = [a for a in active if a.channel == MARKETPLACE]
    others = [a for a in active if a.channel not in (MARKETPLACE, MANUAL)]
    currencies = {a.label: a.currency for a in active if a.currency}
    wrong_currency = sorted(label for label, currency in currencies.items() if currency != settings.currency)
    unmapped = session.scalar(select(func.count()).select_from(ChannelWarehouse)
                              .where(ChannelWarehouse.location_id.is_(None))) or 0  # fmt: skip
    warehouses = session.scalar(select(func.count()).select_from(ChannelWarehouse)) or 0
    sources = dict(session.execute(select(Variant.stock_source, func.count()).group_by(Variant.stock_source)).all())
    known = session.scalar(select(func.count(func.distinct(StockMovement.variant_id)))
                           .where(StockMovement.source.in_(("hub", "external")))) or 0  # fmt: skip
    variants = sum(sources.values())
    linked = session.scalar(select(func.count()).select_from(ChannelListing)
                            .where(ChannelListing.variant_id.is_not(None))) or 0  # fmt: skip
    entry_points = {label for (label,) in session.execute(
        select(ChannelAccount.label).join(Order, Order.channel_account_id == ChannelAccount.id).distinct()
    )}  # fmt: skip
    by_channel = {channel for (channel,) in session.execute(
        select(ChannelAccount.channel).join(Order, Order.channel_account_id == ChannelAccount.id).distinct()
    )}  # fmt: skip
    open_issues = session.scalar(select(func.count()).select_from(SyncIssue).where(SyncIssue.status == "open")) or 0
    return [
        Item("Connect the TikTok shop", bool(marketplace),
             f"connected: {', '.join(a.label for a in marketplace)}" if marketplace
             else "no TikTok shop is connected: `shopbridge connect tiktok` prints the authorization link",
             "/connections"),
        Item("Connect the store or POS", bool(others),
             f"connected: {', '.join(a.label for a in others)}" if others
             else "no store is connected: `shopbridge connect shopify --shop D --token T`", "/connections"),
        Item("Currency verified", bool(active) and not wrong_currency,
             f"every connection sells in {settings.currency}" if active and not wrong_currency
             else (f"{', '.join(wrong_currency)} sell in another currency than the hub's {settings.currency}"
                   if wrong_currency else "nothing connected yet")),
        _timezone(settings.timezone, {a.timezone for a in marketplace if a.timezone}),
        Item("Warehouses mapped to locations", warehouses > 0 and unmapped == 0,
             f"{warehouses} warehouse(s), all mapped" if warehouses and not unmapped
             else f"{unmapped} of {warehouses} channel warehouse(s) have no location" if warehouses
             else "no channel warehouse imported yet"),
        Item("One stock truth chosen for every SKU", variants > 0 and known >= variants,
             f"{variants} SKU(s): " + ", ".join(f"{count} from {'the hub' if source == 'hub' else 'an external master'}"
                                                for source, count in sorted(sources.items()))
             + ("" if known >= variants else f"; {variants - known} without any recorded stock yet"),
             "/stock"),
        Item("Listings linked to SKUs", linked > 0,
             f"{linked} listing(s) linked" if linked else "no channel listing is linked: `shopbridge links list`"),
        Item("A test order from every entry point in one queue",
             MARKETPLACE in by_channel and MANUAL in by_channel and len(entry_points) >= 3,
             f"orders seen from: {', '.join(sorted(entry_points))}" if entry_points
             else "no order yet: place one on TikTok, one in the store and enter a WhatsApp order", "/"),
        Item("No open exceptions", open_issues == 0,
             "nothing waits for anyone" if not open_issues else f"{open_issues} open sync issue(s)", "/exceptions"),
    ]  # fmt: skip


def _timezone(hub_zone: str, shop_zones: set[str]) -> Item:
    if shop_zones:
        done = shop_zones == {hub_zone}
        detail = (f"the hub's day runs in {hub_zone}, the shop's timezone" if done
                  else f"the shop runs in {', '.join(sorted(shop_zones))} but the hub in {hub_zone}: set "
                  "SHOPBRIDGE_TIMEZONE")  # fmt: skip
        return Item("Timezone verified", done, detail)
    done = hub_zone != "UTC"
    return Item("Timezone verified", done, f"the hub's day runs in {hub_zone}" if done
                else "the hub still uses the default UTC: set SHOPBRIDGE_TIMEZONE to the shop's timezone")  # fmt: skip
