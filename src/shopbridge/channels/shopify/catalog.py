"""A store's catalogue as channel listings (reference §3.1): every variant with its SKU, product and inventory item,
linked to the hub's variants by SKU (services/links.py), and the store's locations mapped to hub locations.

The handler calls Shopify before it first touches ctx.session (see channels/tiktok/inventory.py)."""

from __future__ import annotations

from datetime import datetime
from functools import partial
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from shopbridge.channels.shopify.context import STORE_MASTER, ShopifyContext, legacy_id, stock_master, store_client
from shopbridge.channels.shopify.kinds import IMPORT_CATALOG
from shopbridge.channels.shopify.stock import claim_external_source
from shopbridge.runtime.errors import PermanentError
from shopbridge.runtime.registry import JobContext, JobRegistry
from shopbridge.services.availability import mark_dirty
from shopbridge.services.links import GONE, relink
from shopbridge.store.db import dialect_insert
from shopbridge.store.tables import ChannelAccount, ChannelListing, ChannelWarehouse, Location

MAIN_LOCATION = "MAIN"
LOCATION_CODE = "SHOPIFY-{}"  # a store location other than the one shipping online orders, by its legacy id

# A variant costs 3 points (itself, its product, its inventory item): a page of 250 asks 752 of the 1000 allowed.
VARIANTS = """query ($first: Int!, $after: String) {
  productVariants(first: $first, after: $after) {
    nodes { id sku title inventoryItem { id } product { id title status } }
    pageInfo { hasNextPage endCursor } } }"""
LOCATIONS = """query ($first: Int!, $after: String) {
  locations(first: $first, after: $after) {
    nodes { id legacyResourceId name isActive fulfillsOnlineOrders }
    pageInfo { hasNextPage endCursor } } }"""


def import_catalog(context: ShopifyContext, ctx: JobContext) -> None:
    """Every variant of the store as a listing of its account (product GID, variant GID, inventory item GID, SKU,
    product status), variants gone from the store marked deleted, the auto links made by SKU (a person's manual
    and unlinked listings kept), the locations mapped; then every linked variant with a known stock truth is
    marked dirty, so the first pushes put the hub's truth in the store."""
    if ctx.channel_account_id is None:
        raise PermanentError(f"{ctx.kind} job {ctx.job_id} names no channel account")
    account_id = ctx.channel_account_id
    _, client = store_client(context, account_id)
    variants = list(client.nodes(VARIANTS, {}, ("productVariants",)))
    locations = list(client.nodes(LOCATIONS, {}, ("locations",)))
    session, now = ctx.session, ctx.write_time()
    store_listings(session, account_id, variants, now=now)
    map_locations(session, account_id, locations)
    relink(session, account_id, now=now)
    linked = session.scalars(
        select(ChannelListing.variant_id).where(
            ChannelListing.channel_account_id == account_id, ChannelListing.variant_id.is_not(None)
        )
    ).all()
    mark_dirty(session, {variant_id for variant_id in linked if variant_id is not None}, now=now)
    account = session.get(ChannelAccount, account_id)
    if account is not None and stock_master(account) == STORE_MASTER:
        claim_external_source(session, account_id, now)  # the variants it just linked follow the store's stock


def store_listings(session: Session, account_id: int, variants: list[dict[str, Any]], *, now: datetime) -> None:
    """Upsert one listing per variant; a listing the store no longer has is marked deleted (and links no more)."""
    seen: set[str] = set()
    for variant in variants:
        product = variant.get("product") or {}
        sku = str(variant.get("sku") or "").strip() or None
        values = {
            "external_product_id": str(product.get("id")), "seller_sku": sku,
            "external_stock_id": (variant.get("inventoryItem") or {}).get("id"),
            "status": str(product.get("status") or "unknown"), "last_synced_at": now,
        }  # fmt: skip
        session.execute(
            dialect_insert(session)(ChannelListing)
            .values(channel_account_id=account_id, external_sku_id=str(variant["id"]), variant_id=None,
                    stock_version=0, acked_stock_version=0, link="auto", **values)
            .on_conflict_do_update(index_elements=["channel_account_id", "external_sku_id"], set_=values)
        )  # fmt: skip
        seen.add(str(variant["id"]))
    known = session.scalars(
        select(ChannelListing.external_sku_id).where(ChannelListing.channel_account_id == account_id)
    ).all()
    gone = [sku_id for sku_id in known if sku_id not in seen]
    if gone:
        session.execute(
            update(ChannelListing)
            .where(ChannelListing.channel_account_id == account_id, ChannelListing.external_sku_id.in_(gone))
            .values(status=GONE, last_synced_at=now)
        )


def map_locations(session: Session, account_id: int, locations: list[dict[str, Any]]) -> None:
    """The oldest active location that fulfils online orders is the hub's MAIN (created if missing); every other
    gets a hub location SHOPIFY-<legacy id> named as in the store. A location already mapped stays as mapped."""
    active = sorted((loc for loc in locations if loc.get("isActive", True)), key=_legacy_number)
    online = next((loc for loc in active if loc.get("fulfillsOnlineOrders")), None)
    mapped = dict(session.execute(
        select(ChannelWarehouse.external_warehouse_id, ChannelWarehouse.location_id)
        .where(ChannelWarehouse.channel_account_id == account_id)
    ).all())  # fmt: skip
    for location in active:
        external_id, name = str(location["id"]), str(location.get("name") or location["id"])
        location_id = mapped.get(external_id)
        if location_id is None:
            if location is online:
                location_id = _hub_location(session, MAIN_LOCATION, "Main")
            else:
                code = LOCATION_CODE.format(location.get("legacyResourceId") or legacy_id(external_id))
                location_id = _hub_location(session, code, name)
        session.execute(
            dialect_insert(session)(ChannelWarehouse)
            .values(channel_account_id=account_id, external_warehouse_id=external_id, location_id=location_id,
                    name=name)
            .on_conflict_do_update(index_elements=["channel_account_id", "external_warehouse_id"],
                                   set_={"name": name, "location_id": location_id})
        )  # fmt: skip


def _legacy_number(location: dict[str, Any]) -> int:
    text = str(location.get("legacyResourceId") or legacy_id(str(location["id"])))
    return int(text) if text.isdigit() else 0


def _hub_location(session: Session, code: str, name: str) -> int:
    location_id = session.scalar(select(Location.id).where(Location.code == code))
    if location_id is None:
        location_id = session.execute(
            dialect_insert(session)(Location)
            .values(code=code, name=name, active=True)
            .on_conflict_do_nothing(index_elements=["code"])
            .returning(Location.id)
        ).scalar()
        if location_id is None:  # another import created it meanwhile
            location_id = session.scalar(select(Location.id).where(Location.code == code))
    assert location_id is not None
    return int(location_id)


def register(registry: JobRegistry, context: ShopifyContext) -> None:
    registry.register(IMPORT_CATALOG, partial(import_catalog, context))
