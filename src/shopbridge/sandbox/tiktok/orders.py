"""Orders (§4): buyer orders from the control API, their lifecycle, and the order read endpoints.

Lifecycle edges, and nothing else:
UNPAID → ON_HOLD → AWAITING_SHIPMENT → PARTIALLY_SHIPPING / AWAITING_COLLECTION → IN_TRANSIT → DELIVERED →
COMPLETED, with CANCELLED reachable until the carrier collects. Stock leaves at payment and comes back when an
order is cancelled before its units were handed over.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, Field

from .errors import business, invalid_parameter
from .gateway import Call, Endpoint
from .models import Address, Cancellation, LineItem, Order, OrderStatus, Package, Product, Shop, Sku
from .money import CENT, fmt
from .pagination import paginate, scope_of, within
from .reasons import SYSTEM_NOT_SHIPPED_REASON, SYSTEM_UNPAID_REASON, reason_text

if TYPE_CHECKING:
    from .runtime import TikTokSandbox

ALLOWED_EDGES: dict[str, set[str]] = {
    "UNPAID": {"ON_HOLD", "AWAITING_SHIPMENT", "CANCELLED"},
    "ON_HOLD": {"AWAITING_SHIPMENT", "CANCELLED"},
    "AWAITING_SHIPMENT": {"PARTIALLY_SHIPPING", "AWAITING_COLLECTION", "CANCELLED"},
    "PARTIALLY_SHIPPING": {"AWAITING_COLLECTION", "CANCELLED"},
    "AWAITING_COLLECTION": {"IN_TRANSIT", "CANCELLED"},
    "IN_TRANSIT": {"DELIVERED"},
    "DELIVERED": {"COMPLETED"},
    "COMPLETED": set(),
    "CANCELLED": set(),
}
# Before the hold ends TikTok shares neither the buyer's address nor contact details.
ADDRESS_WITHHELD = {"UNPAID", "ON_HOLD"}
MAX_DETAIL_IDS = 50
# The carrier behind TikTok Shipping labels, as the doc samples name it.
TIKTOK_CARRIER = ("6617675021119438849", "TT Virtual express")
DAY = 86_400


class OrderRejected(Exception):
    """A buyer order the sandbox refuses; `shortages` lists SKUs its own stock cannot cover."""

    def __init__(self, message: str, shortages: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.shortages = shortages or []


@dataclass(frozen=True)
class BuyerLine:
    sku_id: str
    quantity: int


# --- lifecycle -----------------------------------------------------------------------------------------------


def _webhook_status(status: str) -> str:
    # The type-1 webhook spells CANCELLED as CANCEL (reference Appendix B §5).
    return "CANCEL" if status == "CANCELLED" else status


def _display_status(status: str, item: LineItem) -> str:
    """Line items use a shorter vocabulary: no ON_HOLD, and a split order's lines each have their own state."""
    if status == "ON_HOLD":
        return "AWAITING_SHIPMENT"
    if status == "PARTIALLY_SHIPPING":
        return "AWAITING_COLLECTION" if item.rts_time is not None else "AWAITING_SHIPMENT"
    return status


def set_status(sb: TikTokSandbox, order: Order, status: OrderStatus, at: int) -> None:
    if status not in ALLOWED_EDGES[order.status]:
        raise OrderRejected(f"order {order.id} cannot go from {order.status} to {status}")
    order.status = status
    order.update_time = at
    for item in order.line_items:
        if item.display_status != "CANCELLED":
            item.display_status = _display_status(status, item)
    sb.world.save(order)
    sb.webhooks.emit(
        order.shop_id,
        1,
        {
            "order_id": order.id,
            "order_status": _webhook_status(status),
            "is_on_hold_order": order.is_on_hold_order,
            "update_time": at,
        },
    )


def _lookup_sku(sb: TikTokSandbox, shop: Shop, sku_id: str) -> tuple[Product, Sku]:
    product = sb.world.product_of_sku(sku_id)
    sku = product.sku(sku_id) if product else None
    if product is None or sku is None or product.shop_id != shop.id:
        raise OrderRejected(f"SKU {sku_id} is not sold by shop {shop.id}")
    if not product.sellable or sku.status != "NORMAL":
        raise OrderRejected(f"SKU {sku_id} is not on sale (product status {product.status})")
    return product, sku


def _shortages(sb: TikTokSandbox, shop: Shop, lines: list[BuyerLine]) -> list[dict[str, Any]]:
    wanted: Counter[str] = Counter()
    for line in lines:
        wanted[line.sku_id] += line.quantity
    out = []
    for sku_id, quantity in wanted.items():
        _, sku = _lookup_sku(sb, shop, sku_id)
        available = sum(sku.inventory.values())
        if available < quantity:
            out.append({"sku_id": sku_id, "requested": quantity, "available": available})
    return out


def place_order(
    sb: TikTokSandbox,
    shop: Shop,
    lines: list[BuyerLine],
    *,
    buyer_user_id: str | None = None,
    paid: bool = True,
    is_cod: bool = False,
    shipping_type: Literal["TIKTOK", "SELLER"] = "TIKTOK",
    shipping_fee: Decimal = Decimal("0"),
    tax: Decimal = Decimal("0"),
    address: Address | None = None,
    buyer_message: str = "",
    affiliate_commission_rate: Decimal = Decimal(0),
) -> Order:
    """A buyer checks out. Refused unless the sandbox's own stock covers every SKU."""
    if not lines or any(line.quantity < 1 for line in lines):
        raise OrderRejected("an order needs at least one unit of each SKU it lists")
    shortages = _shortages(sb, shop, lines)
    if shortages:
        raise OrderRejected("insufficient stock", shortages)
    now = sb.clock.now_s()
    order = Order(
        id=sb.ids.order_id(),
        shop_id=shop.id,
        user_id=buyer_user_id or sb.ids.numeric("7", 19),
        status="UNPAID",
        currency=shop.currency,
        create_time=now,
        update_time=now,
        cancel_order_sla_time=now + sb.world.settings.unpaid_cancel_seconds,
        is_cod=is_cod,
        payment_method_name="CASH_ON_DELIVERY" if is_cod else "CCDC",
        shipping_type=shipping_type,
        shipping_fee=shipping_fee,
        tax=tax,
        buyer_message=buyer_message,
        buyer_email=f"{sb.ids.numeric('v', 7)}@chat.seller.tiktok.com",
        recipient_address=address or Address(),
        is_on_hold_order=sb.world.settings.on_hold_seconds > 0,
        affiliate_commission_rate=affiliate_commission_rate,
    )
    for line in lines:
        product, sku = _lookup_sku(sb, shop, line.sku_id)
        for _ in range(line.quantity):
            # One line item per unit: TikTok has no quantity field on a line item.
            order.line_items.append(
                LineItem(
                    id=sb.ids.line_item_id(),
                    sku_id=sku.id,
                    product_id=product.id,
                    product_name=product.title,
                    sku_name=", ".join(str(a.get("value_name", "")) for a in sku.sales_attributes) or "Default",
                    seller_sku=sku.seller_sku,
                    warehouse_id="",
                    original_price=sku.list_price if sku.list_price and sku.list_price > sku.price else sku.price,
                    sale_price=sku.price,
                    package_id="",
                )
            )
    sb.world.save(order)
    sb.webhooks.emit(
        shop.id,
        1,
        {
            "order_id": order.id,
            "order_status": "UNPAID",
            "is_on_hold_order": order.is_on_hold_order,
            "update_time": now,
        },
    )
    if paid:
        pay_order(sb, order)
    return order


def pay_order(sb: TikTokSandbox, order: Order) -> None:
    """Payment: stock is taken now, units are allocated to warehouses, one package per warehouse."""
    if order.status != "UNPAID":
        raise OrderRejected(f"order {order.id} is {order.status}, not UNPAID")
    shop = sb.world.get(Shop, order.shop_id)
    assert shop is not None
    lines = [BuyerLine(sku_id, n) for sku_id, n in Counter(i.sku_id for i in order.line_items).items()]
    shortages = _shortages(sb, shop, lines)
    if shortages:
        raise OrderRejected("insufficient stock", shortages)
    packages: dict[str, Package] = {}
    default_wh = shop.default_warehouse().id
    for item in order.line_items:
        product = sb.world.product_of_sku(item.sku_id)
        sku = product.sku(item.sku_id) if product else None
        assert product is not None and sku is not None
        # Take from the default warehouse first, then from whichever holds most.
        candidates = sorted(sku.inventory.items(), key=lambda wq: (wq[0] != default_wh, -wq[1]))
        warehouse_id = next(w for w, q in candidates if q > 0)
        sku.inventory[warehouse_id] -= 1
        sb.world.save(product)
        package = packages.get(warehouse_id)
        if package is None:
            package = packages[warehouse_id] = Package(id=sb.ids.generic(), warehouse_id=warehouse_id)
        item.warehouse_id = warehouse_id
        item.package_id = package.id
    order.packages = list(packages.values())
    order.stock_held = True
    now = sb.clock.now_s()
    hold = sb.world.settings.on_hold_seconds
    order.paid_time = now
    order.hold_until = now + hold if hold > 0 else None
    ready = now + hold
    window = sb.world.settings.shipping_window_seconds
    order.rts_sla_time = ready + window - DAY // 2
    order.shipping_due_time = ready + window
    order.tts_sla_time = ready + window + DAY
    order.collection_due_time = ready + window + 2 * DAY
    order.delivery_sla_time = ready + window + 5 * DAY
    order.delivery_due_time = ready + window + 12 * DAY
    order.cancel_order_sla_time = order.shipping_due_time
    set_status(sb, order, "ON_HOLD" if hold > 0 else "AWAITING_SHIPMENT", now)


def refund_for(order: Order, line_ids: list[str], *, include_shipping: bool) -> tuple[Decimal, Decimal, Decimal]:
    """(subtotal, shipping fee, tax) refunded for these line items; shipping only when nothing else remains."""
    chosen = [i for i in order.line_items if i.id in set(line_ids)]
    subtotal = sum((i.sale_price for i in chosen), Decimal(0))
    others_active = any(i.cancel_user is None and i.id not in set(line_ids) for i in order.line_items)
    shipping = order.shipping_fee if include_shipping and not others_active else Decimal(0)
    tax = (order.tax * len(chosen) / max(1, len(order.line_items))).quantize(CENT)
    return subtotal, shipping, tax


def _release_stock(sb: TikTokSandbox, order: Order, items: list[LineItem]) -> None:
    """Put back units that were taken at payment and never handed to a carrier."""
    if not order.stock_held:
        return
    for item in items:
        product = sb.world.product_of_sku(item.sku_id)
        sku = product.sku(item.sku_id) if product else None
        if product is not None and sku is not None and item.warehouse_id:
            sku.inventory[item.warehouse_id] = sku.inventory.get(item.warehouse_id, 0) + 1
            sb.world.save(product)


def cancellable_items(order: Order) -> list[LineItem]:
    shipped = {p.id for p in order.packages if p.status not in ("TO_FULFILL", "CANCELLED")}
    return [i for i in order.line_items if i.cancel_user is None and i.package_id not in shipped]


def cancel_order(
    sb: TikTokSandbox,
    order: Order,
    initiator: Literal["SELLER", "BUYER", "SYSTEM"],
    reason: str,
    at: int,
    *,
    line_ids: list[str] | None = None,
    request: Cancellation | None = None,
    text: str | None = None,
) -> Cancellation:
    """Cancel some or all unshipped line items; the order is CANCELLED once no live line item is left.

    `reason` is the machine key the cancellation carries; `text` (by default the key's own text) is what the
    order and its line items show as their `cancel_reason`, as in the §4.3 doc sample."""
    text = text or reason_text(reason)
    items = [i for i in cancellable_items(order) if line_ids is None or i.id in line_ids]
    if not items:
        raise OrderRejected(f"order {order.id} has nothing left to cancel")
    subtotal, shipping, tax = refund_for(order, [i.id for i in items], include_shipping=True)
    _release_stock(sb, order, items)
    for item in items:
        item.cancel_user = initiator
        item.cancel_reason = text
        item.display_status = "CANCELLED"
    for package in order.packages:
        if all(i.cancel_user is not None for i in order.line_items if i.package_id == package.id):
            package.status = "CANCELLED"
    if request is None:
        request = Cancellation(
            id=sb.ids.generic(),
            order_id=order.id,
            shop_id=order.shop_id,
            cancel_type="BUYER_CANCEL" if initiator == "BUYER" else "CANCEL",
            cancel_status="CANCELLATION_REQUEST_SUCCESS",
            role=initiator,
            cancel_reason=reason,
            cancel_reason_text=text,
            line_item_ids=[i.id for i in items],
            refund_subtotal=subtotal,
            refund_shipping_fee=shipping,
            refund_tax=tax,
            create_time=at,
            update_time=at,
        )
    else:
        request.cancel_status = "CANCELLATION_REQUEST_SUCCESS"
        request.update_time = at
    sb.world.save(request)
    remaining = [i for i in order.line_items if i.cancel_user is None]
    if not remaining:
        order.stock_held = False
        order.cancellation_initiator = initiator
        order.cancel_reason = text
        order.cancel_time = at
        set_status(sb, order, "CANCELLED", at)
    elif order.status == "PARTIALLY_SHIPPING" and not cancellable_items(order):
        set_status(sb, order, "AWAITING_COLLECTION", at)
    order.update_time = at
    sb.world.save(order)
    emit_cancellation(sb, request)
    return request


def emit_cancellation(sb: TikTokSandbox, c: Cancellation) -> None:
    # The type-11 webhook spells the search API's CANCELLATION_REQUEST_CANCEL as ..._CANCELLED.
    status = "CANCELLATION_REQUEST_CANCELLED" if c.cancel_status == "CANCELLATION_REQUEST_CANCEL" else c.cancel_status
    data = {
        "order_id": c.order_id,
        "cancellations_role": c.role,
        "cancel_status": status,
        "cancel_id": c.id,
        "create_time": c.create_time,
    }
    sb.webhooks.emit(c.shop_id, 11, data)


def ship_package(
    sb: TikTokSandbox,
    order: Order,
    package: Package,
    *,
    provider_id: str,
    provider_name: str,
    tracking: str,
    self_shipped: bool = False,
    handover_method: str | None = None,
) -> None:
    if order.status not in ("AWAITING_SHIPMENT", "PARTIALLY_SHIPPING") or package.status != "TO_FULFILL":
        raise OrderRejected(f"package {package.id} cannot be shipped while the order is {order.status}")
    now = sb.clock.now_s()
    package.status = "PROCESSING"
    package.shipping_provider_id = provider_id
    package.shipping_provider_name = provider_name
    package.tracking_number = tracking
    package.rts_time = now
    package.self_shipped = self_shipped
    package.handover_method = handover_method
    for item in order.line_items:
        if item.package_id == package.id:
            item.rts_time = now
    order.rts_time = order.rts_time or now
    all_shipped = all(p.status != "TO_FULFILL" for p in order.packages if p.status != "CANCELLED")
    target: OrderStatus = "AWAITING_COLLECTION" if all_shipped else "PARTIALLY_SHIPPING"
    if target == order.status:
        # Another package of a split order left: not a status change, so no webhook.
        order.update_time = now
        for item in order.line_items:
            if item.display_status != "CANCELLED":
                item.display_status = _display_status(target, item)
        sb.world.save(order)
    else:
        set_status(sb, order, target, now)


def ship_with_tiktok_label(sb: TikTokSandbox, order: Order) -> None:
    """Arrange shipment of every unshipped package with a platform label, as Ship Package with PICKUP does."""
    provider_id, provider_name = TIKTOK_CARRIER
    for package in order.packages:
        if package.status == "TO_FULFILL":
            ship_package(
                sb,
                order,
                package,
                provider_id=provider_id,
                provider_name=provider_name,
                tracking="TT" + sb.ids.numeric("", 16),
                handover_method="PICKUP",
            )


def collect(sb: TikTokSandbox, order: Order) -> None:
    now = sb.clock.now_s()
    for package in order.packages:
        if package.status == "PROCESSING":
            package.status = "FULFILLING"
    order.collection_time = now
    set_status(sb, order, "IN_TRANSIT", now)


def deliver(sb: TikTokSandbox, order: Order) -> None:
    now = sb.clock.now_s()
    for package in order.packages:
        if package.status == "FULFILLING":
            package.status = "COMPLETED"
    order.delivery_time = now
    set_status(sb, order, "DELIVERED", now)


def complete(sb: TikTokSandbox, order: Order) -> None:
    now = sb.clock.now_s()
    order.complete_time = now
    set_status(sb, order, "COMPLETED", now)


def next_due(order: Order) -> int | None:
    """When the platform acts on this order next without anyone asking: payment deadline, hold end, ship-by."""
    if order.status == "UNPAID":
        return order.cancel_order_sla_time
    if order.status == "ON_HOLD":
        return order.hold_until
    if order.status in ("AWAITING_SHIPMENT", "PARTIALLY_SHIPPING"):
        return order.shipping_due_time
    return None


def run_due_transition(sb: TikTokSandbox, order: Order) -> None:
    """Hold expiry and the automatic cancellations, each stamped with the time it was due."""
    due = next_due(order)
    if due is None or due > sb.clock.now():
        return
    if order.status == "UNPAID":
        cancel_order(sb, order, "SYSTEM", SYSTEM_UNPAID_REASON, due)
    elif order.status == "ON_HOLD":
        set_status(sb, order, "AWAITING_SHIPMENT", due)
    else:
        cancel_order(sb, order, "SYSTEM", SYSTEM_NOT_SHIPPED_REASON, due)


# --- responses -----------------------------------------------------------------------------------------------


def _payment(order: Order) -> dict[str, str]:
    original = sum((i.original_price for i in order.line_items), Decimal(0))
    sale = sum((i.sale_price for i in order.line_items), Decimal(0))
    seller_discount = original - sale + order.seller_discount
    sub_total = original - seller_discount - order.platform_discount
    total = sub_total + order.shipping_fee + order.tax
    return {
        "currency": order.currency,
        "sub_total": fmt(sub_total),
        "shipping_fee": fmt(order.shipping_fee),
        "seller_discount": fmt(seller_discount),
        "platform_discount": fmt(order.platform_discount),
        "total_amount": fmt(total),
        "original_total_product_price": fmt(original),
        "original_shipping_fee": fmt(order.shipping_fee),
        "shipping_fee_seller_discount": "0.00",
        "shipping_fee_platform_discount": "0.00",
        "shipping_fee_cofunded_discount": "0.00",
        "tax": fmt(order.tax),
        "product_tax": fmt(order.tax),
        "shipping_fee_tax": "0.00",
        "retail_delivery_fee": "0.00",
    }


def _address(order: Order) -> dict[str, Any]:
    a = order.recipient_address
    if order.status in ADDRESS_WITHHELD:
        return {"region_code": a.region_code}
    return {
        "name": a.name,
        "first_name": a.first_name,
        "last_name": a.last_name,
        "phone_number": a.phone_number,
        "full_address": f"{a.address_line1}, {a.address_line2}, {a.city}, {a.state} {a.postal_code}",
        "address_detail": a.address_line2,
        "address_line1": a.address_line1,
        "address_line2": a.address_line2,
        "address_line3": "",
        "address_line4": "",
        "postal_code": a.postal_code,
        "region_code": a.region_code,
        "district_info": [
            {"address_level_name": "Country", "address_name": "United States", "address_level": "L0"},
            {"address_level_name": "State", "address_name": a.state, "address_level": "L1"},
            {"address_level_name": "City", "address_name": a.city, "address_level": "L3"},
        ],
    }


_OPTIONAL_TIMES = (
    "paid_time",
    "rts_time",
    "rts_sla_time",
    "tts_sla_time",
    "shipping_due_time",
    "collection_due_time",
    "delivery_due_time",
    "delivery_sla_time",
    "cancel_order_sla_time",
    "collection_time",
    "delivery_time",
    "cancel_time",
    "request_cancel_time",
)


def order_json(order: Order) -> dict[str, Any]:
    packages = {p.id: p for p in order.packages}
    shipped = next((p for p in order.packages if p.tracking_number), None)
    out: dict[str, Any] = {
        "id": order.id,
        "status": order.status,
        "user_id": order.user_id,
        "buyer_message": order.buyer_message,
        "buyer_email": "" if order.status in ADDRESS_WITHHELD else order.buyer_email,
        "create_time": order.create_time,
        "update_time": order.update_time,
        "is_on_hold_order": order.is_on_hold_order,
        "is_buyer_request_cancel": order.is_buyer_request_cancel,
        "payment": _payment(order),
        "payment_method_name": order.payment_method_name,
        "is_cod": order.is_cod,
        "recipient_address": _address(order),
        "shipping_type": order.shipping_type,
        "delivery_type": "HOME_DELIVERY",
        "delivery_option_id": order.delivery_option_id,
        "delivery_option_name": order.delivery_option_name,
        "fulfillment_type": "FULFILLMENT_BY_SELLER",
        "warehouse_id": order.packages[0].warehouse_id if order.packages else "",
        "packages": [{"id": p.id} for p in order.packages],
        "split_or_combine_tag": "SPLIT" if len(order.packages) > 1 else "",
        "has_updated_recipient_address": False,
        "is_sample_order": False,
        "is_replacement_order": False,
        "order_type": "NORMAL",
        "commerce_platform": "TIKTOK_SHOP",
        "line_items": [],
    }
    for name in _OPTIONAL_TIMES:
        value = getattr(order, name)
        if value is not None:
            out[name] = value
    if order.cancel_reason:
        out["cancel_reason"] = order.cancel_reason
        out["cancellation_initiator"] = order.cancellation_initiator
    if shipped is not None:
        out["shipping_provider"] = shipped.shipping_provider_name
        out["shipping_provider_id"] = shipped.shipping_provider_id
        out["tracking_number"] = shipped.tracking_number
    for item in order.line_items:
        package = packages.get(item.package_id)
        line: dict[str, Any] = {
            "id": item.id,
            "sku_id": item.sku_id,
            "product_id": item.product_id,
            "product_name": item.product_name,
            "sku_name": item.sku_name,
            "sku_image": "",
            "seller_sku": item.seller_sku,
            "original_price": fmt(item.original_price),
            "sale_price": fmt(item.sale_price),
            "platform_discount": "0.00",
            "seller_discount": fmt(item.original_price - item.sale_price),
            "currency": order.currency,
            "display_status": item.display_status,
            "is_gift": False,
        }
        if package is not None:
            line["package_id"] = package.id
            line["package_status"] = package.status
            if package.tracking_number:
                line["shipping_provider_id"] = package.shipping_provider_id
                line["shipping_provider_name"] = package.shipping_provider_name
                line["tracking_number"] = package.tracking_number
        if item.rts_time is not None:
            line["rts_time"] = item.rts_time
        if item.cancel_user:
            line["cancel_user"] = item.cancel_user
            line["cancel_reason"] = item.cancel_reason
        out["line_items"].append(line)
    return out


# --- endpoints -----------------------------------------------------------------------------------------------


class OrderSearchIn(BaseModel):
    order_status: OrderStatus | None = None
    create_time_ge: int | None = Field(default=None, ge=0)
    create_time_lt: int | None = Field(default=None, ge=0)
    update_time_ge: int | None = Field(default=None, ge=0)
    update_time_lt: int | None = Field(default=None, ge=0)
    shipping_type: Literal["TIKTOK", "SELLER", "TIKTOK_DIGITAL", "IN-STORE PICKUP"] | None = None
    buyer_user_id: str | None = None
    is_buyer_request_cancel: bool | None = None
    warehouse_ids: list[str] | None = Field(default=None, max_length=100)


def _matches(order: Order, f: OrderSearchIn) -> bool:
    checks = (
        f.order_status is None or order.status == f.order_status,
        within(order.create_time, f.create_time_ge, f.create_time_lt),
        within(order.update_time, f.update_time_ge, f.update_time_lt),
        f.shipping_type is None or order.shipping_type == f.shipping_type,
        f.buyer_user_id is None or order.user_id == f.buyer_user_id,
        f.is_buyer_request_cancel is None or order.is_buyer_request_cancel == f.is_buyer_request_cancel,
        not f.warehouse_ids or any(p.warehouse_id in f.warehouse_ids for p in order.packages),
    )
    return all(checks)


def search_orders(call: Call) -> dict[str, Any]:
    shop = call.require_shop()
    size = call.page_size(100)
    sort_field = call.enum_param("sort_field", ("create_time", "update_time"), "create_time")
    sort_order = call.enum_param("sort_order", ("ASC", "DESC"), "DESC")
    filters = call.body(OrderSearchIn)
    matches = [o for o in call.world.table(Order).values() if o.shop_id == shop.id and _matches(o, filters)]
    page = paginate(
        matches,
        key=lambda o: (getattr(o, sort_field), o.id),
        descending=sort_order == "DESC",
        page_size=size,
        page_token=call.param("page_token"),
        scope=scope_of("orders", shop.id, sort_field, sort_order, filters.model_dump()),
    )
    return {
        "orders": [order_json(o) for o in page.items],
        "next_page_token": page.next_page_token,
        "total_count": page.total_count,
    }


def _require_order(call: Call, order_id: str) -> Order:
    order = call.world.get(Order, order_id)
    if order is None or order.shop_id != call.require_shop().id:
        raise business(21008111, "The order or package does not belong to the current seller.")
    return order


def get_order_detail(call: Call) -> dict[str, Any]:
    ids = call.values("ids")
    if not ids:
        raise invalid_parameter("ids", "missing", "1 to 50 order ids")
    if len(ids) > MAX_DETAIL_IDS:
        raise invalid_parameter("ids", f"{len(ids)} ids given", "1 to 50 order ids")
    return {"orders": [order_json(_require_order(call, i)) for i in ids]}


def get_price_detail(call: Call) -> dict[str, Any]:
    order = _require_order(call, call.path_params["order_id"])
    payment = _payment(order)
    list_price = sum((i.original_price for i in order.line_items), Decimal(0))
    sale_price = sum((i.sale_price for i in order.line_items), Decimal(0))
    return {
        "currency": order.currency,
        "total": fmt(list_price + order.shipping_fee),
        "payment": payment["total_amount"],
        "sku_list_price": fmt(list_price),
        "sku_sale_price": fmt(sale_price),
        "subtotal": payment["sub_total"],
        "subtotal_deduction_seller": payment["seller_discount"],
        "subtotal_deduction_platform": payment["platform_discount"],
        "subtotal_tax_amount": fmt(order.tax),
        "voucher_deduction_platform": "0.00",
        "voucher_deduction_seller": "0.00",
        "shipping_list_price": fmt(order.shipping_fee),
        "shipping_sale_price": fmt(order.shipping_fee),
        "shipping_fee_deduction_seller": "0.00",
        "shipping_fee_deduction_platform": "0.00",
        "shipping_fee_deduction_platform_voucher": "0.00",
        "tax_amount": fmt(order.tax),
        "tax_rate": "0",
        "net_price_amount": payment["total_amount"],
        "cod_fee": "0.00",
        "cod_fee_net_amount": "0.00",
        "line_items": [
            {
                "id": i.id,
                "currency": order.currency,
                "sku_list_price": fmt(i.original_price),
                "sku_sale_price": fmt(i.sale_price),
                "subtotal": fmt(i.sale_price),
                "subtotal_deduction_seller": fmt(i.original_price - i.sale_price),
                "subtotal_deduction_platform": "0.00",
            }
            for i in order.line_items
        ],
    }


ENDPOINTS = [
    Endpoint("POST", "/order/202309/orders/search", search_orders),
    Endpoint("GET", "/order/202309/orders", get_order_detail),
    Endpoint("GET", "/order/202507/orders", get_order_detail),
    Endpoint("GET", "/order/202407/orders/{order_id}/price_detail", get_price_detail),
]
