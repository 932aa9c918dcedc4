"""``--seed demo``: the store the TikTok demo sells from, seen from Shopify.

Its SKUs are the TikTok demo seed's seller SKUs (``shopbridge.sandbox.tiktok.seed``: 14 product lines in batches,
about 200 SKUs named ``<STEM>-<batch>-<variant>``), computed here the same way rather than imported, so that this
emulator stays independent of the other one. A few TikTok SKUs are left out (TikTok-only listings), a few store-only
products are added, and one SKU sits on two variants (a bundle reusing a tee's SKU: Shopify SKUs are not unique,
§3.1, §9.8). Two locations: "Main Warehouse" fulfils online orders, "Downtown Store" sells over the counter. Currency
USD, time zone America/Los_Angeles. A state file that already holds products is left alone.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .catalog import create_location, create_product
from .models import Address, Product

if TYPE_CHECKING:
    from .runtime import ShopifySandbox

# The TikTok demo seed's product lines: (title stem, price, variant kind), in its order.
TIKTOK_LINES: list[tuple[str, str, str]] = [
    ("Relaxed Cotton Tee", "19.90", "size_color"),
    ("Cropped Ribbed Tee", "17.50", "size_color"),
    ("Linen Button-Up Shirt", "34.00", "size_color"),
    ("Satin Blouse", "29.99", "size_color"),
    ("Ankle Sports Socks 5-Pack", "12.99", "size"),
    ("Wool Hiking Socks", "15.00", "size"),
    ("Heavyweight Hoodie", "49.00", "size_color"),
    ("Quarter-Zip Sweatshirt", "42.00", "size_color"),
    ("Insulated Tumbler", "24.95", "color"),
    ("Glass Water Bottle", "18.00", "color"),
    ("Hydrating Face Serum", "28.00", "single"),
    ("Daily Mineral Sunscreen", "22.00", "single"),
    ("Clear MagSafe Case", "19.00", "color"),
    ("Rugged Armor Case", "25.00", "color"),
]
TIKTOK_TARGET = 200
COLORS = ["Black", "White", "Red", "Blue"]
SIZES = ["S", "M", "L", "XL"]
PRODUCT_TYPES = {
    "size_color": "Apparel",
    "size": "Socks",
    "color": "Accessories",
    "single": "Skincare",
}

# TikTok SKUs the store does not carry (listed on TikTok only).
TIKTOK_ONLY = ("SATIN-BLOUSE-0-7", "WOOL-HIKING-SOCKS-1-3", "CLEAR-MAGSAFE-CASE-1-2", "DAILY-MINERAL-SUNSCR-0-0")
# The SKU that also sits on a bundle variant (a duplicate SKU).
DUPLICATED_SKU = "RELAXED-COTTON-TEE-0-0"
STORE_ONLY: list[tuple[str, str, list[str]]] = [
    ("Canvas Tote Bag", "16.00", ["STORE-TOTE-NATURAL", "STORE-TOTE-BLACK"]),
    ("Enamel Pin Set", "9.50", ["STORE-PIN-SET"]),
    ("Gift Wrap", "4.00", ["STORE-GIFT-WRAP"]),
]


def _variant_options(kind: str) -> list[list[tuple[str, str]]]:
    if kind == "size_color":
        return [[("Color", c), ("Size", s)] for c in COLORS[:2] for s in SIZES]
    if kind == "size":
        return [[("Size", s)] for s in SIZES]
    if kind == "color":
        return [[("Color", c)] for c in COLORS]
    return [[]]


def tiktok_demo_lines() -> list[tuple[str, str, str, list[tuple[str, list[tuple[str, str]]]]]]:
    """(title, price, kind, [(seller SKU, options)]) exactly as the TikTok demo seed builds its listings."""
    out = []
    total = batch = 0
    while total < TIKTOK_TARGET:
        for stem, price, kind in TIKTOK_LINES:
            if total >= TIKTOK_TARGET:
                break
            title = stem if batch == 0 else f"{stem} — Edition {batch + 1}"
            skus = []
            for index, options in enumerate(_variant_options(kind)):
                sku = f"{stem.upper().replace(' ', '-')[:20]}-{batch}-{index}"
                skus.append((sku.replace("—", "").replace("&", ""), options))
            out.append((title, price, kind, skus))
            total += len(skus)
        batch += 1
    return out


def tiktok_demo_skus() -> list[str]:
    return [sku for _, _, _, skus in tiktok_demo_lines() for sku, _ in skus]


def seed_demo(sb: ShopifySandbox) -> None:
    if sb.world.table(Product):
        return
    shop = sb.world.shop
    shop.name = "Demo Apparel & Home"
    sb.world.save(shop)
    warehouse = create_location(
        sb,
        "Main Warehouse",
        Address(
            address1="2400 E 12th St",
            city="Los Angeles",
            province="California",
            province_code="CA",
            country="United States",
            country_code="US",
            zip="90021",
            phone="+1 213-555-0142",
        ),
        fulfills_online_orders=True,
    )
    store = create_location(
        sb,
        "Downtown Store",
        Address(
            address1="611 S Broadway",
            city="Los Angeles",
            province="California",
            province_code="CA",
            country="United States",
            country_code="US",
            zip="90014",
            phone="+1 213-555-0177",
        ),
        fulfills_online_orders=False,
    )
    rng = sb.rng
    for title, price, kind, skus in tiktok_demo_lines():
        variants: list[dict[str, Any]] = []
        for sku, options in skus:
            if sku in TIKTOK_ONLY:
                continue
            in_stock = rng.random() > 0.08
            stock = {warehouse.name: rng.randint(5, 120) if in_stock else 0}
            if rng.random() < 0.6:
                stock[store.name] = rng.randint(0, 25)
            variants.append({"sku": sku, "price": price, "options": options, "stock": stock})
        if variants:
            create_product(sb, title, variants, product_type=PRODUCT_TYPES[kind], tags=["tiktok"], notify=False)
    for title, price, store_skus in STORE_ONLY:
        variants = []
        for sku in store_skus:
            color = sku.rsplit("-", 1)[-1].title()
            options = [("Color", color)] if len(store_skus) > 1 else []
            variants.append(
                {
                    "sku": sku,
                    "price": price,
                    "options": options,
                    "stock": {warehouse.name: rng.randint(10, 60), store.name: rng.randint(3, 20)},
                }
            )
        create_product(sb, title, variants, product_type="Accessories", tags=["store-only"], notify=False)
    create_product(
        sb,
        "Relaxed Cotton Tee — Two-Pack Bundle",
        [{"sku": DUPLICATED_SKU, "price": "34.90", "stock": {warehouse.name: rng.randint(5, 30)}}],
        product_type="Apparel",
        tags=["bundle"],
        notify=False,
    )
    sb.world.commit()
