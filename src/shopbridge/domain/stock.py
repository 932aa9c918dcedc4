"""Available to sell: what a channel may offer of a SKU, from the stock truth, the reservations and the channel's
buffer. Pure arithmetic; the ledger that feeds it lives in services/stock.py."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_CEILING, Decimal

TIKTOK_MAX_QUANTITY = 99_999


class InvalidStockRule(ValueError):
    pass


@dataclass(frozen=True)
class StockRule:
    """How much of the truth a channel is shown. Per channel account, with per-SKU overrides.

    ``buffer_units`` and ``buffer_percent`` hold stock back (both apply; the percent of on-hand is rounded up, so a
    buffer never rounds to nothing); at or below ``out_of_stock_threshold`` the channel sees zero; the result is
    capped at ``channel_max``. ``continue_selling`` offers ``channel_max`` whatever the truth (made-to-order goods).
    ``protect_units`` is the flash-sale guard: extra units held back until ``protect_until``.
    """

    buffer_units: int = 0
    buffer_percent: Decimal = Decimal(0)
    out_of_stock_threshold: int = 0
    channel_max: int = TIKTOK_MAX_QUANTITY
    continue_selling: bool = False
    protect_units: int = 0
    protect_until: datetime | None = None

    def __post_init__(self) -> None:
        for name in ("buffer_units", "out_of_stock_threshold", "protect_units"):
            if getattr(self, name) < 0:
                raise InvalidStockRule(f"{name} must not be negative, got {getattr(self, name)}")
        if not Decimal(0) <= self.buffer_percent < Decimal(100):
            raise InvalidStockRule(f"buffer_percent must be in [0, 100), got {self.buffer_percent}")
        if self.channel_max < 0:
            raise InvalidStockRule(f"channel_max must not be negative, got {self.channel_max}")


def held_back(on_hand: int, rule: StockRule, now: datetime) -> int:
    """Units the rule keeps off the channel on top of reservations."""
    percent = (Decimal(max(on_hand, 0)) * rule.buffer_percent / 100).to_integral_value(rounding=ROUND_CEILING)
    protect = rule.protect_units if rule.protect_until is not None and now < rule.protect_until else 0
    return rule.buffer_units + int(percent) + protect


def available_to_sell(on_hand: int, reserved: int, rule: StockRule, now: datetime) -> int:
    """On-hand minus reserved minus the buffer; zero at or below the threshold; capped; never negative."""
    if rule.continue_selling:
        return rule.channel_max
    free = on_hand - reserved - held_back(on_hand, rule, now)
    if free <= rule.out_of_stock_threshold:
        return 0
    return min(free, rule.channel_max)


def sells_out_before_a_push_lands(
    shown: int, recent_units: int, *, window_seconds: float, reach_seconds: float
) -> bool:
    """Whether a channel showing ``shown`` units would sell them all before the next change could reach it, at the
    pace of ``recent_units`` sold in the last ``window_seconds`` and with a change taking ``reach_seconds`` to land.
    Such a SKU is better shown as 0: the units left then go to the other channels instead of being oversold."""
    return shown > 0 and recent_units > 0 and shown * window_seconds <= recent_units * reach_seconds


def drifted(wanted: Mapping[str, int], shown: Mapping[str, int]) -> tuple[list[str], int]:
    """Drift between what the hub wants a channel to show per channel SKU (``wanted``: settled listings only, less
    what the channel already took off for orders the hub has not synced) and what the channel shows (``shown``):
    the SKUs whose quantities differ, sorted, and how many SKUs could be compared (a SKU the channel did not report
    is not a mismatch: it cannot be judged)."""
    compared = [sku for sku in wanted if sku in shown]
    return sorted(sku for sku in compared if shown[sku] != wanted[sku]), len(compared)


def mirrored_on_hand(sellable: int, held: int) -> int:
    """The hub's on-hand at a location whose stock an outside master keeps (a store, a POS): what the master can
    still sell there, plus the units it has taken on for orders the hub holds them for (on its shelf until they
    ship). The master's own count leaves those out; the hub's reservations of them are counted against on-hand. An
    oversold master (less than nothing to sell) is mirrored as it is."""
    return sellable + held
