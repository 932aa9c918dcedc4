"""The control API under ``/_sandbox/``: the merchant, the customers, the staff and the test harness's hands on the
world. It is part of the sandbox's OpenAPI (``/docs``) and needs no token: it stands for things that happen outside
the Admin API (a customer checking out, a sale at the counter, staff shipping a parcel, faults, time)."""

from __future__ import annotations

import contextlib
import json
from typing import Any, Literal

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field

from . import catalog, order_math, orders, rest
from .errors import SandboxError
from .ids import gid, parse_gid
from .models import ApiFault, Delivery, LatencySpec, Location, Order, Variant, WebhookFault
from .money import gql_amount, gql_time
from .runtime import ShopifySandbox

router = APIRouter(prefix="/_sandbox", tags=["sandbox control"])

SILENT = Query(False, description="change the state without sending its webhooks (drift injection)")


def _sb(request: Request) -> ShopifySandbox:
    sandbox: ShopifySandbox = request.app.state.sandbox
    return sandbox


def _done(sb: ShopifySandbox) -> None:
    sb.tick()
    sb.world.commit()


# --- settings, clock, shop ----------------------------------------------------------------------------------


class SettingsPatch(BaseModel):
    bucket_size: float | None = Field(default=None, gt=0, description="maximumAvailable of the cost bucket")
    restore_rate: float | None = Field(default=None, ge=0, description="points restored per second")
    max_query_cost: int | None = Field(default=None, ge=1, description="single-query limit (MAX_COST_EXCEEDED)")
    throttle_status: Literal[200, 429] | None = Field(default=None, description="HTTP status of THROTTLED answers")
    cancel_delay_seconds: float | None = Field(default=None, ge=0, description="until an orderCancel job is done")
    webhook_retry_base_seconds: float | None = Field(default=None, ge=0, description="retry n waits base x 2^(n-1)")
    webhook_max_retries: int | None = Field(default=None, ge=0)
    remove_failing_subscriptions: bool | None = None
    auth_code_ttl_seconds: float | None = Field(default=None, gt=0)
    expiring_access_token_ttl_seconds: float | None = Field(default=None, gt=0)
    refresh_token_ttl_seconds: float | None = Field(default=None, gt=0)
    client_credentials_ttl_seconds: float | None = Field(default=None, gt=0)
    web_orders_per_second: float | None = Field(default=None, ge=0)
    in_store_sales_per_second: float | None = Field(default=None, ge=0)
    traffic_fulfil: bool | None = None
    fulfil_delay_min_seconds: float | None = Field(default=None, ge=0)
    fulfil_delay_max_seconds: float | None = Field(default=None, ge=0)
    foreign_carrier_share: float | None = Field(default=None, ge=0, le=1)


@router.get("/settings", summary="Sandbox settings (rate limit, cancel delay, webhook retries, traffic…)")
async def get_settings(request: Request) -> dict[str, Any]:
    return _sb(request).world.settings.model_dump()


@router.patch("/settings", summary="Change sandbox settings")
async def patch_settings(body: SettingsPatch, request: Request) -> dict[str, Any]:
    sb = _sb(request)
    settings = sb.world.settings.model_copy(update=body.model_dump(exclude_none=True))
    if settings.fulfil_delay_max_seconds < settings.fulfil_delay_min_seconds:
        raise SandboxError(422, "fulfil_delay_max_seconds must be >= fulfil_delay_min_seconds")
    sb.world.save(settings)
    _done(sb)
    return settings.model_dump()


class AdvanceIn(BaseModel):
    seconds: float = Field(ge=0)


@router.get("/clock", summary="Read the sandbox clock")
async def get_clock(request: Request) -> dict[str, Any]:
    sb = _sb(request)
    return {"now": sb.now(), "iso": gql_time(sb.now()), "speed": sb.clock.speed, "wall": sb.clock.wall()}


@router.post("/clock/advance", summary="Move sandbox time forward (codes and tokens age; due jobs run at once)")
async def advance_clock(body: AdvanceIn, request: Request) -> dict[str, Any]:
    sb = _sb(request)
    sb.clock.advance(body.seconds)
    _done(sb)
    return {"now": sb.now(), "iso": gql_time(sb.now())}


@router.get("/shop", summary="The shop, its locations and the app's credentials")
async def get_shop(request: Request) -> dict[str, Any]:
    sb = _sb(request)
    return {
        **rest.shop_json(sb),
        "gid": gid("Shop", sb.world.shop.shop_id),
        "app_installed": sb.world.shop.app_installed,
        "api_key": sb.config.api_key,
        "access_token": sb.config.access_token,
        "locations": [
            {**rest.location_json(sb, loc), "fulfills_online_orders": loc.fulfills_online_orders}
            for loc in sb.world.locations()
        ],
    }


@router.post("/app/uninstall", summary="The merchant uninstalls the app (app/uninstalled; tokens revoked)")
async def uninstall(request: Request) -> dict[str, Any]:
    sb = _sb(request)
    sb.uninstall_app()
    return {"app_installed": False}


@router.post("/app/install", summary="Install the app again (the custom-app token works again)")
async def install(request: Request) -> dict[str, Any]:
    sb = _sb(request)
    sb.install_app()
    sb.world.commit()
    return {"app_installed": True}


@router.delete("/throttle", status_code=204, summary="Refill every cost bucket")
async def refill(request: Request) -> None:
    _sb(request).buckets.reset()


# --- catalogue and inventory --------------------------------------------------------------------------------


class VariantIn(BaseModel):
    sku: str | None = None
    price: str = "0.00"
    title: str | None = None
    options: list[tuple[str, str]] = Field(default_factory=list, description='e.g. [["Size", "M"]]')
    inventory_policy: Literal["DENY", "CONTINUE"] = "DENY"
    barcode: str | None = None
    tracked: bool = True
    stock: dict[str, int] = Field(
        default_factory=dict, description='available per location name (or "default" for the online location)'
    )


class ProductIn(BaseModel):
    title: str = Field(min_length=1)
    variants: list[VariantIn] = Field(min_length=1)
    vendor: str | None = None
    product_type: str = ""
    tags: list[str] = Field(default_factory=list)


class LocationIn(BaseModel):
    name: str = Field(min_length=1)
    fulfills_online_orders: bool = True
    address1: str | None = None
    city: str | None = None
    province_code: str | None = None
    country_code: str = "US"
    zip: str | None = None


def _variant_json(sb: ShopifySandbox, variant: Variant) -> dict[str, Any]:
    return {
        "id": variant.id,
        "gid": gid("ProductVariant", variant.id),
        "sku": variant.sku,
        "title": variant.title,
        "price": variant.price,
        "inventory_item_gid": gid("InventoryItem", variant.inventory_item_id),
        "inventory": _levels_json(sb, variant),
    }


def _levels_json(sb: ShopifySandbox, variant: Variant) -> list[dict[str, Any]]:
    out = []
    for level in sb.world.levels_of_item(variant.inventory_item_id):
        location = sb.world.get(Location, level.location_id)
        out.append(
            {
                "location": location.name if location else level.location_id,
                "location_gid": gid("Location", level.location_id),
                **{
                    n: level.get(n)
                    for n in (
                        "available",
                        "on_hand",
                        "committed",
                        "reserved",
                        "incoming",
                        "damaged",
                        "safety_stock",
                        "quality_control",
                    )
                },
                "updated_at": gql_time(level.updated_at),
            }
        )
    return out


@router.post("/products", status_code=201, summary="The merchant adds a product with variants and stock")
async def create_product(body: ProductIn, request: Request) -> dict[str, Any]:
    sb = _sb(request)
    product = catalog.create_product(
        sb,
        body.title,
        [v.model_dump() for v in body.variants],
        vendor=body.vendor,
        product_type=body.product_type,
        tags=body.tags,
    )
    _done(sb)
    variants = [v for vid in product.variant_ids if (v := sb.world.get(Variant, vid)) is not None]
    return {
        "id": product.id,
        "gid": gid("Product", product.id),
        "title": product.title,
        "variants": [_variant_json(sb, v) for v in variants],
    }


@router.get("/locations", summary="Every location")
async def list_locations(request: Request) -> list[dict[str, Any]]:
    sb = _sb(request)
    return [
        {
            **rest.location_json(sb, loc),
            "gid": gid("Location", loc.id),
            "fulfills_online_orders": loc.fulfills_online_orders,
        }
        for loc in sb.world.locations()
    ]


@router.post("/locations", status_code=201, summary="The merchant adds a location")
async def create_location(body: LocationIn, request: Request) -> dict[str, Any]:
    from .geo import country_name, province_name
    from .models import Address

    sb = _sb(request)
    address = Address(
        address1=body.address1,
        city=body.city,
        province_code=body.province_code,
        province=province_name(body.country_code, body.province_code),
        zip=body.zip,
        country_code=body.country_code,
        country=country_name(body.country_code),
    )
    location = catalog.create_location(sb, body.name, address, fulfills_online_orders=body.fulfills_online_orders)
    _done(sb)
    return {**rest.location_json(sb, location), "gid": gid("Location", location.id)}


@router.get("/inventory", summary="Stock per variant and location, every quantity state (ground truth)")
async def get_inventory(request: Request, sku: str | None = None) -> list[dict[str, Any]]:
    sb = _sb(request)
    variants = (
        sb.world.variants_with_sku(sku) if sku else sorted(sb.world.table(Variant).values(), key=lambda v: int(v.id))
    )
    if sku and not variants:
        raise SandboxError(404, f"unknown SKU {sku!r}")
    return [_variant_json(sb, v) for v in variants]


class StockIn(BaseModel):
    sku: str
    location: str | None = Field(default=None, description="location name; default: the online location")
    available: int = Field(ge=0)


@router.put("/inventory", summary="The merchant sets a SKU's available quantity in the admin")
async def set_inventory(body: StockIn, request: Request) -> dict[str, Any]:
    from . import inventory

    sb = _sb(request)
    location = catalog.resolve_location(sb, body.location)
    variant = sb.traffic.pick_variant(body.sku, location)
    level = sb.world.level(location.id, variant.inventory_item_id)
    if level is None:
        level = inventory.create_level(sb, variant.inventory_item_id, location.id, 0)
    inventory.apply(sb, level, "available", body.available - level.get("available"))
    inventory.levels_changed(sb, [level], sb.ids.uuid())
    _done(sb)
    return _variant_json(sb, variant)


class SaleIn(BaseModel):
    sku: str
    location: str | None = Field(default=None, description="location name; default: the non-online store")
    quantity: int = Field(default=1, ge=1)


@router.post("/inventory/sale", summary="A sale at the counter takes units off available")
async def in_store_sale(body: SaleIn, request: Request) -> dict[str, Any]:
    sb = _sb(request)
    location = catalog.resolve_location(sb, body.location) if body.location else None
    left = sb.traffic.in_store_sale(body.sku, location, body.quantity)
    _done(sb)
    return {"sku": body.sku, "available": left}


# --- orders -------------------------------------------------------------------------------------------------


def _find_order(sb: ShopifySandbox, key: str) -> Order:
    order_id = parse_gid(key, "Order") if key.startswith("gid://") else key
    order = sb.world.get(Order, order_id)
    if order is None:
        order = next((o for o in sb.world.table(Order).values() if o.name in (key, f"#{key}")), None)
    if order is None:
        raise SandboxError(404, f"unknown order {key!r}")
    return order


def order_truth(sb: ShopifySandbox, order: Order) -> dict[str, Any]:
    lines = {li.id: li for li in order.line_items}
    status = "cancelled" if order.cancelled_at else ("closed" if order.closed_at else "open")
    if order.cancel_job_id:
        status = "cancelling"
    return {
        "id": order.id,
        "gid": gid("Order", order.id),
        "name": order.name,
        "status": status,
        "cancelled": order.cancelled_at is not None,
        "cancelled_at": gql_time(order.cancelled_at),
        "cancel_reason": order.cancel_reason,
        "closed": order.closed_at is not None,
        "financial_status": order_math.financial_status(order),
        "fulfillment_status": order_math.fulfillment_status(order),
        "source_name": order.source_name,
        "source_identifier": order.source_identifier,
        "tags": order.tags,
        "email": order.email,
        "inventory_behaviour": order.inventory_behaviour,
        "created_at": gql_time(order.created_at),
        "updated_at": gql_time(order.updated_at),
        "total_price": gql_amount(order_math.total(order)),
        "total_refunded": gql_amount(order_math.refunded(order)),
        "line_items": [
            {
                "id": li.id,
                "gid": gid("LineItem", li.id),
                "sku": li.sku,
                "title": li.name,
                "quantity": li.quantity,
                "current_quantity": li.quantity - li.refunded_quantity,
                "fulfilled": order_math.fulfilled_quantity(order, li.id),
                "unfulfilled": order_math.unfulfilled_quantity(order, li.id),
                "refunded": li.refunded_quantity,
                "price": li.price,
            }
            for li in order.line_items
        ],
        "fulfillment_orders": [
            {
                "gid": gid("FulfillmentOrder", fo.id),
                "status": fo.status,
                "location": _location_name(sb, fo.location_id),
                "lines": [
                    {
                        "gid": gid("FulfillmentOrderLineItem", fl.id),
                        "sku": lines[fl.line_item_id].sku,
                        "total": fl.total_quantity,
                        "remaining": fl.remaining_quantity,
                    }
                    for fl in fo.line_items
                ],
            }
            for fo in order.fulfillment_orders
        ],
        "fulfillments": [
            {
                "id": f.id,
                "gid": gid("Fulfillment", f.id),
                "name": f.name,
                "status": f.status,
                "location": _location_name(sb, f.location_id),
                "tracking": [t.model_dump() for t in f.tracking],
                "lines": [{"sku": lines[fl.line_item_id].sku, "quantity": fl.quantity} for fl in f.line_items],
                "created_at": gql_time(f.created_at),
            }
            for f in order.fulfillments
        ],
        "refunds": [
            {
                "gid": gid("Refund", r.id),
                "note": r.note,
                "lines": [
                    {
                        "sku": lines[rl.line_item_id].sku,
                        "quantity": rl.quantity,
                        "restock_type": rl.restock_type,
                        "restocked": rl.restocked,
                    }
                    for rl in r.line_items
                ],
                "created_at": gql_time(r.created_at),
            }
            for r in order.refunds
        ],
    }


def _location_name(sb: ShopifySandbox, location_id: str) -> str:
    location = sb.world.get(Location, location_id)
    return location.name if location else location_id


class OrderLineIn(BaseModel):
    sku: str
    quantity: int = Field(default=1, ge=1)


class OrderIn(BaseModel):
    lines: list[OrderLineIn] = Field(min_length=1)
    email: str | None = None
    paid: bool = True
    tags: list[str] = Field(default_factory=list)
    note: str | None = None
    inventory_behaviour: Literal["DECREMENT_OBEYING_POLICY", "DECREMENT_IGNORING_POLICY", "BYPASS"] = (
        "DECREMENT_OBEYING_POLICY"
    )


@router.post("/orders", status_code=201, summary="A web customer places an order (409 when stock cannot cover it)")
async def place_order(body: OrderIn, request: Request) -> dict[str, Any]:
    sb = _sb(request)
    lines = [(sb.traffic.pick_variant(line.sku), line.quantity) for line in body.lines]
    order = sb.traffic.web_order(
        lines, email=body.email, paid=body.paid, tags=body.tags, note=body.note, behaviour=body.inventory_behaviour
    )
    _done(sb)
    return order_truth(sb, order)


@router.get("/orders", summary="Every order as the sandbox knows it (newest first)")
async def list_orders(request: Request, status: str | None = None) -> list[dict[str, Any]]:
    sb = _sb(request)
    out = [order_truth(sb, o) for o in sorted(sb.world.table(Order).values(), key=lambda o: -int(o.id))]
    return [o for o in out if status is None or o["status"] == status]


@router.get("/orders/{order_id:path}", summary="One order by legacy id, GID or name (ground truth)")
async def get_order(order_id: str, request: Request) -> dict[str, Any]:
    sb = _sb(request)
    sb.tick()
    return order_truth(sb, _find_order(sb, order_id))


class FulfilIn(BaseModel):
    carrier: str | None = Field(default=None, description="tracking company; default: drawn like the staff's")
    tracking_number: str | None = None
    tracking_url: str | None = None
    lines: list[OrderLineIn] | None = Field(default=None, description="partial fulfilment; default: everything")


@router.post("/orders/{order_id:path}/fulfil", summary="Staff fulfil an order (partially when lines are given)")
async def fulfil(order_id: str, body: FulfilIn, request: Request, silent: bool = SILENT) -> dict[str, Any]:
    sb = _sb(request)
    order = _find_order(sb, order_id)
    if silent:
        with sb.webhooks.silenced():
            _fulfil(sb, order, body)
    else:
        _fulfil(sb, order, body)
    _done(sb)
    return order_truth(sb, order)


def _fulfil(sb: ShopifySandbox, order: Order, body: FulfilIn) -> None:
    from . import carriers

    if body.lines is None and body.tracking_url is None:
        sb.traffic.staff_fulfil(order, body.carrier, body.tracking_number)
    else:
        carrier = body.carrier or carriers.choose_carrier(sb.rng, sb.world.settings.foreign_carrier_share)
        number = body.tracking_number or carriers.tracking_number(carrier, sb.rng)
        wanted: dict[str, int] | None = None
        if body.lines is not None:
            wanted = {}
            for line in body.lines:
                wanted[line.sku] = wanted.get(line.sku, 0) + line.quantity
        orders.fulfil_lines(sb, order, wanted, {"company": carrier, "number": number, "url": body.tracking_url})


class CancelIn(BaseModel):
    reason: Literal["CUSTOMER", "DECLINED", "FRAUD", "INVENTORY", "OTHER", "STAFF"] = "CUSTOMER"
    restock: bool = True
    refund: bool = True
    staff_note: str | None = None


@router.post("/orders/{order_id:path}/cancel", summary="Staff cancel an order in the admin (at once)")
async def cancel(order_id: str, body: CancelIn, request: Request, silent: bool = SILENT) -> dict[str, Any]:
    sb = _sb(request)
    order = _find_order(sb, order_id)
    problem = orders.check_cancellable(order)
    if problem is not None:
        raise SandboxError(409, problem.message)
    with sb.webhooks.silenced() if silent else contextlib.nullcontext():
        orders.cancel_now(sb, order, body.reason, restock=body.restock, refund=body.refund, staff_note=body.staff_note)
    _done(sb)
    return order_truth(sb, order)


# --- traffic ------------------------------------------------------------------------------------------------


class TrafficIn(BaseModel):
    web_orders_per_second: float | None = Field(default=None, ge=0)
    in_store_sales_per_second: float | None = Field(default=None, ge=0)
    fulfil: bool | None = Field(default=None, description="staff fulfil open orders after a delay")


def _traffic_json(sb: ShopifySandbox) -> dict[str, Any]:
    s = sb.world.settings
    return {
        "enabled": s.traffic_enabled,
        "web_orders_per_second": s.web_orders_per_second,
        "in_store_sales_per_second": s.in_store_sales_per_second,
        "fulfil": s.traffic_fulfil,
        "fulfil_delay_seconds": [s.fulfil_delay_min_seconds, s.fulfil_delay_max_seconds],
        "foreign_carrier_share": s.foreign_carrier_share,
    }


@router.get("/traffic", summary="Is the store simulation running, and at what rates")
async def get_traffic(request: Request) -> dict[str, Any]:
    return _traffic_json(_sb(request))


@router.post("/traffic", summary="Start (or retune) the store simulation")
async def start_traffic(body: TrafficIn, request: Request) -> dict[str, Any]:
    sb = _sb(request)
    sb.traffic.configure(
        enabled=True,
        web_orders_per_second=body.web_orders_per_second,
        in_store_sales_per_second=body.in_store_sales_per_second,
        fulfil=body.fulfil,
    )
    return _traffic_json(sb)


@router.delete("/traffic", summary="Stop the store simulation (planned staff fulfilments are dropped)")
async def stop_traffic(request: Request) -> dict[str, Any]:
    sb = _sb(request)
    sb.traffic.configure(enabled=False)
    return _traffic_json(sb)


# --- faults, stats, webhooks --------------------------------------------------------------------------------


class ApiFaultIn(BaseModel):
    operation: str = Field(default="*", description='a GraphQL root field ("orders", "inventorySetQuantities") or *')
    latency: LatencySpec = Field(default_factory=LatencySpec)
    error_rate: float = Field(default=0.0, ge=0, le=1)
    error_status: int = Field(default=503, ge=500, le=599)
    throttle_rate: float = Field(default=0.0, ge=0, le=1)


class WebhookFaultIn(BaseModel):
    topic: str = Field(default="*", description='a topic such as "orders/create", or *')
    loss_rate: float = Field(default=0.0, ge=0, le=1, description="never delivered at all")
    duplicate_rate: float = Field(default=0.0, ge=0, le=1, description="the same Webhook-Id delivered twice")
    reorder_rate: float = Field(default=0.0, ge=0, le=1, description="held until a later event's delivery went")
    reorder_max_hold_seconds: float = Field(default=10.0, ge=0)
    delay_seconds: float = Field(default=0.0, ge=0, description="added before the first attempt")


@router.get("/faults", summary="Configured API and webhook faults")
async def get_faults(request: Request) -> dict[str, Any]:
    sb = _sb(request)
    return {
        "api": [f.model_dump() for f in sb.world.table(ApiFault).values()],
        "webhooks": [f.model_dump() for f in sb.world.table(WebhookFault).values()],
    }


@router.put("/faults/api", summary="Inject latency, 5xx or THROTTLED into a GraphQL operation")
async def put_api_fault(body: ApiFaultIn, request: Request) -> dict[str, Any]:
    sb = _sb(request)
    fault = ApiFault(id=body.operation, **body.model_dump(exclude={"operation"}))
    sb.world.save(fault)
    sb.world.commit()
    return fault.model_dump()


@router.put("/faults/webhooks", summary="Lose, duplicate, reorder or delay a webhook topic")
async def put_webhook_fault(body: WebhookFaultIn, request: Request) -> dict[str, Any]:
    sb = _sb(request)
    fault = WebhookFault(id=body.topic, **body.model_dump(exclude={"topic"}))
    sb.world.save(fault)
    sb.world.commit()
    return fault.model_dump()


@router.delete("/faults", status_code=204, summary="Remove every fault")
async def clear_faults(request: Request) -> None:
    sb = _sb(request)
    for cls in (ApiFault, WebhookFault):
        for key in list(sb.world.table(cls)):
            sb.world.remove(cls, key)
    sb.world.commit()


@router.get("/stats", summary="API calls by root field, throttled answers, webhooks by topic and outcome")
async def stats(request: Request) -> dict[str, Any]:
    sb = _sb(request)
    by_status: dict[str, int] = {}
    for d in sb.world.table(Delivery).values():
        by_status[d.status] = by_status.get(d.status, 0) + 1
    return {**sb.stats.as_json(), "deliveries_by_status": by_status}


@router.get("/webhooks", summary="The webhook deliveries log (oldest first)")
async def deliveries(
    request: Request, topic: str | None = None, status: str | None = None, limit: int = 500
) -> list[dict[str, Any]]:
    sb = _sb(request)
    chosen = [
        d
        for d in sb.world.table(Delivery).values()
        if (topic is None or d.topic == topic) and (status is None or d.status == status)
    ]
    chosen.sort(key=lambda d: (d.triggered_at, d.seq))
    return [
        {
            "webhook_id": d.webhook_id,
            "event_id": d.event_id,
            "topic": d.topic,
            "uri": d.uri,
            "status": d.status,
            "duplicate": d.duplicate,
            "attempts": d.attempts,
            "triggered_at": gql_time(d.triggered_at),
            "next_attempt_at": gql_time(d.next_attempt_at) if d.status in ("PENDING", "HELD") else None,
            "history": d.history,
            "payload": json.loads(d.body),
        }
        for d in chosen[-limit:]
    ]


@router.post("/webhooks/dispatch", summary="Run one dispatcher pass now (due jobs, due deliveries)")
async def dispatch(request: Request) -> dict[str, int]:
    return {"attempted": await _sb(request).run_once()}
