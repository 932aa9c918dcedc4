"""Inventory mutations (reference §3.3-§3.7): compare-and-swap per API version, idempotency keys, adjustments,
activation."""

from __future__ import annotations

from typing import Any

import pytest

from .conftest import Env

pytestmark = pytest.mark.anyio

SET = """mutation($input: InventorySetQuantitiesInput!) { inventorySetQuantities(input: $input) {
  inventoryAdjustmentGroup { id reason changes { name delta quantityAfterChange } }
  userErrors { field message code } } }"""
SET_KEYED = """mutation($input: InventorySetQuantitiesInput!, $key: String!) {
  inventorySetQuantities(input: $input) @idempotent(key: $key) {
    inventoryAdjustmentGroup { id changes { name delta quantityAfterChange } } userErrors { field message code } } }"""
ADJUST = """mutation($input: InventoryAdjustQuantitiesInput!) { inventoryAdjustQuantities(input: $input) {
  inventoryAdjustmentGroup { id changes { name delta quantityAfterChange ledgerDocumentUri } }
  userErrors { field message code } } }"""


def quantity(env: Env, sku: str, quantity: int, **extra: Any) -> dict[str, Any]:
    return {
        "inventoryItemId": env.store[sku + ":item"],
        "locationId": env.store["Main Warehouse"],
        "quantity": quantity,
        **extra,
    }


def set_input(*quantities: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"name": "available", "reason": "correction", "quantities": list(quantities), **extra}


async def test_compare_quantity_up_to_2025_10(env: Env) -> None:
    required = await env.data(SET, {"input": set_input(quantity(env, "MUG-1", 7))}, version="2025-10")
    assert required["inventorySetQuantities"]["userErrors"][0]["code"] == "COMPARE_QUANTITY_REQUIRED"
    stale = await env.data(SET, {"input": set_input(quantity(env, "MUG-1", 7, compareQuantity=3))}, version="2025-10")
    assert stale["inventorySetQuantities"]["userErrors"] == [
        {
            "field": ["input", "quantities", "0", "compareQuantity"],
            "message": "The compareQuantity value does not match persisted value (20).",
            "code": "COMPARE_QUANTITY_STALE",
        }
    ]
    assert (await env.inventory("MUG-1"))["available"] == 20
    ok = await env.data(SET, {"input": set_input(quantity(env, "MUG-1", 7, compareQuantity=20))}, version="2025-10")
    changes = ok["inventorySetQuantities"]["inventoryAdjustmentGroup"]["changes"]
    assert {"name": "available", "delta": -13, "quantityAfterChange": 7} in changes
    assert {"name": "on_hand", "delta": -13, "quantityAfterChange": 7} in changes
    ignored = await env.data(
        SET, {"input": set_input(quantity(env, "MUG-1", 9), ignoreCompareQuantity=True)}, version="2025-10"
    )
    assert ignored["inventorySetQuantities"]["userErrors"] == []
    assert (await env.inventory("MUG-1"))["available"] == 9


async def test_change_from_quantity_in_2026_01_with_fallback(env: Env) -> None:
    stale = await env.data(SET, {"input": set_input(quantity(env, "MUG-1", 5, changeFromQuantity=19))})
    assert stale["inventorySetQuantities"]["userErrors"][0]["code"] == "CHANGE_FROM_QUANTITY_STALE"
    fallback = await env.data(SET, {"input": set_input(quantity(env, "MUG-1", 5))})
    assert fallback["inventorySetQuantities"]["userErrors"][0]["code"] == "COMPARE_QUANTITY_REQUIRED"
    opt_out = await env.data(SET, {"input": set_input(quantity(env, "MUG-1", 5, changeFromQuantity=None))})
    assert opt_out["inventorySetQuantities"]["userErrors"] == []
    ok = await env.data(SET, {"input": set_input(quantity(env, "MUG-1", 6, changeFromQuantity=5))})
    assert ok["inventorySetQuantities"]["userErrors"] == []
    assert (await env.inventory("MUG-1"))["available"] == 6


async def test_2026_04_requires_change_from_quantity_and_an_idempotency_key(env: Env) -> None:
    no_key = await env.gql(
        SET, {"input": set_input(quantity(env, "MUG-1", 5, changeFromQuantity=20))}, version="2026-04"
    )
    assert "@idempotent" in no_key["errors"][0]["message"] and no_key["data"]["inventorySetQuantities"] is None
    missing = await env.data(
        SET_KEYED, {"input": set_input(quantity(env, "MUG-1", 5)), "key": "k-1"}, version="2026-04"
    )
    error = missing["inventorySetQuantities"]["userErrors"][0]
    assert error["field"] == ["input", "quantities", "0", "changeFromQuantity"] and "required" in error["message"]
    stale = await env.data(
        SET_KEYED,
        {"input": set_input(quantity(env, "MUG-1", 5, changeFromQuantity=4)), "key": "k-2"},
        version="2026-04",
    )
    assert stale["inventorySetQuantities"]["userErrors"][0]["code"] == "CHANGE_FROM_QUANTITY_STALE"
    ok = await env.data(
        SET_KEYED,
        {"input": set_input(quantity(env, "MUG-1", 5, changeFromQuantity=20)), "key": "k-3"},
        version="2026-04",
    )
    assert ok["inventorySetQuantities"]["userErrors"] == []
    assert (await env.inventory("MUG-1"))["available"] == 5


async def test_idempotent_replay_and_mismatch(env: Env) -> None:
    variables = {"input": set_input(quantity(env, "MUG-1", 15, changeFromQuantity=20)), "key": "uuid-1"}
    first = await env.data(SET_KEYED, variables)
    await env.control("POST", "/inventory/sale", {"sku": "MUG-1", "location": "Main Warehouse", "quantity": 2})
    replay = await env.data(SET_KEYED, variables)
    assert replay == first  # the original result, not a new (now stale) attempt
    assert (await env.inventory("MUG-1"))["available"] == 13
    other = await env.data(
        SET_KEYED, {**variables, "input": set_input(quantity(env, "MUG-1", 1, changeFromQuantity=13))}
    )
    assert other["inventorySetQuantities"] == {
        "inventoryAdjustmentGroup": None,
        "userErrors": [
            {
                "field": None,
                "code": "IDEMPOTENCY_KEY_PARAMETER_MISMATCH",
                "message": "The same idempotency key cannot be used with different operation parameters.",
            }
        ],
    }
    assert (await env.inventory("MUG-1"))["available"] == 13


async def test_set_is_all_or_nothing_and_validates_every_entry(env: Env) -> None:
    bad = await env.data(
        SET,
        {
            "input": set_input(
                quantity(env, "MUG-1", 1, changeFromQuantity=20),
                {
                    "inventoryItemId": env.store["TEE-M:item"],
                    "locationId": env.store["Main Warehouse"],
                    "quantity": 1,
                    "changeFromQuantity": 0,
                },
                quantity(env, "TEE-S", -1, changeFromQuantity=10),
            )
        },
    )
    codes = [e["code"] for e in bad["inventorySetQuantities"]["userErrors"]]
    assert codes == ["ITEM_NOT_STOCKED_AT_LOCATION", "INVALID_QUANTITY_NEGATIVE"]
    assert (await env.inventory("MUG-1"))["available"] == 20
    reason = await env.data(SET, {"input": set_input(quantity(env, "MUG-1", 1, changeFromQuantity=20), reason="oops")})
    assert reason["inventorySetQuantities"]["userErrors"][0]["code"] == "INVALID_REASON"


async def test_on_hand_set_moves_available(env: Env) -> None:
    await env.control("POST", "/orders", {"lines": [{"sku": "MUG-1", "quantity": 2}]})  # 2 committed
    result = await env.data(
        SET,
        {
            "input": {
                "name": "on_hand",
                "reason": "cycle_count_available",
                "quantities": [quantity(env, "MUG-1", 30, changeFromQuantity=20)],
            }
        },
    )
    assert result["inventorySetQuantities"]["userErrors"] == []
    level = await env.inventory("MUG-1")
    assert (level["on_hand"], level["available"], level["committed"]) == (30, 28, 2)


async def test_adjust_available_and_other_states(env: Env) -> None:
    change = {"inventoryItemId": env.store["MUG-1:item"], "locationId": env.store["Main Warehouse"]}
    sold = await env.data(
        ADJUST,
        {
            "input": {
                "name": "available",
                "reason": "correction",
                "referenceDocumentUri": "gid://connector/Sync/1",
                "changes": [{**change, "delta": -4}],
            }
        },
    )
    assert sold["inventoryAdjustQuantities"]["userErrors"] == []
    damaged = await env.data(
        ADJUST, {"input": {"name": "damaged", "reason": "damaged", "changes": [{**change, "delta": 2}]}}
    )
    assert damaged["inventoryAdjustQuantities"]["userErrors"][0]["code"] == "INVALID_QUANTITY_DOCUMENT"
    damaged = await env.data(
        ADJUST,
        {
            "input": {
                "name": "damaged",
                "reason": "damaged",
                "changes": [{**change, "delta": 2, "ledgerDocumentUri": "warehouse://returns/77"}],
            }
        },
    )
    assert damaged["inventoryAdjustQuantities"]["userErrors"] == []
    level = await env.inventory("MUG-1")
    assert (level["available"], level["damaged"], level["on_hand"]) == (16, 2, 18)
    stale = await env.data(
        ADJUST,
        {
            "input": {
                "name": "available",
                "reason": "correction",
                "changes": [{**change, "delta": 1, "changeFromQuantity": 99}],
            }
        },
    )
    assert stale["inventoryAdjustQuantities"]["userErrors"][0]["code"] == "CHANGE_FROM_QUANTITY_STALE"


async def test_activate_then_stock_at_a_new_location(env: Env) -> None:
    query = """mutation($item: ID!, $loc: ID!) { inventoryActivate(inventoryItemId: $item, locationId: $loc,
                 available: 4) { inventoryLevel { id quantities(names: ["available"]) { quantity } }
                 userErrors { message } } }"""
    variables = {"item": env.store["MUG-1:item"], "loc": env.store["Downtown Store"]}
    data = await env.data(query, variables)
    level = data["inventoryActivate"]["inventoryLevel"]
    assert level["quantities"] == [{"quantity": 4}]
    assert level["id"].startswith("gid://shopify/InventoryLevel/") and "?inventory_item_id=" in level["id"]
    found = await env.data("query($id: ID!) { inventoryLevel(id: $id) { location { name } } }", {"id": level["id"]})
    assert found["inventoryLevel"]["location"]["name"] == "Downtown Store"


async def test_inventory_level_lookups(env: Env) -> None:
    data = await env.data(
        """query($item: ID!, $loc: ID!) { inventoryItem(id: $item) { sku tracked
             inventoryLevel(locationId: $loc) { quantities(names: ["available", "on_hand", "committed", "incoming"]) {
               name quantity } } } }""",
        {"item": env.store["TEE-S:item"], "loc": env.store["Downtown Store"]},
    )
    quantities = {q["name"]: q["quantity"] for q in data["inventoryItem"]["inventoryLevel"]["quantities"]}
    assert quantities == {"available": 3, "on_hand": 3, "committed": 0, "incoming": 0}
