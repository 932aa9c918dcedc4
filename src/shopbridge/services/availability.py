"""From the stock truth to what each channel listing should show, and the bookkeeping of stock pushes.

Every change to a SKU's stock raises the ``stock_version`` of its channel listings in the same transaction and
(in the account's ``event`` push mode) queues one push job per channel product; the channel connector computes
absolute quantities when the job runs, sends them, and records the version it sent as acknowledged. A push thus
always carries the newest truth at its start, and an acknowledgement never moves a listing's acknowledged version
backwards, so an old quantity cannot overwrite a newer one.
"""

from __future__ import annotations

import functools
from collections import defaultdict
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import BindParameter, Select, bindparam, case, func, select, update
from sqlalchemy.orm import Session

from shopbridge.domain.stock import StockRule, available_to_sell, sells_out_before_a_push_lands
from shopbridge.runtime.doorbell import job_due
from shopbridge.runtime.jobs import enqueue
from shopbridge.store.sync_issues import raise_issue, resolve_issues
from shopbridge.store.tables import (
    Base,
    ChannelAccount,
    ChannelListing,
    ChannelWarehouse,
    Job,
    StockLevel,
    StockMovement,
    StockRuleRow,
    Variant,
)

K = TypeVar("K")
PUSH_MODES = ("event", "interval")
# Sources whose movements establish a SKU's stock truth; an order's reservation alone does not.
TRUTH_SOURCES = ("hub", "external")

# The reads and writes of every stock change and every push, built once with their values bound at execution
# (building a statement cost more than running it). "variants" lists expand into IN (...).
_VARIANTS: BindParameter[list[int]] = bindparam("variants", expanding=True)
_ACCOUNT: BindParameter[int] = bindparam("account")
_KNOWN_TRUTH = (
    select(StockMovement.variant_id)
    .where(StockMovement.variant_id.in_(_VARIANTS), StockMovement.source.in_(TRUTH_SOURCES))
    .distinct()
)
_MARKABLE_LISTINGS = (
    select(ChannelListing.variant_id, ChannelListing.channel_account_id, ChannelListing.external_product_id,
           ChannelAccount.channel, ChannelAccount.settings)
    .join(ChannelAccount, ChannelAccount.id == ChannelListing.channel_account_id)
    .where(ChannelListing.variant_id.in_(_VARIANTS), ChannelAccount.status == "active")
)  # fmt: skip
_RAISE_VERSIONS = (
    update(ChannelListing)
    .where(ChannelListing.variant_id.in_(_VARIANTS))
    .values(stock_version=ChannelListing.stock_version + 1)
    .execution_options(synchronize_session=False)
)
_RULES = select(
    StockRuleRow.variant_id, StockRuleRow.buffer_units, StockRuleRow.buffer_percent,
    StockRuleRow.out_of_stock_threshold, StockRuleRow.continue_selling, StockRuleRow.protect_units,
    StockRuleRow.protect_until,
).where(StockRuleRow.channel_account_id == _ACCOUNT,
        StockRuleRow.variant_id.is_(None) | StockRuleRow.variant_id.in_(_VARIANTS))  # fmt: skip
_WAREHOUSES = select(ChannelWarehouse.external_warehouse_id, ChannelWarehouse.location_id).where(
    ChannelWarehouse.channel_account_id == _ACCOUNT
)
_LEVELS = select(StockLevel.variant_id, StockLevel.location_id, StockLevel.on_hand, StockLevel.reserved).where(
    StockLevel.variant_id.in_(_VARIANTS)
)

# The sell-out guard: a SKU whose orders and sales take units so fast that what a channel shows would be sold before a
# change could reach the channel is shown as 0 (docs/tiktok.md). A change reaches TikTok through the order's sync
# (its detail call) and the push (its request): a few hundred milliseconds at rest, about a second at the p99 of a
# flash sale (docs/benchmarks.md), so the guard allows a second.
SELL_OUT_WINDOW = timedelta(seconds=2)  # the guard's pace: units orders reserved and sales took in this window
SELL_OUT_REACH_SECONDS = 1.0
_TAKEN = (StockMovement.kind == "reservation") | ((StockMovement.kind == "sale") & (StockMovement.reserved_delta == 0))
_RECENTLY_TAKEN = (  # a shipment (a sale that ends a reservation) was counted when its order reserved
    select(StockMovement.variant_id,
           func.sum(case((StockMovement.kind == "reservation", StockMovement.reserved_delta),
                         else_=-StockMovement.on_hand_delta)))
    .where(StockMovement.variant_id.in_(_VARIANTS),
           _TAKEN,
           StockMovement.recorded_at >= bindparam("since", type_=StockMovement.recorded_at.type))
    .group_by(StockMovement.variant_id)
)  # fmt: skip


# What a channel's own orders hold at the hub: the reservations its order syncs recorded (source = the channel), less
# their releases and shipments, per variant and location.
_CHANNEL_HOLDS = (
    select(StockMovement.variant_id, StockMovement.location_id, func.sum(StockMovement.reserved_delta))
    .where(StockMovement.variant_id.in_(_VARIANTS), StockMovement.source == bindparam("channel"))
    .group_by(StockMovement.variant_id, StockMovement.location_id)
)


_VARIANT_LISTINGS = (
    select(ChannelListing.id, ChannelListing.channel_account_id, ChannelAccount.channel,
           ChannelListing.external_product_id, ChannelListing.external_sku_id, ChannelListing.stock_version,
           ChannelListing.acked_stock_version, ChannelListing.pushed_quantity, ChannelListing.push_error)
    .join(ChannelAccount, ChannelAccount.id == ChannelListing.channel_account_id)
    .where(ChannelListing.variant_id == bindparam("variant"))
    .order_by(ChannelListing.id)
)  # fmt: skip


@functools.cache
def _listings_statement(by_product: bool, by_variant: bool) -> Select[int, str, int | None, int, int, int | None]:
    """The account's linked listings with their versions (of one channel product, or one variant, if asked)."""
    listing = ChannelListing
    query = select(listing.id, listing.external_sku_id, listing.variant_id, listing.stock_version,
                   listing.acked_stock_version, listing.pushed_quantity).where(
        listing.channel_account_id == _ACCOUNT, listing.variant_id.is_not(None)
    )  # fmt: skip
    if by_product:
        query = query.where(listing.external_product_id == bindparam("product"))
    if by_variant:
        query = query.where(listing.variant_id == bindparam("variant"))
    return query.order_by(listing.external_sku_id)


def with_known_truth(session: Session, variant_ids: list[int]) -> set[int]:
    """The variants whose stock the hub knows (a movement from a stock source was recorded). The hub never
    pushes a quantity for the others: that would zero a channel's stock by accident."""
    if not variant_ids:
        return set()
    return set(session.scalars(_KNOWN_TRUTH, {"variants": list(variant_ids)}))


def push_kind(channel: str) -> str:
    """The job kind that pushes stock to a channel (each connector registers its own)."""
    return f"{channel}.push_stock"


def enqueue_push(
    session: Session,
    channel: str,
    account_id: int,
    product_id: str,
    *,
    now: datetime,
    after_sync: dict[str, Any] | None = None,
    until: datetime | None = None,
) -> None:
    """One waiting push per channel product: changes meanwhile join it, and it runs serially per product.

    ``after_sync`` defers the push until the channel's order sync has caught up (``release_deferred_pushes``) or
    ``until`` passes, whichever is first; it is the payload the push then re-checks (see the TikTok push)."""
    # As urgent as the order syncs, placements and tracking pushes of the store loop (priority 5): a claim takes the
    # most urgent jobs first, so a push ranked below them would wait for as long as they keep coming.
    enqueue(session, push_kind(channel), {"product_id": product_id, **(after_sync or {})}, now=now, due_at=until,
            channel_account_id=account_id, identity_key=push_identity(channel, account_id, product_id),
            priority=5)  # fmt: skip


def push_identity(channel: str, account_id: int, product_id: str) -> str:
    """The identity of a channel product's pushes: one waits at a time, and they run one after another."""
    return f"{push_kind(channel)}:{account_id}:{product_id}"


SELL_OUT_RECHECK = "stock.sell_out_recheck"


def queue_sell_out_recheck(
    session: Session, account_id: int, product_id: str, variant_ids: Collection[int], *, now: datetime
) -> None:
    """The sell-out guard showed these SKUs as 0: look again once its window has passed, so that a sale that
    slowed down or stopped gives the units back to the channel even if nothing else changes (one waiting check
    per channel product)."""
    enqueue(session, SELL_OUT_RECHECK, {"variant_ids": sorted(variant_ids)}, now=now, due_at=now + SELL_OUT_WINDOW,
            channel_account_id=account_id, identity_key=f"{SELL_OUT_RECHECK}:{account_id}:{product_id}")  # fmt: skip


def release_deferred_pushes(session: Session, channel: str, account_id: int, *, now: datetime) -> int:
    """The account's order sync has caught up: pushes deferred for it become due now. A deferred push is a push
    job queued for later and never attempted; a push waiting out a retry's backoff has been attempted and keeps
    its delay."""
    values = {"push_kind": push_kind(channel), "account": account_id, "released_at": now}
    result = session.execute(_RELEASE_DEFERRED, values)
    released = result.rowcount  # type: ignore[attr-defined]
    if released:
        job_due(session, released)
    return int(released)


_RELEASE_DEFERRED = (
    update(Job)
    .where(Job.kind == bindparam("push_kind"), Job.channel_account_id == bindparam("account"),
           Job.state == "pending", Job.attempts == 0, Job.due_at > bindparam("released_at"))
    .values(due_at=bindparam("released_at"))
    .execution_options(synchronize_session=False)
)  # fmt: skip


IN_CHUNK = 500  # keys per IN (...) list, well under SQLite's limit on bound parameters


def in_chunks(keys: Sequence[K]) -> Iterator[Sequence[K]]:
    """``keys`` in slices of IN_CHUNK, one statement's worth each (none for no keys)."""
    for start in range(0, len(keys), IN_CHUNK):
        yield keys[start : start + IN_CHUNK]


def mark_dirty(session: Session, variant_ids: Collection[int], *, now: datetime) -> int:
    """The truth of these SKUs changed: raise their listings' versions and, in event mode, queue one push per
    channel product, in product order (so two transactions take the push jobs' rows in one order). A few
    statements per call, not per SKU, so an order's lines or an import cost little. Returns how many listings
    were marked."""
    ordered = sorted(variant_ids)
    marked = 0
    products: set[tuple[int, str, str]] = set()
    for chunk in in_chunks(ordered):
        rows = session.execute(_MARKABLE_LISTINGS, {"variants": list(chunk)}).all()
        known = with_known_truth(session, sorted({row[0] for row in rows}))
        if not known:
            continue
        session.execute(_RAISE_VERSIONS, {"variants": sorted(known)})
        for variant_id, account_id, product_id, channel, settings in rows:
            if variant_id in known:
                marked += 1
                if _mode(settings) == "event":
                    products.add((account_id, product_id, channel))
    for account_id, product_id, channel in sorted(products):
        enqueue_push(session, channel, account_id, product_id, now=now)
    return marked


def _mode(settings: dict[str, Any] | None) -> str:
    return str((settings or {}).get("stock_push_mode", "event"))


def rules_for(session: Session, account_id: int, variant_ids: list[int]) -> dict[int | None, StockRule]:
    """The account's default rule (key None) and the per-SKU overrides among ``variant_ids``."""
    rows = session.execute(_RULES, {"account": account_id, "variants": list(variant_ids)})
    rules: dict[int | None, StockRule] = {None: StockRule()}
    for variant_id, units, percent, threshold, continue_selling, protect_units, protect_until in rows:
        rules[variant_id] = StockRule(
            buffer_units=units, buffer_percent=percent, out_of_stock_threshold=threshold,
            continue_selling=continue_selling, protect_units=protect_units, protect_until=protect_until,
        )  # fmt: skip
    return rules


@dataclass
class ListingStock:
    """What one channel SKU should show now, per channel warehouse, and the version that quantity reflects."""

    listing_id: int
    external_sku_id: str
    variant_id: int
    stock_version: int
    acked_stock_version: int
    pushed_quantity: int | None
    warehouses: dict[str, int] = field(default_factory=dict)
    held_back: int = 0
    guarded: bool = False  # shown as 0 by the sell-out guard, though the buffer alone would show more
    unsynced_sales: int = 0  # units the channel had sold that the hub had not synced yet, left out of this push

    @property
    def quantity(self) -> int:
        return sum(self.warehouses.values())

    @property
    def dirty(self) -> bool:
        return self.stock_version > self.acked_stock_version


def listing_stock(
    session: Session, account_id: int, *, now: datetime, product_id: str | None = None, variant_id: int | None = None
) -> list[ListingStock]:
    """Available to sell for the account's linked listings (of one channel product, or of one variant), read in
    one snapshot with their versions. A listing whose SKU has no stock truth in the hub yet is left out: the hub
    never pushes a quantity it does not know (it would zero the channel's stock by accident)."""
    query = _listings_statement(product_id is not None, variant_id is not None)
    listings = session.execute(query, {"account": account_id, "product": product_id, "variant": variant_id}).all()
    if not listings:
        return []
    variant_ids = sorted({row.variant_id for row in listings})
    truth = with_known_truth(session, variant_ids)
    if not truth:
        return []
    warehouses = dict(session.execute(_WAREHOUSES, {"account": account_id}).all())
    levels: dict[int, dict[int, tuple[int, int]]] = defaultdict(dict)
    for level_variant, location_id, on_hand, reserved in session.execute(_LEVELS, {"variants": sorted(truth)}):
        levels[level_variant][location_id] = (on_hand, reserved)
    rules = rules_for(session, account_id, sorted(truth))
    since = now - SELL_OUT_WINDOW
    recent: dict[int, int] = {
        int(variant): int(units or 0)
        for variant, units in session.execute(_RECENTLY_TAKEN, {"variants": sorted(truth), "since": since})
    }
    result = []
    for row in listings:
        known = levels.get(row.variant_id)
        if not known or row.variant_id not in truth:
            continue
        rule = rules.get(row.variant_id, rules[None])
        item = ListingStock(row.id, row.external_sku_id, row.variant_id, row.stock_version, row.acked_stock_version,
                            row.pushed_quantity)  # fmt: skip
        for external_id, mapped in sorted(warehouses.items()):
            # A channel warehouse not mapped to a location is offered nothing: the hub knows no stock there.
            on_hand, reserved = known.get(mapped, (0, 0)) if mapped is not None else (0, 0)
            item.warehouses[external_id] = available_to_sell(on_hand, reserved, rule, now)
            item.held_back += max(0, on_hand - reserved) - item.warehouses[external_id]
        pace = recent.get(row.variant_id, 0)
        if not rule.continue_selling and sells_out_before_a_push_lands(
            item.quantity, pace, window_seconds=SELL_OUT_WINDOW.total_seconds(), reach_seconds=SELL_OUT_REACH_SECONDS
        ):
            item.held_back += item.quantity
            item.warehouses = dict.fromkeys(item.warehouses, 0)
            item.guarded = True
        result.append(item)
    return result


def channel_holds(
    session: Session, account_id: int, channel: str, variant_ids: list[int]
) -> dict[tuple[int, str], int]:
    """Units the channel's orders hold at the hub (reserved, not yet released or shipped), per variant and channel
    warehouse (through the warehouse's mapped location). A connector compares them with what the channel itself
    counts as committed to find the orders the hub has not synced yet. Holds are per channel, not per account: two
    shops of one channel selling one SKU from one location add up, which can only make that difference smaller."""
    if not variant_ids:
        return {}
    warehouses = dict(session.execute(_WAREHOUSES, {"account": account_id}).all())
    rows = session.execute(_CHANNEL_HOLDS, {"variants": sorted(variant_ids), "channel": channel})
    held = {(int(variant), int(location)): int(units or 0) for variant, location, units in rows}
    return {
        (variant, external): held.get((variant, location), 0)
        for variant in variant_ids
        for external, location in warehouses.items()
        if location is not None
    }


@dataclass(frozen=True)
class PushOutcome:
    listing_id: int
    version: int
    quantity: int
    error: str | None = None


def record_push(session: Session, account: ChannelAccount, outcomes: list[PushOutcome], *, now: datetime) -> None:
    """What the channel said about each SKU of a push: an accepted one records its version as acknowledged
    (never lowering it); a refused one keeps its error and raises a sync issue, and stays dirty."""
    accepted = [outcome for outcome in outcomes if outcome.error is None]
    if accepted:
        listing = Base.metadata.tables[ChannelListing.__tablename__]
        session.execute(
            update(listing)
            .where(listing.c.id == bindparam("listing"), listing.c.acked_stock_version < bindparam("version"))
            .values(acked_stock_version=bindparam("version"), pushed_quantity=bindparam("quantity"), pushed_at=now,
                    push_error=None, last_synced_at=now),
            [{"listing": o.listing_id, "version": o.version, "quantity": o.quantity} for o in accepted],
        )  # fmt: skip
        resolve_issues(session, [f"stock_push_failed:{o.listing_id}" for o in accepted], now)
    for outcome in outcomes:
        if outcome.error is None:
            continue
        fingerprint = f"stock_push_failed:{outcome.listing_id}"
        listing_row = session.get(ChannelListing, outcome.listing_id)
        assert listing_row is not None
        listing_row.push_error = outcome.error
        raise_issue(
            session, kind="stock_push_failed", severity="error", fingerprint=fingerprint,
            message=f"{account.label} refused stock {outcome.quantity} for SKU "
            f"{listing_row.seller_sku or listing_row.external_sku_id}: {outcome.error}",
            now=now, channel_account_id=account.id, subject_type="channel_listing", subject_id=str(listing_row.id),
            details={"quantity": outcome.quantity, "version": outcome.version},
        )  # fmt: skip


def dirty_products(session: Session, account_id: int) -> list[str]:
    """Channel products with a listing whose truth changed since the last acknowledged push."""
    return list(
        session.scalars(
            select(ChannelListing.external_product_id)
            .where(
                ChannelListing.channel_account_id == account_id,
                ChannelListing.variant_id.is_not(None),
                ChannelListing.stock_version > ChannelListing.acked_stock_version,
            )
            .distinct()
            .order_by(ChannelListing.external_product_id)
        )
    )


def channel_view(session: Session, variant: Variant, *, now: datetime) -> list[dict[str, Any]]:
    """Per channel listing of a SKU: what the channel should show now, what it last confirmed, and versions."""
    rows = session.execute(_VARIANT_LISTINGS, {"variant": variant.id}).all()
    stocks: dict[int, ListingStock] = {}
    for account_id in sorted({row.channel_account_id for row in rows}):
        stocks.update(
            (item.listing_id, item) for item in listing_stock(session, account_id, now=now, variant_id=variant.id)
        )
    views = []
    for row in rows:
        item = stocks.get(row.id)
        views.append({
            "channel": row.channel, "channel_account_id": row.channel_account_id,
            "external_product_id": row.external_product_id, "external_sku_id": row.external_sku_id,
            "available": item.quantity if item else None, "held_back": item.held_back if item else None,
            "stock_version": row.stock_version, "acked_stock_version": row.acked_stock_version,
            "pushed_quantity": row.pushed_quantity, "push_error": row.push_error,
        })  # fmt: skip
    return views
