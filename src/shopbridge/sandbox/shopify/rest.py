"""REST-shaped resources: the bodies of webhooks (reference §7.5) and of the control API's ground truth.

Keys are the REST Admin resources' (§4.3 field list, §7.5 samples): numeric ``id`` beside
``admin_graphql_api_id``, money as two-decimal strings plus ``*_set`` bags with ``shop_money``/``presentment_money``,
times in the shop's UTC offset, lowercase statuses, ``tags`` as one comma-separated string (unlike GraphQL's array),
``note_attributes`` for GraphQL's ``customAttributes``.
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Any

from . import order_math
from .ids import gid, level_gid
from .models import (
    Address,
    Fulfillment,
    InventoryItem,
    InventoryLevel,
    LineItem,
    Location,
    Order,
    Product,
    Refund,
    Transaction,
    Variant,
)
from .money import dec, rest_amount, rest_time

if TYPE_CHECKING:
    from .runtime import ShopifySandbox


def _num(value: str | None) -> int | None:
    return int(value) if value is not None and value.isdigit() else None


def money_set(amount: Decimal, shop_currency: str, presentment_currency: str) -> dict[str, Any]:
    text = rest_amount(amount)
    return {
        "shop_money": {"amount": text, "currency_code": shop_currency},
        "presentment_money": {"amount": text, "currency_code": presentment_currency},
    }


def address_json(address: Address | None) -> dict[str, Any] | None:
    if address is None:
        return None
    name = " ".join(p for p in (address.first_name, address.last_name) if p) or None
    return {
        "first_name": address.first_name,
        "last_name": address.last_name,
        "name": name,
        "company": address.company,
        "address1": address.address1,
        "address2": address.address2,
        "city": address.city,
        "province": address.province,
        "province_code": address.province_code,
        "country": address.country,
        "country_code": address.country_code,
        "zip": address.zip,
        "phone": address.phone,
        "latitude": None,
        "longitude": None,
    }


def level_json(sb: ShopifySandbox, level: InventoryLevel) -> dict[str, Any]:
    """``inventory_levels/update``: REST exposes only ``available`` (§3.2, §7.5)."""
    return {
        "inventory_item_id": int(level.item_id),
        "location_id": int(level.location_id),
        "available": level.get("available"),
        "updated_at": rest_time(level.updated_at, sb.world.shop.timezone),
        "admin_graphql_api_id": level_gid(level.location_id, level.item_id),
    }


def _tax_lines(order: Order, lines: list[Any]) -> list[dict[str, Any]]:
    shop = order.currency
    return [
        {
            "title": t.title,
            "rate": float(t.rate),
            "price": rest_amount(dec(t.price)),
            "price_set": money_set(dec(t.price), shop, order.presentment_currency),
            "channel_liable": False,
        }
        for t in lines
    ]


def line_item_json(sb: ShopifySandbox, order: Order, line: LineItem, quantity: int | None = None) -> dict[str, Any]:
    price = dec(line.price)
    zero = money_set(Decimal(0), order.currency, order.presentment_currency)
    variant = sb.world.get(Variant, line.variant_id)
    return {
        "id": int(line.id),
        "admin_graphql_api_id": gid("LineItem", line.id),
        "variant_id": _num(line.variant_id),
        "product_id": _num(line.product_id),
        "product_exists": line.product_id is not None,
        "sku": line.sku,
        "title": line.title,
        "name": line.name,
        "variant_title": line.variant_title,
        "vendor": line.vendor,
        "quantity": line.quantity if quantity is None else quantity,
        "current_quantity": line.quantity - line.refunded_quantity,
        "fulfillable_quantity": order_math.unfulfilled_quantity(order, line.id),
        "fulfillment_status": order_math.line_fulfillment_status(order, line),
        "fulfillment_service": "manual",
        "variant_inventory_management": "shopify" if variant is not None else None,
        "requires_shipping": line.requires_shipping,
        "taxable": line.taxable,
        "gift_card": line.gift_card,
        "grams": 0,
        "price": rest_amount(price),
        "price_set": money_set(price, order.currency, order.presentment_currency),
        "total_discount": "0.00",
        "total_discount_set": zero,
        "discount_allocations": [],
        "duties": [],
        "properties": [{"name": p["name"], "value": p["value"]} for p in line.properties],
        "tax_lines": _tax_lines(order, line.tax_lines),
    }


def transaction_json(sb: ShopifySandbox, order: Order, txn: Transaction) -> dict[str, Any]:
    tz = sb.world.shop.timezone
    return {
        "id": int(txn.id),
        "admin_graphql_api_id": gid("OrderTransaction", txn.id),
        "order_id": int(order.id),
        "kind": txn.kind.lower(),
        "status": txn.status.lower(),
        "amount": rest_amount(dec(txn.amount)),
        "currency": order.currency,
        "gateway": txn.gateway,
        "parent_id": _num(txn.parent_id),
        "test": txn.test,
        "created_at": rest_time(txn.created_at, tz),
        "processed_at": rest_time(txn.created_at, tz),
    }


def fulfillment_json(sb: ShopifySandbox, order: Order, fulfillment: Fulfillment) -> dict[str, Any]:
    tz = sb.world.shop.timezone
    lines = {li.id: li for li in order.line_items}
    first = fulfillment.tracking[0] if fulfillment.tracking else None
    return {
        "id": int(fulfillment.id),
        "admin_graphql_api_id": gid("Fulfillment", fulfillment.id),
        "order_id": int(order.id),
        "name": fulfillment.name,
        "status": fulfillment.status.lower(),
        "service": "manual",
        "shipment_status": None,
        "location_id": int(fulfillment.location_id),
        "created_at": rest_time(fulfillment.created_at, tz),
        "updated_at": rest_time(fulfillment.updated_at, tz),
        "tracking_company": first.company if first else None,
        "tracking_number": first.number if first else None,
        "tracking_numbers": [t.number for t in fulfillment.tracking if t.number],
        "tracking_url": first.url if first else None,
        "tracking_urls": [t.url for t in fulfillment.tracking if t.url],
        "notify_customer": fulfillment.notify_customer,
        "origin_address": {},
        "receipt": {},
        "line_items": [
            line_item_json(sb, order, lines[fl.line_item_id], fl.quantity)
            for fl in fulfillment.line_items
            if fl.line_item_id in lines
        ],
    }


def refund_json(sb: ShopifySandbox, order: Order, refund: Refund) -> dict[str, Any]:
    tz = sb.world.shop.timezone
    lines = {li.id: li for li in order.line_items}
    txns = {t.id: t for t in order.transactions}
    return {
        "id": int(refund.id),
        "admin_graphql_api_id": gid("Refund", refund.id),
        "order_id": int(order.id),
        "created_at": rest_time(refund.created_at, tz),
        "processed_at": rest_time(refund.created_at, tz),
        "note": refund.note,
        "restock": any(rl.restocked for rl in refund.line_items),
        "user_id": None,
        "refund_line_items": [
            {
                "id": int(rl.id),
                "line_item_id": int(rl.line_item_id),
                "quantity": rl.quantity,
                "restock_type": rl.restock_type.lower(),
                "location_id": _num(rl.location_id),
                "subtotal": rest_amount(dec(rl.subtotal)),
                "subtotal_set": money_set(dec(rl.subtotal), order.currency, order.presentment_currency),
                "total_tax": "0.00",
                "total_tax_set": money_set(Decimal(0), order.currency, order.presentment_currency),
                "line_item": line_item_json(sb, order, lines[rl.line_item_id]),
            }
            for rl in refund.line_items
            if rl.line_item_id in lines
        ],
        "transactions": [transaction_json(sb, order, txns[t]) for t in refund.transaction_ids if t in txns],
        "refund_shipping_lines": [],
        "order_adjustments": [],
        "duties": [],
    }


def order_json(sb: ShopifySandbox, order: Order) -> dict[str, Any]:
    tz = sb.world.shop.timezone
    shop_cur, pres = order.currency, order.presentment_currency

    def mset(amount: Decimal) -> dict[str, Any]:
        return money_set(amount, shop_cur, pres)

    subtotal = order_math.subtotal(order)
    total = order_math.total(order)
    tax = order_math.tax_total(order)
    shipping = order_math.shipping_total(order)
    current_total = order_math.current_total(order)
    fulfillment_status = {"UNFULFILLED": None, "PARTIALLY_FULFILLED": "partial", "FULFILLED": "fulfilled"}
    customer = order.customer
    outstanding = Decimal(0) if order.cancelled_at else max(Decimal(0), total - order_math.received(order))
    return {
        "id": int(order.id),
        "admin_graphql_api_id": gid("Order", order.id),
        "name": order.name,
        "number": order.number - 1000,
        "order_number": order.number,
        "token": f"{int(order.id):x}{order.number:x}",
        "confirmation_number": f"{int(order.id) % 36**9:X}"[:9],
        "email": order.email,
        "contact_email": order.email,
        "phone": order.phone,
        "test": order.test,
        "confirmed": order.confirmed,
        "created_at": rest_time(order.created_at, tz),
        "updated_at": rest_time(order.updated_at, tz),
        "processed_at": rest_time(order.processed_at, tz),
        "closed_at": rest_time(order.closed_at, tz),
        "cancelled_at": rest_time(order.cancelled_at, tz),
        "cancel_reason": order.cancel_reason.lower() if order.cancel_reason else None,
        "currency": shop_cur,
        "presentment_currency": pres,
        "financial_status": order_math.financial_status(order).lower(),
        "fulfillment_status": fulfillment_status[order_math.fulfillment_status(order)],
        "source_name": order.source_name,
        "source_identifier": order.source_identifier,
        "source_url": order.source_url,
        "tags": ", ".join(order.tags),
        "note": order.note,
        "note_attributes": [{"name": a["key"], "value": a["value"]} for a in order.custom_attributes],
        "payment_gateway_names": sorted(
            {t.gateway for t in order.transactions if t.kind in ("SALE", "CAPTURE", "AUTHORIZATION")}
        ),
        "taxes_included": order.taxes_included,
        "estimated_taxes": False,
        "buyer_accepts_marketing": False,
        "discount_codes": [],
        "discount_applications": [],
        "subtotal_price": rest_amount(subtotal),
        "subtotal_price_set": mset(subtotal),
        "current_subtotal_price": rest_amount(order_math.current_subtotal(order)),
        "current_subtotal_price_set": mset(order_math.current_subtotal(order)),
        "total_line_items_price": rest_amount(subtotal),
        "total_line_items_price_set": mset(subtotal),
        "total_price": rest_amount(total),
        "total_price_set": mset(total),
        "current_total_price": rest_amount(current_total),
        "current_total_price_set": mset(current_total),
        "total_tax": rest_amount(tax),
        "total_tax_set": mset(tax),
        "current_total_tax": rest_amount(tax),
        "current_total_tax_set": mset(tax),
        "total_shipping_price_set": mset(shipping),
        "total_discounts": "0.00",
        "total_discounts_set": mset(Decimal(0)),
        "total_outstanding": rest_amount(outstanding),
        "total_tip_received": "0.00",
        "total_weight": 0,
        "tax_lines": _tax_lines(order, order.tax_lines),
        "line_items": [line_item_json(sb, order, li) for li in order.line_items],
        "shipping_lines": [
            {
                "id": int(s.id),
                "title": s.title,
                "code": s.code,
                "source": s.source,
                "price": rest_amount(dec(s.price)),
                "price_set": mset(dec(s.price)),
                "discounted_price": rest_amount(dec(s.price)),
                "tax_lines": [],
            }
            for s in order.shipping_lines
        ],
        "shipping_address": address_json(order.shipping_address),
        "billing_address": address_json(order.billing_address),
        "customer": None
        if customer is None
        else {
            "id": int(customer.id),
            "admin_graphql_api_id": gid("Customer", customer.id),
            "email": customer.email,
            "first_name": customer.first_name,
            "last_name": customer.last_name,
            "phone": customer.phone,
        },
        "fulfillments": [fulfillment_json(sb, order, f) for f in order.fulfillments],
        "refunds": [refund_json(sb, order, r) for r in order.refunds],
        "order_status_url": f"https://{sb.world.shop.domain}/{sb.world.shop.shop_id}/orders/{int(order.id):x}/authenticate",
    }


def product_json(sb: ShopifySandbox, product: Product) -> dict[str, Any]:
    tz = sb.world.shop.timezone
    variants = [v for vid in product.variant_ids if (v := sb.world.get(Variant, vid)) is not None]
    option_names = [name for name, _ in variants[0].options] if variants and variants[0].options else ["Title"]
    return {
        "id": int(product.id),
        "admin_graphql_api_id": gid("Product", product.id),
        "title": product.title,
        "body_html": product.description_html,
        "vendor": product.vendor,
        "product_type": product.product_type,
        "handle": product.handle,
        "status": product.status.lower(),
        "tags": ", ".join(product.tags),
        "created_at": rest_time(product.created_at, tz),
        "updated_at": rest_time(product.updated_at, tz),
        "published_at": rest_time(product.created_at, tz),
        "options": [{"name": n, "position": i + 1} for i, n in enumerate(option_names)],
        "images": [],
        "image": None,
        "variants": [variant_json(sb, v) for v in variants],
    }


def variant_json(sb: ShopifySandbox, variant: Variant) -> dict[str, Any]:
    tz = sb.world.shop.timezone
    item = sb.world.get(InventoryItem, variant.inventory_item_id)
    quantity = sum(lv.get("available") for lv in sb.world.levels_of_item(variant.inventory_item_id))
    options = [value for _, value in variant.options] or [variant.title]
    out: dict[str, Any] = {
        "id": int(variant.id),
        "admin_graphql_api_id": gid("ProductVariant", variant.id),
        "product_id": int(variant.product_id),
        "title": variant.title,
        "sku": variant.sku,
        "barcode": variant.barcode,
        "price": rest_amount(dec(variant.price)),
        "compare_at_price": rest_amount(dec(variant.compare_at_price)) if variant.compare_at_price else None,
        "position": variant.position,
        "inventory_policy": variant.inventory_policy.lower(),
        "inventory_management": "shopify" if item is not None and item.tracked else None,
        "fulfillment_service": "manual",
        "inventory_item_id": int(variant.inventory_item_id),
        "inventory_quantity": quantity,
        "old_inventory_quantity": quantity,
        "requires_shipping": item.requires_shipping if item is not None else True,
        "taxable": True,
        "created_at": rest_time(variant.created_at, tz),
        "updated_at": rest_time(variant.updated_at, tz),
    }
    for index in range(3):
        out[f"option{index + 1}"] = options[index] if index < len(options) else None
    return out


def location_json(sb: ShopifySandbox, location: Location) -> dict[str, Any]:
    tz = sb.world.shop.timezone
    a = location.address
    return {
        "id": int(location.id),
        "admin_graphql_api_id": gid("Location", location.id),
        "name": location.name,
        "address1": a.address1,
        "address2": a.address2,
        "city": a.city,
        "province": a.province,
        "province_code": a.province_code,
        "country": a.country,
        "country_code": a.country_code,
        "zip": a.zip,
        "phone": a.phone,
        "active": location.is_active,
        "created_at": rest_time(location.created_at, tz),
        "updated_at": rest_time(location.updated_at, tz),
    }


def shop_json(sb: ShopifySandbox) -> dict[str, Any]:
    shop = sb.world.shop
    return {
        "id": int(shop.shop_id),
        "name": shop.name,
        "email": shop.email,
        "domain": shop.domain,
        "myshopify_domain": shop.domain,
        "currency": shop.currency,
        "iana_timezone": shop.timezone,
        "plan_display_name": shop.plan_display_name,
        "created_at": rest_time(shop.created_at, shop.timezone),
    }
