"""A store's stock as jobs, in the mode its account's ``stock_master`` names (context.py).

**Hub master** (``hub``, the default): the hub's truth is written to the store. ``PUSH_STOCK`` (queued by
``mark_dirty`` per store product) reads the store's ``available`` of the product's dirty SKUs at every mapped
location in one query and sets what the hub wants with ``inventorySetQuantities``, compare-and-swap on the value
just read (``changeFromQuantity``) and an ``@idempotent`` key. A sale the store made in between fails the compare;
the push reads again and retries, and after ``CAS_TRIES`` it is retried later as a job. Units the store has
committed to orders the hub has not synced yet are left out of what is written, so a sale the store just made is
not put back on sale. A change of ``available`` the hub did not make (a staff adjustment, a counter sale) is raised
as a ``store_stock_changed`` sync issue and then overwritten: the hub is the master, so such changes must be made
in the hub (or by a channel whose sales the hub records). It is never recorded in the ledger. Every store location
mapped to a hub location is written with that location's truth (0 where the hub holds none); unmapped store
locations are left alone. ``OBSERVE_STOCK`` in this mode only compares: a level that is not what the hub wants marks
the SKU dirty (the echo of the hub's own write finds nothing to do).

**Shopify master** (``shopify``): the store's quantities are the truth and the hub mirrors them; nothing is ever
written to the store (a push job for such an account does nothing). ``OBSERVE_STOCK`` (queued by the webhook intake
for ``inventory_levels/update``, and by ``CHECK_STOCK``) reads the level itself, never the webhook's value, and
makes the hub's on-hand at the mapped location exactly the store's ``available`` plus the units the hub holds for
orders the store has committed (this store's own orders, and orders the hub placed in it), as one external
adjustment. The ledger then marks the SKU dirty, so the marketplaces follow an in-store sale at once. Only variants
whose ``stock_source`` is ``external`` are mirrored (``claim_external_source``).

**CHECK_STOCK** (periodic, per account) reads every linked item at every mapped location and compares: in the
hub-master mode, drifted SKUs are marked dirty; in the Shopify-master mode, drifted ones are observed again. Either
way one ``stock_mismatch`` issue per account carries the counts.

Handlers call Shopify before they first touch ctx.session (see channels/tiktok/inventory.py): reads go through
store.db.reading().
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from shopbridge.channels.shopify.client import ShopifyClient, UserError, user_errors
from shopbridge.channels.shopify.context import (
    HUB_MASTER,
    NAME,
    STORE_MASTER,
    ShopifyContext,
    gid,
    legacy_id,
    read_store,
    stock_master,
)
from shopbridge.channels.shopify.kinds import CHECK_STOCK, OBSERVE_STOCK, PUSH_STOCK
from shopbridge.domain.stock import drifted, mirrored_on_hand
from shopbridge.logs import get_logger
from shopbridge.runtime.errors import PermanentError, RetryableError
from shopbridge.runtime.jobs import enqueue
from shopbridge.runtime.registry import JobContext, JobRegistry
from shopbridge.services.availability import (
    ListingStock,
    PushOutcome,
    listing_stock,
    mark_dirty,
    record_push,
    with_known_truth,
)
from shopbridge.services.stock import LedgerLine, held_for_account, record_movements
from shopbridge.store.db import reading
from shopbridge.store.sync_issues import raise_issue, resolve_issue
from shopbridge.store.tables import (
    ChannelAccount,
    ChannelListing,
    ChannelWarehouse,
    Location,
    StockLevel,
    Variant,
)

LEVELS = """query ($ids: [ID!]!) { nodes(ids: $ids) { ... on InventoryLevel {
  quantities(names: ["available", "committed"]) { name quantity updatedAt } } } }"""
SET_QUANTITIES = """mutation ($input: InventorySetQuantitiesInput!, $key: String!) {
  inventorySetQuantities(input: $input) @idempotent(key: $key) {
    inventoryAdjustmentGroup { id } userErrors { field message code } } }"""
ACTIVATE = """mutation ($item: ID!, $location: ID!, $key: String!) {
  inventoryActivate(inventoryItemId: $item, locationId: $location) @idempotent(key: $key) {
    inventoryLevel { id } userErrors { field message } } }"""

LEVELS_PER_READ = 100  # a level costs about 4 points (itself and two quantities): 100 stay well under 1000
LEVEL_COST = 4
QUANTITIES_PER_SET = 250
CAS_TRIES = 3  # reads and writes of one push before it gives the store time and is retried as a job
STALE_CODES = frozenset({"CHANGE_FROM_QUANTITY_STALE", "COMPARE_QUANTITY_STALE"})
NOT_STOCKED = "ITEM_NOT_STOCKED_AT_LOCATION"
# Order links whose store order still holds units there (the store committed them when the hub placed it).
RECHECK_AFTER = timedelta(seconds=2)  # an unsynced store order: look again once its sync should have reserved it
RECHECKS = 3  # then the periodic check covers it

log = get_logger("shopbridge.shopify.stock")

LevelKey = tuple[str, str]  # (InventoryItem GID, Location GID)


@dataclass(frozen=True)
class Level:
    """One inventory level as the store reports it."""

    available: int
    committed: int = 0
    updated_at: str | None = None  # when ``available`` last changed


# --- pure rules ---------------------------------------------------------------------------------------------


def store_target(wanted: int, committed: int, held: int) -> int:
    """What to write as a level's ``available`` in the hub-master mode: what the hub wants shown, less the units the
    store has committed beyond what the hub holds for the store's orders (orders the hub has not synced yet; their
    sync reserves them, and the next push then says the same)."""
    return max(0, wanted - max(0, committed - held))


def mirror_target(available: int, held: int) -> int:
    """The hub's on-hand at a location in the Shopify-master mode: what the store can still sell there, plus the
    units it has committed to orders the hub holds them for (still on the shelf until shipped)."""
    return mirrored_on_hand(available, held)


def outside_change(expected: int | None, found: int, wanted: int, committed: int) -> bool:
    """Whether the store's ``available`` (``found``) was changed by someone other than the hub: it is not what the
    hub left there (``expected``), not already what the hub wants, and not a drop that orders can explain (at most
    the units the store has ``committed`` to orders since). A bound, not a reconciliation: a counter sale no larger
    than the committed units passes unnoticed."""
    if expected is None or found in (expected, wanted):
        return False
    drop = expected - found
    return not 0 < drop <= committed


def set_key(account_id: int, entries: Iterable[tuple[int, int, str, str, int, int]]) -> str:
    """The ``@idempotent`` key of one write: its listings, their stock versions, and every quantity with the value it
    replaces. A retried job that reads the same store state sends the same request under the same key, so a write
    whose answer was lost is answered again instead of applied twice; a changed store gives another request and
    another key (Shopify keeps a refusal under its key too, so a key must never be reused with other arguments)."""
    text = json.dumps(sorted(entries), separators=(",", ":"))
    return f"shopbridge-stock-{account_id}-{hashlib.sha256(text.encode()).hexdigest()[:32]}"


def is_stale(errors: Sequence[UserError]) -> bool:
    return any(error.code in STALE_CODES for error in errors)


def level_gid(item: str, location: str) -> str:
    return f"gid://shopify/InventoryLevel/{legacy_id(location)}?inventory_item_id={legacy_id(item)}"


# --- reading the store ------------------------------------------------------------------------------------------


def read_levels(client: ShopifyClient, keys: Sequence[LevelKey]) -> dict[LevelKey, Level | None]:
    """Each (item, location)'s level, LEVELS_PER_READ per query (None: the item is not stocked there)."""
    levels: dict[LevelKey, Level | None] = {}
    unique = list(dict.fromkeys(keys))
    for start in range(0, len(unique), LEVELS_PER_READ):
        chunk = unique[start : start + LEVELS_PER_READ]
        data = client.query(LEVELS, {"ids": [level_gid(*key) for key in chunk]}, cost=2 + LEVEL_COST * len(chunk))
        nodes = data.get("nodes") or []
        if len(nodes) != len(chunk):
            raise RetryableError(f"Shopify answered {len(nodes)} inventory levels for {len(chunk)} asked")
        for key, node in zip(chunk, nodes, strict=True):
            levels[key] = _level(node) if node else None
    return levels


def _level(node: dict[str, Any]) -> Level:
    quantities = {str(q.get("name")): q for q in node.get("quantities") or []}
    available = quantities.get("available") or {}
    return Level(int(available.get("quantity") or 0), int((quantities.get("committed") or {}).get("quantity") or 0),
                 available.get("updatedAt"))  # fmt: skip


def _activate(client: ShopifyClient, account_id: int, key: LevelKey) -> str | None:
    """Stock an item at a location (``inventoryActivate``, available 0); the refusal's text, if any."""
    item, location = key
    idempotency = f"shopbridge-activate-{account_id}-{legacy_id(item)}-{legacy_id(location)}"
    data = client.query(ACTIVATE, {"item": item, "location": location, "key": idempotency})
    problems = user_errors(data.get("inventoryActivate"))
    return "; ".join(str(problem) for problem in problems) or None


# --- what the hub holds for the store's orders -----------------------------------------------------------------


def store_holds(session: Session, account_id: int, variant_ids: Collection[int]) -> dict[tuple[int, int], int]:
    """Units the hub holds per (variant, hub location) for the orders whose units the store has committed: the
    store's own orders, and orders the hub placed in it."""
    return held_for_account(session, account_id, variant_ids)


def _mapped_locations(session: Session, account_id: int) -> dict[str, int]:
    """Store location GID → hub location id, for the store's locations mapped to one."""
    rows = session.execute(
        select(ChannelWarehouse.external_warehouse_id, ChannelWarehouse.location_id).where(
            ChannelWarehouse.channel_account_id == account_id, ChannelWarehouse.location_id.is_not(None)
        )
    )
    return {str(external): int(location) for external, location in rows if location is not None}


@dataclass(frozen=True)
class Link:
    listing_id: int
    variant_id: int
    product_id: str
    item: str | None  # the InventoryItem GID
    sku: str


def _links(session: Session, account_id: int, *, listing_ids: Collection[int] | None = None,
           variant_id: int | None = None, item: str | None = None) -> list[Link]:  # fmt: skip
    """The account's listings linked to a hub variant (all, or those asked for)."""
    query = (
        select(ChannelListing.id, ChannelListing.variant_id, ChannelListing.external_product_id,
               ChannelListing.external_stock_id, func.coalesce(ChannelListing.seller_sku, Variant.sku))
        .join(Variant, Variant.id == ChannelListing.variant_id)
        .where(ChannelListing.channel_account_id == account_id)
        .order_by(ChannelListing.id)
    )  # fmt: skip
    if listing_ids is not None:
        query = query.where(ChannelListing.id.in_(sorted(listing_ids)))
    if variant_id is not None:
        query = query.where(ChannelListing.variant_id == variant_id)
    if item is not None:
        query = query.where(ChannelListing.external_stock_id == item)
    return [Link(int(listing), int(variant), str(product), item_id, str(sku))
            for listing, variant, product, item_id, sku in session.execute(query) if variant is not None]  # fmt: skip


# --- hub master: the push ------------------------------------------------------------------------------------


@dataclass
class SkuPush:
    """One dirty SKU of a push: what the hub wants at each mapped store location, and what happened."""

    stock: ListingStock
    link: Link
    holds: dict[str, int]  # units the hub holds for the store's orders, per store location
    error: str | None = None
    targets: dict[str, int] = field(default_factory=dict)

    def keys(self, locations: Iterable[str]) -> list[LevelKey]:
        assert self.link.item is not None
        return [(self.link.item, location) for location in locations]


@dataclass(frozen=True)
class StoreChange:
    sku: str
    listing_id: int
    locations: list[str]
    expected: int
    found: int


def push_stock(context: ShopifyContext, ctx: JobContext) -> None:
    """The hub's truth for every dirty SKU of one store product, compare-and-swap on what was just read. Serial per
    product, and the truth is read when the job runs, so a retry writes the newest quantities. Refused for an
    account whose stock master is the store: the hub never writes back to an external master."""
    account_id = _account_id(ctx)
    product_id = str(ctx.payload.get("product_id") or "")
    if not product_id:
        raise PermanentError("no product_id in the payload")
    account = read_store(context, account_id)
    if stock_master(account) != HUB_MASTER:
        log.info("shopify.push_refused_store_is_master", account_id=account_id, product_id=product_id)
        return
    with reading(context.sessions) as session:
        dirty = [item for item in listing_stock(session, account_id, now=ctx.now, product_id=product_id) if item.dirty]
        listed = _links(session, account_id, listing_ids=[item.listing_id for item in dirty])
        links = {link.listing_id: link for link in listed}
        locations = _mapped_locations(session, account_id)
        holds = store_holds(session, account_id, {item.variant_id for item in dirty})
    pushes = [
        SkuPush(item, links[item.listing_id],
                {store: holds.get((item.variant_id, hub), 0) for store, hub in locations.items()})
        for item in dirty if item.listing_id in links
    ]  # fmt: skip
    if not pushes:
        return
    for push in pushes:
        if push.link.item is None:
            push.error = "the store variant has no inventory item id: import the store's catalogue again"
    client = context.client_for(account)
    changes: list[StoreChange] = []
    live = [push for push in pushes if push.error is None]
    per_set = max(1, QUANTITIES_PER_SET // max(1, len(locations)))
    for start in range(0, len(live), per_set):
        changes += _write(client, account_id, ctx.job_id, live[start : start + per_set], sorted(locations))
    outcomes = [PushOutcome(push.stock.listing_id, push.stock.stock_version, sum(push.targets.values()), push.error)
                for push in pushes]  # fmt: skip
    session, now = ctx.session, ctx.write_time()
    record_push(session, account, outcomes, now=now)
    for change in changes:
        raise_issue(
            session, kind="store_stock_changed", severity="warning",
            fingerprint=f"store_stock_changed:{change.listing_id}",
            message=f"{account.label} shows {change.found} of SKU {change.sku} where the hub had left "
            f"{change.expected}: a change made in the store, not through the hub. The hub is this store's stock "
            "master, so its quantity was written back; record such changes in the hub",
            now=now, channel_account_id=account_id, subject_type="channel_listing", subject_id=str(change.listing_id),
            details={"sku": change.sku, "location": ", ".join(change.locations), "expected": change.expected,
                     "found": change.found, "act": "ops"},
        )  # fmt: skip


def _write(client: ShopifyClient, account_id: int, job_id: int, pushes: list[SkuPush],
           locations: list[str]) -> list[StoreChange]:  # fmt: skip
    """Read, then set with compare-and-swap, until the store took it or CAS_TRIES reads went stale. Returns the
    changes of ``available`` the hub did not make, seen on the way."""
    keys = [key for push in pushes for key in push.keys(locations)]
    levels = read_levels(client, keys)
    previous: dict[LevelKey, Level] | None = None
    changes: dict[int, StoreChange] = {}
    stale = 0
    for _ in range(2 * CAS_TRIES + len(pushes)):  # every pass but the stale ones sets at least one SKU aside
        missing = [key for key, level in levels.items() if level is None]
        for key in missing:
            refusal = _activate(client, account_id, key)
            if refusal is not None:
                _refuse(pushes, key[0], f"Shopify refused to stock it at {key[1]}: {refusal}")
        if missing:
            levels.update(read_levels(client, missing))
        live = [push for push in pushes if push.error is None]
        entries = _plan(live, locations, levels)
        _note_changes(live, locations, levels, previous, changes)
        if not entries:
            return list(changes.values())
        errors = _set(client, account_id, job_id, live, entries)
        if not errors:
            return list(changes.values())
        if is_stale(errors):
            stale += 1
            if stale >= CAS_TRIES:
                raise RetryableError(f"the store's stock changed during each of {CAS_TRIES} tries to write it; "
                                     "trying again later", retry_after=1.0)  # fmt: skip
        else:
            _refuse_entries(pushes, entries, errors)
        previous = {key: level for key, level in levels.items() if level is not None}
        levels = read_levels(client, [key for push in pushes if push.error is None for key in push.keys(locations)])
    raise RetryableError("the store kept refusing the stock write; trying again later")


def _plan(pushes: list[SkuPush], locations: list[str],
          levels: dict[LevelKey, Level | None]) -> list[tuple[SkuPush, LevelKey, int, int]]:  # fmt: skip
    """(push, level, quantity, the value it replaces) for every level that is not already what the hub wants."""
    entries = []
    for push in pushes:
        for key in push.keys(locations):
            level = levels.get(key)
            if level is None:
                continue
            target = store_target(push.stock.warehouses.get(key[1], 0), level.committed, push.holds.get(key[1], 0))
            push.targets[key[1]] = target
            if level.available != target:
                entries.append((push, key, target, level.available))
    return entries


def _note_changes(pushes: list[SkuPush], locations: list[str], levels: dict[LevelKey, Level | None],
                  previous: dict[LevelKey, Level] | None, changes: dict[int, StoreChange]) -> None:  # fmt: skip
    """Changes the hub did not make: on the first read, against the quantity the hub last wrote; on a re-read
    after a stale compare, against the read before it."""
    for push in pushes:
        read = [(key, level) for key in push.keys(locations) if (level := levels.get(key)) is not None]
        if not read or push.link.listing_id in changes:
            continue
        found = sum(level.available for _, level in read)
        if previous is None:
            expected, committed = push.stock.pushed_quantity, sum(level.committed for _, level in read)
        else:
            before = [previous[key] for key, _ in read if key in previous]
            expected = sum(level.available for level in before)
            committed = max(0, sum(level.committed for _, level in read) - sum(level.committed for level in before))
        if outside_change(expected, found, sum(push.targets.values()), committed):
            assert expected is not None
            places = [location for (_, location), _ in read]
            changes[push.link.listing_id] = StoreChange(push.link.sku, push.link.listing_id, places, expected, found)


def _set(client: ShopifyClient, account_id: int, job_id: int, pushes: list[SkuPush],
         entries: list[tuple[SkuPush, LevelKey, int, int]]) -> list[UserError]:  # fmt: skip
    quantities = [{"inventoryItemId": item, "locationId": location, "quantity": quantity, "changeFromQuantity": current}
                  for _, (item, location), quantity, current in entries]  # fmt: skip
    key = set_key(account_id, [
        (push.stock.listing_id, push.stock.stock_version, item, location, current, quantity)
        for push, (item, location), quantity, current in entries
    ])  # fmt: skip
    data = client.query(SET_QUANTITIES, {"key": key, "input": {
        "name": "available", "reason": "correction", "quantities": quantities,
        "referenceDocumentUri": f"gid://shopbridge/StockPush/{job_id}",
    }})  # fmt: skip
    return user_errors(data.get("inventorySetQuantities"))


def _refuse(pushes: list[SkuPush], item: str, reason: str) -> None:
    for push in pushes:
        if push.link.item == item and push.error is None:
            push.error = reason


def _refuse_entries(pushes: list[SkuPush], entries: list[tuple[SkuPush, LevelKey, int, int]],
                    errors: list[UserError]) -> None:  # fmt: skip
    """Set aside the SKUs Shopify refused (the field names the quantity: ``input.quantities.<n>``), so the others
    are written without them; an error that names no quantity refuses the whole write."""
    named = False
    for error in errors:
        index = _quantity_index(error)
        if index is None or index >= len(entries):
            continue
        named = True
        push, (_, location), _, _ = entries[index]
        if error.code == NOT_STOCKED:
            continue  # the next pass finds the level missing and stocks the item there
        push.error = push.error or f"{error.code or 'refused'} at {location}: {error.message}"
    if not named:
        raise PermanentError("Shopify refused the stock write: " + "; ".join(str(error) for error in errors))


def _quantity_index(error: UserError) -> int | None:
    path = error.field or []
    if len(path) >= 3 and path[1] == "quantities" and path[2].isdigit():
        return int(path[2])
    return None


# --- Shopify master: the mirror -----------------------------------------------------------------------------


def observe_identity(account_id: int, item: str, location: str) -> str:
    return f"{OBSERVE_STOCK}:{account_id}:{legacy_id(item)}:{legacy_id(location)}"


OBSERVE_SETTLE = timedelta(seconds=1)


def observe_due(session: Session, account_id: int, now: datetime) -> datetime:
    """When a level the store reports changed is read. At once where the store is the master (the hub mirrors it,
    and the marketplaces follow). A second later where the hub is: there the read only looks for a change the hub
    did not make, and a burst of one level's updates (the echo of the hub's own write, the store's orders committing
    units) is then read once, not once per delivery, sparing the store's cost budget and its webhooks' way."""
    account = session.get(ChannelAccount, account_id)
    return now + OBSERVE_SETTLE if account is not None and stock_master(account) == HUB_MASTER else now


def enqueue_observe(session: Session, account_id: int, item: str, location: str, *, now: datetime,
                    due_at: datetime | None = None, recheck: int = 0) -> None:  # fmt: skip
    """Read one store level again (one waiting job per level): what the webhook intake queues for
    ``inventory_levels/update`` (legacy ids or GIDs)."""
    item, location = gid("InventoryItem", item), gid("Location", location)
    payload: dict[str, Any] = {"inventory_item_id": item, "location_id": location}
    if recheck:
        payload["recheck"] = recheck
    enqueue(session, OBSERVE_STOCK, payload, now=now, due_at=due_at, channel_account_id=account_id,
            identity_key=observe_identity(account_id, item, location))  # fmt: skip


def observe_stock(context: ShopifyContext, ctx: JobContext) -> None:
    """One store level changed (or may have). Shopify master: mirror it into the hub's on-hand. Hub master: if the
    store no longer shows what the hub wants there, mark the SKU dirty, so its push writes the truth back (and
    reports the change). The level is read from the store; a webhook's value may be stale."""
    account_id = _account_id(ctx)
    try:
        item = gid("InventoryItem", str(ctx.payload["inventory_item_id"]))
        location = gid("Location", str(ctx.payload["location_id"]))
    except KeyError as missing:
        raise PermanentError(f"no {missing} in the payload") from None
    account = read_store(context, account_id)
    if stock_master(account) == STORE_MASTER:
        _mirror(context, ctx, account, item, location)
    else:
        _check_level(context, ctx, account, item, location)


def _mirror(context: ShopifyContext, ctx: JobContext, account: ChannelAccount, item: str, location: str) -> None:
    account_id = account.id
    with reading(context.sessions) as session:
        links = _links(session, account_id, item=item)
        mapped = _mapped_locations(session, account_id)
        hub_location = mapped.get(location)
        if not links or hub_location is None:
            log.info("shopify.observe_unlinked", account_id=account_id, item=item, location=location)
            return
        variant = session.get(Variant, links[0].variant_id)
        assert variant is not None
        # Every store item linked to this SKU (a SKU the store lists twice) at every store location mapped here.
        items = sorted({link.item for link in _links(session, account_id, variant_id=variant.id) if link.item})
        places = sorted(store for store, hub in mapped.items() if hub == hub_location)
        # Read before the store, so an order synced meanwhile can only make the hub count fewer units, never more.
        held = store_holds(session, account_id, [variant.id]).get((variant.id, hub_location), 0)
    if variant.stock_source != "external":
        log.warning("shopify.mirror_skipped_hub_source", account_id=account_id, sku=variant.sku,
                    hint="claim_external_source makes the store this SKU's source of truth")  # fmt: skip
        return
    levels = [level for level in read_levels(context.client_for(account), [(i, p) for i in items for p in places])
              .values() if level is not None]  # fmt: skip
    target = mirror_target(sum(level.available for level in levels), held)
    committed = sum(level.committed for level in levels)
    stamp = max((level.updated_at for level in levels if level.updated_at), default="never")
    session, now = ctx.session, ctx.write_time()
    before = session.scalar(
        select(StockLevel.on_hand)
        .where(StockLevel.variant_id == variant.id, StockLevel.location_id == hub_location)
        .with_for_update()
    )
    known = bool(with_known_truth(session, [variant.id]))
    delta = target - (before or 0)
    if delta or not known:
        key = f"shopify:{account_id}:{legacy_id(item)}:{legacy_id(location)}:{stamp}:{before}:{target}"
        line = LedgerLine(key, variant.id, hub_location, "adjustment", delta, f"shopify:{legacy_id(item)}")
        record_movements(session, [line], source="external", now=now)
        if not known:
            mark_dirty(session, [variant.id], now=now)
        log.info("shopify.mirrored", account_id=account_id, sku=variant.sku, on_hand=target, change=delta)
    recheck = int(ctx.payload.get("recheck") or 0)
    if committed > held and recheck < RECHECKS:
        # The store has committed units to an order the hub has not synced: once it has, this count is off by them.
        enqueue_observe(session, account_id, item, location, now=ctx.now, due_at=ctx.now + RECHECK_AFTER,
                        recheck=recheck + 1)  # fmt: skip


def _check_level(context: ShopifyContext, ctx: JobContext, account: ChannelAccount, item: str, location: str) -> None:
    with reading(context.sessions) as session:
        links = _links(session, account.id, item=item)
        if not links:
            return
        variant_id = links[0].variant_id
        stock = next((s for s in listing_stock(session, account.id, now=ctx.now, variant_id=variant_id)
                      if s.listing_id == links[0].listing_id), None)  # fmt: skip
        held = store_holds(session, account.id, [variant_id])
        hub_location = _mapped_locations(session, account.id).get(location)
    if stock is None or stock.dirty or hub_location is None:
        return  # nothing the hub knows to compare with, or a push is on its way
    level = read_levels(context.client_for(account), [(item, location)])[item, location]
    target = store_target(stock.warehouses.get(location, 0), level.committed if level else 0,
                          held.get((variant_id, hub_location), 0))  # fmt: skip
    if level is None or level.available != target:
        mark_dirty(ctx.session, [variant_id], now=ctx.write_time())


def claim_external_source(session: Session, account_id: int, now: datetime) -> int:
    """Make a Shopify-master store the source of truth of the hub variants linked to it (``stock_source =
    external``: the hub's own stock writes to them are refused from now on) and queue a check that mirrors them
    at once. Call it when the store is connected as master and after each catalogue import (which links
    variants). Returns how many variants changed source."""
    account = session.get(ChannelAccount, account_id)
    if account is None or account.channel != NAME or stock_master(account) != STORE_MASTER:
        raise ValueError(f"channel account {account_id} is not a Shopify store that is its stock's master")
    linked = select(ChannelListing.variant_id).where(
        ChannelListing.channel_account_id == account_id, ChannelListing.variant_id.is_not(None)
    )
    result = session.execute(
        update(Variant)
        .where(Variant.id.in_(linked), Variant.stock_source != "external")
        .values(stock_source="external")
        .execution_options(synchronize_session=False)
    )
    enqueue(session, CHECK_STOCK, {}, now=now, channel_account_id=account_id,
            identity_key=f"{CHECK_STOCK}:{account_id}")  # fmt: skip
    return int(result.rowcount)  # type: ignore[attr-defined]


# --- the periodic check ---------------------------------------------------------------------------------------


def check_stock(context: ShopifyContext, ctx: JobContext) -> None:
    """Every linked item at every mapped location, against the hub. Hub master: settled SKUs the store shows
    otherwise than the hub wants are marked dirty (their pushes write the truth). Shopify master: levels whose
    mirror in the hub is off are observed again. One ``stock_mismatch`` issue per account counts them."""
    account_id = _account_id(ctx)
    account = read_store(context, account_id)
    store_is_master = stock_master(account) == STORE_MASTER
    with reading(context.sessions) as session:
        links = [link for link in _links(session, account_id) if link.item]
        locations = _mapped_locations(session, account_id)
        variants = {link.variant_id for link in links}
        holds = store_holds(session, account_id, variants)
        stocks = {} if store_is_master else {
            stock.listing_id: stock for stock in listing_stock(session, account_id, now=ctx.now) if not stock.dirty
        }  # fmt: skip
        on_hand = {(int(v), int(loc)): int(units) for v, loc, units in session.execute(
            select(StockLevel.variant_id, StockLevel.location_id, StockLevel.on_hand)
            .where(StockLevel.variant_id.in_(sorted(variants)))
        )} if store_is_master else {}  # fmt: skip
        sources = dict(session.execute(select(Variant.id, Variant.stock_source)
                                       .where(Variant.id.in_(sorted(variants)))).all())  # fmt: skip
        codes = dict(session.execute(select(Location.id, Location.code)).all())
    levels = read_levels(context.client_for(account), [(link.item, place) for link in links if link.item
                                                       for place in sorted(locations)])  # fmt: skip
    session, now = ctx.session, ctx.write_time()
    if store_is_master:
        wanted, shown, observe, unclaimed = _mirror_drift(links, locations, levels, holds, on_hand, sources, codes)
        mismatched, compared = drifted(wanted, shown)
        for label in mismatched:
            item, place = observe[label]
            enqueue_observe(session, account_id, item, place, now=ctx.now)
        if unclaimed:
            log.warning("shopify.mirror_unclaimed_skus", account_id=account_id, skus=unclaimed,
                        hint="claim_external_source makes the store their source of truth")  # fmt: skip
        repair = "they are read from the store again"
    else:
        wanted, shown, variant_of = _push_drift(links, locations, levels, holds, stocks)
        mismatched, compared = drifted(wanted, shown)
        mark_dirty(session, {variant_of[label] for label in mismatched}, now=now)
        repair = "the hub's quantities are written again"
    _report_drift(session, account_id, mismatched, compared, repair, now=now)


def _push_drift(links: list[Link], locations: dict[str, int], levels: dict[LevelKey, Level | None],
                holds: dict[tuple[int, int], int], stocks: dict[int, ListingStock],
                ) -> tuple[dict[str, int], dict[str, int], dict[str, int]]:  # fmt: skip
    wanted: dict[str, int] = {}
    shown: dict[str, int] = {}
    variant_of: dict[str, int] = {}
    for link in links:
        stock = stocks.get(link.listing_id)
        if stock is None or link.item is None:
            continue
        for place, hub in sorted(locations.items()):
            label = f"{link.sku} at {place}"
            level = levels.get((link.item, place))
            committed = level.committed if level else 0
            held = holds.get((link.variant_id, hub), 0)
            wanted[label] = store_target(stock.warehouses.get(place, 0), committed, held)
            shown[label] = level.available if level else 0  # not stocked there: the store offers none
            variant_of[label] = link.variant_id
    return wanted, shown, variant_of


MirrorDrift = tuple[dict[str, int], dict[str, int], dict[str, LevelKey], list[str]]


def _mirror_drift(links: list[Link], locations: dict[str, int], levels: dict[LevelKey, Level | None],
                  holds: dict[tuple[int, int], int], on_hand: dict[tuple[int, int], int], sources: dict[int, str],
                  codes: dict[int, str]) -> MirrorDrift:  # fmt: skip
    """Per (SKU, hub location): the hub's on-hand (``wanted``) and what the store says it should be (``shown``)."""
    available: dict[tuple[int, int], int] = defaultdict(int)
    observe: dict[str, LevelKey] = {}
    sku_of: dict[int, str] = {}
    unclaimed: set[str] = set()
    for link in links:
        if sources.get(link.variant_id) != "external":
            unclaimed.add(link.sku)
            continue
        sku_of[link.variant_id] = link.sku
        for place, hub in sorted(locations.items()):
            assert link.item is not None
            level = levels.get((link.item, place))
            available[link.variant_id, hub] += level.available if level else 0
            observe.setdefault(f"{link.sku} at {codes.get(hub, hub)}", (link.item, place))
    wanted, shown = {}, {}
    for (variant_id, hub), units in available.items():
        label = f"{sku_of[variant_id]} at {codes.get(hub, hub)}"
        wanted[label] = on_hand.get((variant_id, hub), 0)
        shown[label] = mirror_target(units, holds.get((variant_id, hub), 0))
    return wanted, shown, observe, sorted(unclaimed)


def _report_drift(session: Session, account_id: int, mismatched: list[str], compared: int, repair: str, *,
                  now: datetime) -> None:  # fmt: skip
    account = session.get(ChannelAccount, account_id)
    assert account is not None
    fingerprint = f"stock_mismatch:account:{account_id}"
    if mismatched:
        shown = ", ".join(mismatched[:10]) + (f" and {len(mismatched) - 10} more" if len(mismatched) > 10 else "")
        raise_issue(
            session, kind="stock_mismatch", severity="warning", fingerprint=fingerprint,
            message=f"{account.label}: {len(mismatched)} of {compared} stock levels differ from the hub ({shown}); "
            f"{repair}",
            now=now, channel_account_id=account_id, subject_type="channel_account", subject_id=str(account_id),
            details={"mismatched": len(mismatched), "compared": compared, "levels": mismatched[:100]},
        )  # fmt: skip
    else:
        resolve_issue(session, fingerprint, now)
    account.settings = {
        **(account.settings or {}),
        "stock_drift": {"checked_at": now.isoformat(), "compared": compared, "mismatched": len(mismatched),
                        "mismatch_rate": round(len(mismatched) / compared, 4) if compared else 0.0},
    }  # fmt: skip


def _account_id(ctx: JobContext) -> int:
    if ctx.channel_account_id is None:
        raise PermanentError(f"{ctx.kind} job {ctx.job_id} names no channel account")
    return ctx.channel_account_id


def register(registry: JobRegistry, context: ShopifyContext) -> None:
    registry.register(PUSH_STOCK, partial(push_stock, context), priority=10, serial=True)
    registry.register(OBSERVE_STOCK, partial(observe_stock, context), priority=10, serial=True)
    registry.register(CHECK_STOCK, partial(check_stock, context))
