"""Sellers, their shops and warehouses; Get Authorized Shops, Get Active Shops and Get Warehouses."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .gateway import Call, Endpoint
from .models import Address, Seller, Shop, Warehouse
from .money import market_currency

if TYPE_CHECKING:
    from .runtime import TikTokSandbox

# Markets where buyers may pay cash on delivery (Southeast Asia); the US and UK take card and wallet payments only.
COD_MARKETS = frozenset({"ID", "MY", "TH", "VN", "PH", "SG"})


def offers_cod(region: str) -> bool:
    return region in COD_MARKETS


def create_seller(sb: TikTokSandbox, name: str, base_region: str = "US") -> Seller:
    seller = Seller(id=sb.ids.generic(), name=name, base_region=base_region)
    sb.world.save(seller)
    return seller


def create_shop(
    sb: TikTokSandbox,
    seller: Seller,
    name: str,
    *,
    region: str = "US",
    seller_type: str = "LOCAL",
    warehouse_names: list[str] | None = None,
) -> Shop:
    """A shop in a TikTok Shop market, selling in that market's currency (money.UnknownMarket for any other
    region)."""
    currency = market_currency(region)
    names = warehouse_names or ["Main warehouse"]
    warehouses = [
        Warehouse(id=sb.ids.generic(), name=wname, is_default=(i == 0), address=Address(name=wname))
        for i, wname in enumerate(names)
    ]
    shop = Shop(
        id=sb.ids.generic(),
        seller_id=seller.id,
        name=name,
        region=region,
        seller_type="CROSS_BORDER" if seller_type == "CROSS_BORDER" else "LOCAL",
        cipher=sb.ids.shop_cipher(),
        code=sb.ids.shop_code(),
        currency=currency,
        warehouses=warehouses,
    )
    seller.shop_ids.append(shop.id)
    sb.world.save(seller)
    sb.world.save(shop)
    return shop


def add_warehouse(sb: TikTokSandbox, shop: Shop, name: str, *, is_default: bool = False) -> Warehouse:
    warehouse = Warehouse(id=sb.ids.generic(), name=name, is_default=is_default, address=Address(name=name))
    if is_default:
        for w in shop.warehouses:
            w.is_default = False
    shop.warehouses.append(warehouse)
    sb.world.save(shop)
    return warehouse


def default_seller(sb: TikTokSandbox) -> Seller:
    """The seller who "clicks authorize" when none is named: the first one, created on first use."""
    sellers = list(sb.world.table(Seller).values())
    if sellers:
        return sellers[0]
    seller = create_seller(sb, "Sandbox Seller")
    create_shop(sb, seller, "Sandbox Shop")
    return seller


def shop_json(shop: Shop) -> dict[str, Any]:
    return {
        "id": shop.id,
        "name": shop.name,
        "region": shop.region,
        "seller_type": shop.seller_type,
        "cipher": shop.cipher,
        "code": shop.code,
    }


def warehouse_json(w: Warehouse) -> dict[str, Any]:
    a = w.address
    return {
        "id": w.id,
        "name": w.name,
        "effect_status": w.effect_status,
        "is_default": w.is_default,
        "type": w.type,
        "sub_type": w.sub_type,
        "address": {
            "region": "United States",
            "region_code": a.region_code,
            "state": a.state,
            "city": a.city,
            # Spelled this way in the real API.
            "distict": "",
            "postal_code": a.postal_code,
            "full_address": f"{a.address_line1}, {a.city}, {a.state} {a.postal_code}",
            "contact_person": a.name,
            "phone_number": a.phone_number,
        },
    }


def get_authorized_shops(call: Call) -> dict[str, Any]:
    return {"shops": [shop_json(s) for s in call.world.shops_of(call.seller.id)]}


def get_active_shops(call: Call) -> dict[str, Any]:
    return {"shops": [{"id": s.id, "region": s.region} for s in call.world.shops_of(call.seller.id)]}


def get_warehouses(call: Call) -> dict[str, Any]:
    return {"warehouses": [warehouse_json(w) for w in call.require_shop().warehouses]}


ENDPOINTS = [
    Endpoint("GET", "/authorization/202309/shops", get_authorized_shops, shop_scoped=False),
    Endpoint("GET", "/seller/202309/shops", get_active_shops, shop_scoped=False),
    Endpoint("GET", "/logistics/202309/warehouses", get_warehouses),
]
