"""Returns and refunds (§7.3): buyer requests, seller decisions, partial refunds, webhooks 12."""

from __future__ import annotations

from typing import Any

import pytest

from .conftest import Env

pytestmark = pytest.mark.anyio

SEARCH = "/return_refund/202309/returns/search"


async def delivered_order(env: Env, quantity: int = 2) -> tuple[dict[str, Any], str]:
    product = await env.product([{"seller_sku": "TEE-1", "price": "20.00", "quantity": 10}])
    sku = product["skus"][0]["id"]
    placed = await env.order([(sku, quantity)], shipping_fee="5.00", tax="2.00")
    await env.advance(3600)
    for step in ("ship", "collect", "deliver"):
        await env.control("POST", f"/orders/{placed['id']}/{step}")
    return placed, sku


async def only_return(env: Env, order_id: str) -> dict[str, Any]:
    data = await env.ok("POST", SEARCH, body={"order_ids": [order_id]}, query=[("page_size", "10")])
    [found] = data["return_orders"]
    result: dict[str, Any] = found
    return result


async def test_return_and_refund_happy_path(env: Env) -> None:
    await env.subscribe("RETURN_STATUS_CHANGE")
    placed, _ = await delivered_order(env)
    await env.control("POST", f"/orders/{placed['id']}/request_return", {"return_type": "RETURN_AND_REFUND"})
    r = await only_return(env, placed["id"])
    assert r["return_status"] == "RETURN_OR_REFUND_REQUEST_PENDING"
    assert r["seller_next_action_response"][0]["action"] == "SELLER_RESPOND_RETURN"
    assert r["refund_amount"]["refund_total"] == "42.00" and len(r["return_line_items"]) == 2
    base = f"/return_refund/202309/returns/{r['return_id']}"
    await env.ok("POST", f"{base}/approve", body={"decision": "APPROVE_RETURN"})
    await env.control("POST", f"/returns/{r['return_id']}/buyer_ship", {})
    await env.ok("POST", f"{base}/approve", body={"decision": "APPROVE_RECEIVED_PACKAGE"})
    await env.advance(3600)
    assert (await only_return(env, placed["id"]))["return_status"] == "RETURN_OR_REFUND_REQUEST_COMPLETE"
    records = await env.ok("GET", f"{base}/records")
    assert [x["event"] for x in records["records"]][:2] == ["BUYER_APPLY", "APPROVE_RETURN"]
    await env.sb.run_once()
    statuses = [b["data"]["return_status"] for b in env.hooks.bodies() if b["type"] == 12]
    assert statuses == [
        "RETURN_OR_REFUND_REQUEST_PENDING",
        "AWAITING_BUYER_SHIP",
        "BUYER_SHIPPED_ITEM",
        "RETURN_OR_REFUND_REQUEST_SUCCESS",
        "RETURN_OR_REFUND_REQUEST_COMPLETE",
    ]


async def test_partial_refund_offer(env: Env) -> None:
    placed, _ = await delivered_order(env)
    await env.control("POST", f"/orders/{placed['id']}/request_return", {"return_type": "REFUND"})
    r = await only_return(env, placed["id"])
    path = f"/return_refund/202309/returns/{r['return_id']}/approve"
    too_much = await env.api(
        "POST",
        path,
        body={"decision": "OFFER_PARTIAL_REFUND", "partial_refund": {"amount": "99.00", "currency": "USD"}},
    )
    assert too_much.status_code == 400
    await env.ok(
        "POST",
        path,
        body={"decision": "OFFER_PARTIAL_REFUND", "partial_refund": {"amount": "10.00", "currency": "USD"}},
    )
    await env.control("POST", f"/returns/{r['return_id']}/buyer_response", {"accept": True})
    r = await only_return(env, placed["id"])
    assert r["return_status"] == "RETURN_OR_REFUND_REQUEST_SUCCESS"
    assert r["refund_amount"]["refund_total"] == "10.00" and r["partial_refund"]["amount"] == "10.00"


async def test_reject_needs_a_known_reason(env: Env) -> None:
    placed, _ = await delivered_order(env)
    await env.control("POST", f"/orders/{placed['id']}/request_return", {"return_type": "REFUND"})
    r = await only_return(env, placed["id"])
    reasons = await env.ok(
        "GET", "/return_refund/202309/reject_reasons", query=[("return_or_cancel_id", r["return_id"])]
    )
    name = reasons["reasons"][0]["name"]
    path = f"/return_refund/202309/returns/{r['return_id']}/reject"
    assert (await env.api("POST", path, body={"decision": "REJECT_REFUND", "reject_reason": "nah"})).status_code == 400
    await env.ok("POST", path, body={"decision": "REJECT_REFUND", "reject_reason": name})
    assert (await only_return(env, placed["id"]))["return_status"] == "REFUND_OR_RETURN_REQUEST_REJECT"
    wrong_state = await env.api("POST", path, body={"decision": "REJECT_REFUND", "reject_reason": name})
    assert wrong_state.json()["code"] == 64002002


async def test_seller_created_partial_refund(env: Env) -> None:
    placed, sku = await delivered_order(env)
    path = "/return_refund/202602/returns"
    body = {
        "order_id": placed["id"],
        "return_reason": "ecom_order_delivered_refund_reason_missing_item",
        "return_type": "REFUND",
        "skus": [{"sku_id": sku, "quantity": 1}],
        "refund_total": "5.00",
        "currency": "USD",
    }
    too_much = await env.api("POST", path, body={**body, "refund_total": "500.00"})
    assert too_much.status_code == 400 and "refundable amount" in too_much.json()["message"]
    created = await env.ok("POST", path, body=body)
    assert created["return_status"] == "RETURN_OR_REFUND_REQUEST_SUCCESS"
    r = await only_return(env, placed["id"])
    assert r["role"] == "SELLER" and r["refund_amount"]["refund_total"] == "5.00" and len(r["return_line_items"]) == 1


async def test_eligibility_and_refund_calculation(env: Env) -> None:
    product = await env.product([{"seller_sku": "TEE-1", "price": "20.00", "quantity": 10}])
    sku = product["skus"][0]["id"]
    placed = await env.order([(sku, 2)], shipping_fee="5.00", tax="2.00")
    path = f"/return_refund/202309/orders/{placed['id']}/aftersale_eligibility"
    data = await env.ok("GET", path, query=[("request_types", "CANCEL,RETURN_AND_REFUND")])
    lines = data["sku_eligibility"][0]["line_item_eligibility"]
    assert {(x["request_type"], x["eligible"]) for x in lines} == {("CANCEL", True), ("RETURN_AND_REFUND", False)}
    calc = await env.ok(
        "POST", "/return_refund/202309/refunds/calculate", body={"order_id": placed["id"], "request_type": "CANCEL"}
    )
    assert calc["order_refund_amount"]["refund_total"] == "47.00"
    await env.control("POST", f"/orders/{placed['id']}/request_return", {}, expect=409)


CREATE = "/return_refund/202309/returns"
CALCULATE = "/return_refund/202309/refunds/calculate"
MISSING_ITEM = "ecom_order_delivered_refund_reason_missing_item"


def refund_body(order_id: str, skus: list[tuple[str, int]]) -> dict[str, Any]:
    return {"order_id": order_id, "return_reason": MISSING_ITEM, "return_type": "REFUND",
            "skus": [{"sku_id": sku, "quantity": quantity} for sku, quantity in skus]}  # fmt: skip


async def all_returns(env: Env, order_id: str) -> list[dict[str, Any]]:
    data = await env.ok("POST", SEARCH, body={"order_ids": [order_id]}, query=[("page_size", "10")])
    found: list[dict[str, Any]] = data["return_orders"]
    return found


async def test_a_seller_refund_with_the_same_idempotency_key_is_opened_once(env: Env) -> None:
    placed, sku = await delivered_order(env, quantity=2)
    key = [("idempotency_key", "shopbridge-return-1")]
    first = await env.ok("POST", CREATE, body=refund_body(placed["id"], [(sku, 1)]), query=key)
    again = await env.ok("POST", CREATE, body=refund_body(placed["id"], [(sku, 1)]), query=key)
    assert again == first
    [only] = await all_returns(env, placed["id"])
    assert only["return_id"] == first["return_id"] and only["role"] == "SELLER"
    assert len(only["return_line_items"]) == 1
    other = await env.ok("POST", CREATE, body=refund_body(placed["id"], [(sku, 1)]),
                         query=[("idempotency_key", "shopbridge-return-2")])  # fmt: skip
    assert other["return_id"] != first["return_id"]
    assert len(await all_returns(env, placed["id"])) == 2


async def test_partial_refunds_of_one_line_take_each_unit_once(env: Env) -> None:
    placed, sku = await delivered_order(env, quantity=3)
    calculated = await env.ok("POST", CALCULATE, body={"order_id": placed["id"], "request_type": "REFUND",
                                                       "skus": [{"sku_id": sku, "quantity": 1}]})  # fmt: skip
    # One unit of three: its price and a third of the order's tax, no shipping.
    assert calculated["order_refund_amount"]["refund_total"] == "20.67"
    first = await env.ok("POST", CREATE, body=refund_body(placed["id"], [(sku, 1)]))
    second = await env.ok("POST", CREATE, body=refund_body(placed["id"], [(sku, 1)]))
    units = {r["return_id"]: [x["order_line_item_id"] for x in r["return_line_items"]]
             for r in await all_returns(env, placed["id"])}  # fmt: skip
    assert len(units[first["return_id"]]) == len(units[second["return_id"]]) == 1
    assert units[first["return_id"]] != units[second["return_id"]]
    too_many = await env.api("POST", CREATE, body=refund_body(placed["id"], [(sku, 2)]))
    assert too_many.status_code == 400 and too_many.json()["code"] == 98001004
    assert "more units than can be returned" in too_many.json()["message"]
    calculated_too_many = await env.api("POST", CALCULATE, body={
        "order_id": placed["id"], "request_type": "REFUND", "skus": [{"sku_id": sku, "quantity": 2}]})  # fmt: skip
    assert calculated_too_many.json()["code"] == 98001004
    await env.ok("POST", CREATE, body=refund_body(placed["id"], [(sku, 1)]))
    every_unit = [x["order_line_item_id"] for r in await all_returns(env, placed["id"]) for x in r["return_line_items"]]
    assert len(every_unit) == len(set(every_unit)) == 3
    assert (await env.api("POST", CREATE, body=refund_body(placed["id"], [(sku, 1)]))).status_code == 400


async def test_a_sku_named_twice_takes_two_different_units(env: Env) -> None:
    placed, sku = await delivered_order(env, quantity=2)
    await env.ok("POST", CREATE, body=refund_body(placed["id"], [(sku, 1), (sku, 1)]))
    [r] = await all_returns(env, placed["id"])
    ids = [x["order_line_item_id"] for x in r["return_line_items"]]
    assert len(ids) == 2 and len(set(ids)) == 2
    assert r["refund_amount"]["refund_total"] == "42.00"


async def test_refunds_open_once_the_order_is_delivered(env: Env) -> None:
    product = await env.product([{"seller_sku": "TEE-1", "price": "20.00", "quantity": 10}])
    sku = product["skus"][0]["id"]
    placed = await env.order([(sku, 1)])
    await env.advance(3600)
    await env.control("POST", f"/orders/{placed['id']}/ship")
    calculated = await env.api("POST", CALCULATE, body={"order_id": placed["id"], "request_type": "REFUND",
                                                        "skus": [{"sku_id": sku, "quantity": 1}]})  # fmt: skip
    assert calculated.json()["code"] == 64002003
    created = await env.api("POST", CREATE, body=refund_body(placed["id"], [(sku, 1)]))
    assert created.json()["code"] == 64002003
    for step in ("collect", "deliver"):
        await env.control("POST", f"/orders/{placed['id']}/{step}")
    await env.ok("POST", CALCULATE, body={"order_id": placed["id"], "request_type": "REFUND"})
    await env.ok("POST", CREATE, body=refund_body(placed["id"], [(sku, 1)]))
