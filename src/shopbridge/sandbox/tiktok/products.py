"""Products and inventory (§5): listing with audit, edits, status operations, stock and price updates.

Each SKU's per-warehouse quantity is the sandbox's own stock truth: buyer orders take from it at payment and a
seller's inventory update overwrites it with an absolute quantity. Every update received is logged with its
arrival time so a benchmark can see exactly what the channel was told and when.
"""

from __future__ import annotations

import hashlib
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, Field

from . import catalog
from .errors import ApiError, business, invalid_parameter, item_error
from .gateway import Call, Endpoint
from .images import image_size, multipart_fields
from .models import InventoryUpdate, Order, Product, Shop, Sku
from .money import fmt, parse_amount
from .pagination import paginate, scope_of

if TYPE_CHECKING:
    from .runtime import TikTokSandbox

MAX_SKUS = 300
MAX_QUANTITY = 99_999
# Statuses in which Update Inventory is allowed, per the op docs.
INVENTORY_EDITABLE = {"DRAFT", "PENDING", "FAILED", "ACTIVATE", "SELLER_DEACTIVATED"}
UNHELD_STATUSES = {"UNPAID", "CANCELLED"}

NOT_FOUND = (12019150, "The product ID does not exist.")
BAD_STATUS = (
    12052901,
    "The product in its current status is not available for this operation. Please check the product status.",
)


# --- request bodies ------------------------------------------------------------------------------------------


class ImageIn(BaseModel):
    uri: str


class PriceIn(BaseModel):
    amount: str | int
    currency: str


class InventoryIn(BaseModel):
    warehouse_id: str | None = None
    quantity: int


class SalesAttributeIn(BaseModel):
    id: str | None = None
    name: str | None = None
    value_id: str | None = None
    value_name: str | None = None
    sku_img: ImageIn | None = None


class SkuIn(BaseModel):
    id: str | None = None
    seller_sku: str | None = Field(default=None, max_length=50)
    external_sku_id: str | None = None
    price: PriceIn | None = None
    list_price: PriceIn | None = None
    inventory: list[InventoryIn] | None = None
    sales_attributes: list[SalesAttributeIn] = Field(default_factory=list)
    identifier_code: dict[str, Any] | None = None


class AttributeValueIn(BaseModel):
    id: str | None = None
    name: str | None = None


class ProductAttributeIn(BaseModel):
    id: str
    values: list[AttributeValueIn] = Field(default_factory=list)


class ProductIn(BaseModel):
    title: str = Field(min_length=1, max_length=255)
    description: str = Field(min_length=1, max_length=10_000)
    category_id: str
    main_images: list[ImageIn] = Field(default_factory=list)
    skus: list[SkuIn] = Field(min_length=1)
    save_mode: Literal["AS_DRAFT", "LISTING"] = "LISTING"
    brand_id: str | None = None
    category_version: Literal["v1", "v2"] = "v1"
    product_attributes: list[ProductAttributeIn] = Field(default_factory=list)
    package_weight: dict[str, Any] | None = None
    package_dimensions: dict[str, Any] | None = None
    is_cod_allowed: bool = False
    external_product_id: str | None = None


class PartialProductIn(BaseModel):
    title: str | None = Field(default=None, min_length=1, max_length=255)
    description: str | None = Field(default=None, min_length=1, max_length=10_000)
    category_id: str | None = None
    main_images: list[ImageIn] | None = None
    skus: list[SkuIn] | None = None
    brand_id: str | None = None
    product_attributes: list[ProductAttributeIn] | None = None
    package_weight: dict[str, Any] | None = None
    package_dimensions: dict[str, Any] | None = None
    is_cod_allowed: bool | None = None
    external_product_id: str | None = None


class ProductIdsIn(BaseModel):
    product_ids: list[str] = Field(min_length=1, max_length=20)
    listing_platforms: list[Literal["TIKTOK_SHOP", "TOKOPEDIA"]] | None = None


class InventorySkuIn(BaseModel):
    id: str
    inventory: list[InventoryIn] = Field(min_length=1)


class UpdateInventoryIn(BaseModel):
    skus: list[InventorySkuIn] = Field(min_length=1)


class PriceSkuIn(BaseModel):
    id: str
    price: PriceIn
    list_price: PriceIn | None = None


class UpdatePriceIn(BaseModel):
    skus: list[PriceSkuIn] = Field(min_length=1)


class InventorySearchIn(BaseModel):
    product_ids: list[str] | None = Field(default=None, max_length=100)
    sku_ids: list[str] | None = Field(default=None, max_length=600)


class SearchProductsIn(BaseModel):
    status: (
        Literal[
            "ALL",
            "DRAFT",
            "PENDING",
            "FAILED",
            "ACTIVATE",
            "SELLER_DEACTIVATED",
            "PLATFORM_DEACTIVATED",
            "FREEZE",
            "DELETED",
        ]
        | None
    ) = "ALL"
    seller_skus: list[str] | None = None
    sku_ids: list[str] | None = None
    create_time_ge: int | None = None
    create_time_le: int | None = None
    update_time_ge: int | None = None
    update_time_le: int | None = None
    category_version: Literal["v1", "v2"] | None = None
    listing_platforms: list[Literal["TIKTOK_SHOP", "TOKOPEDIA"]] | None = None
    audit_status: list[Literal["AUDITING", "FAILED", "APPROVED"]] | None = None


# --- shared rules --------------------------------------------------------------------------------------------


def _price(value: PriceIn, shop: Shop) -> Decimal:
    amount = parse_amount(value.amount)
    if amount is None or amount <= 0 or value.currency != shop.currency:
        raise business(12052012, "Incorrect price format")
    return amount


def _validate_listing(shop: Shop, body: ProductIn | PartialProductIn) -> list[dict[str, Any]]:
    """Blocking checks shared by create, edit and listing check; returns non-fatal warnings."""
    if body.category_id is not None:
        catalog.require_category(body.category_id)
        if not catalog.is_leaf(body.category_id):
            raise business(12052024, "Category is not final category")
    if body.main_images is not None and not body.main_images:
        raise business(12052028, "Main product image is required")
    if body.skus is not None and len(body.skus) > MAX_SKUS:
        raise business(12052050, "A single product cannot have more than 100 different SKUs")
    if not shop.warehouses:
        raise business(12052115, "seller has no warehouse")
    for sku in body.skus or []:
        if sku.seller_sku is not None and " " in sku.seller_sku:
            raise invalid_parameter("skus.seller_sku", "contains spaces", "1-50 characters without spaces")
        for inv in sku.inventory or []:
            if inv.warehouse_id is not None and shop.warehouse(inv.warehouse_id) is None:
                raise business(12052097, "The warehouse does not exist")
        if sku.price is not None:
            _price(sku.price, shop)
    warnings = []
    if body.brand_id and catalog.brand_name(body.brand_id) is None:
        warnings.append(
            {
                "message": f"The [brand_id]:{body.brand_id} field is incorrect and has been automatically cleared "
                "by the system. Reason: [Brand does not exist]. You can edit it later."
            }
        )
    return warnings


def _audit_problems(product: Product) -> list[dict[str, Any]]:
    """Why the sandbox's reviewer rejects a listing: prohibited category or a missing required attribute."""
    category = catalog.CATEGORIES.get(product.category_id)
    reasons: list[dict[str, Any]] = []
    if category is not None and category.permission == "PROHIBITED":
        reasons.append(
            {
                "listing_platform": "TIKTOK_SHOP",
                "position": "category",
                "reasons": ["prohibited category"],
                "suggestions": ["Products in this category cannot be sold on TikTok Shop."],
            }
        )
    given = {a.get("id") for a in product.product_attributes}
    for attr_id in category.attributes if category else ():
        attr = catalog.ATTRIBUTES[attr_id]
        if attr.type == "PRODUCT_PROPERTY" and attr.is_required and attr_id not in given:
            reasons.append(
                {
                    "listing_platform": "TIKTOK_SHOP",
                    "position": "product_attributes",
                    "reasons": [f"missing required attribute {attr.name}"],
                    "suggestions": [f"Add the attribute {attr.name} ({attr.id}) and resubmit."],
                }
            )
    return reasons


def _build_skus(sb: TikTokSandbox, shop: Shop, incoming: list[SkuIn], existing: list[Sku]) -> list[Sku]:
    """Full-replace semantics: listed SKUs kept or created, omitted SKUs removed, omitted price/stock untouched."""
    by_id = {s.id: s for s in existing}
    out: list[Sku] = []
    for sku_in in incoming:
        old = by_id.get(sku_in.id) if sku_in.id else None
        if sku_in.id and old is None:
            raise business(12052990, f"The SKU {sku_in.id} does not belong to this product.")
        if old is None and sku_in.price is None:
            raise business(12052012, "Incorrect price format")
        sku = (
            old.model_copy(deep=True)
            if old
            else Sku(id=sb.ids.product_id(), price=_price(sku_in.price, shop) if sku_in.price else Decimal(0))
        )
        if sku_in.price is not None:
            sku.price = _price(sku_in.price, shop)
        if sku_in.list_price is not None:
            sku.list_price = _price(sku_in.list_price, shop)
        if sku_in.seller_sku is not None:
            sku.seller_sku = sku_in.seller_sku
        if sku_in.external_sku_id is not None:
            sku.external_sku_id = sku_in.external_sku_id
        if sku_in.identifier_code is not None:
            sku.identifier_code = sku_in.identifier_code
        if sku_in.sales_attributes or old is None:
            sku.sales_attributes = [_sales_attribute(sb, a) for a in sku_in.sales_attributes]
        if sku_in.inventory is not None:
            sku.inventory = _inventory_map(shop, sku_in.inventory)
        elif old is None:
            sku.inventory = {shop.default_warehouse().id: 0}
        out.append(sku)
    return out


def _sales_attribute(sb: TikTokSandbox, a: SalesAttributeIn) -> dict[str, Any]:
    known = catalog.ATTRIBUTES.get(a.id or "")
    value_name = a.value_name
    if known and a.value_id:
        value_name = next((n for vid, n in known.values if vid == a.value_id), value_name)
    out: dict[str, Any] = {
        "id": a.id or sb.ids.numeric("7", 16),
        "name": a.name or (known.name if known else ""),
        "value_id": a.value_id or sb.ids.numeric("7", 19),
        "value_name": value_name or "",
    }
    if a.sku_img is not None:
        out["sku_img"] = {"uri": a.sku_img.uri}
    return out


def _inventory_map(shop: Shop, entries: list[InventoryIn]) -> dict[str, int]:
    out: dict[str, int] = {}
    for inv in entries:
        warehouse_id = inv.warehouse_id
        if warehouse_id is None:
            # Leaving the warehouse out is only allowed when the shop has just one.
            if len(shop.warehouses) != 1:
                raise invalid_parameter(
                    "skus.inventory.warehouse_id", "required when the shop has several warehouses", "a warehouse id"
                )
            warehouse_id = shop.default_warehouse().id
        if not 0 <= inv.quantity <= MAX_QUANTITY:
            raise business(12019024, "stock count is invalid")
        out[warehouse_id] = inv.quantity
    return out


def _require_product(call: Call, product_id: str) -> Product:
    product = call.world.get(Product, product_id)
    if product is None or product.shop_id != call.require_shop().id:
        raise business(*NOT_FOUND)
    return product


def submit_for_audit(sb: TikTokSandbox, product: Product) -> None:
    now = sb.clock.now_s()
    product.status = "PENDING"
    product.audit_status = "AUDITING"
    product.audit_due_at = now + sb.world.settings.audit_delay_seconds
    product.update_time = now
    sb.world.save(product)
    _emit_audit(sb, product, now)


def _emit_status(sb: TikTokSandbox, product: Product, status: str, at: int) -> None:
    # Doc samples of types 5 and 37 carry product_id as a JSON number; the sandbox does the same.
    data = {"product_id": int(product.id), "status": status, "suspended_reason": "", "update_time": at}
    sb.webhooks.emit(product.shop_id, 5, data)


def _emit_audit(sb: TikTokSandbox, product: Product, at: int) -> None:
    data = {
        "product_id": int(product.id),
        "audit": {"status": product.audit_status, "pre_approved_reasons": []},
        "update_time": at,
    }
    sb.webhooks.emit(product.shop_id, 37, data)


def audit_due(product: Product) -> int | None:
    return product.audit_due_at if product.audit_status == "AUDITING" else None


def run_due_audit(sb: TikTokSandbox, product: Product) -> None:
    """Decide the product's audit if it is due."""
    due = audit_due(product)
    if due is None or due > sb.clock.now():
        return
    problems = _audit_problems(product)
    if product.audit_forced == "fail" and not problems:
        problems = [
            {
                "listing_platform": "TIKTOK_SHOP",
                "position": "product",
                "reasons": ["violate listing rules"],
                "suggestions": ["The product violates TikTok Shop listing rules, please check and resubmit."],
            }
        ]
    elif product.audit_forced == "pass":
        problems = []
    elif not problems and sb.rng.random() < sb.world.settings.audit_fail_rate:
        problems = [
            {
                "listing_platform": "TIKTOK_SHOP",
                "position": "main_images",
                "reasons": ["low image quality"],
                "suggestions": ["Upload clear main images of at least 600 x 600 pixels."],
            }
        ]
    product.audit_due_at = None
    product.audit_forced = None
    product.update_time = due
    if problems:
        product.audit_status = "FAILED"
        product.audit_failed_reasons = problems
        # A live product keeps selling its approved version when an edit fails review.
        product.status = "ACTIVATE" if product.has_live_version else "FAILED"
        _emit_status(sb, product, "PRODUCT_AUDIT_FAILURE", due)
    else:
        first = not product.passed_first_review
        product.audit_status = "APPROVED"
        product.audit_failed_reasons = []
        product.status = "ACTIVATE"
        product.has_live_version = True
        product.passed_first_review = True
        _emit_status(sb, product, "PRODUCT_FIRST_PASS_REVIEW" if first else "PRODUCT_STATUS_CHANGED", due)
    sb.world.save(product)
    _emit_audit(sb, product, due)


# --- responses -----------------------------------------------------------------------------------------------


def sku_json(sku: Sku, shop: Shop) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": sku.id,
        "seller_sku": sku.seller_sku,
        "external_sku_id": sku.external_sku_id,
        "price": {"currency": shop.currency, "sale_price": fmt(sku.price), "tax_exclusive_price": fmt(sku.price)},
        "inventory": [{"warehouse_id": w, "quantity": q} for w, q in sku.inventory.items()],
        "sales_attributes": sku.sales_attributes,
        "status_info": {"status": sku.status},
    }
    if sku.list_price is not None:
        out["list_price"] = {"amount": fmt(sku.list_price), "currency": shop.currency}
    if sku.identifier_code is not None:
        out["identifier_code"] = sku.identifier_code
    return out


def product_json(product: Product, shop: Shop) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": product.id,
        "title": product.title,
        "description": product.description,
        "status": product.status,
        "audit": {"status": product.audit_status},
        "category_chains": [catalog.category_json(c) for c in catalog.chain(product.category_id)],
        "main_images": [
            {
                "uri": i.get("uri", ""),
                "urls": [f"https://sandbox-cdn.invalid/{i.get('uri', '')}"],
                "height": 800,
                "width": 800,
            }
            for i in product.main_images
        ],
        "skus": [sku_json(s, shop) for s in product.skus],
        "product_attributes": product.product_attributes,
        "is_cod_allowed": product.is_cod_allowed,
        "external_product_id": product.external_product_id,
        "create_time": product.create_time,
        "update_time": product.update_time,
        "is_not_for_sale": False,
        "listing_quality_tier": "FAIR",
    }
    if product.brand_id:
        out["brand"] = {"id": product.brand_id, "name": catalog.brand_name(product.brand_id) or ""}
    if product.package_weight is not None:
        out["package_weight"] = product.package_weight
    if product.package_dimensions is not None:
        out["package_dimensions"] = product.package_dimensions
    if product.audit_failed_reasons:
        out["audit_failed_reasons"] = product.audit_failed_reasons
    return out


def product_summary_json(product: Product, shop: Shop) -> dict[str, Any]:
    return {
        "id": product.id,
        "title": product.title,
        "status": product.status,
        "audit": {"status": product.audit_status},
        "create_time": product.create_time,
        "update_time": product.update_time,
        "is_not_for_sale": False,
        "listing_quality_tier": "FAIR",
        "sales_regions": [shop.region],
        "skus": [
            {
                "id": s.id,
                "seller_sku": s.seller_sku,
                "inventory": [{"warehouse_id": w, "quantity": q} for w, q in s.inventory.items()],
                "price": {"currency": shop.currency, "sale_price": fmt(s.price), "tax_exclusive_price": fmt(s.price)},
            }
            for s in product.skus
        ],
    }


# --- creation and edits --------------------------------------------------------------------------------------


def new_product(sb: TikTokSandbox, shop: Shop, body: ProductIn) -> Product:
    now = sb.clock.now_s()
    product = Product(
        id=sb.ids.product_id(),
        shop_id=shop.id,
        title=body.title,
        description=body.description,
        category_id=body.category_id,
        brand_id=body.brand_id if catalog.brand_name(body.brand_id) else None,
        main_images=[i.model_dump() for i in body.main_images],
        product_attributes=[a.model_dump(exclude_none=True) for a in body.product_attributes],
        package_weight=body.package_weight,
        package_dimensions=body.package_dimensions,
        is_cod_allowed=body.is_cod_allowed,
        external_product_id=body.external_product_id or "",
        status="DRAFT",
        create_time=now,
        update_time=now,
    )
    product.skus = _build_skus(sb, shop, body.skus, [])
    return product


def create_product(call: Call) -> dict[str, Any]:
    sb = call.sb
    shop = call.require_shop()
    body = call.body(ProductIn)
    warnings = _validate_listing(shop, body)
    idem = call.param("idempotency_key")
    if idem:
        cached = sb.idempotent.get(("create_product", shop.id, idem))
        if cached is not None:
            return cached
    product = new_product(sb, shop, body)
    sb.world.save(product)
    sb.webhooks.emit(shop.id, 16, {"product_id": product.id, "product_types": [], "update_time": product.create_time})
    if body.save_mode == "LISTING":
        submit_for_audit(sb, product)
    result = {
        "product_id": product.id,
        "skus": [
            {
                "id": s.id,
                "seller_sku": s.seller_sku,
                "external_sku_id": s.external_sku_id,
                "sales_attributes": [{"id": a["id"], "value_id": a["value_id"]} for a in s.sales_attributes],
            }
            for s in product.skus
        ],
        "warnings": warnings,
    }
    if idem:
        sb.idempotent[("create_product", shop.id, idem)] = result
    return result


def _fail_reason(code: int, reasons: list[str]) -> dict[str, Any]:
    """One `fail_reasons[]` item: `code` and `message` as TikTok sends them; `reasons` is kept for older clients
    of the sandbox ([INFERRED]: the reference names `fail_reasons[]` without listing its fields, §5.1)."""
    return {"code": code, "message": "; ".join(reasons), "reasons": reasons}


def listing_check(call: Call) -> dict[str, Any]:
    shop = call.require_shop()
    body = call.body(ProductIn)
    try:
        warnings = _validate_listing(shop, body)
    except ApiError as exc:
        return {
            "check_result": "FAILED",
            "fail_reasons": [_fail_reason(exc.code, [exc.message])],
            "warnings": [],
        }
    probe = new_product(call.sb, shop, body)
    problems = _audit_problems(probe)
    fail_reasons = [_fail_reason(12052990, p["reasons"]) for p in problems]
    return {
        "check_result": "FAILED" if fail_reasons else "PASS",
        "fail_reasons": fail_reasons,
        "warnings": warnings,
    }


def get_product(call: Call) -> dict[str, Any]:
    product = _require_product(call, call.path_params["product_id"])
    return product_json(product, call.require_shop())


CHANGE_FIELDS = ("title", "description", "main_images", "product_attributes")


def _apply_edit(call: Call, product: Product, body: ProductIn | PartialProductIn) -> None:
    sb = call.sb
    shop = call.require_shop()
    if product.status in ("FREEZE", "DELETED"):
        raise business(12052048, "You cannot edit the specified product(s) as it isn't listed in your account or shop.")
    _validate_listing(shop, body)
    before = product.model_copy(deep=True)
    if body.title is not None:
        product.title = body.title
    if body.description is not None:
        product.description = body.description
    if body.category_id is not None:
        product.category_id = body.category_id
    if body.main_images is not None:
        product.main_images = [i.model_dump() for i in body.main_images]
    if body.product_attributes is not None:
        product.product_attributes = [a.model_dump(exclude_none=True) for a in body.product_attributes]
    if body.brand_id is not None:
        product.brand_id = body.brand_id if catalog.brand_name(body.brand_id) else None
    if body.package_weight is not None:
        product.package_weight = body.package_weight
    if body.package_dimensions is not None:
        product.package_dimensions = body.package_dimensions
    if body.is_cod_allowed is not None:
        product.is_cod_allowed = body.is_cod_allowed
    if body.external_product_id is not None:
        product.external_product_id = body.external_product_id
    if body.skus is not None:
        removed = {s.id for s in product.skus} - {s.id for s in body.skus if s.id}
        product.skus = _build_skus(sb, shop, body.skus, product.skus)
        for sku_id in removed:
            sb.world.product_by_sku.pop(sku_id, None)
    now = sb.clock.now_s()
    product.update_time = now
    changed = [f for f in CHANGE_FIELDS if getattr(before, f) != getattr(product, f)]
    if before.category_id != product.category_id:
        changed.append("others")
    sb.world.save(product)
    if changed:
        sb.webhooks.emit(
            shop.id,
            15,
            {"product_id": product.id, "change_source": "OPEN_API", "changed_fields": changed, "update_time": now},
        )
    # Content edits are re-audited; price and stock edits alone skip the audit.
    if changed and product.status in ("ACTIVATE", "PENDING", "FAILED"):
        submit_for_audit(sb, product)


def edit_product(call: Call) -> dict[str, Any]:
    product = _require_product(call, call.path_params["product_id"])
    body = call.body(ProductIn)
    _apply_edit(call, product, body)
    if body.save_mode == "LISTING" and product.status == "DRAFT":
        submit_for_audit(call.sb, product)
    return {
        "product_id": product.id,
        "skus": [{"id": s.id, "seller_sku": s.seller_sku} for s in product.skus],
        "warnings": [],
    }


def partial_edit_product(call: Call) -> dict[str, Any]:
    product = _require_product(call, call.path_params["product_id"])
    _apply_edit(call, product, call.body(PartialProductIn))
    return {"product_id": product.id, "skus": [{"id": s.id, "seller_sku": s.seller_sku} for s in product.skus]}


# --- status operations ---------------------------------------------------------------------------------------


def _batch(call: Call, allowed: set[str], apply: Any) -> dict[str, Any]:
    body = call.body(ProductIdsIn)
    shop = call.require_shop()
    errors: list[dict[str, Any]] = []
    for product_id in body.product_ids:
        product = call.world.get(Product, product_id)
        if product is None or product.shop_id != shop.id:
            errors.append(item_error(*NOT_FOUND, product_id=product_id))
            continue
        if product.status not in allowed:
            errors.append(item_error(*BAD_STATUS, product_id=product_id))
            continue
        apply(product)
        product.update_time = call.now
        call.world.save(product)
    return {"errors": errors}


def activate_products(call: Call) -> dict[str, Any]:
    # Reactivation goes through the audit again: PENDING, then ACTIVATE when it passes.
    return _batch(call, {"SELLER_DEACTIVATED", "PLATFORM_DEACTIVATED"}, lambda p: submit_for_audit(call.sb, p))


def deactivate_products(call: Call) -> dict[str, Any]:
    def apply(p: Product) -> None:
        p.status = "SELLER_DEACTIVATED"
        _emit_status(call.sb, p, "PRODUCT_STATUS_CHANGED", call.now)

    return _batch(call, {"ACTIVATE"}, apply)


def delete_products(call: Call) -> dict[str, Any]:
    def apply(p: Product) -> None:
        p.status = "DELETED"
        p.audit_status = "NONE"
        p.audit_due_at = None
        _emit_status(call.sb, p, "PRODUCT_STATUS_CHANGED", call.now)

    everything_but_frozen = {"DRAFT", "PENDING", "FAILED", "ACTIVATE", "SELLER_DEACTIVATED", "PLATFORM_DEACTIVATED"}
    return _batch(call, everything_but_frozen, apply)


def recover_products(call: Call) -> dict[str, Any]:
    def apply(p: Product) -> None:
        p.status = "SELLER_DEACTIVATED"
        _emit_status(call.sb, p, "PRODUCT_STATUS_CHANGED", call.now)

    return _batch(call, {"DELETED"}, apply)


# --- inventory and price -------------------------------------------------------------------------------------

MULTI_WAREHOUSE = (
    12019028,
    "Multiple warehouses detected. Include all warehouse IDs and the corresponding details and try again.",
)


def update_inventory(call: Call) -> dict[str, Any]:
    sb = call.sb
    shop = call.require_shop()
    product = _require_product(call, call.path_params["product_id"])
    body = call.body(UpdateInventoryIn)
    if product.status not in INVENTORY_EDITABLE:
        raise business(*BAD_STATUS)
    arrival, wall = sb.clock.now(), sb.clock.wall()

    # Request-shape rule first: every warehouse a SKU is stocked in must be listed, or nothing is applied.
    for sku_in in body.skus:
        sku = product.sku(sku_in.id)
        if sku is None:
            continue
        listed = {
            inv.warehouse_id or (shop.default_warehouse().id if len(shop.warehouses) == 1 else None)
            for inv in sku_in.inventory
        }
        if None in listed or not set(sku.inventory) <= listed:
            raise business(*MULTI_WAREHOUSE)

    errors: list[dict[str, Any]] = []
    for sku_in in body.skus:
        sku = product.sku(sku_in.id)
        extra: list[dict[str, Any]] = []
        if sku is None:
            errors.append(
                item_error(
                    12052990,
                    "batch update inventory error",
                    sku_id=sku_in.id,
                    extra_errors=[{"code": 12052990, "message": "The SKU does not belong to this product."}],
                )
            )
            continue
        accepted: dict[str, int] = {}
        for inv in sku_in.inventory:
            warehouse_id = inv.warehouse_id or shop.default_warehouse().id
            code: int | None = None
            if shop.warehouse(warehouse_id) is None:
                code = 12052097
                extra.append({"code": code, "message": "The warehouse does not exist", "warehouse_id": warehouse_id})
            elif not 0 <= inv.quantity <= MAX_QUANTITY:
                code = 12052055
                extra.append(
                    {
                        "code": code,
                        "message": "The SKU inventory quantity for the warehouse must be within allowed limits.",
                        "warehouse_id": warehouse_id,
                    }
                )
            else:
                accepted[warehouse_id] = inv.quantity
            sb.world.save(
                InventoryUpdate(
                    id=sb.ids.generic(),
                    seq=len(sb.world.table(InventoryUpdate)) + 1,
                    shop_id=shop.id,
                    product_id=product.id,
                    sku_id=sku.id,
                    warehouse_id=warehouse_id,
                    quantity=inv.quantity,
                    accepted=code is None and not extra,
                    error_code=code,
                    arrival_time=arrival,
                    arrival_wall_time=wall,
                    request_id=call.request_id,
                )
            )
        if extra:
            errors.append(item_error(12052990, "batch update inventory error", sku_id=sku.id, extra_errors=extra))
            continue
        sku.inventory.update(accepted)
    product.update_time = call.now
    sb.world.save(product)
    return {"errors": errors}


def update_price(call: Call) -> dict[str, Any]:
    shop = call.require_shop()
    product = _require_product(call, call.path_params["product_id"])
    body = call.body(UpdatePriceIn)
    if product.status != "ACTIVATE":
        raise business(12019113, "product status is invalid")
    ids = [s.id for s in body.skus]
    if len(ids) != len(set(ids)):
        raise business(12052553, "Sku id duplicate")
    updates: list[tuple[Sku, Decimal, Decimal | None]] = []
    for sku_in in body.skus:
        sku = product.sku(sku_in.id)
        if sku is None:
            raise business(12052990, f"The SKU {sku_in.id} does not belong to this product.")
        if sku.price_locked:
            raise business(12052038, "Product price locked due to ongoing promotion.")
        list_price = _price(sku_in.list_price, shop) if sku_in.list_price else None
        updates.append((sku, _price(sku_in.price, shop), list_price))
    for sku, price, list_price in updates:
        sku.price = price
        if list_price is not None:
            sku.list_price = list_price
    product.update_time = call.now
    call.world.save(product)
    return {}


def committed_units(sb: TikTokSandbox) -> dict[tuple[str, str], int]:
    """Units paid for but not yet handed to a carrier, per (sku, warehouse)."""
    out: dict[tuple[str, str], int] = {}
    for order in sb.world.table(Order).values():
        if not order.stock_held:
            continue
        shipped = {p.id for p in order.packages if p.status != "TO_FULFILL"}
        for item in order.line_items:
            if item.package_id not in shipped and item.cancel_user is None:
                key = (item.sku_id, item.warehouse_id)
                out[key] = out.get(key, 0) + 1
    return out


def inventory_search(call: Call) -> dict[str, Any]:
    shop = call.require_shop()
    body = call.body(InventorySearchIn)
    if not body.product_ids and not body.sku_ids:
        raise invalid_parameter("product_ids", "neither product_ids nor sku_ids given", "product_ids or sku_ids")
    committed = committed_units(call.sb)
    wanted_skus = set(body.sku_ids or [])
    product_ids = list(body.product_ids or [])
    for sku_id in wanted_skus:
        pid = call.world.product_by_sku.get(sku_id)
        if pid and pid not in product_ids:
            product_ids.append(pid)
    out = []
    for pid in product_ids:
        product = call.world.get(Product, pid)
        if product is None or product.shop_id != shop.id:
            continue
        skus = []
        for sku in product.skus:
            if wanted_skus and sku.id not in wanted_skus and pid not in (body.product_ids or []):
                continue
            per_wh: list[dict[str, Any]] = [
                {
                    "warehouse_id": w,
                    "available_quantity": q,
                    "committed_quantity": committed.get((sku.id, w), 0),
                }
                for w, q in sku.inventory.items()
            ]
            total = sum(sku.inventory.values())
            skus.append(
                {
                    "id": sku.id,
                    "seller_sku": sku.seller_sku,
                    "total_available_quantity": total,
                    "total_committed_quantity": sum(committed.get((sku.id, w), 0) for w in sku.inventory),
                    "warehouse_inventory": per_wh,
                    "total_available_inventory_distribution": {
                        "in_shop_inventory": {"quantity": total},
                        "campaign_inventory": [],
                        "creator_inventory": [],
                    },
                }
            )
        out.append({"product_id": pid, "skus": skus})
    return {"inventory": out}


def search_products(call: Call) -> dict[str, Any]:
    shop = call.require_shop()
    size = call.page_size(100)
    body = call.body(SearchProductsIn)
    if body.seller_skus and len(body.seller_skus) > 10:
        raise business(12019027, 'The maximum count of "seller_skus" in the search filter is 10.')
    if body.sku_ids and len(body.sku_ids) > 10:
        raise invalid_parameter("sku_ids", "more than 10 ids", "at most 10 SKU ids")

    def keep(p: Product) -> bool:
        if p.shop_id != shop.id:
            return False
        if body.status not in (None, "ALL") and p.status != body.status:
            return False
        if body.status in (None, "ALL") and p.status == "DELETED":
            return False
        if body.seller_skus and not {s.seller_sku for s in p.skus} & set(body.seller_skus):
            return False
        if body.sku_ids and not {s.id for s in p.skus} & set(body.sku_ids):
            return False
        if body.audit_status and p.audit_status not in body.audit_status:
            return False
        bounds = (
            (body.create_time_ge, p.create_time, True),
            (body.create_time_le, p.create_time, False),
            (body.update_time_ge, p.update_time, True),
            (body.update_time_le, p.update_time, False),
        )
        return all(b is None or (v >= b if low else v <= b) for b, v, low in bounds)

    matches = [p for p in call.world.table(Product).values() if keep(p)]
    page = paginate(
        matches,
        key=lambda p: (p.create_time, p.id),
        descending=True,
        page_size=size,
        page_token=call.param("page_token"),
        scope=scope_of("products", shop.id, body.model_dump()),
    )
    return {
        "products": [product_summary_json(p, shop) for p in page.items],
        "total_count": page.total_count,
        "next_page_token": page.next_page_token,
    }


IMAGE_FORMATS = "a PNG, JPEG, GIF or WebP image in the multipart field `data`"


def upload_image(call: Call) -> dict[str, Any]:
    """Multipart fields `data` (the file) and `use_case` (§5.1). The size reported is read from the image's own
    header; anything that is not a PNG, JPEG, GIF or WebP image is refused with 98001004 ([INFERRED]: the reference
    names no code of its own for it)."""
    fields = multipart_fields(call.raw_body, call.content_type)
    image = fields.get("data")
    if image is None:
        raise invalid_parameter("data", "missing", IMAGE_FORMATS)
    size = image_size(image)
    if size is None:
        raise invalid_parameter("data", "the file is not a PNG, JPEG, GIF or WebP image", IMAGE_FORMATS)
    _, width, height = size
    # The sandbox does not keep images: the URI is a hash of the image, which is all a listing needs.
    digest = hashlib.sha256(image).hexdigest()[:32]
    uri = f"tos-maliva-i-sandbox/{digest}"
    use_case = fields.get("use_case", b"").decode("utf-8", "replace").strip() or "MAIN_IMAGE"
    return {
        "uri": uri,
        "url": f"https://sandbox-cdn.invalid/{uri}",
        "width": width,
        "height": height,
        "use_case": use_case,
    }


def listing_prerequisites(call: Call) -> dict[str, Any]:
    shop = call.require_shop()
    return {
        "check_results": [
            {"check_item": "SHIPPING_TEMPLATE", "is_failed": False, "fail_reasons": []},
            {"check_item": "WAREHOUSE", "is_failed": not shop.warehouses, "fail_reasons": []},
        ]
    }


ENDPOINTS = [
    Endpoint("POST", "/product/202309/products", create_product),
    Endpoint("DELETE", "/product/202309/products", delete_products),
    Endpoint("POST", "/product/202309/products/listing_check", listing_check),
    Endpoint("POST", "/product/202309/products/activate", activate_products),
    Endpoint("POST", "/product/202309/products/deactivate", deactivate_products),
    Endpoint("POST", "/product/202309/products/recover", recover_products),
    Endpoint("POST", "/product/202309/products/search", search_products),
    Endpoint("POST", "/product/202312/products/search", search_products),
    Endpoint("POST", "/product/202502/products/search", search_products),
    Endpoint("GET", "/product/202309/products/{product_id}", get_product),
    Endpoint("PUT", "/product/202309/products/{product_id}", edit_product),
    Endpoint("PUT", "/product/202509/products/{product_id}", edit_product),
    Endpoint("POST", "/product/202309/products/{product_id}/partial_edit", partial_edit_product),
    Endpoint("POST", "/product/202509/products/{product_id}/partial_edit", partial_edit_product),
    Endpoint("POST", "/product/202309/products/{product_id}/inventory/update", update_inventory),
    Endpoint("POST", "/product/202309/products/{product_id}/prices/update", update_price),
    Endpoint("POST", "/product/202309/inventory/search", inventory_search),
    Endpoint("POST", "/product/202309/images/upload", upload_image, shop_scoped=False, multipart=True),
    Endpoint("GET", "/product/202312/prerequisites", listing_prerequisites),
]
