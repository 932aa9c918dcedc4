"""Fulfilment (§6): seller shipping, shipping info updates, packages, labels and tracking."""

from __future__ import annotations

import re
from typing import Any

import pytest

from .conftest import Env

pytestmark = pytest.mark.anyio
USPS = "7117858858072016686"


async def ready_order(env: Env, quantity: int = 2, **extra: Any) -> dict[str, Any]:
    product = await env.product([{"seller_sku": "TEE-1", "price": "20.00", "quantity": 10}])
    placed = await env.order([(product["skus"][0]["id"], quantity)], **extra)
    await env.advance(3600)
    data = await env.ok("GET", "/order/202309/orders", query=[("ids", placed["id"])])
    order: dict[str, Any] = data["orders"][0]
    return order


async def test_mark_package_as_shipped_per_line(env: Env) -> None:
    await env.subscribe("PACKAGE_UPDATE")
    order = await ready_order(env, shipping_type="SELLER")
    first_line = order["line_items"][0]["id"]
    data = await env.ok(
        "POST",
        f"/fulfillment/202309/orders/{order['id']}/packages",
        body={
            "tracking_number": "1Z999AA10123456784",
            "shipping_provider_id": USPS,
            "order_line_item_ids": [first_line],
        },
    )
    assert data["order_line_item_ids"] == [first_line]
    detail = (await env.ok("GET", "/order/202309/orders", query=[("ids", order["id"])]))["orders"][0]
    assert detail["status"] == "PARTIALLY_SHIPPING" and len(detail["packages"]) == 2
    await env.sb.run_once()
    [split] = [b["data"] for b in env.hooks.bodies() if b["type"] == 4]
    assert split["sc_type"] == "SPLIT" and len(split["package_list"]) == 2
    package = await env.ok("GET", f"/fulfillment/202309/packages/{data['package_id']}")
    assert package["tracking_number"] == "1Z999AA10123456784" and package["order_line_item_ids"] == [first_line]
    await env.ok(
        "POST",
        f"/fulfillment/202309/orders/{order['id']}/packages",
        body={"tracking_number": "1Z999AA10123456785", "shipping_provider_id": USPS},
    )
    detail = (await env.ok("GET", "/order/202309/orders", query=[("ids", order["id"])]))["orders"][0]
    assert detail["status"] == "AWAITING_COLLECTION"


async def test_shipping_info_update_window(env: Env) -> None:
    order = await ready_order(env, shipping_type="SELLER")
    await env.ok(
        "POST",
        f"/fulfillment/202309/orders/{order['id']}/packages",
        body={"tracking_number": "1Z999AA10123456784", "shipping_provider_id": USPS},
    )
    path = f"/fulfillment/202309/orders/{order['id']}/shipping_info/update"
    await env.ok("POST", path, body={"tracking_number": "1Z999AA10000000001", "shipping_provider_id": USPS})
    bad = await env.api("POST", path, body={"tracking_number": "x", "shipping_provider_id": USPS})
    assert bad.status_code == 400
    await env.advance(72 * 3600 + 1)
    late = await env.api("POST", path, body={"tracking_number": "1Z999AA10000000002", "shipping_provider_id": USPS})
    assert late.json()["code"] == 21011020


async def test_label_is_a_real_pdf(env: Env) -> None:
    order = await ready_order(env)
    package_id = order["packages"][0]["id"]
    path = f"/fulfillment/202309/packages/{package_id}/shipping_documents"
    early = await env.api("GET", path, query=[("document_type", "SHIPPING_LABEL")])
    assert early.json()["code"] == 21011010
    await env.ok("POST", f"/fulfillment/202309/packages/{package_id}/ship", body={"handover_method": "DROP_OFF"})
    doc = await env.ok("GET", path, query=[("document_type", "SHIPPING_LABEL_AND_PACKING_SLIP")])
    assert doc["tracking_number"].startswith("TT")
    pdf = await env.client.get(doc["doc_url"].removeprefix("http://sandbox.test"))
    assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
    body = pdf.content
    assert body.startswith(b"%PDF-1.4") and body.rstrip().endswith(b"%%EOF")
    # The cross-reference table points at each object exactly.
    xref_at = int(re.search(rb"startxref\n(\d+)", body).group(1))  # type: ignore[union-attr]
    assert body[xref_at:].startswith(b"xref")
    offsets = [int(o) for o in re.findall(rb"(\d{10}) 00000 n", body)]
    for number, offset in enumerate(offsets, start=1):
        assert body[offset:].startswith(f"{number} 0 obj".encode())
    assert doc["tracking_number"].encode() in body
    bad = await env.api("GET", path, query=[("document_type", "POSTCARD")])
    assert bad.status_code == 400
    await env.advance(86_400 + 1)
    expired = await env.client.get(doc["doc_url"].removeprefix("http://sandbox.test"))
    assert expired.status_code == 410


async def test_batch_ship_reports_per_package_errors(env: Env) -> None:
    order = await ready_order(env)
    package_id = order["packages"][0]["id"]
    data = await env.ok(
        "POST",
        "/fulfillment/202309/packages/ship",
        body={"packages": [{"id": package_id, "handover_method": "PICKUP"}, {"id": "123"}]},
    )
    assert [e["detail"]["package_id"] for e in data["errors"]] == ["123"]


async def test_package_search_and_tracking(env: Env) -> None:
    order = await ready_order(env)
    package_id = order["packages"][0]["id"]
    found = await env.ok(
        "POST",
        "/fulfillment/202309/packages/search",
        body={"package_status": "TO_FULFILL"},
        query=[("page_size", "10")],
    )
    assert [p["id"] for p in found["packages"]] == [package_id]
    await env.ok("POST", f"/fulfillment/202309/packages/{package_id}/ship", body={})
    await env.control("POST", f"/orders/{order['id']}/collect")
    await env.control("POST", f"/orders/{order['id']}/deliver")
    tracking = await env.ok("GET", f"/fulfillment/202309/orders/{order['id']}/tracking")
    events = tracking["tracking"]
    assert events[0]["description"].startswith("Your package was delivered!")
    assert all(len(str(e["update_time_millis"])) == 13 for e in events)
    slots = await env.ok("GET", f"/fulfillment/202309/packages/{package_id}/handover_time_slots")
    assert slots["pickup_slots"]


async def test_delivery_options_and_providers(env: Env) -> None:
    wh = (await env.ok("GET", "/logistics/202309/warehouses"))["warehouses"][0]["id"]
    options = await env.ok("GET", f"/logistics/202309/warehouses/{wh}/delivery_options")
    option_id = options["delivery_options"][0]["id"]
    providers = await env.ok("GET", f"/logistics/202309/delivery_options/{option_id}/shipping_providers")
    assert {"id": USPS, "name": "USPS"} in providers["shipping_providers"]
