"""Order lines matched to the catalogue: a linked listing first, then the seller SKU; otherwise Blocked, saying why."""

from shopbridge.domain.matching import BlockReason, Catalogue, currency_problem

CATALOGUE = Catalogue(by_listing={"1729": 10}, by_seller_sku={"TEE-M": 11, "OLD": 12}, deleted=frozenset({12}))


def test_a_linked_listing_wins_over_the_seller_sku() -> None:
    assert CATALOGUE.match("1729", "TEE-M", "Tee").variant_id == 10


def test_the_seller_sku_matches_an_unlinked_listing() -> None:
    match = CATALOGUE.match("9999", "TEE-M", "Tee")
    assert match.variant_id == 11 and match.problem is None


def test_an_unknown_sku_is_unlinked_and_names_it() -> None:
    assert CATALOGUE.match("9999", "NOPE", "Mug").problem == (
        BlockReason.UNLINKED_SKU,
        "SKU NOPE (Mug) is not linked to a product in the hub",
    )
    assert CATALOGUE.match("9999", None, "Mug").problem == (
        BlockReason.UNLINKED_SKU,
        "SKU sku_id 9999 (Mug) is not linked to a product in the hub",
    )


def test_a_deleted_product_is_matched_but_blocked() -> None:
    match = CATALOGUE.match("9999", "OLD", "Old tee")
    assert match.variant_id == 12 and match.problem == (
        BlockReason.DELETED_PRODUCT,
        "SKU OLD belongs to a deleted product",
    )


def test_an_order_in_another_currency_than_its_shop_is_blocked() -> None:
    assert currency_problem("USD", "USD") is None
    assert currency_problem(None, "IDR") is None, "a shop whose currency is not known yet blocks nothing"
    assert currency_problem("USD", "IDR") == (
        BlockReason.CURRENCY_MISMATCH,
        "order currency IDR differs from the shop's USD",
    )
