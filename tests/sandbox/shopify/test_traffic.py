"""The store simulation: nothing happens unless asked; when on, web orders, in-store sales and staff
fulfilments with real carrier names."""

from __future__ import annotations

import asyncio

import pytest

from shopbridge.sandbox.shopify.carriers import COMMON, FOREIGN

from .conftest import Env

pytestmark = pytest.mark.anyio


async def test_quiet_by_default(live: Env) -> None:
    await asyncio.sleep(0.3)
    assert await live.control("GET", "/orders") == []
    assert (await live.control("GET", "/traffic"))["enabled"] is False
    assert (await live.inventory("STICKER-1", "Downtown Store"))["available"] == 50


async def test_traffic_places_orders_sells_in_store_and_fulfils(live: Env) -> None:
    await live.control(
        "PATCH",
        "/settings",
        {"fulfil_delay_min_seconds": 0.05, "fulfil_delay_max_seconds": 0.1, "foreign_carrier_share": 0.0},
    )
    await live.control(
        "POST", "/traffic", {"web_orders_per_second": 15, "in_store_sales_per_second": 15, "fulfil": True}
    )
    await asyncio.sleep(0.8)
    await live.control("DELETE", "/traffic")
    await asyncio.sleep(0.25)  # fulfilments already due when traffic stopped are dropped, not half-done
    orders = await live.control("GET", "/orders")
    assert orders, "no web order in 0.8 s at 15/s"
    assert all(o["source_name"] == "web" and o["financial_status"] == "PAID" for o in orders)
    fulfilled = [o for o in orders if o["fulfillments"]]
    assert fulfilled, "staff fulfilled nothing"
    for order in fulfilled:
        tracking = order["fulfillments"][0]["tracking"][0]
        assert tracking["company"] in COMMON and tracking["number"] and tracking["url"].startswith("https://")
    store = [lv for sku in ("TEE-S", "TEE-M", "STICKER-1") for lv in (await live.inventory(sku, "Downtown Store"),)]
    assert sum(lv["available"] for lv in store) < 3 + 5 + 50, "no in-store sale"
    before = len(await live.control("GET", "/orders"))
    await asyncio.sleep(0.3)
    assert len(await live.control("GET", "/orders")) == before  # off again


async def test_staff_use_foreign_carriers_for_their_share(live: Env) -> None:
    await live.control("PATCH", "/settings", {"foreign_carrier_share": 1.0})
    order = await live.control("POST", "/orders", {"lines": [{"sku": "MUG-1", "quantity": 1}]})
    done = await live.control("POST", f"/orders/{order['gid']}/fulfil", {})
    assert done["fulfillments"][0]["tracking"][0]["company"] in FOREIGN
    assert done["status"] == "closed" and done["fulfillment_status"] == "FULFILLED"


async def test_control_routes_for_staff_and_customers(env: Env) -> None:
    order = await env.control("POST", "/orders", {"lines": [{"sku": "MUG-1", "quantity": 3}], "email": "a@b.example"})
    assert order["email"] == "a@b.example" and order["status"] == "open"
    partial = await env.control(
        "POST",
        f"/orders/{order['name'].lstrip('#')}/fulfil",
        {"carrier": "Royal Mail", "tracking_number": "AB123456789GB", "lines": [{"sku": "MUG-1", "quantity": 1}]},
    )
    assert partial["fulfillment_status"] == "PARTIALLY_FULFILLED"
    assert partial["fulfillments"][0]["tracking"][0]["url"].endswith("AB123456789GB")
    refused = await env.control("POST", f"/orders/{order['id']}/cancel", {"reason": "STAFF"}, expect=409)
    assert "fulfillments" in refused["detail"]
    short = await env.control("POST", "/orders", {"lines": [{"sku": "MUG-1", "quantity": 99}]}, expect=409)
    assert "MUG-1" in short["detail"]
    await env.control("POST", "/orders", {"lines": [{"sku": "NOPE", "quantity": 1}]}, expect=404)
    other = await env.control("POST", "/orders", {"lines": [{"sku": "TEE-S", "quantity": 1}]})
    cancelled = await env.control("POST", f"/orders/{other['gid']}/cancel", {"reason": "INVENTORY", "restock": True})
    assert cancelled["cancelled"] is True and cancelled["financial_status"] == "REFUNDED"
    stock = await env.control("PUT", "/inventory", {"sku": "TEE-M", "location": "Main Warehouse", "available": 4})
    assert {lv["location"]: lv["available"] for lv in stock["inventory"]} == {"Main Warehouse": 4, "Downtown Store": 5}
