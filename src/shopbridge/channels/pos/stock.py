"""The POS's stock, mirrored: the POS is the stock master of the SKUs it carries, and the hub never writes back.

Every level the POS reports (in an event, or read with ``GET /stock``) comes with its location's **sequence**. The
last level applied per (location, SKU) is kept in ``mirrored_levels`` with its sequence, written with one upsert
that only replaces a lower sequence: a late or replayed event can never overwrite a newer level, whatever order
deliveries arrive in.

The hub's on-hand at the hub location the POS location is mapped to is then made exactly
``(on_hand - allocated) + held`` (domain.stock.mirrored_on_hand): what the store can still sell, plus the units the
hub holds for its orders routed there (their tasks' allocation is in the POS's ``allocated``; the hub counts them
by its own reservations). The change is one ``adjustment`` in the ledger from the external source, which marks the
SKU dirty, so the marketplaces follow a till sale at once. The first level of a SKU makes the POS its source of
truth (``variants.stock_source = external``: the hub's own writes to it are refused), unless the hub already keeps
that SKU's stock at its own locations (a movement from the hub's side): then it stays the hub's there, and the POS's
levels are mirrored at the POS's locations all the same. Whenever the hub's holds at a location change (a task
placed there, a task cancelled), ``remirror`` recomputes the on-hand from the stored levels, without asking the POS.

A level for a SKU the hub does not know is kept out, with one ``pos_unknown_sku`` issue per account naming them.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from shopbridge.channels.pos.context import mapped_locations
from shopbridge.domain.stock import mirrored_on_hand
from shopbridge.logs import get_logger
from shopbridge.services.availability import mark_dirty, with_known_truth
from shopbridge.services.stock import LedgerLine, held_for_account, record_movements
from shopbridge.store.db import dialect_insert
from shopbridge.store.sync_issues import raise_issue
from shopbridge.store.tables import (
    ChannelAccount,
    MirroredLevel,
    OrderLine,
    OrderLink,
    StockLevel,
    StockMovement,
    Variant,
)

log = get_logger("shopbridge.pos.stock")

UNKNOWN_SKU = "pos_unknown_sku"
UNKNOWN_SHOWN = 20  # SKUs an issue names (the count says how many in all)


@dataclass(frozen=True)
class PosLevel:
    sku: str
    on_hand: int
    allocated: int


@dataclass(frozen=True)
class Applied:
    """What a batch of levels did: how many were newer than what the hub had, how many older (not applied), and
    the SKUs it does not know."""

    applied: int
    stale: int
    unknown: tuple[str, ...]


def apply_levels(session: Session, account: ChannelAccount, location_id: str, sequence: int,
                 levels: Sequence[PosLevel], *, now: datetime) -> Applied:  # fmt: skip
    """Apply the POS's levels at one of its locations, each only if ``sequence`` is newer than the SKU's last."""
    if not levels:
        return Applied(0, 0, ())
    latest = {level.sku: level for level in levels}  # one level per SKU: the last given
    variants = dict(session.execute(select(Variant.sku, Variant.id).where(Variant.sku.in_(sorted(latest)))).all())
    unknown = tuple(sorted(set(latest) - set(variants)))
    if unknown:
        _report_unknown(session, account, location_id, unknown, now)
    known = [latest[sku] for sku in sorted(latest) if sku in variants]
    if not known:
        return Applied(0, 0, unknown)
    table = MirroredLevel.__table__
    insert = dialect_insert(session)(MirroredLevel)
    statement = insert.on_conflict_do_update(
        index_elements=["channel_account_id", "external_location_id", "sku"],
        set_={"sequence": insert.excluded.sequence, "on_hand": insert.excluded.on_hand,
              "allocated": insert.excluded.allocated, "updated_at": insert.excluded.updated_at},
        where=table.c.sequence < insert.excluded.sequence,
    ).returning(table.c.sku)  # fmt: skip
    rows = [{"channel_account_id": account.id, "external_location_id": location_id, "sku": level.sku,
             "sequence": sequence, "on_hand": level.on_hand, "allocated": level.allocated, "updated_at": now}
            for level in known]  # fmt: skip
    fresh = set(session.scalars(statement, rows))
    if fresh:
        claimed = [variants[sku] for sku in sorted(fresh)]
        kept_by_hub = select(StockMovement.variant_id).where(StockMovement.variant_id.in_(claimed),
                                                             StockMovement.source == "hub")  # fmt: skip
        session.execute(
            update(Variant)
            .where(Variant.id.in_(claimed), Variant.stock_source != "external", Variant.id.not_in(kept_by_hub))
            .values(stock_source="external")
            .execution_options(synchronize_session=False)
        )
        remirror(session, account.id, location_id, claimed, now=now)
    return Applied(len(fresh), len(known) - len(fresh), unknown)


def remirror(session: Session, account_id: int, location_id: str, variant_ids: Collection[int], *,
             now: datetime) -> int:  # fmt: skip
    """Make the hub's on-hand of ``variant_ids`` at the hub location mapped to the POS ``location_id`` what the
    stored levels and the hub's holds say. Returns how many levels changed."""
    hub_location = mapped_locations(session, account_id).get(location_id)
    if hub_location is None or not variant_ids:
        return 0
    skus = dict(session.execute(select(Variant.id, Variant.sku).where(Variant.id.in_(sorted(variant_ids)))).all())
    mirrored = {
        row.sku: row
        for row in session.scalars(
            select(MirroredLevel).where(
                MirroredLevel.channel_account_id == account_id,
                MirroredLevel.external_location_id == location_id,
                MirroredLevel.sku.in_(sorted(skus.values())),
            )
        )
    }
    ids = sorted(variant for variant, sku in skus.items() if sku in mirrored)
    if not ids:
        return 0
    # Lock the hub's levels first (in variant order, as every writer does), then read the holds: an order placed or
    # shipped meanwhile waits for this, or is seen whole.
    before = dict(
        session.execute(
            select(StockLevel.variant_id, StockLevel.on_hand)
            .where(StockLevel.variant_id.in_(ids), StockLevel.location_id == hub_location)
            .order_by(StockLevel.variant_id)
            .with_for_update()
        ).all()
    )
    held = held_for_account(session, account_id, ids)
    known = with_known_truth(session, ids)
    lines: list[LedgerLine] = []
    for variant_id in ids:
        level = mirrored[skus[variant_id]]
        target = mirrored_on_hand(level.on_hand - level.allocated, held.get((variant_id, hub_location), 0))
        current = int(before.get(variant_id) or 0)
        if target != current or variant_id not in known:
            key = f"pos:{account_id}:{location_id}:{level.sku}:{level.sequence}:{current}>{target}"[:180]
            key += f":{uuid.uuid4().hex[:12]}"  # a hold's change can lead back to an earlier pair of figures
            lines.append(LedgerLine(key, variant_id, hub_location, "adjustment", target - current,
                                    f"pos:{location_id}"))  # fmt: skip
    if lines:
        record_movements(session, lines, source="external", now=now)
        unknown_truth = [line.variant_id for line in lines if line.variant_id not in known]
        if unknown_truth:
            mark_dirty(session, unknown_truth, now=now)  # a zero change still makes the truth known: push it
    return len(lines)


def remirror_link(session: Session, link: OrderLink, *, now: datetime) -> int:
    """The holds of a link's order at its location changed (placed, cancelled, shipped): mirror its SKUs there."""
    if link.external_location_id is None:
        return 0
    variants = {v for v in session.scalars(select(OrderLine.variant_id).where(OrderLine.order_id == link.order_id))
                if v is not None}  # fmt: skip
    return remirror(session, link.channel_account_id, link.external_location_id, variants, now=now)


def sellable(session: Session, account_id: int, skus: Collection[str]) -> dict[tuple[str, str], int]:
    """What each (POS location, SKU) can still sell, as its last levels say (on hand less allocated)."""
    rows = session.scalars(
        select(MirroredLevel).where(MirroredLevel.channel_account_id == account_id, MirroredLevel.sku.in_(sorted(skus)))
    )
    return {(row.external_location_id, row.sku): row.on_hand - row.allocated for row in rows}


def _report_unknown(session: Session, account: ChannelAccount, location_id: str, skus: Sequence[str],
                    now: datetime) -> None:  # fmt: skip
    shown = ", ".join(skus[:UNKNOWN_SHOWN]) + (f" and {len(skus) - UNKNOWN_SHOWN} more" if len(skus) > UNKNOWN_SHOWN
                                                else "")  # fmt: skip
    log.info("pos.unknown_skus", account_id=account.id, location=location_id, count=len(skus))
    raise_issue(
        session, kind=UNKNOWN_SKU, severity="warning", fingerprint=f"{UNKNOWN_SKU}:{account.id}",
        message=f"{account.label} reports stock at {location_id} for SKUs the hub does not know: {shown}. Add them "
        "to the catalogue (or correct the SKU at the POS); their levels are kept out until then",
        now=now, channel_account_id=account.id, details={"skus": list(skus[:200]), "location_id": location_id,
                                                         "act": "ops"},
    )  # fmt: skip
