"""TikTok's order object (reference §4.3) mapped to the unified order. Ids are strings, money is decimal strings,
times are Unix seconds; there is one line item per unit, which we count per SKU."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from shopbridge.domain.money import InvalidAmount, Money
from shopbridge.domain.orders import DISPATCH_DEADLINE, HOLD_UNTIL, Order, OrderLine, OrderStatus, UnknownStatus

DEADLINE_FIELDS = (
    "rts_sla_time",
    "tts_sla_time",
    "shipping_due_time",
    "collection_due_time",
    "delivery_due_time",
    "delivery_sla_time",
    "cancel_order_sla_time",
)
BUYER_FIELDS = ("user_id", "buyer_email", "buyer_message")
# A paid order stays ON_HOLD for an hour: the buyer may cancel without the seller's approval (reference §4.4).
ON_HOLD_WINDOW = timedelta(hours=1)

# TikTok's order API and its webhooks use different words for the same status (CANCELLED vs CANCEL).
STATUSES = {
    "UNPAID": OrderStatus.UNPAID,
    "ON_HOLD": OrderStatus.ON_HOLD,
    "AWAITING_SHIPMENT": OrderStatus.AWAITING_SHIPMENT,
    "PARTIALLY_SHIPPING": OrderStatus.PARTIALLY_SHIPPED,
    "AWAITING_COLLECTION": OrderStatus.AWAITING_COLLECTION,
    "IN_TRANSIT": OrderStatus.IN_TRANSIT,
    "DELIVERED": OrderStatus.DELIVERED,
    "COMPLETED": OrderStatus.COMPLETED,
    "CANCELLED": OrderStatus.CANCELLED,
    "CANCEL": OrderStatus.CANCELLED,
}


def normalize_status(word: str) -> OrderStatus:
    """The hub's status for one of TikTok's words."""
    try:
        return STATUSES[word]
    except KeyError:
        raise UnknownStatus(f"unknown TikTok order status {word!r}") from None


class OrderPayloadError(ValueError):
    """The order cannot be read: names the field that is missing or wrong."""

    def __init__(self, order_id: str, field: str, problem: str) -> None:
        super().__init__(f"order {order_id}: {field} {problem}")
        self.field = field


def _text(order: dict[str, Any], key: str, order_id: str) -> str:
    value = order.get(key)
    if not isinstance(value, (str, int)) or isinstance(value, bool) or str(value) == "":
        raise OrderPayloadError(order_id, key, "is missing")
    return str(value)


def _time(value: Any, order_id: str, field: str) -> datetime:
    if isinstance(value, bool) or not isinstance(value, (int, str)) or not str(value).isdigit():
        raise OrderPayloadError(order_id, field, f"is not Unix seconds: {value!r}")
    return datetime.fromtimestamp(int(value), UTC)


def _money(value: Any, currency: str, order_id: str, field: str) -> Money:
    if not isinstance(value, str):
        raise OrderPayloadError(order_id, field, f"is not a decimal string: {value!r}")
    try:
        return Money.parse(value, currency)
    except InvalidAmount as error:
        raise OrderPayloadError(order_id, field, str(error)) from None


def _optional_money(payment: dict[str, Any], key: str, currency: str, order_id: str) -> Money | None:
    value = payment.get(key)
    return None if value in (None, "") else _money(value, currency, order_id, f"payment.{key}")


def map_order(order: dict[str, Any]) -> Order:
    """The unified order for one TikTok order object; OrderPayloadError names what is wrong."""
    order_id = _text(order, "id", "?")
    channel_status = _text(order, "status", order_id)
    try:
        status = normalize_status(channel_status)
    except UnknownStatus as error:
        raise OrderPayloadError(order_id, "status", str(error)) from None
    payment = order.get("payment")
    if not isinstance(payment, dict):
        raise OrderPayloadError(order_id, "payment", "is missing")
    currency = _text(payment, "currency", order_id)
    lines = _lines(order.get("line_items"), currency, order_id)
    deadlines = {key: _time(order[key], order_id, key) for key in DEADLINE_FIELDS if order.get(key) not in (None, 0)}
    if "rts_sla_time" in deadlines:
        deadlines[DISPATCH_DEADLINE] = deadlines["rts_sla_time"]
    if status is OrderStatus.ON_HOLD and order.get("paid_time") not in (None, 0):
        deadlines[HOLD_UNTIL] = _time(order["paid_time"], order_id, "paid_time") + ON_HOLD_WINDOW
    packages = tuple(
        {"id": str(package.get("id")), "tracking_number": order.get("tracking_number"),
         "shipping_provider": order.get("shipping_provider")}
        for package in order.get("packages") or ()
        if isinstance(package, dict)
    )  # fmt: skip
    recipient = order.get("recipient_address")
    return Order(
        channel="tiktok",
        external_id=order_id,
        channel_status=channel_status,
        status=status,
        currency=currency,
        total=_money(payment.get("total_amount"), currency, order_id, "payment.total_amount"),
        subtotal=_optional_money(payment, "sub_total", currency, order_id),
        shipping=_optional_money(payment, "shipping_fee", currency, order_id),
        tax=_optional_money(payment, "tax", currency, order_id),
        lines=lines,
        created_at=_time(order.get("create_time"), order_id, "create_time"),
        updated_at=_time(order.get("update_time", order.get("create_time")), order_id, "update_time"),
        payment_method=order.get("payment_method_name") or None,
        is_cod=bool(order.get("is_cod", False)),
        buyer={key: order[key] for key in BUYER_FIELDS if order.get(key)},
        recipient=recipient if isinstance(recipient, dict) else {},
        deadlines=deadlines,
        packages=packages,
        warehouse_id=str(order["warehouse_id"]) if order.get("warehouse_id") else None,
    )


def _lines(items: Any, currency: str, order_id: str) -> tuple[OrderLine, ...]:
    if not isinstance(items, list) or not items:
        raise OrderPayloadError(order_id, "line_items", "is missing or empty")
    grouped: dict[str, list[dict[str, Any]]] = {}
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            raise OrderPayloadError(order_id, f"line_items[{index}]", "is not an object")
        sku_id = _text(item, "sku_id", order_id)
        _text(item, "id", order_id)
        item_currency = str(item.get("currency") or currency)
        if item_currency != currency:
            raise OrderPayloadError(
                order_id, f"line_items[{index}].currency", f"is {item_currency}, the order is {currency}"
            )
        grouped.setdefault(sku_id, []).append(item)
    lines = []
    for sku_id, units in grouped.items():
        first = units[0]
        lines.append(
            OrderLine(
                external_sku_id=sku_id,
                seller_sku=first.get("seller_sku") or None,
                title=" / ".join(part for part in (first.get("product_name"), first.get("sku_name")) if part) or sku_id,
                quantity=len(units),
                unit_price=_money(first.get("sale_price"), currency, order_id, "line_items.sale_price"),
                line_item_ids=tuple(str(unit["id"]) for unit in units),
                external_product_id=str(first["product_id"]) if first.get("product_id") else None,
            )
        )
    return tuple(lines)
