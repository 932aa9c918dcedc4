"""Webhooks to a real local receiver (reference §7): headers and HMAC, topic side effects, retries with the same
Webhook-Id, includeFields, removal after repeated failures, and the loss/duplicate/reorder faults."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
from collections.abc import Callable

import pytest

from .conftest import SECRET, SHOP, Env, Receiver

pytestmark = pytest.mark.anyio


async def until(check: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("timed out waiting for the webhooks")
        await asyncio.sleep(0.02)


def verify(body: bytes, header: str) -> bool:
    digest = base64.b64encode(hmac.new(SECRET.encode(), body, hashlib.sha256).digest()).decode()
    return hmac.compare_digest(digest, header)


async def test_fulfilment_webhooks_with_headers_and_valid_hmac(live: Env, receiver: Receiver) -> None:
    for topic in ("FULFILLMENTS_CREATE", "ORDERS_FULFILLED", "ORDERS_UPDATED", "INVENTORY_LEVELS_UPDATE"):
        await live.subscribe(topic, receiver.url + "/hooks")
    order = await live.control("POST", "/orders", {"lines": [{"sku": "MUG-1", "quantity": 2}]})
    await until(lambda: len(receiver.of("orders/updated")) >= 1)
    await live.control(
        "POST", f"/orders/{order['id']}/fulfil", {"carrier": "UPS", "tracking_number": "1Z999AA10123456784"}
    )
    await until(lambda: len(receiver.of("fulfillments/create")) == 1 and len(receiver.of("orders/fulfilled")) == 1)
    hook = receiver.of("fulfillments/create")[0]
    h = hook.headers
    assert verify(hook.body, h["X-Shopify-Hmac-Sha256"])
    assert h["X-Shopify-Shop-Domain"] == SHOP and h["X-Shopify-API-Version"] == "2026-01"
    assert h["X-Shopify-Webhook-Id"] and h["X-Shopify-Event-Id"] and h["X-Shopify-Triggered-At"].endswith("Z")
    payload = hook.json()
    assert payload["order_id"] == int(order["id"]) and payload["status"] == "success"
    assert payload["tracking_company"] == "UPS" and payload["tracking_number"] == "1Z999AA10123456784"
    assert payload["admin_graphql_api_id"].startswith("gid://shopify/Fulfillment/")
    assert payload["line_items"][0]["sku"] == "MUG-1" and payload["line_items"][0]["quantity"] == 2
    fulfilled = receiver.of("orders/fulfilled")[0]
    assert fulfilled.json()["fulfillment_status"] == "fulfilled"
    # One merchant action, one Event-Id; one Webhook-Id per delivery.
    assert fulfilled.headers["X-Shopify-Event-Id"] == h["X-Shopify-Event-Id"]
    assert fulfilled.headers["X-Shopify-Webhook-Id"] != h["X-Shopify-Webhook-Id"]
    levels = [r.json() for r in receiver.of("inventory_levels/update")]
    assert levels[0]["available"] == 18 and levels[0]["admin_graphql_api_id"].startswith(
        "gid://shopify/InventoryLevel/"
    )


async def test_failed_deliveries_are_retried_with_the_same_webhook_id(live: Env, receiver: Receiver) -> None:
    await live.subscribe("ORDERS_CREATE", receiver.url)
    receiver.statuses = [500, 302]  # a redirect is a failure too
    await live.control("POST", "/orders", {"lines": [{"sku": "MUG-1", "quantity": 1}]})
    await until(lambda: len(receiver.of("orders/create")) == 3)
    attempts = receiver.of("orders/create")
    assert len({r.headers["X-Shopify-Webhook-Id"] for r in attempts}) == 1
    assert len({r.body for r in attempts}) == 1  # the original payload
    log = await live.control("GET", "/webhooks?topic=orders/create")
    assert log[0]["status"] == "DELIVERED" and [a.get("status_code") for a in log[0]["history"]] == [500, 302, 200]


async def test_a_subscription_failing_every_retry_is_removed(live: Env, receiver: Receiver) -> None:
    await live.control("PATCH", "/settings", {"webhook_max_retries": 2, "webhook_retry_base_seconds": 0.02})
    await live.subscribe("ORDERS_CREATE", receiver.url)
    receiver.default_status = 503
    await live.control("POST", "/orders", {"lines": [{"sku": "MUG-1", "quantity": 1}]})
    await until(lambda: len(receiver.of("orders/create")) == 3)
    await asyncio.sleep(0.1)
    stats = await live.control("GET", "/stats")
    assert stats["webhooks"]["orders/create"]["failed"] == 1
    subs = await live.data("{ webhookSubscriptions(first: 5) { nodes { id } } }")
    assert subs["webhookSubscriptions"]["nodes"] == []


async def test_include_fields_and_the_older_callback_url(live: Env, receiver: Receiver) -> None:
    data = await live.data(
        """mutation($uri: URL!) { webhookSubscriptionCreate(topic: INVENTORY_LEVELS_UPDATE, webhookSubscription: {
             callbackUrl: $uri, format: JSON, includeFields: ["inventory_item_id", "available"]}) {
             webhookSubscription { topic uri endpoint { ... on WebhookHttpEndpoint { callbackUrl } } }
             userErrors { message } } }""",
        {"uri": receiver.url},
    )
    sub = data["webhookSubscriptionCreate"]["webhookSubscription"]
    assert sub["topic"] == "INVENTORY_LEVELS_UPDATE" and sub["endpoint"]["callbackUrl"] == receiver.url
    await live.control("POST", "/inventory/sale", {"sku": "STICKER-1", "quantity": 3})
    await until(lambda: len(receiver.requests) == 1)
    assert receiver.requests[0].json() == {
        "inventory_item_id": int(live.store["STICKER-1:item"].rsplit("/", 1)[1]),
        "available": 47,
    }
    taken = await live.data(
        "mutation($uri: String!) { webhookSubscriptionCreate(topic: INVENTORY_LEVELS_UPDATE, "
        "webhookSubscription: {uri: $uri}) { userErrors { message } } }",
        {"uri": receiver.url},
    )
    assert taken["webhookSubscriptionCreate"]["userErrors"][0]["message"] == (
        "Address for this topic has already been taken"
    )


async def test_lost_webhooks_are_never_delivered(live: Env, receiver: Receiver) -> None:
    await live.subscribe("ORDERS_CREATE", receiver.url)
    await live.subscribe("ORDERS_PAID", receiver.url)
    await live.control("PUT", "/faults/webhooks", {"topic": "orders/create", "loss_rate": 1.0})
    await live.control("POST", "/orders", {"lines": [{"sku": "MUG-1", "quantity": 1}]})
    await until(lambda: len(receiver.of("orders/paid")) == 1)
    await asyncio.sleep(0.15)
    assert receiver.of("orders/create") == []
    stats = await live.control("GET", "/stats")
    assert stats["webhooks"]["orders/create"]["lost"] == 1


async def test_duplicates_carry_the_same_webhook_id(live: Env, receiver: Receiver) -> None:
    await live.subscribe("ORDERS_CREATE", receiver.url)
    await live.control("PUT", "/faults/webhooks", {"topic": "*", "duplicate_rate": 1.0})
    await live.control("POST", "/orders", {"lines": [{"sku": "MUG-1", "quantity": 1}]})
    await until(lambda: len(receiver.of("orders/create")) == 2)
    first, second = receiver.of("orders/create")
    assert first.headers["X-Shopify-Webhook-Id"] == second.headers["X-Shopify-Webhook-Id"]
    assert first.body == second.body
    assert (await live.control("GET", "/stats"))["webhooks"]["orders/create"]["duplicated"] == 1


async def test_reordered_delivery_arrives_after_the_next_event(live: Env, receiver: Receiver) -> None:
    await live.subscribe("ORDERS_CREATE", receiver.url)
    await live.subscribe("ORDERS_PAID", receiver.url)
    await live.control("PUT", "/faults/webhooks", {"topic": "orders/create", "reorder_rate": 1.0})
    await live.control("POST", "/orders", {"lines": [{"sku": "MUG-1", "quantity": 1}]})
    await until(lambda: len(receiver.requests) == 2)
    assert receiver.topics() == ["orders/paid", "orders/create"]  # paid before create, as in §9.2


async def test_order_side_effects_cancel_and_refund(live: Env, receiver: Receiver) -> None:
    for topic in ("ORDERS_CREATE", "ORDERS_CANCELLED", "REFUNDS_CREATE", "ORDERS_UPDATED"):
        await live.subscribe(topic, receiver.url)
    order = await live.control("POST", "/orders", {"lines": [{"sku": "TEE-S", "quantity": 1}]})
    await live.data(
        "mutation($id: ID!) { orderCancel(orderId: $id, reason: INVENTORY, restock: true, refundMethod: "
        "{originalPaymentMethodsRefund: true}) { job { id } } }",
        {"id": order["gid"]},
    )
    await until(lambda: len(receiver.of("orders/cancelled")) == 1 and len(receiver.of("refunds/create")) == 1)
    cancelled = receiver.of("orders/cancelled")[0].json()
    assert cancelled["cancel_reason"] == "inventory" and cancelled["financial_status"] == "refunded"
    refund = receiver.of("refunds/create")[0].json()
    assert refund["refund_line_items"][0]["restock_type"] == "cancel" and refund["transactions"][0]["kind"] == "refund"
    assert receiver.of("orders/create")[0].json()["tags"] == ""


async def test_subscriptions_list_filter_and_delete(env: Env) -> None:
    created = await env.subscribe("ORDERS_CREATE", "https://hooks.example/a")
    await env.subscribe("REFUNDS_CREATE", "https://hooks.example/a")
    listed = await env.data("{ webhookSubscriptions(first: 5, topics: [ORDERS_CREATE]) { nodes { id topic uri } } }")
    nodes = listed["webhookSubscriptions"]["nodes"]
    assert [n["id"] for n in nodes] == [created["webhookSubscription"]["id"]] and nodes[0]["topic"] == "ORDERS_CREATE"
    sub_id = created["webhookSubscription"]["id"]
    deleted = await env.data(
        "mutation($id: ID!) { webhookSubscriptionDelete(id: $id) { deletedWebhookSubscriptionId "
        "userErrors { message } } }",
        {"id": sub_id},
    )
    assert deleted["webhookSubscriptionDelete"] == {"deletedWebhookSubscriptionId": sub_id, "userErrors": []}
    again = await env.data(
        "mutation($id: ID!) { webhookSubscriptionDelete(id: $id) { userErrors { message } } }", {"id": sub_id}
    )
    assert again["webhookSubscriptionDelete"]["userErrors"][0]["message"] == "Webhook subscription does not exist"
    remaining = await env.data("{ webhookSubscriptions(first: 5) { nodes { topic } } }")
    assert remaining["webhookSubscriptions"]["nodes"] == [{"topic": "REFUNDS_CREATE"}]


async def test_app_uninstalled_is_sent_then_the_token_stops_working(live: Env, receiver: Receiver) -> None:
    await live.subscribe("APP_UNINSTALLED", receiver.url)
    await live.control("POST", "/app/uninstall")
    await until(lambda: len(receiver.of("app/uninstalled")) == 1)
    assert receiver.of("app/uninstalled")[0].json()["myshopify_domain"] == SHOP
    assert (await live.post("{ shop { name } }")).status_code == 401
    await live.control("POST", "/app/install")
    assert (await live.post("{ shop { name } }")).status_code == 200


async def test_delay_fault_holds_deliveries_back(live: Env, receiver: Receiver) -> None:
    await live.subscribe("ORDERS_CREATE", receiver.url)
    await live.control("PUT", "/faults/webhooks", {"topic": "orders/create", "delay_seconds": 0.3})
    await live.control("POST", "/orders", {"lines": [{"sku": "MUG-1", "quantity": 1}]})
    await asyncio.sleep(0.15)
    assert receiver.of("orders/create") == []
    await until(lambda: len(receiver.of("orders/create")) == 1)
