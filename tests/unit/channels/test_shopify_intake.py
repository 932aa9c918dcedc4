"""The Shopify intake's pure parts: a store order read through the Admin API mapped to the hub's order and its
fulfillments to shipments, the webhook signature (reference §7.3 test vectors), the inbox key of a delivery, and
the work each topic asks for."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from shopbridge.channels.shopify.intake import (
    StoreOrderUnreadable,
    channel_status,
    fulfilments,
    hub_order_id,
    map_order,
    order_status,
)
from shopbridge.channels.shopify.kinds import IMPORT_CATALOG, OBSERVE_STOCK, SYNC_ORDER, UNINSTALLED
from shopbridge.channels.shopify.webhooks import Unusable, Work, delivery_key, signature, verify, work_for
from shopbridge.domain.money import Money
from shopbridge.domain.orders import OrderStatus

TEE = "gid://shopify/ProductVariant/11"
MUG = "gid://shopify/ProductVariant/12"


def money(amount: str, currency: str = "USD") -> dict[str, Any]:
    return {"shopMoney": {"amount": amount, "currencyCode": currency}}


def line_item(number: int, variant: str | None, sku: str | None, quantity: int, price: str) -> dict[str, Any]:
    return {"id": f"gid://shopify/LineItem/{number}", "sku": sku, "title": f"Item {number}", "quantity": quantity,
            "variant": {"id": variant} if variant else None,
            "originalUnitPriceSet": money("25.00"), "discountedUnitPriceSet": money(price)}  # fmt: skip


def store_order(**changes: Any) -> dict[str, Any]:
    """An order as intake.ORDERS reads it (the shape the sandbox and Shopify answer)."""
    order: dict[str, Any] = {
        "id": "gid://shopify/Order/1001", "name": "#1001", "createdAt": "2026-03-01T10:00:00Z",
        "updatedAt": "2026-03-01T10:05:00Z", "processedAt": "2026-03-01T09:59:00-05:00", "cancelledAt": None,
        "cancelReason": None, "closed": False, "displayFinancialStatus": "PAID",
        "displayFulfillmentStatus": "UNFULFILLED", "currencyCode": "USD", "sourceIdentifier": None,
        "paymentGatewayNames": ["shopify_payments"], "customAttributes": [],
        "totalPriceSet": money("57.50"), "subtotalPriceSet": money("50.00"), "totalShippingPriceSet": money("5.00"),
        "totalTaxSet": money("2.50"),
        "customer": {"id": "gid://shopify/Customer/7", "email": "ann@example.com", "displayName": "Ann Lee"},
        "shippingAddress": {"name": "Ann Lee", "address1": "1 Main St", "city": "Austin", "zip": "78701",
                            "countryCodeV2": "US"},
        "lineItems": {"nodes": [line_item(1, TEE, "TEE-M", 1, "20.00"), line_item(2, MUG, "MUG-1", 1, "10.00"),
                                line_item(3, TEE, "TEE-M", 1, "20.00")], "pageInfo": {"hasNextPage": False}},
        "fulfillmentOrders": {"nodes": [{"assignedLocation": {"location": {"id": "gid://shopify/Location/5"}}}]},
        "fulfillments": [],
    }  # fmt: skip
    order.update(changes)
    return order


# --- the store's own order -------------------------------------------------------------------------------------


def test_a_paid_unfulfilled_store_order_maps_to_a_hub_order_awaiting_shipment() -> None:
    order = map_order(store_order())
    assert (order.channel, order.external_id, order.status) == ("shopify", "gid://shopify/Order/1001",
                                                                OrderStatus.AWAITING_SHIPMENT)  # fmt: skip
    assert order.channel_status == "PAID/UNFULFILLED"
    assert (order.total, order.subtotal, order.shipping, order.tax) == (
        Money(Decimal("57.50"), "USD"), Money(Decimal("50.00"), "USD"), Money(Decimal("5.00"), "USD"),
        Money(Decimal("2.50"), "USD"),
    )  # fmt: skip
    assert order.created_at == datetime(2026, 3, 1, 14, 59, tzinfo=UTC), "processedAt, in UTC"
    assert order.updated_at == datetime(2026, 3, 1, 10, 5, tzinfo=UTC)
    assert order.warehouse_id == "gid://shopify/Location/5", "the fulfilling location, mapped to a hub location"
    assert order.buyer == {"name": "#1001", "customer_id": "gid://shopify/Customer/7", "email": "ann@example.com",
                           "customer_name": "Ann Lee"}  # fmt: skip
    assert order.recipient["city"] == "Austin"
    assert order.payment_method == "shopify_payments"


def test_line_items_of_one_variant_are_one_line_at_what_the_buyer_paid() -> None:
    tee, mug = map_order(store_order()).lines
    assert (tee.external_sku_id, tee.seller_sku, tee.quantity) == (TEE, "TEE-M", 2)
    assert tee.line_item_ids == ("gid://shopify/LineItem/1", "gid://shopify/LineItem/3")
    assert tee.unit_price == Money(Decimal("20.00"), "USD"), "the discounted unit price, not the list price"
    assert (mug.external_sku_id, mug.quantity) == (MUG, 1)


def test_a_custom_line_item_without_a_variant_is_a_line_of_its_own() -> None:
    order = store_order(lineItems={"nodes": [line_item(9, None, None, 1, "3.00")]})
    (line,) = map_order(order).lines
    assert (line.external_sku_id, line.seller_sku, line.title) == ("gid://shopify/LineItem/9", None, "Item 9")


@pytest.mark.parametrize(
    ("changes", "status", "words"),
    [
        ({"displayFinancialStatus": "PENDING"}, OrderStatus.UNPAID, "PENDING/UNFULFILLED"),
        ({"displayFinancialStatus": None}, OrderStatus.UNPAID, "NONE/UNFULFILLED"),
        ({"displayFinancialStatus": "AUTHORIZED"}, OrderStatus.AWAITING_SHIPMENT, "AUTHORIZED/UNFULFILLED"),
        ({"displayFulfillmentStatus": "PARTIALLY_FULFILLED"}, OrderStatus.PARTIALLY_SHIPPED,
         "PAID/PARTIALLY_FULFILLED"),
        ({"displayFulfillmentStatus": "FULFILLED"}, OrderStatus.IN_TRANSIT, "PAID/FULFILLED"),
        ({"displayFulfillmentStatus": "FULFILLED", "closed": True}, OrderStatus.COMPLETED, "PAID/FULFILLED/CLOSED"),
        ({"cancelledAt": "2026-03-01T11:00:00Z", "displayFinancialStatus": "REFUNDED"}, OrderStatus.CANCELLED,
         "CANCELLED"),
    ],
)  # fmt: skip
def test_the_hub_status_follows_cancellation_then_fulfilment_then_payment(
    changes: dict[str, Any], status: OrderStatus, words: str
) -> None:
    order = store_order(**changes)
    assert (order_status(order), channel_status(order)) == (status, words)
    assert map_order(order).status is status


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"currencyCode": None}, "currencyCode"),
        ({"totalPriceSet": None}, "totalPriceSet"),
        ({"totalTaxSet": money("2.50", "EUR")}, "totalTaxSet"),
        ({"totalPriceSet": money("57.505")}, "totalPriceSet"),
        ({"updatedAt": "yesterday"}, "updatedAt"),
        ({"lineItems": {"nodes": []}}, "lineItems"),
    ],
)
def test_an_unreadable_store_order_names_its_field(changes: dict[str, Any], field: str) -> None:
    with pytest.raises(StoreOrderUnreadable) as raised:
        map_order(store_order(**changes))
    assert raised.value.field == field
    assert str(raised.value).startswith("store order gid://shopify/Order/1001: ")


def test_a_line_with_a_negative_quantity_is_unreadable() -> None:
    order = store_order()
    order["lineItems"]["nodes"][1]["quantity"] = -1
    with pytest.raises(StoreOrderUnreadable, match="quantity"):
        map_order(order)


# --- orders the hub placed -----------------------------------------------------------------------------------


def test_the_hub_order_an_order_was_placed_for_is_read_from_its_attribute() -> None:
    assert hub_order_id(store_order()) is None
    placed = store_order(
        customAttributes=[{"key": "gift", "value": "no"}, {"key": "shopbridge_order_id", "value": "42"}]
    )
    assert hub_order_id(placed) == 42
    assert hub_order_id(store_order(customAttributes=[{"key": "shopbridge_order_id", "value": "n/a"}])) is None


def fulfillment(number: int, status: str = "SUCCESS", tracking: str | None = "1Z999") -> dict[str, Any]:
    return {
        "id": f"gid://shopify/Fulfillment/{number}", "createdAt": "2026-03-02T08:00:00Z", "status": status,
        "trackingInfo": [{"company": "UPS", "number": tracking, "url": "https://ups.example/1Z999"}]
        if tracking else [],
        "fulfillmentLineItems": {"nodes": [{"quantity": 2, "lineItem": {"sku": "TEE-M", "variant": {"id": TEE}}},
                                           {"quantity": 1, "lineItem": {"sku": "MUG-1", "variant": {"id": MUG}}}]},
    }  # fmt: skip


def test_each_fulfillment_that_left_with_tracking_is_one_shipment_with_the_hub_variants() -> None:
    order = store_order(fulfillments=[fulfillment(1), fulfillment(2, status="CANCELLED"),
                                      fulfillment(3, tracking=None), fulfillment(4)])  # fmt: skip
    shipped = fulfilments(order, {TEE: 501})
    assert [shipment.external_id for shipment in shipped] == ["gid://shopify/Fulfillment/1",
                                                              "gid://shopify/Fulfillment/4"]  # fmt: skip
    first = shipped[0]
    assert (first.carrier, first.tracking_number, first.tracking_url) == ("UPS", "1Z999", "https://ups.example/1Z999")
    assert first.shipped_at == datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
    assert first.lines == [{"sku": "TEE-M", "variant_id": 501, "quantity": 2},  # a variant the hub lacks: None
                           {"sku": "MUG-1", "variant_id": None, "quantity": 1}]  # fmt: skip


def test_mapping_leaves_what_it_was_given_as_it_was() -> None:
    order = store_order(fulfillments=[fulfillment(1)])
    before = copy.deepcopy(order)
    map_order(order)
    fulfilments(order, {})
    assert order == before


# --- the webhook signature and the inbox key ---------------------------------------------------------------------


def test_the_signature_matches_the_reference_test_vectors() -> None:
    assert signature("hush", b'"my secret message"') == "hMTq0K2x7oyOjoBwGYeTj5oxfnaVYXzbanUG9aajpKI="
    assert verify("hush", b'"my secret message"', "hMTq0K2x7oyOjoBwGYeTj5oxfnaVYXzbanUG9aajpKI=")
    assert verify("hush", b"my secret message", "7/WDe43pNWxHoCMD7ukeWbZMtWEMfYQy8wPrdA6jiwc=")
    assert verify("hush", b'"my secret message"\n', "T2zuVaopuVX3zTakawiaHKLmMCAoVSe/igoRVbE+7VE=")


@pytest.mark.parametrize(
    ("secret", "body", "header"),
    [
        ("hush", b'"my secret message"', "hMTq0K2x7oyOjoBwGYeTj5oxfnaVYXzbanUG9aajpKI"),  # truncated
        ("hush", b'"my secret message"', "hMTq0K2x7oyOjoBwGYeTj5oxfnaVYXzbanUG9aajpKI=="),  # over-long
        ("hush", b'"my secret message"', "7/WDe43pNWxHoCMD7ukeWbZMtWEMfYQy8wPrdA6jiwc="),  # another body's
        ("other", b'"my secret message"', "hMTq0K2x7oyOjoBwGYeTj5oxfnaVYXzbanUG9aajpKI="),  # another secret
        ("hush", b"", signature("hush", b"")),  # an empty body
        ("hush", b'"my secret message"', None),
        (None, b'"my secret message"', "hMTq0K2x7oyOjoBwGYeTj5oxfnaVYXzbanUG9aajpKI="),
    ],
)
def test_a_wrong_missing_or_unverifiable_signature_is_refused(
    secret: str | None, body: bytes, header: str | None
) -> None:
    assert not verify(secret, body, header)


def test_a_delivery_is_keyed_on_its_webhook_id_which_its_retries_keep() -> None:
    assert delivery_key(" b5a3-webhook ", "orders/create", b"{}") == "b5a3-webhook"
    fallback = delivery_key(None, "orders/create", b'{"id":1}')
    assert fallback == delivery_key("", "orders/create", b'{"id":1}'), "the same body resent: the same key"
    assert fallback != delivery_key(None, "orders/updated", b'{"id":1}')
    assert fallback != delivery_key(None, "orders/create", b'{"id":2}')


# --- what each topic asks for ------------------------------------------------------------------------------------


def test_order_and_fulfillment_topics_ask_for_a_sync_of_their_order() -> None:
    assert work_for(3, "orders/create", {"id": 820982911946154508}) == Work(
        3, SYNC_ORDER, 0, ("gid://shopify/Order/820982911946154508",)
    )
    assert work_for(3, "orders/updated", {"admin_graphql_api_id": "gid://shopify/Order/9", "id": 9}).subject == (  # type: ignore[union-attr]
        "gid://shopify/Order/9",
    )
    assert work_for(3, "fulfillments/create", {"id": 1022782888, "order_id": 450789469}) == Work(
        3, SYNC_ORDER, 0, ("gid://shopify/Order/450789469",)
    )


def test_stock_catalogue_and_uninstall_topics_ask_for_their_work() -> None:
    level = {"inventory_item_id": 808950810, "location_id": 905684977, "available": 6}
    assert work_for(3, "inventory_levels/update", level) == Work(
        3, OBSERVE_STOCK, 0, ("gid://shopify/InventoryItem/808950810", "gid://shopify/Location/905684977")
    )
    assert work_for(3, "products/update", {"id": 1}) == Work(3, IMPORT_CATALOG, 0)
    assert work_for(3, "app/uninstalled", {"id": 1, "domain": "x"}) == Work(3, UNINSTALLED, 0)
    assert work_for(3, "refunds/create", {"id": 1}) is None, "kept, not acted on"
    placed = {"id": 9, "note_attributes": [{"name": "shopbridge_order_id", "value": "12"}], "fulfillments": [],
              "cancelled_at": None}  # fmt: skip
    assert work_for(3, "orders/paid", placed) is None, "an order the hub placed has nothing to report yet"
    assert work_for(3, "orders/updated", {**placed, "fulfillments": [{"id": 1}]}) is not None
    assert work_for(3, "orders/cancelled", {**placed, "cancelled_at": "2026-12-05T08:00:00Z"}) is not None
    assert work_for(3, "orders/paid", {**placed, "note_attributes": []}) is not None, "the store's own order"
    assert work_for(3, "inventory_levels/connect", level) is None


@pytest.mark.parametrize(
    ("topic", "payload"),
    [("orders/create", {"name": "#1"}), ("fulfillments/update", {"id": 1}), ("orders/paid", {"id": True}),
     ("inventory_levels/update", {"inventory_item_id": 1})],
)  # fmt: skip
def test_a_payload_without_what_its_topic_needs_is_unusable(topic: str, payload: dict[str, Any]) -> None:
    with pytest.raises(Unusable, match="the payload has no"):
        work_for(3, topic, payload)
