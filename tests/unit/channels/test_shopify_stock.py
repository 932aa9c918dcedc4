"""The arithmetic of Shopify stock: what the hub writes, what it mirrors, and what counts as a change made in the
store."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from shopbridge.channels.shopify.client import UserError
from shopbridge.channels.shopify.stock import (
    is_stale,
    level_gid,
    mirror_target,
    outside_change,
    set_key,
    store_target,
)

units = st.integers(min_value=0, max_value=10_000)


def test_units_the_store_committed_to_orders_the_hub_lacks_are_left_out() -> None:
    assert store_target(10, committed=0, held=0) == 10
    assert store_target(10, committed=3, held=3) == 10, "orders the hub holds are already out of its truth"
    assert store_target(10, committed=3, held=1) == 8, "2 units went to an order the hub has not synced"
    assert store_target(10, committed=1, held=3) == 10, "a fulfilment the hub has not synced takes nothing off"
    assert store_target(1, committed=5, held=0) == 0


@given(units, units, units)
def test_what_is_written_is_never_negative_nor_more_than_the_hub_wants(wanted: int, committed: int, held: int) -> None:
    assert 0 <= store_target(wanted, committed, held) <= wanted


def test_the_mirror_keeps_on_hand_the_units_committed_to_orders_the_hub_holds() -> None:
    assert mirror_target(7, 3) == 10
    assert mirror_target(-2, 0) == -2, "an oversold store is mirrored as it is"


def test_a_change_the_hub_did_not_make() -> None:
    assert not outside_change(None, 5, 10, 0), "nothing pushed yet: nothing to compare with"
    assert not outside_change(10, 10, 12, 0), "as the hub left it"
    assert not outside_change(10, 12, 12, 0), "already what the hub wants"
    assert not outside_change(10, 8, 10, 2), "orders took 2"
    assert outside_change(10, 8, 10, 1), "orders explain 1 of the 2"
    assert outside_change(10, 8, 10, 0), "a counter sale"
    assert outside_change(10, 14, 10, 5), "units added in the store"


def test_a_write_is_keyed_by_what_it_sets_and_what_it_replaces() -> None:
    entry = (7, 3, "gid://shopify/InventoryItem/1", "gid://shopify/Location/2", 5, 8)
    key = set_key(1, [entry])
    assert key == set_key(1, [entry]), "a retried job reading the same store sends the same key"
    assert key.startswith("shopbridge-stock-1-") and len(key) < 64
    assert set_key(1, [(*entry[:4], 4, 8)]) != key, "another value replaced: another request, another key"
    assert set_key(1, [(*entry[:1], 4, *entry[2:])]) != key, "a newer stock version"
    two = (8, 1, "gid://shopify/InventoryItem/9", "gid://shopify/Location/2", 0, 1)
    assert set_key(1, [entry, two]) == set_key(1, [two, entry]), "the order of quantities does not matter"


def test_a_stale_compare_is_told_by_its_code() -> None:
    assert is_stale([UserError(["input", "quantities", "0"], "does not match", "CHANGE_FROM_QUANTITY_STALE")])
    assert is_stale([UserError(None, "does not match", "COMPARE_QUANTITY_STALE")])
    assert not is_stale([UserError(None, "not stocked", "ITEM_NOT_STOCKED_AT_LOCATION")])


def test_an_inventory_level_gid_is_its_location_and_item() -> None:
    assert level_gid("gid://shopify/InventoryItem/30322695", "gid://shopify/Location/124656943") == (
        "gid://shopify/InventoryLevel/124656943?inventory_item_id=30322695"
    )
