"""`--seed demo`: a realistic shop of about 200 SKUs across categories, two warehouses, a few days of orders
and the statements they settled into."""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Any

from . import cancellations, returns
from . import orders as order_flow
from .models import Order, Product, Seller, Shop
from .products import ProductIn, new_product

if TYPE_CHECKING:
    from .runtime import TikTokSandbox

_COLORS = [("1000001", "Black"), ("1000002", "White"), ("1000003", "Red"), ("1000004", "Blue")]
_SIZES = [("1000071", "S"), ("1000072", "M"), ("1000073", "L"), ("1000074", "XL")]
_MATERIAL = [{"id": "100198", "values": [{"id": "1001981", "name": "Cotton"}]}]

# (category, title stem, price, attribute kind, required attributes)
_LINES: list[tuple[str, str, str, str, list[dict[str, Any]]]] = [
    ("601302", "Relaxed Cotton Tee", "19.90", "size_color", _MATERIAL),
    ("601302", "Cropped Ribbed Tee", "17.50", "size_color", _MATERIAL),
    ("601303", "Linen Button-Up Shirt", "34.00", "size_color", _MATERIAL),
    ("601303", "Satin Blouse", "29.99", "size_color", _MATERIAL),
    ("824584", "Ankle Sports Socks 5-Pack", "12.99", "size", _MATERIAL),
    ("824584", "Wool Hiking Socks", "15.00", "size", _MATERIAL),
    ("824456", "Heavyweight Hoodie", "49.00", "size_color", _MATERIAL),
    ("824456", "Quarter-Zip Sweatshirt", "42.00", "size_color", _MATERIAL),
    ("600954", "Insulated Tumbler", "24.95", "color", [{"id": "100701", "values": [{"id": "1007012"}]}]),
    ("600954", "Glass Water Bottle", "18.00", "color", [{"id": "100701", "values": [{"id": "1007013"}]}]),
    ("601505", "Hydrating Face Serum", "28.00", "single", []),
    ("601505", "Daily Mineral Sunscreen", "22.00", "single", []),
    ("605248", "Clear MagSafe Case", "19.00", "color", []),
    ("605248", "Rugged Armor Case", "25.00", "color", []),
]


def _variants(kind: str) -> list[list[dict[str, Any]]]:
    def attr(attr_id: str, name: str, value: tuple[str, str]) -> dict[str, Any]:
        return {"id": attr_id, "name": name, "value_id": value[0], "value_name": value[1]}

    if kind == "size_color":
        return [[attr("100000", "Color", c), attr("100007", "Size", s)] for c in _COLORS[:2] for s in _SIZES]
    if kind == "size":
        return [[attr("100007", "Size", s)] for s in _SIZES]
    if kind == "color":
        return [[attr("100000", "Color", c)] for c in _COLORS]
    return [[]]


def seed_demo(sb: TikTokSandbox) -> None:
    """Idempotent: a state file that already holds a seller is left alone."""
    from .sellers import create_seller, create_shop

    if sb.world.table(Seller):
        return
    seller = create_seller(sb, "Demo Seller")
    # A US shop, so it sells in USD (its market's currency) and takes no cash on delivery.
    shop = create_shop(sb, seller, "Demo Apparel & Home", warehouse_names=["Los Angeles DC", "New Jersey DC"])
    rng = sb.rng
    total = 0
    batch = 0
    while total < 200:
        for category, stem, price, kind, attributes in _LINES:
            if total >= 200:
                break
            title = stem if batch == 0 else f"{stem} — Edition {batch + 1}"
            skus = []
            for i, variant in enumerate(_variants(kind)):
                seller_sku = f"{stem.upper().replace(' ', '-')[:20]}-{batch}-{i}"
                inventory = [
                    {"warehouse_id": shop.warehouses[0].id, "quantity": rng.randint(0, 120)},
                    {"warehouse_id": shop.warehouses[1].id, "quantity": rng.randint(0, 60)},
                ]
                skus.append(
                    {
                        "seller_sku": seller_sku.replace("—", "").replace("&", ""),
                        "price": {"amount": price, "currency": shop.currency},
                        "inventory": inventory,
                        "sales_attributes": variant,
                    }
                )
            listing = ProductIn.model_validate(
                {
                    "title": title,
                    "description": f"<p>{stem}. Demo product seeded by the TikTok Shop sandbox.</p>",
                    "category_id": category,
                    "main_images": [{"uri": f"tos-maliva-i-sandbox/{stem.lower().replace(' ', '-')}"}],
                    "product_attributes": attributes,
                    "skus": skus,
                }
            )
            product = new_product(sb, shop, listing)
            product.status = "ACTIVATE"
            product.audit_status = "APPROVED"
            product.has_live_version = True
            product.passed_first_review = True
            sb.world.save(product)
            total += len(product.skus)
        batch += 1
    _seed_orders(sb, shop)
    sb.world.commit()


HISTORY_DAYS = 4


def _seed_orders(sb: TikTokSandbox, shop: Shop) -> None:
    """A few days of history: orders every few hours moving through the lifecycle, cancellations, a refund and
    the daily statements that result (an order settles on the day it is delivered, the shop having no settlement
    delay). The clock is rewound first and ends where it started."""
    from .sellers import offers_cod

    in_stock = [
        s
        for p in sb.world.table(Product).values()
        for s in p.skus
        if p.shop_id == shop.id and sum(s.inventory.values()) >= 5
    ]
    rng = sb.rng
    hours = HISTORY_DAYS * 24
    sb.clock.rewind(hours * 3600)
    placed: list[tuple[int, Order]] = []
    for hour in range(hours):
        if hour % 3 == 0:
            sku = rng.choice(in_stock)
            fee = Decimal("0") if rng.random() < 0.5 else Decimal("4.99")
            order = order_flow.place_order(
                sb,
                shop,
                [order_flow.BuyerLine(sku.id, rng.randint(1, 2))],
                shipping_fee=fee,
                # The draw happens in every market so the rest of the history does not depend on the market.
                is_cod=rng.random() < 0.1 and offers_cod(shop.region),
                affiliate_commission_rate=Decimal("0.10") if rng.random() < 0.2 else Decimal(0),
            )
            if rng.random() < 0.1:
                cancellations.buyer_cancel(sb, order, "Changed my mind")
            placed.append((hour, order))
        for born, order in placed:
            _progress(sb, order, hour - born, rng.random())
        sb.clock.advance(3600)
        sb.tick()


def _progress(sb: TikTokSandbox, order: Order, age_hours: int, roll: float) -> None:
    """Seller and carrier act on a schedule: ship within a day, deliver two days later, complete a day after."""
    if order.status == "AWAITING_SHIPMENT" and age_hours >= 6:
        order_flow.ship_with_tiktok_label(sb, order)
    elif order.status == "AWAITING_COLLECTION" and age_hours >= 12:
        order_flow.collect(sb, order)
    elif order.status == "IN_TRANSIT" and age_hours >= 48:
        order_flow.deliver(sb, order)
        if roll < 0.15:
            returns.request_return(
                sb, order, return_type="REFUND", reason="ecom_order_delivered_refund_reason_missing_item", line_ids=None
            )
    elif order.status == "DELIVERED" and age_hours >= 60:
        order_flow.complete(sb, order)
