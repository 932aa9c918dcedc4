"""TikTok's documented order sample mapped to the unified order."""

import copy
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from shopbridge.channels.tiktok.orders import OrderPayloadError, map_order, normalize_status
from shopbridge.channels.tiktok.webhooks import MalformedNotification, parse
from shopbridge.domain.orders import OrderStatus

SAMPLE: dict[str, Any] = {
    "id": "576461413038785752", "status": "AWAITING_SHIPMENT", "user_id": "7021436810468230477",
    "create_time": 1619611561, "paid_time": 1619611563, "update_time": 1619621355,
    "rts_sla_time": 1619611688, "tts_sla_time": 1619611761, "shipping_due_time": 1678389618,
    "payment": {"currency": "IDR", "sub_total": "5000", "shipping_fee": "5000", "total_amount": "10000", "tax": "0"},
    "payment_method_name": "CCDC", "is_cod": False,
    "recipient_address": {"full_address": "1199 Coleman Ave San Jose, CA 95110", "phone_number": "(+1)213-***-1234"},
    "buyer_email": "v2b2V5@chat.seller.tiktok.com", "packages": [{"id": "1152321127278713123"}],
    "tracking_number": "JX12345", "shipping_provider": "TT Virtual express",
    "line_items": [
        {"id": "577086512123755123", "sku_id": "2729382476852921560", "product_id": "1729582718312380123",
         "product_name": "Women's Winter Crochet Clothes", "sku_name": "Red", "seller_sku": "red_iphone_256",
         "sale_price": "2500", "currency": "IDR"},
        {"id": "577086512123755124", "sku_id": "2729382476852921560", "product_id": "1729582718312380123",
         "product_name": "Women's Winter Crochet Clothes", "sku_name": "Red", "seller_sku": "red_iphone_256",
         "sale_price": "2500", "currency": "IDR"},
    ],
}  # fmt: skip


def test_the_doc_sample_maps_with_units_counted_per_sku() -> None:
    order = map_order(SAMPLE)
    assert (order.external_id, order.channel_status, order.status) == (
        "576461413038785752", "AWAITING_SHIPMENT", OrderStatus.AWAITING_SHIPMENT,
    )  # fmt: skip
    assert order.total.amount == Decimal("10000") and order.currency == "IDR"
    [line] = order.lines
    assert line.quantity == 2
    assert line.line_item_ids == ("577086512123755123", "577086512123755124")
    assert (line.seller_sku, line.unit_price.amount) == ("red_iphone_256", Decimal("2500"))
    assert order.deadlines["rts_sla_time"] == datetime.fromtimestamp(1619611688, UTC)
    assert order.recipient["phone_number"] == "(+1)213-***-1234", "kept masked, as received"
    assert order.packages[0]["tracking_number"] == "JX12345"


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda o: o.pop("payment"), "payment is missing"),
        (lambda o: o.update(status="SHIPPED_BY_MAGIC"), "unknown TikTok order status 'SHIPPED_BY_MAGIC'"),
        (lambda o: o["payment"].update(total_amount=10000.5), "payment.total_amount is not a decimal string"),
        (lambda o: o.update(line_items=[]), "line_items is missing or empty"),
        (lambda o: o["line_items"][0].pop("sku_id"), "sku_id is missing"),
        (lambda o: o["line_items"][1].update(currency="USD"), "is USD, the order is IDR"),
        (lambda o: o.update(create_time="yesterday"), "create_time is not Unix seconds"),
    ],
)
def test_a_bad_payload_names_the_field(mutate: Any, message: str) -> None:
    broken = copy.deepcopy(SAMPLE)
    mutate(broken)
    with pytest.raises(OrderPayloadError, match=message.replace("(", r"\(").replace(")", r"\)")):
        map_order(broken)


def test_webhook_status_words_are_normalized() -> None:
    cancelled = copy.deepcopy(SAMPLE) | {"status": "CANCEL"}
    assert map_order(cancelled).status is OrderStatus.CANCELLED
    assert normalize_status("CANCEL") is normalize_status("CANCELLED") is OrderStatus.CANCELLED


def test_notifications_parse_and_fall_back_to_a_body_hash() -> None:
    body = b'{"type":1,"shop_id":"7494","timestamp":1664095733,"data":{"order_id":"5766","order_status":"ON_HOLD"}}'
    notification = parse(body)
    assert notification.type == 1 and notification.shop_id == "7494"
    assert notification.notification_id.startswith("sha256:")
    assert parse(body).notification_id == notification.notification_id
    with_id = parse(b'{"type":1,"tts_notification_id":"738","shop_id":"7494","timestamp":1,"data":{}}')
    assert with_id.notification_id == "738"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"not json", "not JSON"),
        (b"[1, 2]", "not a JSON object"),
        (b'{"type":"one","shop_id":"1","data":{}}', "'type' must be an integer"),
        (b'{"type":1,"data":{}}', "'shop_id' is missing"),
        (b'{"type":1,"shop_id":"1","data":[]}', "'data' must be an object"),
    ],
)
def test_malformed_notifications_are_named(body: bytes, message: str) -> None:
    with pytest.raises(MalformedNotification, match=message):
        parse(body)
