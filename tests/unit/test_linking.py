"""Listings linked to the hub's variants by SKU, and the SKU problems a person has to settle."""

from __future__ import annotations

import random

from hypothesis import given
from hypothesis import strategies as st

from shopbridge.domain.linking import (
    AUTO,
    BLOCKING,
    LINKS,
    MANUAL,
    UNLINKED,
    LinkReason,
    Listing,
    link_by_sku,
)

STORE, SHOP = 1, 2
ACCOUNTS = {STORE: "Shopify Demo", SHOP: "TikTok Demo"}
VARIANTS = {"TEE-M": 10, "TEE-L": 11, "MUG": 12}


def reasons(linking: object) -> list[tuple[str, str | None]]:
    return [(problem.reason, problem.sku) for problem in linking.problems]  # type: ignore[attr-defined]


def test_a_listing_links_to_the_variant_with_its_sku() -> None:
    linking = link_by_sku(VARIANTS, [Listing(STORE, "v1", "TEE-M")], ACCOUNTS)
    assert linking.links == {(STORE, "v1"): 10}
    assert linking.problems == []


def test_a_listing_without_a_sku_is_not_linked_and_says_what_to_do() -> None:
    linking = link_by_sku(VARIANTS, [Listing(STORE, "v1", None), Listing(STORE, "v2", "  ")], ACCOUNTS)
    assert linking.links == {(STORE, "v1"): None, (STORE, "v2"): None}
    assert reasons(linking) == [(LinkReason.MISSING_SKU, None), (LinkReason.MISSING_SKU, None)]
    assert linking.problems[0].message == (
        "Shopify Demo listing v1 has no SKU: give it one there and import again, or link it by hand"
    )


def test_listings_of_one_account_sharing_a_sku_are_never_linked() -> None:
    listings = [Listing(STORE, "v1", "TEE-M"), Listing(STORE, "v2", "TEE-M"), Listing(SHOP, "s1", "TEE-M")]
    linking = link_by_sku(VARIANTS, listings, ACCOUNTS)
    assert linking.links == {(STORE, "v1"): None, (STORE, "v2"): None, (SHOP, "s1"): 10}
    assert reasons(linking) == [(LinkReason.DUPLICATE_SKU, "TEE-M")]
    problem = linking.problems[0]
    assert problem.listings == ((STORE, "v1"), (STORE, "v2")) and problem.account_ids == (STORE,)
    assert problem.message.startswith("2 listings of Shopify Demo share SKU TEE-M (v1, v2), so none is linked")


def test_unlinking_one_duplicate_lets_the_other_link() -> None:
    listings = [Listing(STORE, "v1", "TEE-M", UNLINKED), Listing(STORE, "v2", "TEE-M")]
    linking = link_by_sku(VARIANTS, listings, ACCOUNTS)
    assert linking.links == {(STORE, "v1"): None, (STORE, "v2"): 10}
    assert linking.problems == []


def test_a_variant_linked_by_hand_is_not_linked_again_by_sku() -> None:
    listings = [Listing(STORE, "v1", "OLD-TEE", MANUAL, 10), Listing(STORE, "v2", "TEE-M")]
    linking = link_by_sku(VARIANTS, listings, ACCOUNTS)
    assert linking.links == {(STORE, "v1"): 10, (STORE, "v2"): None}
    assert reasons(linking) == [(LinkReason.DUPLICATE_SKU, "TEE-M")]
    assert "linked by hand to its listing v1" in linking.problems[0].message


def test_a_sku_the_hub_lacks_is_reported_once_with_every_account_carrying_it() -> None:
    linking = link_by_sku(VARIANTS, [Listing(STORE, "v1", "HAT"), Listing(SHOP, "s1", "HAT")], ACCOUNTS)
    assert linking.links == {(STORE, "v1"): None, (SHOP, "s1"): None}
    assert reasons(linking) == [(LinkReason.NOT_IN_HUB, "HAT")]
    assert linking.problems[0].message.startswith(
        "SKU HAT is on Shopify Demo and TikTok Demo but not in the hub's catalogue"
    )


def test_a_sku_only_one_account_lists_is_reported_but_linked() -> None:
    listings = [Listing(STORE, "v1", "TEE-M"), Listing(STORE, "v2", "MUG"), Listing(SHOP, "s1", "TEE-M")]
    linking = link_by_sku(VARIANTS, listings, ACCOUNTS)
    assert linking.links[(STORE, "v2")] == 12
    assert reasons(linking) == [(LinkReason.ONLY_ON_SOME_ACCOUNTS, "MUG")]
    problem = linking.problems[0]
    assert not problem.blocking and problem.missing_from == (SHOP,) and problem.account_ids == (STORE, SHOP)
    assert problem.message == (
        "SKU MUG is on Shopify Demo but not on TikTok Demo: list it there too if it should sell there"
    )


def test_an_account_not_imported_yet_is_not_compared() -> None:
    linking = link_by_sku(VARIANTS, [Listing(STORE, "v1", "MUG")], ACCOUNTS)
    assert linking.problems == []


def test_a_persons_links_are_kept() -> None:
    listings = [Listing(STORE, "v1", "TEE-M", UNLINKED, None), Listing(STORE, "v2", None, MANUAL, 11),
                Listing(STORE, "v3", "NOT-IN-HUB", MANUAL, 12)]  # fmt: skip
    linking = link_by_sku(VARIANTS, listings, ACCOUNTS)
    assert linking.links == {(STORE, "v1"): None, (STORE, "v2"): 11, (STORE, "v3"): 12}
    assert linking.problems == []
    assert linking.changed(listings) == []


# --- properties ---------------------------------------------------------------------------------------------

SKUS = st.sampled_from(["TEE-M", "TEE-L", "MUG", "HAT", "", None])
listing_rows = st.lists(
    st.tuples(st.sampled_from([STORE, SHOP]), SKUS, st.sampled_from(LINKS), st.sampled_from([None, 10, 11, 12])),
    max_size=12,
)


def build(rows: list[tuple[int, str | None, str, int | None]]) -> list[Listing]:
    return [Listing(account, f"x{index}", sku, link, variant if link == MANUAL else None)
            for index, (account, sku, link, variant) in enumerate(rows)]  # fmt: skip


@given(listing_rows)
def test_manual_and_unlinked_listings_keep_what_a_person_set(
    rows: list[tuple[int, str | None, str, int | None]],
) -> None:
    listings = build(rows)
    linking = link_by_sku(VARIANTS, listings, ACCOUNTS)
    for listing in listings:
        if listing.link == MANUAL:
            assert linking.links[listing.key] == listing.variant_id
        if listing.link == UNLINKED:
            assert linking.links[listing.key] is None


@given(listing_rows)
def test_an_auto_link_is_by_sku_and_one_listing_per_variant_and_account(
    rows: list[tuple[int, str | None, str, int | None]],
) -> None:
    listings = build(rows)
    linking = link_by_sku(VARIANTS, listings, ACCOUNTS)
    taken: dict[tuple[int, int], str] = {}
    for listing in listings:
        variant = linking.links[listing.key]
        if listing.link == AUTO and variant is not None:
            assert VARIANTS[listing.seller_sku or ""] == variant
        if variant is not None and listing.link != UNLINKED:
            assert (listing.account_id, variant) not in taken or listing.link == MANUAL  # only a person can double up
            taken.setdefault((listing.account_id, variant), listing.external_sku_id)


@given(listing_rows)
def test_every_auto_listing_left_unlinked_is_named_by_a_blocking_problem(
    rows: list[tuple[int, str | None, str, int | None]],
) -> None:
    listings = build(rows)
    linking = link_by_sku(VARIANTS, listings, ACCOUNTS)
    named = {key for problem in linking.problems if problem.reason in BLOCKING for key in problem.listings}
    for listing in listings:
        if listing.link == AUTO and linking.links[listing.key] is None:
            assert listing.key in named
    assert all(problem.message for problem in linking.problems)


@given(listing_rows, st.randoms(use_true_random=False))
def test_the_decision_does_not_depend_on_the_order_and_settles_at_once(
    rows: list[tuple[int, str | None, str, int | None]], shuffler: random.Random
) -> None:
    listings = build(rows)
    first = link_by_sku(VARIANTS, listings, ACCOUNTS)
    shuffled = list(listings)
    shuffler.shuffle(shuffled)
    assert link_by_sku(VARIANTS, shuffled, ACCOUNTS) == first
    applied = [Listing(listing.account_id, listing.external_sku_id, listing.seller_sku, listing.link,
                       first.links[listing.key]) for listing in listings]  # fmt: skip
    again = link_by_sku(VARIANTS, applied, ACCOUNTS)
    assert again == first and again.changed(applied) == []
