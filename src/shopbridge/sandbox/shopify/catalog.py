"""Products, variants, inventory items and locations as the merchant creates them in the admin (control API and
seeds): a product with its variants, each variant with its own inventory item (1:1, reference §3.1) stocked at the
locations given."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from . import inventory, rest
from .errors import SandboxError
from .models import Address, InventoryItem, Location, Product, Variant
from .money import dec

if TYPE_CHECKING:
    from .runtime import ShopifySandbox


def handleize(title: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-") or "product"


def create_location(
    sb: ShopifySandbox, name: str, address: Address, *, fulfills_online_orders: bool = True
) -> Location:
    now = sb.now()
    location = Location(
        id=sb.new_id(),
        name=name,
        address=address,
        fulfills_online_orders=fulfills_online_orders,
        created_at=now,
        updated_at=now,
    )
    sb.world.save(location)
    return location


def resolve_location(sb: ShopifySandbox, name: str | None) -> Location:
    """A location by name (case-insensitive) or id; ``None``/``"default"`` is the first online-fulfilling one."""
    locations = [loc for loc in sb.world.locations() if loc.is_active]
    if not locations:
        raise SandboxError(409, "the shop has no location yet")
    if name is None or name == "default":
        return next((loc for loc in locations if loc.fulfills_online_orders), locations[0])
    found = sb.world.location_named(name) or sb.world.get(Location, name)
    if found is None:
        known = ", ".join(loc.name for loc in locations)
        raise SandboxError(404, f"unknown location {name!r} (known: {known})")
    return found


def create_product(
    sb: ShopifySandbox,
    title: str,
    variants: list[dict[str, Any]],
    *,
    vendor: str | None = None,
    product_type: str = "",
    tags: list[str] | None = None,
    status: str = "ACTIVE",
    notify: bool = True,
) -> Product:
    """``variants``: ``{"sku", "price", "title"?, "options"?: [[name, value]], "inventory_policy"?, "barcode"?,
    "tracked"?, "stock": {location name or "default": quantity}}``."""
    if not variants:
        raise SandboxError(422, "a product needs at least one variant")
    now = sb.now()
    product = Product(
        id=sb.new_id(),
        title=title,
        handle=_unique_handle(sb, handleize(title)),
        vendor=vendor or sb.world.shop.name,
        product_type=product_type,
        tags=sorted(tags or []),
        status=status,
        description_html=f"<p>{title}.</p>",
        created_at=now,
        updated_at=now,
    )
    plans = []
    for spec in variants:
        stock = {resolve_location(sb, name).id: int(qty) for name, qty in (spec.get("stock") or {}).items()}
        plans.append((spec, stock))
    for position, (spec, stock) in enumerate(plans, start=1):
        options = [(str(n), str(v)) for n, v in spec.get("options") or []]
        variant = Variant(
            id=sb.new_id(),
            product_id=product.id,
            inventory_item_id="",
            title=spec.get("title") or (" / ".join(v for _, v in options) if options else "Default Title"),
            sku=spec.get("sku"),
            barcode=spec.get("barcode"),
            price=str(dec(spec.get("price", "0"))),
            compare_at_price=spec.get("compare_at_price"),
            inventory_policy=spec.get("inventory_policy", "DENY"),
            position=position,
            options=options,
            created_at=now,
            updated_at=now,
        )
        item = InventoryItem(
            id=sb.new_id(),
            variant_id=variant.id,
            sku=variant.sku,
            tracked=spec.get("tracked", True),
            cost=spec.get("cost"),
            created_at=now,
            updated_at=now,
        )
        variant.inventory_item_id = item.id
        sb.world.save(item)
        sb.world.save(variant)
        product.variant_ids.append(variant.id)
        for location_id, quantity in stock.items():
            inventory.create_level(sb, item.id, location_id, quantity)
    sb.world.save(product)
    if notify:
        event_id = sb.ids.uuid()
        sb.webhooks.trigger("products/create", rest.product_json(sb, product), event_id)
    return product


def _unique_handle(sb: ShopifySandbox, handle: str) -> str:
    taken = {p.handle for p in sb.world.table(Product).values()}
    candidate, n = handle, 1
    while candidate in taken:
        n += 1
        candidate = f"{handle}-{n}"
    return candidate
