"""Orders (§4): stock-checked buyer orders, the ON_HOLD lifecycle, search, detail and price detail."""

from __future__ import annotations

import re
from typing import Any

import pytest

from .conftest import Env

pytestmark = pytest.mark.anyio

SEARCH = "/order/202309/orders/search"


async def stocked(env: Env, quantity: int = 5, price: str = "19.90") -> str:
    product = await env.product([{"seller_sku": "TEE-1", "price": price, "quantity": quantity}])
    sku: str = product["skus"][0]["id"]
    return sku


async def detail(env: Env, order_id: str) -> dict[str, Any]:
    data = await env.ok("GET", "/order/202309/orders", query=[("ids", order_id)])
    order: dict[str, Any] = data["orders"][0]
    return order


async def stock_of(env: Env, sku: str) -> int:
    truth = {s["sku_id"]: s for s in await env.control("GET", "/truth/stock")}
    total: int = truth[sku]["total"]
    return total


async def test_order_is_refused_when_stock_does_not_cover_it(env: Env) -> None:
    sku = await stocked(env, quantity=2)
    refused = await env.control(
        "POST", "/orders", {"shop_id": env.shop_id, "items": [{"sku_id": sku, "quantity": 3}]}, expect=409
    )
    assert refused["detail"]["shortages"] == [{"sku_id": sku, "requested": 3, "available": 2}]
    assert await stock_of(env, sku) == 2


async def test_hold_lifecycle_and_address_withheld(env: Env) -> None:
    sku = await stocked(env)
    placed = await env.order([(sku, 2)], shipping_fee="4.99")
    assert await stock_of(env, sku) == 3
    order = await detail(env, placed["id"])
    assert order["status"] == "ON_HOLD" and order["is_on_hold_order"] is True
    assert order["recipient_address"] == {"region_code": "US"} and order["buyer_email"] == ""
    assert [li["sku_id"] for li in order["line_items"]] == [sku, sku]
    assert all("quantity" not in li for li in order["line_items"])
    assert order["payment"]["sub_total"] == "39.80" and order["payment"]["total_amount"] == "44.79"
    assert isinstance(order["create_time"], int) and order["shipping_due_time"] > order["rts_sla_time"]

    await env.advance(3599)
    assert (await detail(env, placed["id"]))["status"] == "ON_HOLD"
    await env.advance(1)
    order = await detail(env, placed["id"])
    assert order["status"] == "AWAITING_SHIPMENT"
    assert order["update_time"] == order["paid_time"] + 3600
    assert order["recipient_address"]["name"] and order["recipient_address"]["district_info"]

    package_id = order["packages"][0]["id"]
    await env.ok("POST", f"/fulfillment/202309/packages/{package_id}/ship", body={"handover_method": "PICKUP"})
    assert (await detail(env, placed["id"]))["status"] == "AWAITING_COLLECTION"
    for step, status in (("collect", "IN_TRANSIT"), ("deliver", "DELIVERED"), ("complete", "COMPLETED")):
        await env.control("POST", f"/orders/{placed['id']}/{step}")
        assert (await detail(env, placed["id"]))["status"] == status
    sold = await env.control("GET", "/truth/sold")
    assert sold == [{"sku_id": sku, "units_sold": 2, "revenue": "39.80"}]


async def test_hold_length_is_configurable(env: Env) -> None:
    await env.control("PATCH", "/settings", {"on_hold_seconds": 0})
    sku = await stocked(env)
    placed = await env.order([(sku, 1)])
    order = await detail(env, placed["id"])
    assert order["status"] == "AWAITING_SHIPMENT" and order["is_on_hold_order"] is False


async def test_buyer_cancel_during_hold_restores_stock(env: Env) -> None:
    sku = await stocked(env)
    placed = await env.order([(sku, 2)])
    await env.control("POST", f"/orders/{placed['id']}/buyer_cancel", {"reason": "Changed my mind"})
    order = await detail(env, placed["id"])
    assert order["status"] == "CANCELLED" and order["cancellation_initiator"] == "BUYER"
    assert order["is_buyer_request_cancel"] is True
    assert await stock_of(env, sku) == 5
    assert await env.control("GET", "/truth/sold") == []


async def test_buyer_cancel_after_hold_waits_for_the_seller(env: Env) -> None:
    await env.subscribe("CANCELLATION_STATUS_CHANGE")
    sku = await stocked(env)
    placed = await env.order([(sku, 1)])
    await env.advance(3600)
    await env.control("POST", f"/orders/{placed['id']}/buyer_cancel", {"reason": "Ordered by mistake"})
    order = await detail(env, placed["id"])
    assert order["status"] == "AWAITING_SHIPMENT" and order["is_buyer_request_cancel"] is True
    found = await env.ok(
        "POST",
        "/return_refund/202309/cancellations/search",
        body={"order_ids": [placed["id"]], "cancel_status": ["CANCELLATION_REQUEST_PENDING"]},
        query=[("page_size", "10")],
    )
    [request] = found["cancellations"]
    assert request["cancel_type"] == "BUYER_CANCEL" and request["seller_next_action_response"][0]["deadline"]
    assert request["refund_amount"]["refund_total"] == "19.90"
    await env.ok("POST", f"/return_refund/202309/cancellations/{request['cancel_id']}/approve")
    assert (await detail(env, placed["id"]))["status"] == "CANCELLED"
    assert await stock_of(env, sku) == 5
    await env.sb.run_once()
    statuses = [b["data"]["cancel_status"] for b in env.hooks.bodies() if b["type"] == 11]
    assert statuses == ["CANCELLATION_REQUEST_PENDING", "CANCELLATION_REQUEST_SUCCESS"]


async def test_seller_rejects_a_buyer_cancellation(env: Env) -> None:
    sku = await stocked(env)
    placed = await env.order([(sku, 1)])
    await env.advance(3600)
    await env.control("POST", f"/orders/{placed['id']}/buyer_cancel", {})
    found = await env.ok("POST", "/return_refund/202602/cancellations/search", body={}, query=[("page_size", "5")])
    cancel_id = found["cancellations"][0]["cancel_id"]
    bad = await env.api(
        "POST", f"/return_refund/202309/cancellations/{cancel_id}/reject", body={"reject_reason": "because"}
    )
    assert bad.status_code == 400
    await env.ok(
        "POST",
        f"/return_refund/202309/cancellations/{cancel_id}/reject",
        body={"reject_reason": "seller_reject_apply_product_has_been_packed"},
    )
    order = await detail(env, placed["id"])
    assert order["status"] == "AWAITING_SHIPMENT" and order["is_buyer_request_cancel"] is False
    closed = await env.ok(
        "POST",
        "/return_refund/202309/cancellations/search",
        body={"cancel_status": ["CANCELLATION_REQUEST_CANCELLED"]},
        query=[("page_size", "5")],
    )
    assert closed["total_count"] == 1


async def test_unanswered_buyer_cancellation_is_approved_after_24_hours(env: Env) -> None:
    sku = await stocked(env)
    placed = await env.order([(sku, 1)])
    await env.advance(3600)
    await env.control("POST", f"/orders/{placed['id']}/buyer_cancel", {})
    await env.advance(24 * 3600)
    assert (await detail(env, placed["id"]))["status"] == "CANCELLED"


async def test_seller_cancels_one_line_then_the_rest(env: Env) -> None:
    sku = await stocked(env)
    placed = await env.order([(sku, 3)])
    await env.advance(3600)
    body = {
        "order_id": placed["id"],
        "cancel_reason": "seller_cancel_reason_out_of_stock",
        "skus": [{"sku_id": sku, "quantity": 1}],
    }
    result = await env.ok("POST", "/return_refund/202309/cancellations", body=body)
    assert result["cancel_status"] == "CANCELLATION_REQUEST_SUCCESS"
    order = await detail(env, placed["id"])
    assert order["status"] == "AWAITING_SHIPMENT"
    assert sorted(li["display_status"] for li in order["line_items"]) == [
        "AWAITING_SHIPMENT",
        "AWAITING_SHIPMENT",
        "CANCELLED",
    ]
    assert await stock_of(env, sku) == 3
    await env.ok(
        "POST",
        "/return_refund/202602/cancellations",
        body={"order_id": placed["id"], "cancel_reason": "seller_cancel_reason_out_of_stock"},
    )
    order = await detail(env, placed["id"])
    assert order["status"] == "CANCELLED" and order["cancellation_initiator"] == "SELLER"
    assert await stock_of(env, sku) == 5
    again = await env.api(
        "POST",
        "/return_refund/202309/cancellations",
        body={"order_id": placed["id"], "cancel_reason": "seller_cancel_reason_out_of_stock"},
    )
    assert again.json()["code"] == 64001003


MACHINE_KEY = re.compile(r"[a-z0-9]+(?:_[a-z0-9]+)+")


async def cancellations_of(env: Env, order_id: str) -> list[dict[str, Any]]:
    found = await env.ok(
        "POST",
        "/return_refund/202602/cancellations/search",
        body={"order_ids": [order_id]},
        query=[("page_size", "50")],
    )
    result: list[dict[str, Any]] = found["cancellations"]
    return result


async def test_cancel_reason_is_a_machine_key_beside_its_text(env: Env) -> None:
    """§7.2: `cancel_reason` is a machine key and `cancel_reason_text` the text shown to people, whoever cancels."""
    sku = await stocked(env, quantity=20)
    # The buyer picks a reason from TikTok's list (the doc sample's pair) ...
    listed = await env.order([(sku, 1)])
    await env.control(
        "POST",
        f"/orders/{listed['id']}/buyer_cancel",
        {"reason": "ecom_order_to_ship_canceled_reason_created_by_mistakes"},
    )
    [c] = await cancellations_of(env, listed["id"])
    assert c["cancel_reason"] == "ecom_order_to_ship_canceled_reason_created_by_mistakes"
    assert c["cancel_reason_text"] == "Order created by mistake"
    # ... or the control API is given a text: known ones map to their key, others are "other" with that text.
    for text in ("No longer needed", "Ordered by mistake"):
        placed = await env.order([(sku, 1)])
        await env.advance(3600)
        await env.control("POST", f"/orders/{placed['id']}/buyer_cancel", {"reason": text})
        [pending] = await cancellations_of(env, placed["id"])
        assert MACHINE_KEY.fullmatch(pending["cancel_reason"]), pending["cancel_reason"]
        assert pending["cancel_reason_text"] == text
        await env.ok("POST", f"/return_refund/202309/cancellations/{pending['cancel_id']}/approve")
        [approved] = await cancellations_of(env, placed["id"])
        assert (approved["cancel_reason"], approved["cancel_reason_text"]) == (
            pending["cancel_reason"],
            pending["cancel_reason_text"],
        )
        # The order object carries the reason as its text (§4.3 doc sample: "cancel_reason":"Pricing error").
        order = await detail(env, placed["id"])
        assert order["cancel_reason"] == text
        assert {li["cancel_reason"] for li in order["line_items"]} == {text}

    # The seller cancels with a reason name; the order shows its text, as in the §4.3 sample.
    sold = await env.order([(sku, 1)])
    await env.advance(3600)
    await env.ok(
        "POST",
        "/return_refund/202309/cancellations",
        body={"order_id": sold["id"], "cancel_reason": "seller_cancel_reason_wrong_price"},
    )
    [c] = await cancellations_of(env, sold["id"])
    assert (c["cancel_reason"], c["cancel_reason_text"]) == ("seller_cancel_reason_wrong_price", "Pricing error")
    order = await detail(env, sold["id"])
    assert order["cancellation_initiator"] == "SELLER" and order["cancel_reason"] == "Pricing error"
    assert order["line_items"][0]["cancel_user"] == "SELLER"
    assert order["line_items"][0]["cancel_reason"] == "Pricing error"

    # The system cancels: unpaid too long, and not shipped in time.
    unpaid = await env.order([(sku, 1)], paid=False)
    unshipped = await env.order([(sku, 1)])
    await env.advance(env.sb.world.settings.unpaid_cancel_seconds)
    order = await detail(env, unshipped["id"])
    await env.advance(order["shipping_due_time"] - env.sb.clock.now_s())
    for order_id in (unpaid["id"], unshipped["id"]):
        [c] = await cancellations_of(env, order_id)
        assert c["role"] == "SYSTEM" and MACHINE_KEY.fullmatch(c["cancel_reason"]), c["cancel_reason"]
        assert c["cancel_reason_text"] and not MACHINE_KEY.fullmatch(c["cancel_reason_text"])
        order = await detail(env, order_id)
        assert order["status"] == "CANCELLED" and order["cancel_reason"] == c["cancel_reason_text"]


async def test_auto_cancel_past_shipping_due_time(env: Env) -> None:
    sku = await stocked(env)
    placed = await env.order([(sku, 1)])
    order = await detail(env, placed["id"])
    await env.advance(order["shipping_due_time"] - env.sb.clock.now_s())
    order = await detail(env, placed["id"])
    assert order["status"] == "CANCELLED" and order["cancellation_initiator"] == "SYSTEM"
    assert order["cancel_time"] == order["shipping_due_time"]
    assert await stock_of(env, sku) == 5


async def test_unpaid_orders_take_no_stock_and_expire(env: Env) -> None:
    sku = await stocked(env)
    placed = await env.order([(sku, 2)], paid=False)
    assert placed["status"] == "UNPAID" and await stock_of(env, sku) == 5
    await env.advance(env.sb.world.settings.unpaid_cancel_seconds)
    assert (await detail(env, placed["id"]))["status"] == "CANCELLED"


async def test_pay_later_rechecks_stock(env: Env) -> None:
    sku = await stocked(env, quantity=1)
    placed = await env.order([(sku, 1)], paid=False)
    await env.order([(sku, 1)])
    await env.control("POST", f"/orders/{placed['id']}/pay", expect=409)


async def test_multi_warehouse_order_splits_into_packages(env: Env) -> None:
    second = await env.control("POST", f"/shops/{env.shop_id}/warehouses", {"name": "East"})
    sellers = await env.control("GET", "/sellers")
    first = sellers[0]["shops"][0]["warehouses"][0]["id"]
    product = await env.product([{"seller_sku": "A", "price": "5.00", "inventory": {first: 1, second["id"]: 1}}])
    placed = await env.order([(product["skus"][0]["id"], 2)], **{})
    await env.advance(3600)
    order = await detail(env, placed["id"])
    assert len(order["packages"]) == 2 and order["split_or_combine_tag"] == "SPLIT"
    await env.ok("POST", f"/fulfillment/202309/packages/{order['packages'][0]['id']}/ship", body={})
    order = await detail(env, placed["id"])
    assert order["status"] == "PARTIALLY_SHIPPING"
    assert sorted(li["display_status"] for li in order["line_items"]) == ["AWAITING_COLLECTION", "AWAITING_SHIPMENT"]


async def test_seller_shipping_validates_tracking_and_provider(env: Env) -> None:
    sku = await stocked(env)
    placed = await env.order([(sku, 1)], shipping_type="SELLER")
    order = await detail(env, placed["id"])
    package = order["packages"][0]["id"]
    path = f"/fulfillment/202309/packages/{package}/ship"
    on_hold = await env.api(
        "POST",
        path,
        body={"self_shipment": {"tracking_number": "1Z999", "shipping_provider_id": "7117858858072016686"}},
    )
    assert on_hold.json()["code"] == 21011010
    await env.advance(3600)
    bad = await env.api(
        "POST",
        path,
        body={"self_shipment": {"tracking_number": "no spaces allowed", "shipping_provider_id": "7117858858072016686"}},
    )
    assert bad.status_code == 400
    await env.ok(
        "POST",
        path,
        body={
            "self_shipment": {
                "tracking_number": "9400111899223197428490",
                "shipping_provider_id": "7117858858072016686",
            }
        },
    )
    order = await detail(env, placed["id"])
    assert order["tracking_number"] == "9400111899223197428490" and order["shipping_provider"] == "USPS"


async def test_search_filters_sorts_and_paginates(env: Env) -> None:
    sku = await stocked(env, quantity=50)
    ids = []
    for n in range(5):
        ids.append((await env.order([(sku, 1)], buyer_user_id="buyer-a" if n < 2 else None))["id"])
        await env.advance(10)
    await env.control("POST", f"/orders/{ids[1]}/buyer_cancel", {})

    async def search(body: dict[str, Any], *query: tuple[str, str]) -> list[str]:
        out: list[str] = []
        token = ""
        while True:
            q = [("page_size", "2"), *query] + ([("page_token", token)] if token else [])
            data = await env.ok("POST", SEARCH, body=body, query=q)
            out += [o["id"] for o in data["orders"]]
            token = data["next_page_token"]
            if not token:
                return out

    assert await search({}) == list(reversed(ids))
    assert await search({}, ("sort_order", "ASC")) == ids
    assert (await search({}, ("sort_field", "update_time"), ("sort_order", "DESC")))[:1] == [ids[1]]
    assert await search({"order_status": "CANCELLED"}) == [ids[1]]
    assert await search({"buyer_user_id": "buyer-a"}) == [ids[1], ids[0]]
    assert await search({"is_buyer_request_cancel": True}) == [ids[1]]
    created = env.sb.clock.now_s() - 40
    assert await search({"create_time_ge": created, "create_time_lt": created + 20}, ("sort_order", "ASC")) == ids[1:3]
    assert await search({"shipping_type": "SELLER"}) == []
    wh = (await env.control("GET", "/sellers"))[0]["shops"][0]["warehouses"][0]["id"]
    assert len(await search({"warehouse_ids": [wh]})) == 5


async def test_detail_limits_and_ownership(env: Env) -> None:
    too_many = await env.api("GET", "/order/202507/orders", query=[("ids", ",".join(str(n) for n in range(51)))])
    assert too_many.status_code == 400 and too_many.json()["code"] == 98001004
    unknown = await env.api("GET", "/order/202507/orders", query=[("ids", "576461413038785752")])
    assert unknown.json() | {"request_id": ""} == {
        "code": 21008111,
        "message": "The order or package does not belong to the current seller.",
        "request_id": "",
        "data": None,
    }


async def test_price_detail(env: Env) -> None:
    sku = await stocked(env)
    placed = await env.order([(sku, 2)], shipping_fee="5.00", tax="3.18")
    data = await env.ok("GET", f"/order/202407/orders/{placed['id']}/price_detail")
    assert data["total"] == "44.80" and data["payment"] == "47.98" and len(data["line_items"]) == 2


async def test_order_webhooks_are_signed_and_retried(env: Env) -> None:
    import hashlib
    import hmac

    from .conftest import APP_KEY, APP_SECRET

    await env.subscribe("ORDER_STATUS_CHANGE")
    sku = await stocked(env)
    env.hooks.status = 500
    placed = await env.order([(sku, 1)])
    assert await env.sb.run_once() == 2
    first = env.hooks.requests[0]
    expected = hmac.new(APP_SECRET.encode(), APP_KEY.encode() + first.content, hashlib.sha256).hexdigest()
    assert first.headers["authorization"] == expected
    body = env.hooks.bodies()[0]
    assert list(body) == ["type", "tts_notification_id", "shop_id", "timestamp", "data"]
    assert body["data"] == {
        "order_id": placed["id"],
        "order_status": "UNPAID",
        "is_on_hold_order": True,
        "update_time": body["timestamp"],
    }
    # 2 min, 30 min, 3 h, 12 h of sandbox time, then given up.
    for wait in (120, 1800, 3 * 3600, 12 * 3600):
        await env.advance(wait - 1)
        assert await env.sb.run_once() == 0 or wait > 3600
        await env.advance(1)
        await env.sb.run_once()
    deliveries = await env.control("GET", "/webhooks/deliveries")
    unpaid = next(d for d in deliveries if '"UNPAID"' in d["body"])
    assert unpaid["attempts"] == 5 and unpaid["status"] == "FAILED"
    ids = {r.headers["authorization"] for r in env.hooks.requests if b'"UNPAID"' in r.content}
    assert len(ids) == 1  # every retry carries the same body, hence the same signature


async def test_cancel_webhook_uses_the_webhook_vocabulary(env: Env) -> None:
    await env.subscribe("ORDER_STATUS_CHANGE")
    sku = await stocked(env)
    placed = await env.order([(sku, 1)])
    await env.control("POST", f"/orders/{placed['id']}/buyer_cancel", {})
    await env.sb.run_once()
    statuses = [b["data"]["order_status"] for b in env.hooks.bodies()]
    assert statuses == ["UNPAID", "ON_HOLD", "CANCEL"]


async def test_webhook_stream_faults(env: Env) -> None:
    await env.subscribe("ORDER_STATUS_CHANGE")
    sku = await stocked(env, quantity=50)
    await env.control("PUT", "/faults/webhooks", {"event_type": "ORDER_STATUS_CHANGE", "drop_rate": 1.0})
    await env.order([(sku, 1)])
    await env.sb.run_once()
    assert env.hooks.requests == []
    await env.control("PUT", "/faults/webhooks", {"event_type": "ORDER_STATUS_CHANGE", "duplicate_rate": 1.0})
    await env.order([(sku, 1)])
    await env.sb.run_once()
    ids = [b["tts_notification_id"] for b in env.hooks.bodies()]
    assert len(ids) == 4 and len(set(ids)) == 2
    env.hooks.requests.clear()
    await env.control("PUT", "/faults/webhooks", {"event_type": "*", "reorder_window_seconds": 60})
    await env.control("PUT", "/faults/webhooks", {"event_type": "ORDER_STATUS_CHANGE", "reorder_window_seconds": 60})
    await env.order([(sku, 1)])
    await env.sb.run_once()
    held = len(env.hooks.requests)
    await env.advance(60)
    await env.sb.run_once()
    assert held < 2 and len(env.hooks.requests) == 2


async def test_webhook_subscriptions(env: Env) -> None:
    await env.subscribe("ORDER_STATUS_CHANGE", "https://a.example/hook")
    data = await env.ok("GET", "/event/202309/webhooks")
    assert data["total_count"] == 1 and data["webhooks"][0]["address"] == "https://a.example/hook"
    bad = await env.api("PUT", "/event/202309/webhooks", body={"address": "https://x", "event_type": "NOPE"})
    assert bad.status_code == 400 and bad.json()["code"] == 98001004
    await env.ok("DELETE", "/event/202309/webhooks", body={"event_type": "ORDER_STATUS_CHANGE"})
    await env.ok("DELETE", "/event/202309/webhooks", body={"event_type": "ORDER_STATUS_CHANGE"})
    assert (await env.ok("GET", "/event/202309/webhooks"))["total_count"] == 0
