"""Orders through the Admin API (reference §4-§6, §10): orderCreate's inventory behaviours, fulfillment orders
per location, partial fulfilment, asynchronous orderCancel, refundCreate restocking."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from .conftest import Env

pytestmark = pytest.mark.anyio

CREATE = """mutation($order: OrderCreateOrderInput!, $options: OrderCreateOptionsInput) {
  orderCreate(order: $order, options: $options) {
    order { id name displayFinancialStatus displayFulfillmentStatus sourceIdentifier tags
      customAttributes { key value } totalPriceSet { shopMoney { amount currencyCode } }
      lineItems(first: 10) { nodes { id sku quantity currentQuantity } }
      fulfillmentOrders(first: 5) { nodes { id status assignedLocation { location { name } }
        lineItems(first: 10) { nodes { id totalQuantity remainingQuantity lineItem { sku } } } } } }
    userErrors { field message code } } }"""
FULFIL = """mutation($f: FulfillmentInput!) { fulfillmentCreate(fulfillment: $f) {
  fulfillment { id name status trackingInfo { company number url } fulfillmentLineItems(first: 5) {
    nodes { quantity lineItem { sku } } } } userErrors { field message } } }"""
CANCEL = """mutation($id: ID!, $restock: Boolean!) { orderCancel(orderId: $id, reason: CUSTOMER, restock: $restock,
  refundMethod: {originalPaymentMethodsRefund: true}) { job { id done } orderCancelUserErrors { code message } } }"""
REFUND = """mutation($input: RefundInput!) { refundCreate(input: $input) {
  refund { id totalRefundedSet { shopMoney { amount } } refundLineItems(first: 5) { nodes { quantity restockType
    restocked location { name } } } } order { displayFinancialStatus } userErrors { field message } } }"""


def line(env: Env, sku: str, quantity: int, price: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"variantId": env.store[sku], "quantity": quantity}
    if price:
        out["priceSet"] = {"shopMoney": {"amount": price, "currencyCode": "USD"}}
    return out


async def create(env: Env, lines: list[dict[str, Any]], behaviour: str | None = None, **order: Any) -> dict[str, Any]:
    options = {"inventoryBehaviour": behaviour} if behaviour else None
    data = await env.data(CREATE, {"order": {"lineItems": lines, **order}, "options": options})
    result: dict[str, Any] = data["orderCreate"]
    return result


async def test_bypass_is_the_default_and_leaves_stock_alone(env: Env) -> None:
    result = await create(
        env,
        [line(env, "MUG-1", 3)],
        sourceIdentifier="5764001",
        tags=["TikTok Shop"],
        customAttributes=[{"key": "tiktok_order_id", "value": "5764001"}],
        financialStatus="PAID",
    )
    order = result["order"]
    assert result["userErrors"] == [] and order["name"] == "#1001"
    assert order["sourceIdentifier"] == "5764001" and order["tags"] == ["TikTok Shop"]
    assert order["displayFinancialStatus"] == "PAID" and order["displayFulfillmentStatus"] == "UNFULFILLED"
    assert order["totalPriceSet"]["shopMoney"] == {"amount": "37.5", "currencyCode": "USD"}
    assert (await env.inventory("MUG-1"))["available"] == 20


async def test_decrement_ignoring_policy_claims_even_into_negative(env: Env) -> None:
    result = await create(env, [line(env, "MUG-1", 25)], "DECREMENT_IGNORING_POLICY")
    assert result["userErrors"] == []
    level = await env.inventory("MUG-1")
    assert (level["available"], level["committed"], level["on_hand"]) == (-5, 25, 20)


async def test_decrement_obeying_policy_fails_without_stock_and_changes_nothing(env: Env) -> None:
    result = await create(env, [line(env, "MUG-1", 2), line(env, "TEE-S", 11)], "DECREMENT_OBEYING_POLICY")
    assert result["order"] is None
    assert result["userErrors"][0]["code"] == "INVENTORY_CLAIM_FAILED"
    assert result["userErrors"][0]["field"] == ["order", "lineItems", "1", "quantity"]
    assert (await env.inventory("MUG-1"))["available"] == 20
    # A CONTINUE-policy variant may be sold without stock.
    cap = await create(env, [line(env, "CAP-1", 2)], "DECREMENT_OBEYING_POLICY")
    assert cap["userErrors"] == [] and (await env.inventory("CAP-1"))["available"] == -2
    ok = await create(env, [line(env, "MUG-1", 2)], "DECREMENT_OBEYING_POLICY")
    assert ok["userErrors"] == []
    level = await env.inventory("MUG-1")
    assert (level["available"], level["committed"]) == (18, 2)


async def test_unknown_variant_and_custom_lines(env: Env) -> None:
    bad = await create(env, [{"variantId": "gid://shopify/ProductVariant/1", "quantity": 1}])
    assert bad["userErrors"][0]["code"] == "INVALID" and bad["userErrors"][0]["field"][-1] == "variantId"
    custom = await create(
        env,
        [
            {
                "title": "Big Brown Bear Boots",
                "quantity": 3,
                "priceSet": {"shopMoney": {"amount": "74.99", "currencyCode": "EUR"}},
            }
        ],
        currency="EUR",
    )
    assert custom["userErrors"] == []
    assert custom["order"]["totalPriceSet"]["shopMoney"] == {"amount": "224.97", "currencyCode": "EUR"}
    untitled = await create(env, [{"quantity": 1}])
    assert {e["field"][-1] for e in untitled["userErrors"]} == {"title", "priceSet"}


async def test_one_fulfillment_order_per_location(env: Env) -> None:
    result = await create(
        env, [line(env, "MUG-1", 1), line(env, "STICKER-1", 2), line(env, "TEE-S", 1)], "DECREMENT_OBEYING_POLICY"
    )
    fos = result["order"]["fulfillmentOrders"]["nodes"]
    by_location = {fo["assignedLocation"]["location"]["name"]: fo for fo in fos}
    assert set(by_location) == {"Main Warehouse", "Downtown Store"}
    skus = [n["lineItem"]["sku"] for n in by_location["Main Warehouse"]["lineItems"]["nodes"]]
    assert skus == ["MUG-1", "TEE-S"]
    assert (await env.inventory("STICKER-1", "Downtown Store"))["committed"] == 2


async def test_partial_fulfilment_then_the_rest(env: Env) -> None:
    result = await create(env, [line(env, "MUG-1", 3), line(env, "TEE-S", 1)], "DECREMENT_OBEYING_POLICY")
    fo = result["order"]["fulfillmentOrders"]["nodes"][0]
    mug = next(n for n in fo["lineItems"]["nodes"] if n["lineItem"]["sku"] == "MUG-1")
    partial = await env.data(
        FULFIL,
        {
            "f": {
                "lineItemsByFulfillmentOrder": [
                    {"fulfillmentOrderId": fo["id"], "fulfillmentOrderLineItems": [{"id": mug["id"], "quantity": 2}]}
                ],
                "trackingInfo": {"company": "USPS", "number": "9400111899223856928499"},
            }
        },
    )
    fulfillment = partial["fulfillmentCreate"]["fulfillment"]
    assert partial["fulfillmentCreate"]["userErrors"] == []
    assert fulfillment["name"] == "#1001.1" and fulfillment["status"] == "SUCCESS"
    assert fulfillment["trackingInfo"] == [
        {
            "company": "USPS",
            "number": "9400111899223856928499",
            "url": "https://tools.usps.com/go/TrackConfirmAction?tLabels=9400111899223856928499",
        }
    ]
    level = await env.inventory("MUG-1")
    assert (level["available"], level["committed"], level["on_hand"]) == (17, 1, 18)
    order = await env.data(
        "query($id: ID!) { order(id: $id) { displayFulfillmentStatus closed "
        "fulfillmentOrders(first: 1) { nodes { status } } } }",
        {"id": result["order"]["id"]},
    )
    assert order["order"]["displayFulfillmentStatus"] == "PARTIALLY_FULFILLED"
    assert order["order"]["fulfillmentOrders"]["nodes"][0]["status"] == "IN_PROGRESS"
    too_many = await env.data(
        FULFIL,
        {
            "f": {
                "lineItemsByFulfillmentOrder": [
                    {"fulfillmentOrderId": fo["id"], "fulfillmentOrderLineItems": [{"id": mug["id"], "quantity": 2}]}
                ]
            }
        },
    )
    assert "quantity" in too_many["fulfillmentCreate"]["userErrors"][0]["message"]
    rest = await env.data(
        FULFIL,
        {
            "f": {
                "lineItemsByFulfillmentOrder": [{"fulfillmentOrderId": fo["id"]}],
                "trackingInfo": {
                    "company": "Bluedart",
                    "number": "123",
                    "url": "https://shipping.xyz/track.php?num=123",
                },
            }
        },
    )
    tracking = rest["fulfillmentCreate"]["fulfillment"]["trackingInfo"][0]
    assert tracking["url"] == "https://shipping.xyz/track.php?num=123"
    order = await env.data(
        "query($id: ID!) { order(id: $id) { displayFulfillmentStatus closed } }", {"id": result["order"]["id"]}
    )
    assert order["order"]["displayFulfillmentStatus"] == "FULFILLED"
    assert (await env.inventory("MUG-1"))["committed"] == 0


async def test_tracking_can_be_updated(env: Env) -> None:
    result = await create(env, [line(env, "MUG-1", 1)], "DECREMENT_OBEYING_POLICY")
    fo = result["order"]["fulfillmentOrders"]["nodes"][0]
    created = await env.data(FULFIL, {"f": {"lineItemsByFulfillmentOrder": [{"fulfillmentOrderId": fo["id"]}]}})
    fid = created["fulfillmentCreate"]["fulfillment"]["id"]
    updated = await env.data(
        """mutation($id: ID!, $t: FulfillmentTrackingInput!) { fulfillmentTrackingInfoUpdate(fulfillmentId: $id,
             trackingInfoInput: $t) { fulfillment { trackingInfo { company number url } } userErrors { message } } }""",
        {"id": fid, "t": {"company": "FedEx", "number": "123456789012"}},
    )
    info = updated["fulfillmentTrackingInfoUpdate"]["fulfillment"]["trackingInfo"]
    assert info == [
        {"company": "FedEx", "number": "123456789012", "url": "https://www.fedex.com/fedextrack/?trknbr=123456789012"}
    ]


async def test_order_cancel_is_asynchronous_and_restocks(env: Env) -> None:
    result = await create(env, [line(env, "MUG-1", 4)], "DECREMENT_OBEYING_POLICY", financialStatus="PAID")
    order_id = result["order"]["id"]
    cancel = await env.data(CANCEL, {"id": order_id, "restock": True})
    job = cancel["orderCancel"]["job"]
    assert cancel["orderCancel"]["orderCancelUserErrors"] == [] and job["done"] is False
    right_away = await env.data("query($id: ID!) { order(id: $id) { cancelledAt } }", {"id": order_id})
    assert right_away["order"]["cancelledAt"] is None
    again = await env.data(CANCEL, {"id": order_id, "restock": True})
    assert again["orderCancel"]["orderCancelUserErrors"][0]["code"] == "INVALID"
    await asyncio.sleep(0.1)
    done = await env.data(
        "query($id: ID!, $job: ID!) { job(id: $job) { done } order(id: $id) { cancelledAt cancelReason closed "
        "displayFinancialStatus fulfillmentOrders(first: 1) { nodes { status } } } }",
        {"id": order_id, "job": job["id"]},
    )
    assert done["job"]["done"] is True
    order = done["order"]
    assert order["cancelledAt"] is not None and order["cancelReason"] == "CUSTOMER" and order["closed"] is True
    assert order["displayFinancialStatus"] == "REFUNDED"
    assert order["fulfillmentOrders"]["nodes"][0]["status"] == "CANCELLED"
    level = await env.inventory("MUG-1")
    assert (level["available"], level["committed"]) == (20, 0)
    twice = await env.data(CANCEL, {"id": order_id, "restock": True})
    assert twice["orderCancel"]["orderCancelUserErrors"][0]["message"] == "Order has already been cancelled"


async def test_cancel_without_restock_and_refused_with_fulfillments(env: Env) -> None:
    result = await create(env, [line(env, "MUG-1", 2)], "DECREMENT_OBEYING_POLICY")
    await env.data(CANCEL, {"id": result["order"]["id"], "restock": False})
    await asyncio.sleep(0.1)
    await env.data("{ shop { name } }")
    level = await env.inventory("MUG-1")
    assert (level["available"], level["committed"], level["on_hand"]) == (18, 0, 18)
    shipped = await create(env, [line(env, "MUG-1", 1)], "DECREMENT_OBEYING_POLICY")
    fo = shipped["order"]["fulfillmentOrders"]["nodes"][0]
    await env.data(FULFIL, {"f": {"lineItemsByFulfillmentOrder": [{"fulfillmentOrderId": fo["id"]}]}})
    refused = await env.data(CANCEL, {"id": shipped["order"]["id"], "restock": True})
    assert refused["orderCancel"]["job"] is None
    assert "fulfillments" in refused["orderCancel"]["orderCancelUserErrors"][0]["message"]
    missing = await env.data(CANCEL, {"id": "gid://shopify/Order/1", "restock": True})
    assert missing["orderCancel"]["orderCancelUserErrors"][0]["code"] == "NOT_FOUND"


async def test_refund_restock_types(env: Env) -> None:
    result = await create(
        env,
        [line(env, "MUG-1", 4, "12.50")],
        "DECREMENT_OBEYING_POLICY",
        transactions=[
            {
                "kind": "SALE",
                "status": "SUCCESS",
                "gateway": "tiktok_shop",
                "amountSet": {"shopMoney": {"amount": "50.00", "currencyCode": "USD"}},
            }
        ],
    )
    order = result["order"]
    line_id = order["lineItems"]["nodes"][0]["id"]
    fo = order["fulfillmentOrders"]["nodes"][0]
    mug_fo_line = fo["lineItems"]["nodes"][0]["id"]
    await env.data(
        FULFIL,
        {
            "f": {
                "lineItemsByFulfillmentOrder": [
                    {"fulfillmentOrderId": fo["id"], "fulfillmentOrderLineItems": [{"id": mug_fo_line, "quantity": 2}]}
                ]
            }
        },
    )
    # 20 → 16 available at order; 2 shipped (on_hand 18, committed 2).
    cancel_two = await env.data(
        REFUND,
        {
            "input": {
                "orderId": order["id"],
                "refundLineItems": [
                    {
                        "lineItemId": line_id,
                        "quantity": 1,
                        "restockType": "CANCEL",
                        "locationId": env.store["Main Warehouse"],
                    }
                ],
                "transactions": [
                    {"orderId": order["id"], "amount": "12.50", "gateway": "tiktok_shop", "kind": "REFUND"}
                ],
            }
        },
    )
    refund = cancel_two["refundCreate"]
    assert refund["userErrors"] == [] and refund["order"]["displayFinancialStatus"] == "PARTIALLY_REFUNDED"
    assert refund["refund"]["refundLineItems"]["nodes"] == [
        {"quantity": 1, "restockType": "CANCEL", "restocked": True, "location": {"name": "Main Warehouse"}}
    ]
    level = await env.inventory("MUG-1")
    assert (level["available"], level["committed"], level["on_hand"]) == (17, 1, 18)
    returned = await env.data(
        REFUND,
        {
            "input": {
                "orderId": order["id"],
                "refundLineItems": [{"lineItemId": line_id, "quantity": 2, "restockType": "RETURN"}],
            }
        },
    )
    assert returned["refundCreate"]["userErrors"] == []
    level = await env.inventory("MUG-1")
    assert (level["available"], level["on_hand"]) == (19, 20)
    too_many = await env.data(
        REFUND,
        {
            "input": {
                "orderId": order["id"],
                "refundLineItems": [{"lineItemId": line_id, "quantity": 1, "restockType": "RETURN"}],
            }
        },
    )
    assert "return" in too_many["refundCreate"]["userErrors"][0]["message"]
    last = await env.data(
        REFUND,
        {
            "input": {
                "orderId": order["id"],
                "refundLineItems": [{"lineItemId": line_id, "quantity": 1, "restockType": "NO_RESTOCK"}],
                "transactions": [
                    {"orderId": order["id"], "amount": "37.50", "gateway": "tiktok_shop", "kind": "REFUND"}
                ],
            }
        },
    )
    assert last["refundCreate"]["order"]["displayFinancialStatus"] == "REFUNDED"
    level = await env.inventory("MUG-1")
    assert (level["available"], level["committed"], level["on_hand"]) == (19, 0, 19)
    over = await env.data(
        REFUND,
        {
            "input": {
                "orderId": order["id"],
                "transactions": [
                    {"orderId": order["id"], "amount": "1.00", "gateway": "tiktok_shop", "kind": "REFUND"}
                ],
            }
        },
    )
    assert "exceeds" in over["refundCreate"]["userErrors"][0]["message"]


async def test_refund_create_requires_a_key_in_2026_04_and_replays_with_it(env: Env) -> None:
    result = await create(env, [line(env, "MUG-1", 2)], "DECREMENT_OBEYING_POLICY", financialStatus="PAID")
    order = result["order"]
    line_id = order["lineItems"]["nodes"][0]["id"]
    variables = {
        "input": {
            "orderId": order["id"],
            "refundLineItems": [{"lineItemId": line_id, "quantity": 1, "restockType": "CANCEL"}],
        }
    }
    no_key = await env.gql(REFUND, variables, version="2026-04")
    assert "@idempotent" in no_key["errors"][0]["message"]
    keyed = REFUND.replace("refundCreate(input: $input)", 'refundCreate(input: $input) @idempotent(key: "r-1")')
    first = await env.data(keyed, variables, version="2026-04")
    second = await env.data(keyed, variables, version="2026-04")
    assert first == second and first["refundCreate"]["refund"] is not None
    assert (await env.inventory("MUG-1"))["available"] == 19  # restocked once
