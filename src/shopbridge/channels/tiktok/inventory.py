"""TikTok stock as jobs: import the shop's listings and warehouses, push absolute quantities per product, push
what is dirty on a period (interval mode), and compare TikTok's inventory with the hub's truth (drift).

Handlers call TikTok before they first touch ctx.session (see sync.py): reads go through store.db.reading().
"""

from __future__ import annotations

from datetime import datetime, timedelta
from functools import partial
from typing import Any

from sqlalchemy import select

from shopbridge.channels.tiktok.errors import TikTokPermanent, about_the_request
from shopbridge.channels.tiktok.shop import Shop, TikTokContext
from shopbridge.channels.tiktok.sync import unsynced_order_event
from shopbridge.domain.stock import drifted
from shopbridge.logs import get_logger
from shopbridge.runtime.errors import PermanentError
from shopbridge.runtime.jobs import set_aside
from shopbridge.runtime.registry import JobContext, JobRegistry
from shopbridge.services.availability import (
    ListingStock,
    PushOutcome,
    channel_holds,
    dirty_products,
    enqueue_push,
    listing_stock,
    mark_dirty,
    push_identity,
    push_kind,
    queue_sell_out_recheck,
    record_push,
    release_deferred_pushes,
)
from shopbridge.store.db import dialect_insert, reading
from shopbridge.store.sync_issues import raise_issue, resolve_issue
from shopbridge.store.tables import (
    ChannelAccount,
    ChannelListing,
    ChannelWarehouse,
    Location,
    OrderEvent,
    Variant,
)

IMPORT_LISTINGS = "tiktok.import_listings"
PUSH_STOCK = push_kind("tiktok")
PUSH_DIRTY = "tiktok.push_dirty"
CHECK_STOCK = "tiktok.check_stock"
CANCEL_OVERSOLD = "tiktok.cancel_oversold"
CANCEL_PATH = "/return_refund/202309/cancellations"
OUT_OF_STOCK_REASON = "seller_cancel_reason_out_of_stock"
WAREHOUSES_PATH = "/logistics/202309/warehouses"
PRODUCT_SEARCH_PATH = "/product/202309/products/search"
INVENTORY_UPDATE_PATH = "/product/202309/products/{product_id}/inventory/update"
INVENTORY_SEARCH_PATH = "/product/202309/inventory/search"
INVENTORY_SEARCH_BATCH = 100  # product_ids per inventory search
DEFAULT_LOCATION = "MAIN"

log = get_logger("shopbridge.tiktok.inventory")


def _account_id(ctx: JobContext) -> int:
    if ctx.channel_account_id is None:
        raise PermanentError(f"{ctx.kind} job {ctx.job_id} names no channel account")
    return ctx.channel_account_id


def _read_account(context: TikTokContext, account_id: int) -> ChannelAccount:
    with reading(context.sessions) as session:
        account = session.get(ChannelAccount, account_id)
    if account is None:
        raise PermanentError(f"channel account {account_id} no longer exists")
    return account


def import_listings(context: TikTokContext, ctx: JobContext) -> None:
    """The shop's warehouses (the default sales warehouse maps to the MAIN location) and every product's SKUs
    as channel listings, linked to hub variants by seller SKU; then every linked SKU with a known stock truth
    is marked dirty, so the first pushes put the hub's truth on TikTok."""
    account_id = _account_id(ctx)
    shop = Shop(context, account_id)
    warehouses = shop.call("GET", WAREHOUSES_PATH).get("warehouses") or []
    products = list(shop.pages("POST", PRODUCT_SEARCH_PATH, "products", body={"status": "ALL"}, page_size=100))
    session = ctx.session
    now = ctx.write_time()
    location_id = session.scalar(select(Location.id).where(Location.code == DEFAULT_LOCATION))
    sales = [w for w in warehouses if w.get("type", "SALES_WAREHOUSE") == "SALES_WAREHOUSE"]
    for warehouse in sales:
        mapped = location_id if warehouse.get("is_default") or len(sales) == 1 else None
        session.execute(
            dialect_insert(session)(ChannelWarehouse)
            .values(channel_account_id=account_id, external_warehouse_id=str(warehouse["id"]),
                    location_id=mapped, name=warehouse.get("name"))
            .on_conflict_do_nothing(index_elements=["channel_account_id", "external_warehouse_id"])
        )  # fmt: skip
    variants = dict(session.execute(select(Variant.sku, Variant.id)).all())
    linked: set[int] = set()
    for product in products:
        for sku in product.get("skus") or []:
            seller_sku = sku.get("seller_sku") or None
            variant_id = variants.get(seller_sku) if seller_sku else None
            values = {"external_product_id": str(product["id"]), "seller_sku": seller_sku,
                      "status": str(product.get("status") or "unknown"), "last_synced_at": now}  # fmt: skip
            session.execute(
                dialect_insert(session)(ChannelListing)
                .values(channel_account_id=account_id, external_sku_id=str(sku["id"]), variant_id=variant_id,
                        stock_version=0, acked_stock_version=0, **values)
                .on_conflict_do_update(index_elements=["channel_account_id", "external_sku_id"], set_=values)
            )  # fmt: skip
            if variant_id is not None:
                linked.add(variant_id)
    # A listing imported earlier keeps the link a person may have made; a new one links by seller SKU.
    mark_dirty(session, linked, now=now)


def push_stock(context: TikTokContext, ctx: JobContext) -> None:
    """Absolute quantities for every dirty SKU of one TikTok product, with all of the shop's warehouses. The
    job is serial per product (one request in flight) and reads the truth when it runs, so a retry sends the
    newest quantities rather than replaying old ones. A push that would leave a SKU low on TikTok first waits for
    the shop's order sync (`_wait_for_sync`), then leaves out the units of TikTok orders the hub has still not
    synced (`_leave_out_unsynced_sales`)."""
    account_id = _account_id(ctx)
    product_id = str(ctx.payload.get("product_id") or "")
    if not product_id:
        raise PermanentError("no product_id in the payload")
    with reading(context.sessions) as session:
        dirty = [item for item in listing_stock(session, account_id, now=ctx.now, product_id=product_id)
                 if item.dirty]  # fmt: skip
        low = [item for item in dirty if 0 < item.quantity <= SYNC_FIRST_AT_OR_BELOW]
        # In the same snapshot as the quantities: what TikTok's orders hold at the hub.
        holds = channel_holds(session, account_id, "tiktok", [item.variant_id for item in low])
    if not dirty:
        return
    if low and _wait_for_sync(context, ctx, account_id, product_id):
        return
    shop = Shop(context, account_id)
    if low:
        data = shop.call("POST", INVENTORY_SEARCH_PATH, body={"sku_ids": [item.external_sku_id for item in low]})
        _leave_out_unsynced_sales(low, _committed(data), holds)
        left_out = {item.external_sku_id: item.unsynced_sales for item in low if item.unsynced_sales}
        if left_out:
            log.info("tiktok.push_left_out_unsynced_sales", product_id=product_id, units_by_sku=left_out)
    errors, refused = _push_apart(shop, product_id, dirty)
    outcomes = [
        PushOutcome(item.listing_id, item.stock_version, item.quantity, errors.get(item.external_sku_id))
        for item in dirty
    ]
    record_push(ctx.session, _read_account(context, account_id), outcomes, now=ctx.write_time())
    # A SKU refused with the whole call's error waits as a dead letter of the product's push (same identity, so
    # its retry runs in turn with the product's other pushes), once per product until someone acts on it.
    if refused:
        reasons = "; ".join(f"SKU {sku_id}: {error}" for sku_id, error in refused.items())
        set_aside(ctx.session, PUSH_STOCK, {"product_id": product_id}, now=ctx.write_time(),
                  error=PermanentError(f"TikTok refused stock for {reasons}"), channel_account_id=account_id,
                  identity_key=push_identity("tiktok", account_id, product_id))  # fmt: skip
    guarded = [item.variant_id for item in dirty if item.guarded]
    if guarded:
        queue_sell_out_recheck(ctx.session, account_id, product_id, guarded, now=ctx.now)


def push_dirty(ctx: JobContext) -> None:
    """Interval mode: queue a push for every product with a change since its last acknowledged push."""
    account_id = _account_id(ctx)
    for product_id in dirty_products(ctx.session, account_id):
        enqueue_push(ctx.session, "tiktok", account_id, product_id, now=ctx.now)


def check_stock(context: TikTokContext, ctx: JobContext) -> None:
    """Drift: TikTok's quantities against what the hub last had acknowledged and still wants shown, less the
    units of TikTok orders the hub has not synced yet (TikTok took those off itself). A mismatch on a settled
    listing (nothing dirty or in flight) is a sync issue, repaired by pushing the hub's truth; the mismatch rate
    is kept on the account."""
    account_id = _account_id(ctx)
    with reading(context.sessions) as session:
        settled = {item.external_sku_id: item for item in listing_stock(session, account_id, now=ctx.now)
                   if not item.dirty}  # fmt: skip
        holds = channel_holds(session, account_id, "tiktok", [item.variant_id for item in settled.values()])
        products = dict(
            session.execute(
                select(ChannelListing.external_sku_id, ChannelListing.external_product_id).where(
                    ChannelListing.channel_account_id == account_id,
                    ChannelListing.external_sku_id.in_(list(settled)),
                )
            ).all()
        )
    product_ids = sorted(set(products.values()))
    shop = Shop(context, account_id)
    on_tiktok: dict[str, int] = {}
    committed: dict[tuple[str, str], int] = {}
    for start in range(0, len(product_ids), INVENTORY_SEARCH_BATCH):
        data = shop.call("POST", INVENTORY_SEARCH_PATH,
                         body={"product_ids": product_ids[start : start + INVENTORY_SEARCH_BATCH]})  # fmt: skip
        for product in data.get("inventory") or []:
            for sku in product.get("skus") or []:
                on_tiktok[str(sku["id"])] = int(sku.get("total_available_quantity") or 0)
        committed.update(_committed(data))
    # A TikTok order the hub has not synced yet has already taken its units off TikTok: not a drift.
    _leave_out_unsynced_sales(list(settled.values()), committed, holds)
    session, now = ctx.session, ctx.write_time()
    account = session.get(ChannelAccount, account_id)
    assert account is not None
    mismatched, compared = drifted({sku_id: item.quantity for sku_id, item in settled.items()}, on_tiktok)
    differing = set(mismatched)
    stale: set[int] = set()
    for sku_id, item in settled.items():
        fingerprint = f"stock_mismatch:{item.listing_id}"
        if sku_id not in differing:
            resolve_issue(session, fingerprint, now)
            continue
        raise_issue(
            session, kind="stock_mismatch", severity="warning", fingerprint=fingerprint,
            message=f"{account.label} shows {on_tiktok[sku_id]} of SKU {sku_id}, the hub's truth says "
            f"{item.quantity}; the hub's quantity is pushed again",
            now=now, channel_account_id=account_id, subject_type="channel_listing",
            subject_id=str(item.listing_id), details={"tiktok": on_tiktok[sku_id], "hub": item.quantity},
        )  # fmt: skip
        stale.add(item.variant_id)
    mark_dirty(session, stale, now=now)
    account.settings = {
        **(account.settings or {}),
        "stock_drift": {"checked_at": now.isoformat(), "compared": compared, "mismatched": len(mismatched),
                        "mismatch_rate": round(len(mismatched) / compared, 4) if compared else 0.0},
    }  # fmt: skip


def cancel_oversold(context: TikTokContext, ctx: JobContext) -> None:
    """SHOPBRIDGE_STOCK_CANCEL_OVERSOLD: cancel on TikTok the units of an order the truth no longer had, with
    the out-of-stock reason; the cancellation comes back through the order's webhook and releases them."""
    account_id = _account_id(ctx)
    skus = [sku for sku in ctx.payload.get("skus") or [] if int(sku.get("quantity") or 0) > 0]
    if not skus:
        raise PermanentError("no SKUs to cancel in the payload")
    data = Shop(context, account_id).call("POST", CANCEL_PATH, body={
        "order_id": str(ctx.payload["external_id"]), "cancel_reason": OUT_OF_STOCK_REASON, "skus": skus,
    })  # fmt: skip
    session, now = ctx.session, ctx.write_time()
    session.add(OrderEvent(order_id=int(ctx.payload["order_id"]), channel_account_id=account_id,
                           kind="oversold_cancel_requested", created_at=now,
                           payload={"cancel_id": data.get("cancel_id"), "skus": skus}))  # fmt: skip


SYNC_FIRST_AT_OR_BELOW = 10  # units: a push that leaves a SKU this low on TikTok waits for the order sync first
SYNC_WAIT = timedelta(seconds=2)  # the longest a push waits for the order sync (a sync that cannot finish)
SYNC_RECHECK = timedelta(seconds=0.5)  # a deferred push looks again this soon if no sync has released it


def _wait_for_sync(context: TikTokContext, ctx: JobContext, account_id: int, product_id: str) -> bool:
    """Whether the push defers itself until the shop's order sync has caught up (True: it has, and this job is
    done). TikTok sets absolute quantities: a quantity read before the hub has synced a sale that TikTok already
    made would put the sold unit back on sale. So while order events that arrived before the push are still
    waiting in the inbox, the push does not hold a worker: it queues itself again, due once the sync that takes
    those events has committed (the sync releases it, `release_deferred_pushes`), and at the latest after
    SYNC_WAIT, so a sync that cannot finish delays a push, never stops it. TikTok sales whose webhook has not
    arrived yet are left out afterwards (`_leave_out_unsynced_sales`); sales during the push's own requests are what
    the buffer and the sell-out guard are for.

    Only pushes that leave a SKU at 1 to SYNC_FIRST_AT_OR_BELOW units wait: further up, a unit put back on sale
    by a stale quantity is taken off again by the next push long before the stock could run out, and waiting would
    only slow every push (in a flash sale order events arrive many times a second, so nearly every push would
    wait for a sync). A 0 puts nothing back on sale, so a push of sold-out SKUs goes at once."""
    up_to = ctx.payload.get("after_event")
    since = _instant(ctx.payload.get("waiting_since")) or ctx.now
    if ctx.now - since >= SYNC_WAIT:
        log.warning(
            "tiktok.push_stopped_waiting_for_sync",
            product_id=product_id,
            waited_s=round((ctx.now - since).total_seconds(), 1),
        )
        return False
    waiting_for = unsynced_order_event(context, account_id, up_to=up_to)
    if waiting_for is None:
        return False
    after_sync = {"after_event": waiting_for, "waiting_since": since.isoformat()}
    until = min(since + SYNC_WAIT, ctx.now + SYNC_RECHECK)
    enqueue_push(ctx.session, "tiktok", account_id, product_id, now=ctx.now, after_sync=after_sync, until=until)
    # With the write lock now held: a sync that finished since the look above released the deferred pushes before
    # this one existed, so release it here (on SQLite a sync finishing from now on finds it; elsewhere the
    # re-check above covers that moment).
    if unsynced_order_event(context, account_id, up_to=waiting_for) is None:
        release_deferred_pushes(ctx.session, "tiktok", account_id, now=ctx.now)
    return True


def _committed(data: dict[str, Any]) -> dict[tuple[str, str], int]:
    """Units committed to TikTok's orders (paid, not shipped) per (SKU id, warehouse id), from an inventory search."""
    committed: dict[tuple[str, str], int] = {}
    for product in data.get("inventory") or []:
        for sku in product.get("skus") or []:
            for warehouse in sku.get("warehouse_inventory") or []:
                key = (str(sku["id"]), str(warehouse["warehouse_id"]))
                committed[key] = int(warehouse.get("committed_quantity") or 0)
    return committed


def _leave_out_unsynced_sales(
    items: list[ListingStock], committed: dict[tuple[str, str], int], holds: dict[tuple[int, str], int]
) -> None:
    """Take off the items' quantities the units TikTok has sold that the hub has not synced yet.

    A TikTok order takes its units off TikTok's stock at once, but the hub learns of it only through the order's
    webhook and detail call; an absolute quantity computed before that would put the sold units back on sale,
    and near sell-out that is how units are sold twice. TikTok's inventory search counts, per SKU and warehouse,
    the units committed to its orders that are not shipped yet (``committed``); the hub's own count of the same
    thing is what TikTok's orders hold at the hub (``holds``, read in the snapshot of the quantities). What TikTok
    counts beyond that are orders the hub has not seen. Their sync later reserves the units, so the truth then
    says what is shown now. An order TikTok no longer counts (shipped or cancelled there first) can only make the
    difference smaller, never larger."""
    for item in items:
        for warehouse, quantity in item.warehouses.items():
            unsynced = committed.get((item.external_sku_id, warehouse), 0) - holds.get((item.variant_id, warehouse), 0)
            if unsynced > 0:
                item.unsynced_sales += unsynced
                item.warehouses[warehouse] = max(0, quantity - unsynced)


def _instant(value: Any) -> datetime | None:
    return datetime.fromisoformat(value) if isinstance(value, str) else None


def _push_apart(
    shop: Shop, product_id: str, items: list[ListingStock]
) -> tuple[dict[str, str], dict[str, TikTokPermanent]]:
    """Push the product's SKUs; the refusals by SKU (as text), and apart, the SKUs TikTok refused with an error of
    the whole call. One SKU can make TikTok refuse the whole product (12019028: stock in a warehouse the hub did not
    list): the SKUs are then pushed one at a time, so the others land and only that one is set aside."""
    try:
        return _update_inventory(shop, product_id, items), {}
    except TikTokPermanent as error:
        if not about_the_request(error):
            raise
        if len(items) == 1:
            return {items[0].external_sku_id: str(error)}, {items[0].external_sku_id: error}
    errors: dict[str, str] = {}
    refused: dict[str, TikTokPermanent] = {}
    for item in items:
        more, apart = _push_apart(shop, product_id, [item])
        errors.update(more)
        refused.update(apart)
    return errors, refused


def _update_inventory(shop: Shop, product_id: str, items: list[ListingStock]) -> dict[str, str]:
    """Push ``items``' quantities to one product; the SKUs TikTok refused inside its answer, with the reason."""
    body = {"skus": [{"id": item.external_sku_id, "inventory": _inventory(item)} for item in items]}
    return _sku_errors(shop.call("POST", INVENTORY_UPDATE_PATH.format(product_id=product_id), body=body))


def _inventory(item: ListingStock) -> list[dict[str, Any]]:
    return [{"warehouse_id": warehouse, "quantity": quantity} for warehouse, quantity in item.warehouses.items()]


def _sku_errors(data: dict[str, Any]) -> dict[str, str]:
    """Per-SKU refusals inside a code-0 answer: ``errors[] {code, message, detail.sku_id, detail.extra_errors}``."""
    refused: dict[str, str] = {}
    for error in data.get("errors") or []:
        detail = error.get("detail") or {}
        sku_id = str(detail.get("sku_id") or "")
        extra = "; ".join(f"{e.get('code')} {e.get('message')}" for e in detail.get("extra_errors") or [])
        refused[sku_id] = f"{error.get('code')} {error.get('message')}" + (f" ({extra})" if extra else "")
    return refused


def register(registry: JobRegistry, context: TikTokContext) -> None:
    registry.register(IMPORT_LISTINGS, partial(import_listings, context))
    registry.register(PUSH_STOCK, partial(push_stock, context), priority=10, serial=True)
    registry.register(PUSH_DIRTY, push_dirty)
    registry.register(CHECK_STOCK, partial(check_stock, context))
    registry.register(CANCEL_OVERSOLD, partial(cancel_oversold, context))
