"""Fulfilment (§6): delivery options, carriers, shipping packages (TikTok label or seller shipping), shipping
info updates within 72 h, package detail and search, shipping documents and order tracking."""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, Field

from .errors import ApiError, ErrorSpec, business, invalid_parameter, item_error
from .gateway import Call, Endpoint
from .models import Order, Package
from .orders import TIKTOK_CARRIER, OrderRejected, order_json, ship_package
from .pagination import paginate, scope_of, within
from .pdf import label_pdf

DELIVERY_OPTION = {"id": "7091146663229654785", "name": "Standard shipping", "type": "STANDARD"}
SHIPPING_PROVIDERS = [
    {"id": "7117858858072016686", "name": "USPS"},
    {"id": "7117859084333745966", "name": "UPS"},
    {"id": "7129736293521327877", "name": "FedEx"},
]
TRACKING_NUMBER = re.compile(r"[A-Za-z0-9\-_./]{4,50}")
# The reference records no fulfilment error texts; these are [INFERRED].
PACKAGE_NOT_FOUND = ErrorSpec(21011001, "The package does not exist or does not belong to the current seller.", 200)
PACKAGE_NOT_SHIPPABLE = ErrorSpec(21011010, "The package status does not allow this operation.", 200)
SHIPPING_INFO_LOCKED = ErrorSpec(
    21011020, "Shipping info can only be updated for seller-shipped packages within 72 hours of shipping.", 200
)
UPDATE_WINDOW_SECONDS = 72 * 3600
DOCUMENT_TTL_SECONDS = 24 * 3600


class PickupSlotIn(BaseModel):
    start_time: int
    end_time: int


class SelfShipmentIn(BaseModel):
    tracking_number: str
    shipping_provider_id: str


class ShipPackageIn(BaseModel):
    handover_method: Literal["PICKUP", "DROP_OFF"] | None = None
    pickup_slot: PickupSlotIn | None = None
    self_shipment: SelfShipmentIn | None = None


def _find_package(call: Call, package_id: str) -> tuple[Order, Package]:
    order_id = call.world.order_by_package.get(package_id)
    order = call.world.get(Order, order_id) if order_id else None
    package = next((p for p in order.packages if p.id == package_id), None) if order else None
    if order is None or package is None or order.shop_id != call.require_shop().id:
        raise PACKAGE_NOT_FOUND.error()
    return order, package


def get_delivery_options(call: Call) -> dict[str, Any]:
    if call.require_shop().warehouse(call.path_params["warehouse_id"]) is None:
        raise business(12052097, "The warehouse does not exist")
    option = {
        **DELIVERY_OPTION,
        "platform": ["TIKTOK_SHOP"],
        "weight_limit": {"max_weight": 30000, "min_weight": 0, "unit": "GRAM"},
        "dimension_limit": {"max_height": 60, "max_length": 60, "max_width": 60, "unit": "CM"},
    }
    return {"delivery_options": [option]}


def get_shipping_providers(call: Call) -> dict[str, Any]:
    if call.path_params["delivery_option_id"] != DELIVERY_OPTION["id"]:
        raise invalid_parameter("delivery_option_id", "unknown delivery option", "an id from Get Delivery Options")
    return {"shipping_providers": SHIPPING_PROVIDERS}


def _ship(call: Call, order: Order, package: Package, body: ShipPackageIn) -> None:
    if order.shipping_type == "SELLER" or body.self_shipment is not None:
        shipment = body.self_shipment
        if shipment is None:
            raise invalid_parameter("self_shipment", "missing", "tracking_number and shipping_provider_id")
        provider_id, provider_name = _provider(shipment.shipping_provider_id, shipment.tracking_number)
        tracking, self_shipped = shipment.tracking_number, True
    else:
        provider_id, provider_name = TIKTOK_CARRIER
        tracking, self_shipped = "TT" + call.sb.ids.numeric("", 16), False
    try:
        ship_package(
            call.sb,
            order,
            package,
            provider_id=provider_id,
            provider_name=provider_name,
            tracking=tracking,
            self_shipped=self_shipped,
            handover_method=body.handover_method or ("DROP_OFF" if self_shipped else "PICKUP"),
        )
    except OrderRejected as exc:
        raise PACKAGE_NOT_SHIPPABLE.error() from exc


def _provider(provider_id: str, tracking_number: str) -> tuple[str, str]:
    if not TRACKING_NUMBER.fullmatch(tracking_number):
        raise invalid_parameter("tracking_number", "bad format", "4-50 characters of [A-Za-z0-9-_./]")
    provider = next((p for p in SHIPPING_PROVIDERS if p["id"] == provider_id), None)
    if provider is None:
        raise invalid_parameter("shipping_provider_id", "unknown provider", "an id from Get Shipping Providers")
    return provider["id"], provider["name"]


def ship(call: Call) -> dict[str, Any]:
    order, package = _find_package(call, call.path_params["package_id"])
    _ship(call, order, package, call.body(ShipPackageIn))
    return {}


class BatchPackageIn(ShipPackageIn):
    id: str


class BatchShipIn(BaseModel):
    packages: list[BatchPackageIn] = Field(min_length=1, max_length=50)


def batch_ship(call: Call) -> dict[str, Any]:
    body = call.body(BatchShipIn)
    errors: list[dict[str, Any]] = []
    for entry in body.packages:
        try:
            order, package = _find_package(call, entry.id)
            _ship(call, order, package, entry)
        except ApiError as exc:
            errors.append(item_error(exc.code, exc.message, package_id=entry.id))
    return {"errors": errors}


class MarkShippedIn(BaseModel):
    tracking_number: str
    shipping_provider_id: str
    order_line_item_ids: list[str] | None = None


def mark_package_as_shipped(call: Call) -> dict[str, Any]:
    """Seller shipping per order or per line: the named lines become one package, shipped with this tracking."""
    order = _find_order(call, call.path_params["order_id"])
    body = call.body(MarkShippedIn)
    provider_id, provider_name = _provider(body.shipping_provider_id, body.tracking_number)
    shipped = {p.id for p in order.packages if p.status != "TO_FULFILL"}
    open_items = [i for i in order.line_items if i.cancel_user is None and i.package_id not in shipped]
    wanted = body.order_line_item_ids or [i.id for i in open_items]
    if not wanted or not set(wanted) <= {i.id for i in open_items}:
        raise invalid_parameter("order_line_item_ids", "not unshipped line items of this order", "unshipped line ids")
    if order.status not in ("AWAITING_SHIPMENT", "PARTIALLY_SHIPPING"):
        raise PACKAGE_NOT_SHIPPABLE.error()
    chosen = [i for i in open_items if i.id in wanted]
    package = Package(id=call.sb.ids.generic(), warehouse_id=chosen[0].warehouse_id)
    for item in chosen:
        item.package_id = package.id
    order.packages.append(package)
    in_use = {i.package_id for i in order.line_items}
    order.packages = [p for p in order.packages if p.id in in_use]
    if len(order.packages) > 1:
        call.sb.webhooks.emit(
            order.shop_id,
            4,
            {
                "sc_type": "SPLIT",
                "role_type": "ROLE_SELLER",
                "package_list": [{"package_id": p.id, "order_id_list": [order.id]} for p in order.packages],
                "update_time": call.now,
            },
        )
    ship_package(
        call.sb,
        order,
        package,
        provider_id=provider_id,
        provider_name=provider_name,
        tracking=body.tracking_number,
        self_shipped=True,
        handover_method="DROP_OFF",
    )
    return {"order_id": order.id, "order_line_item_ids": wanted, "package_id": package.id}


class ShippingInfoIn(BaseModel):
    tracking_number: str
    shipping_provider_id: str


def _update_shipping_info(call: Call, order: Order, packages: list[Package]) -> dict[str, Any]:
    body = call.body(ShippingInfoIn)
    provider_id, provider_name = _provider(body.shipping_provider_id, body.tracking_number)
    shipped = [p for p in packages if p.self_shipped and p.rts_time is not None]
    if not shipped:
        raise SHIPPING_INFO_LOCKED.error()
    if any(call.now > (p.rts_time or 0) + UPDATE_WINDOW_SECONDS for p in shipped):
        raise SHIPPING_INFO_LOCKED.error()
    for p in shipped:
        p.tracking_number = body.tracking_number
        p.shipping_provider_id, p.shipping_provider_name = provider_id, provider_name
    order.update_time = call.now
    call.world.save(order)
    return {}


def update_order_shipping_info(call: Call) -> dict[str, Any]:
    order = _find_order(call, call.path_params["order_id"])
    return _update_shipping_info(call, order, order.packages)


def update_package_shipping_info(call: Call) -> dict[str, Any]:
    order, package = _find_package(call, call.path_params["package_id"])
    return _update_shipping_info(call, order, [package])


def _find_order(call: Call, order_id: str) -> Order:
    order = call.world.get(Order, order_id)
    if order is None or order.shop_id != call.require_shop().id:
        raise ApiError(21008111, "The order or package does not belong to the current seller.", 200)
    return order


DOCUMENT_TYPES = (
    "SHIPPING_LABEL",
    "PACKING_SLIP",
    "SHIPPING_LABEL_AND_PACKING_SLIP",
    "SHIPPING_LABEL_PICTURE",
    "HAZMAT_LABEL",
    "INVOICE_LABEL",
)


def shipping_document(call: Call) -> dict[str, Any]:
    _, package = _find_package(call, call.path_params["package_id"])
    document_type = call.param("document_type")
    if document_type is None:
        raise invalid_parameter("document_type", "missing", " | ".join(DOCUMENT_TYPES))
    if document_type not in DOCUMENT_TYPES:
        raise invalid_parameter("document_type", f"unknown value {document_type!r}", " | ".join(DOCUMENT_TYPES))
    if document_type in ("SHIPPING_LABEL_PICTURE", "INVOICE_LABEL"):
        raise invalid_parameter("document_type", "not available in this market", "a PDF document type")
    size = call.enum_param("document_size", ("A6", "A5"), "A6")
    call.enum_param("document_format", ("PDF",), "PDF")
    if package.status == "TO_FULFILL" or package.tracking_number is None:
        # The label exists once shipment is arranged ("First call Ship Package").
        raise PACKAGE_NOT_SHIPPABLE.error()
    expires = call.now + DOCUMENT_TTL_SECONDS
    url = f"{call.base_url}/_sandbox/documents/{package.id}/{document_type}.pdf?size={size}&expires={expires}"
    return {"doc_url": url, "tracking_number": package.tracking_number}


def document_pdf(order: Order, package: Package, document_type: str, size: str) -> bytes:
    a = order.recipient_address
    lines = [
        f"{document_type.replace('_', ' ')}  ({size})",
        f"Carrier: {package.shipping_provider_name}",
        f"Tracking: {package.tracking_number}",
        f"Order: {order.id}",
        f"Package: {package.id}",
        "Ship to:",
        a.name,
        a.address_line1,
        f"{a.city}, {a.state} {a.postal_code}",
        "TikTok Shop sandbox - not a real label",
    ]
    items = [i for i in order.line_items if i.package_id == package.id]
    if "PACKING_SLIP" in document_type:
        lines += [f"1 x {i.seller_sku} {i.product_name}" for i in items]
    width, height = (298, 420) if size == "A6" else (420, 595)
    return label_pdf(lines, width=width, height=height)


def order_tracking(call: Call) -> dict[str, Any]:
    order = _find_order(call, call.path_params["order_id"])
    events = [
        (order.delivery_time, "Your package was delivered!\n"),
        (order.collection_time, "Package picked up by the carrier."),
        (order.rts_time, "Shipping label created; the carrier is awaiting the package."),
    ]
    return {"tracking": [{"description": text, "update_time_millis": at * 1000} for at, text in events if at]}


def handover_time_slots(call: Call) -> dict[str, Any]:
    _find_package(call, call.path_params["package_id"])
    day = 86_400
    start = (call.now // day + 1) * day + 9 * 3600
    slots = [
        {"start_time": start + n * day, "end_time": start + n * day + 8 * 3600, "avaliable": True} for n in range(3)
    ]
    return {"can_pickup": True, "can_drop_off": True, "pickup_slots": slots, "drop_off_point_url": ""}


class SearchPackagesIn(BaseModel):
    create_time_ge: int | None = None
    create_time_lt: int | None = None
    update_time_ge: int | None = None
    update_time_lt: int | None = None
    package_status: Literal["ALL", "TO_FULFILL", "PROCESSING", "FULFILLING", "COMPLETED", "CANCELLED"] | None = None


def search_packages(call: Call) -> dict[str, Any]:
    shop = call.require_shop()
    size = call.page_size(50)
    sort_field = call.enum_param("sort_field", ("create_time", "update_time", "order_pay_time"), "create_time")
    sort_order = call.enum_param("sort_order", ("ASC", "DESC"), "DESC")
    f = call.body(SearchPackagesIn)
    rows: list[dict[str, Any]] = []
    for order in call.world.table(Order).values():
        if order.shop_id != shop.id or order.paid_time is None:
            continue
        for package in order.packages:
            created = package.rts_time or order.paid_time
            updated = max(created, order.update_time)
            row: dict[str, Any] = {
                "id": package.id,
                "status": package.status,
                "order_line_item_ids": [i.id for i in order.line_items if i.package_id == package.id],
                "orders": [{"id": order.id}],
                "shipping_provider_id": package.shipping_provider_id or "",
                "shipping_provider_name": package.shipping_provider_name or "",
                "tracking_number": package.tracking_number or "",
                "create_time": order.paid_time,
                "update_time": updated,
                "order_pay_time": order.paid_time,
            }
            checks = (
                f.package_status in (None, "ALL") or package.status == f.package_status,
                within(order.paid_time, f.create_time_ge, f.create_time_lt),
                within(updated, f.update_time_ge, f.update_time_lt),
            )
            if all(checks):
                rows.append(row)
    page = paginate(
        rows,
        key=lambda r: (r[sort_field], r["id"]),
        descending=sort_order == "DESC",
        page_size=size,
        page_token=call.param("page_token"),
        scope=scope_of("packages", shop.id, sort_field, sort_order, f.model_dump()),
    )
    packages = [{k: v for k, v in r.items() if k != "order_pay_time"} for r in page.items]
    return {"packages": packages, "next_page_token": page.next_page_token, "total_count": page.total_count}


def get_package(call: Call) -> dict[str, Any]:
    order, package = _find_package(call, call.path_params["package_id"])
    items = [i for i in order.line_items if i.package_id == package.id]
    counts: dict[str, int] = {}
    for item in items:
        counts[item.sku_id] = counts.get(item.sku_id, 0) + 1
    names = {i.sku_id: i.product_name for i in items}
    detail = order_json(order)
    out: dict[str, Any] = {
        "package_id": package.id,
        "package_status": package.status,
        "orders": [
            {
                "id": order.id,
                "skus": [{"id": s, "name": names[s], "image_url": "", "quantity": n} for s, n in counts.items()],
            }
        ],
        "order_line_item_ids": [i.id for i in items],
        "shipping_type": order.shipping_type,
        "delivery_option_id": DELIVERY_OPTION["id"],
        "delivery_option_name": DELIVERY_OPTION["name"],
        "split_and_combine_tag": "SPLIT" if len(order.packages) > 1 else "DEFAULT",
        "has_multi_skus": len(counts) > 1,
        "recipient_address": detail["recipient_address"],
        "create_time": order.paid_time or order.create_time,
        "update_time": order.update_time,
    }
    if package.tracking_number:
        out["shipping_provider_id"] = package.shipping_provider_id
        out["shipping_provider_name"] = package.shipping_provider_name
        out["tracking_number"] = package.tracking_number
    return out


ENDPOINTS = [
    Endpoint("GET", "/logistics/202309/warehouses/{warehouse_id}/delivery_options", get_delivery_options),
    Endpoint(
        "GET", "/logistics/202309/delivery_options/{delivery_option_id}/shipping_providers", get_shipping_providers
    ),
    Endpoint("POST", "/fulfillment/202309/packages/search", search_packages),
    Endpoint("POST", "/fulfillment/202309/packages/ship", batch_ship),
    Endpoint("POST", "/fulfillment/202309/packages/{package_id}/ship", ship),
    Endpoint("GET", "/fulfillment/202309/packages/{package_id}", get_package),
    Endpoint("GET", "/fulfillment/202309/packages/{package_id}/shipping_documents", shipping_document),
    Endpoint("GET", "/fulfillment/202309/packages/{package_id}/handover_time_slots", handover_time_slots),
    Endpoint("POST", "/fulfillment/202309/packages/{package_id}/shipping_info/update", update_package_shipping_info),
    Endpoint("POST", "/fulfillment/202309/orders/{order_id}/packages", mark_package_as_shipped),
    Endpoint("POST", "/fulfillment/202309/orders/{order_id}/shipping_info/update", update_order_shipping_info),
    Endpoint("GET", "/fulfillment/202309/orders/{order_id}/tracking", order_tracking),
]
