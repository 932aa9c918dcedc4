"""What each channel account is shown of a SKU's truth: the account's default rule and a SKU's own override
(buffer, out-of-stock threshold, flash-sale protection). Changing an override re-pushes the SKU at once."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from shopbridge.domain.stock import InvalidStockRule, StockRule
from shopbridge.services import audit
from shopbridge.services.availability import mark_dirty
from shopbridge.store.tables import ChannelAccount, ChannelListing, StockMovement, StockRuleRow, Variant

FIELDS = ("buffer_units", "buffer_percent", "out_of_stock_threshold", "protect_units", "protect_until")


class RuleRefused(ValueError):
    pass


@dataclass(frozen=True)
class RuleInput:
    buffer_units: int
    buffer_percent: Decimal
    out_of_stock_threshold: int
    protect_units: int
    protect_until: datetime | None


def _shown(row: StockRuleRow | None) -> dict[str, Any] | None:
    """A rule as plain JSON values (kept in the audit log as they are shown)."""
    if row is None:
        return None
    return {
        "buffer_units": row.buffer_units, "buffer_percent": str(Decimal(row.buffer_percent).normalize()),
        "out_of_stock_threshold": row.out_of_stock_threshold, "protect_units": row.protect_units,
        "protect_until": row.protect_until.isoformat() if row.protect_until else None,
    }  # fmt: skip


def rules_of(session: Session, variant: Variant) -> list[dict[str, Any]]:
    """Per account that lists the SKU: its default rule and the SKU's override, if any."""
    accounts = session.execute(
        select(ChannelAccount.id, ChannelAccount.label, ChannelAccount.channel)
        .join(ChannelListing, ChannelListing.channel_account_id == ChannelAccount.id)
        .where(ChannelListing.variant_id == variant.id).distinct().order_by(ChannelAccount.id)
    ).all()  # fmt: skip
    rows = session.scalars(select(StockRuleRow).where(
        StockRuleRow.channel_account_id.in_([a.id for a in accounts]),
        StockRuleRow.variant_id.is_(None) | (StockRuleRow.variant_id == variant.id),
    )).all()  # fmt: skip
    by_key = {(row.channel_account_id, row.variant_id): row for row in rows}
    return [
        {"account_id": account.id, "label": account.label, "channel": account.channel,
         "default": _shown(by_key.get((account.id, None))), "override": _shown(by_key.get((account.id, variant.id)))}
        for account in accounts
    ]  # fmt: skip


def set_override(session: Session, sku: str, account_id: int, rule: RuleInput | None, *, now: datetime,
                 actor: str) -> None:  # fmt: skip
    """Set (or, with ``None``, remove) the SKU's own rule on the account, and push what it changes."""
    variant = session.scalar(select(Variant).where(Variant.sku == sku))
    if variant is None:
        raise RuleRefused(f"the hub has no SKU {sku!r}")
    if session.get(ChannelAccount, account_id) is None:
        raise RuleRefused(f"channel account {account_id} does not exist")
    if rule is not None:
        try:
            StockRule(buffer_units=rule.buffer_units, buffer_percent=rule.buffer_percent,
                      out_of_stock_threshold=rule.out_of_stock_threshold, protect_units=rule.protect_units,
                      protect_until=rule.protect_until)  # fmt: skip
        except InvalidStockRule as error:
            raise RuleRefused(str(error)) from None
    row = session.scalar(select(StockRuleRow).where(StockRuleRow.channel_account_id == account_id,
                                                    StockRuleRow.variant_id == variant.id))  # fmt: skip
    before = _shown(row)
    if rule is None:
        if row is not None:
            session.delete(row)
    else:
        if row is None:
            default = session.scalar(select(StockRuleRow).where(StockRuleRow.channel_account_id == account_id,
                                                                StockRuleRow.variant_id.is_(None)))  # fmt: skip
            row = StockRuleRow(channel_account_id=account_id, variant_id=variant.id,
                               continue_selling=default.continue_selling if default else False)  # fmt: skip
            session.add(row)
        for name in FIELDS:
            setattr(row, name, getattr(rule, name))
        row.updated_at = now
    session.flush()
    mark_dirty(session, [variant.id], now=now)
    after = (_shown(row) if rule is not None else None) or {"override": None}
    audit.record(session, actor, "stock.rule", "sku", sku, now=now, before=before,
                 after={"account_id": account_id, **after})  # fmt: skip


def movements_of(session: Session, variant_id: int, *, limit: int = 50) -> list[StockMovement]:
    return list(session.scalars(select(StockMovement).where(StockMovement.variant_id == variant_id)
                                .order_by(StockMovement.id.desc()).limit(limit)))  # fmt: skip
