"""Matching a channel's order lines to the hub's catalogue, and why an order cannot be synced (it is then Blocked).
Pure: the catalogue is read by services/orders.py and handed in."""

from __future__ import annotations

from dataclasses import dataclass


class BlockReason:
    """Why an order is Blocked: a code people and the API filter by, beside a sentence saying what to fix."""

    UNLINKED_SKU = "unlinked_sku"
    DELETED_PRODUCT = "deleted_product"
    MISSING_FIELD = "missing_field"
    CURRENCY_MISMATCH = "currency_mismatch"
    # A released order the store that fulfils it refused (services/fulfilment.py); retrying places it again.
    STORE_REFUSED = "store_refused"


# Reasons that come from an order's lines (fixing the catalogue and retrying clears them).
LINE_REASONS = (BlockReason.UNLINKED_SKU, BlockReason.DELETED_PRODUCT)

Problem = tuple[str, str]  # (reason code, sentence)


@dataclass(frozen=True)
class Match:
    variant_id: int | None
    problem: Problem | None


@dataclass(frozen=True)
class Catalogue:
    """What matching order lines needs, read once for a batch of orders: the channel's listings linked to variants
    (by the channel's SKU id), the hub's variants by seller SKU, and which variants belong to deleted products."""

    by_listing: dict[str, int]
    by_seller_sku: dict[str, int]
    deleted: frozenset[int]

    def match(self, external_sku_id: str, seller_sku: str | None, title: str) -> Match:
        """Linked listing first, then the seller SKU; otherwise unmatched with the reason a person can act on."""
        variant_id = self.by_listing.get(external_sku_id)
        if variant_id is None and seller_sku:
            variant_id = self.by_seller_sku.get(seller_sku)
        label = seller_sku or f"sku_id {external_sku_id}"
        if variant_id is None:
            return Match(
                None, (BlockReason.UNLINKED_SKU, f"SKU {label} ({title}) is not linked to a product in the hub")
            )
        if variant_id in self.deleted:
            return Match(variant_id, (BlockReason.DELETED_PRODUCT, f"SKU {label} belongs to a deleted product"))
        return Match(variant_id, None)


def currency_problem(account_currency: str | None, order_currency: str) -> Problem | None:
    """An order in another currency than its shop's is Blocked: currencies are never mixed."""
    if account_currency and order_currency != account_currency:
        return (
            BlockReason.CURRENCY_MISMATCH,
            f"order currency {order_currency} differs from the shop's {account_currency}",
        )
    return None
