"""``--seed demo``: the four stores stocked with the TikTok demo's SKUs.

The SKUs are the TikTok demo seed's seller SKUs (``shopbridge.sandbox.tiktok.seed``: 14 product lines in batches,
about 200 SKUs named ``<STEM>-<batch>-<variant>``) at its prices, computed here the same way rather than imported,
so that this emulator stays independent of the others (a test checks they are equal). Each store carries most of
them (the airport store fewer), 0-30 on hand, a few at 0. No tasks, sales or returns: the hub reads these levels
with ``GET /v1/stock`` when it connects. Sequences are left where they start.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .state import StockLevel

if TYPE_CHECKING:
    from .runtime import PosSandbox

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
VARIANTS_PER_KIND = {"size_color": 8, "size": 4, "color": 4, "single": 1}
# The share of the catalogue each demo store carries; other stores carry 70 %.
CARRIED_SHARE = {"store-downtown": 0.9, "store-mall": 0.8, "store-airport": 0.4, "store-harbor": 0.7}
OUT_OF_STOCK_SHARE = 0.08
MAX_ON_HAND = 30


def tiktok_demo_catalogue() -> dict[str, str]:
    """SKU -> price, exactly as the TikTok demo seed builds its listings (in its order)."""
    out: dict[str, str] = {}
    total = batch = 0
    while total < TIKTOK_TARGET:
        for stem, price, kind in TIKTOK_LINES:
            if total >= TIKTOK_TARGET:
                break
            count = VARIANTS_PER_KIND[kind]
            for index in range(count):
                sku = f"{stem.upper().replace(' ', '-')[:20]}-{batch}-{index}"
                out[sku.replace("—", "").replace("&", "")] = price
            total += count
        batch += 1
    return out


def seed_demo(sb: PosSandbox) -> None:
    """Stock every store; a POS that already carries SKUs is left alone."""
    world = sb.world
    if world.catalogue:
        return
    rng = sb.rng
    world.catalogue.update(tiktok_demo_catalogue())
    for store in world.stores.values():
        share = CARRIED_SHARE.get(store.location_id, 0.7)
        for sku in world.catalogue:
            if rng.random() >= share:
                continue
            on_hand = 0 if rng.random() < OUT_OF_STOCK_SHARE else rng.randint(1, MAX_ON_HAND)
            store.levels[sku] = StockLevel(on_hand=on_hand)
