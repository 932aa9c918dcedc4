"""The control API under `/_sandbox/`: the buyers, the platform and the test harness's hands on the world.

It is part of the sandbox's OpenAPI. It is not signed: it stands for things that happen outside the Partner
API (a buyer checking out, a carrier scanning a parcel, time passing).

The order lifecycle steps take ``?silent=true``: the order changes and no webhook is sent, which is how tests and
benchmarks inject drift for the hub's backstops to find.
"""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Callable
from decimal import Decimal
from typing import Any, Literal

from fastapi import APIRouter, Body, HTTPException, Query, Request
from fastapi.openapi.models import Example
from fastapi.responses import Response
from pydantic import BaseModel, Field

from . import cancellations, customer_service, finance, fulfillment
from . import orders as order_flow
from . import returns as return_flow
from .models import (
    Address,
    Adjustment,
    Delivery,
    EndpointFault,
    InventoryUpdate,
    LatencySpec,
    Order,
    Product,
    RateLimit,
    Return,
    Seller,
    Shop,
    Token,
    WebhookFault,
)
from .money import UnknownMarket, fmt, has_precision, in_precision, market_currency, parse_amount, parse_signed
from .products import ProductIn, new_product, product_json, submit_for_audit
from .reasons import DEFAULT_BUYER_REASON, SYSTEM_NOT_SHIPPED_REASON
from .runtime import TikTokSandbox
from .sellers import COD_MARKETS, add_warehouse, create_seller, create_shop, offers_cod, shop_json, warehouse_json

router = APIRouter(prefix="/_sandbox", tags=["sandbox control"])

SILENT = Query(False, description="change the state without sending the webhook (drift injection)")


def _sb(request: Request) -> TikTokSandbox:
    sandbox: TikTokSandbox = request.app.state.sandbox
    return sandbox


def _done(sb: TikTokSandbox) -> None:
    sb.tick()
    sb.world.commit()


def _clock_json(sb: TikTokSandbox) -> dict[str, Any]:
    return {"now": sb.clock.now(), "now_s": sb.clock.now_s(), "speed": sb.clock.speed, "wall": sb.clock.wall()}


# --- clock and settings --------------------------------------------------------------------------------------


class AdvanceIn(BaseModel):
    seconds: float = Field(ge=0)


class SpeedIn(BaseModel):
    speed: float = Field(ge=0)


class SettingsPatch(BaseModel):
    on_hold_seconds: int | None = Field(default=None, ge=0)
    audit_delay_seconds: int | None = Field(default=None, ge=0)
    audit_fail_rate: float | None = Field(default=None, ge=0, le=1)
    shipping_window_seconds: int | None = Field(default=None, ge=0)
    unpaid_cancel_seconds: int | None = Field(default=None, ge=0)
    access_token_ttl_seconds: int | None = Field(default=None, ge=1)
    refresh_token_ttl_seconds: int | None = Field(default=None, ge=1)
    auth_code_ttl_seconds: int | None = Field(default=None, ge=1)
    rate_limit_qps: float | None = Field(default=None, ge=0)
    rate_limit_burst: int | None = Field(default=None, ge=1)
    app_webhook_address: str | None = Field(default=None, description="Partner Center callback for every topic")


@router.get("/clock", summary="Read the sandbox clock")
async def get_clock(request: Request) -> dict[str, Any]:
    return _clock_json(_sb(request))


@router.post("/clock/advance", summary="Move sandbox time forward; due transitions happen at once")
async def advance_clock(body: AdvanceIn, request: Request) -> dict[str, Any]:
    sb = _sb(request)
    sb.clock.advance(body.seconds)
    _done(sb)
    return _clock_json(sb)


@router.put("/clock/speed", summary="Set the clock multiplier (1.0 = real time, 0 = frozen)")
async def set_speed(body: SpeedIn, request: Request) -> dict[str, Any]:
    sb = _sb(request)
    sb.clock.set_speed(body.speed)
    return _clock_json(sb)


@router.get("/settings", summary="World settings (hold length, audit delay, SLA window, token lifetimes...)")
async def get_settings(request: Request) -> dict[str, Any]:
    return _sb(request).world.settings.model_dump()


@router.patch("/settings", summary="Change world settings")
async def patch_settings(body: SettingsPatch, request: Request) -> dict[str, Any]:
    sb = _sb(request)
    settings = sb.world.settings.model_copy(update=body.model_dump(exclude_none=True))
    sb.world.save(settings)
    _done(sb)
    return settings.model_dump()


# --- sellers, shops, products, stock -------------------------------------------------------------------------


class SellerIn(BaseModel):
    name: str = Field(min_length=1)
    base_region: str = "US"


class ShopTermsIn(BaseModel):
    """A shop's settlement terms; rates are decimal strings ("0.10")."""

    settlement_delay_days: int | None = Field(default=None, ge=0, le=365, description="days after delivery")
    reserve_rate: str | None = Field(default=None, description="share of each positive settlement held back, [0, 1)")
    reserve_days: int | None = Field(default=None, ge=1, le=365, description="days a reserve is held")
    referral_fee_rate: str | None = Field(default=None, description="share of net sales charged, [0, 1)")


class ShopIn(ShopTermsIn):
    seller_id: str
    name: str = Field(min_length=1)
    region: str = Field(default="US", description="the market; the shop sells in its currency (US → USD, VN → VND…)")
    seller_type: Literal["LOCAL", "CROSS_BORDER"] = "LOCAL"
    currency: str | None = Field(default=None, description="optional; must be the region's currency")
    warehouses: list[str] = Field(default_factory=lambda: ["Main warehouse"], min_length=1)


class WarehouseIn(BaseModel):
    name: str = Field(min_length=1)
    is_default: bool = False


class ControlSkuIn(BaseModel):
    seller_sku: str
    price: str
    # Either one quantity for the default warehouse or quantities per warehouse id.
    quantity: int | None = Field(default=None, ge=0, le=99_999)
    inventory: dict[str, int] | None = None
    sales_attributes: list[dict[str, Any]] = Field(default_factory=list)


class ControlProductIn(BaseModel):
    shop_id: str
    title: str = Field(min_length=1, max_length=255)
    description: str = "A sandbox product."
    category_id: str = "601302"
    brand_id: str | None = None
    product_attributes: list[dict[str, Any]] = Field(
        default_factory=lambda: [{"id": "100198", "values": [{"id": "1001981", "name": "Cotton"}]}]
    )
    skus: list[ControlSkuIn] = Field(min_length=1)
    # ACTIVATE puts the product on sale at once; PENDING sends it through the audit like an API listing.
    status: Literal["ACTIVATE", "PENDING", "DRAFT"] = "ACTIVATE"


class StockIn(BaseModel):
    sku_id: str
    warehouse_id: str | None = None
    quantity: int = Field(ge=0, le=99_999)


class AuditIn(BaseModel):
    result: Literal["pass", "fail"]
    # Resolve now instead of waiting for the configured audit delay.
    immediately: bool = True


def _shop(sb: TikTokSandbox, shop_id: str) -> Shop:
    shop = sb.world.get(Shop, shop_id)
    if shop is None:
        raise HTTPException(404, f"unknown shop {shop_id}")
    return shop


def _seller_json(sb: TikTokSandbox, seller: Seller) -> dict[str, Any]:
    return {
        "id": seller.id,
        "name": seller.name,
        "base_region": seller.base_region,
        "shops": [_shop_json(s) for s in sb.world.shops_of(seller.id)],
    }


def _shop_json(shop: Shop) -> dict[str, Any]:
    return {
        **shop_json(shop),
        "currency": shop.currency,
        "warehouses": [warehouse_json(w) for w in shop.warehouses],
        "settlement_delay_days": shop.settlement_delay_days,
        "reserve_rate": str(shop.reserve_rate),
        "reserve_days": shop.reserve_days,
        "referral_fee_rate": str(shop.referral_fee_rate),
    }


def _terms(body: ShopTermsIn) -> dict[str, Any]:
    """The terms the body changes, checked before anything is created or changed."""
    terms: dict[str, Any] = {
        key: value
        for key, value in (("settlement_delay_days", body.settlement_delay_days), ("reserve_days", body.reserve_days))
        if value is not None
    }
    for key, text in (("reserve_rate", body.reserve_rate), ("referral_fee_rate", body.referral_fee_rate)):
        if text is not None:
            terms[key] = _rate(text, key)
    return terms


@router.get("/sellers", summary="Every seller with its shops, ciphers and warehouses")
async def list_sellers(request: Request) -> list[dict[str, Any]]:
    sb = _sb(request)
    return [_seller_json(sb, s) for s in sb.world.table(Seller).values()]


@router.post("/sellers", status_code=201, summary="Create a seller")
async def post_seller(body: SellerIn, request: Request) -> dict[str, Any]:
    sb = _sb(request)
    seller = create_seller(sb, body.name, body.base_region)
    _done(sb)
    return _seller_json(sb, seller)


@router.post("/sellers/{seller_id}/deauthorize", summary="The seller revokes the app (SELLER_DEAUTHORIZATION)")
async def deauthorize(seller_id: str, request: Request) -> dict[str, Any]:
    sb = _sb(request)
    seller = sb.world.get(Seller, seller_id)
    if seller is None:
        raise HTTPException(404, f"unknown seller {seller_id}")
    revoked = [t.id for t in sb.world.table(Token).values() if t.seller_id == seller_id]
    for token_id in revoked:
        sb.world.remove(Token, token_id)
    for shop in sb.world.shops_of(seller_id):
        sb.webhooks.emit(shop.id, 6, {"message": f"Shop_id {shop.id} is deauthorized from your APP by merchant."})
    _done(sb)
    return {"seller_id": seller_id, "revoked_tokens": len(revoked)}


@router.post("/shops", status_code=201, summary="Create a shop (with warehouses) for a seller")
async def post_shop(body: ShopIn, request: Request) -> dict[str, Any]:
    sb = _sb(request)
    seller = sb.world.get(Seller, body.seller_id)
    if seller is None:
        raise HTTPException(404, f"unknown seller {body.seller_id}")
    try:
        currency = market_currency(body.region)
    except UnknownMarket as exc:
        raise HTTPException(422, str(exc)) from exc
    if body.currency is not None and body.currency != currency:
        raise HTTPException(422, f"a shop in {body.region} sells in {currency}, not {body.currency}")
    terms = _terms(body)
    shop = create_shop(
        sb, seller, body.name, region=body.region, seller_type=body.seller_type, warehouse_names=body.warehouses
    )
    for key, value in terms.items():
        setattr(shop, key, value)
    sb.world.save(shop)
    _done(sb)
    return _shop_json(shop)


@router.patch("/shops/{shop_id}", summary="Change a shop's settlement terms (delay after delivery, reserve, fee rate)")
async def patch_shop(shop_id: str, body: ShopTermsIn, request: Request) -> dict[str, Any]:
    sb = _sb(request)
    sb.tick()
    shop = _shop(sb, shop_id)
    for key, value in _terms(body).items():
        setattr(shop, key, value)
    sb.world.save(shop)
    # Orders waiting to settle follow the new delay.
    finance.follow_terms(sb, shop)
    _done(sb)
    return _shop_json(shop)


@router.post("/shops/{shop_id}/warehouses", status_code=201, summary="Add a warehouse to a shop")
async def post_warehouse(shop_id: str, body: WarehouseIn, request: Request) -> dict[str, Any]:
    sb = _sb(request)
    warehouse = add_warehouse(sb, _shop(sb, shop_id), body.name, is_default=body.is_default)
    _done(sb)
    return warehouse_json(warehouse)


@router.post("/products", status_code=201, summary="Create a product with stock, as if listed in Seller Center")
async def post_product(body: ControlProductIn, request: Request) -> dict[str, Any]:
    sb = _sb(request)
    shop = _shop(sb, body.shop_id)
    skus: list[dict[str, Any]] = []
    for s in body.skus:
        price = parse_amount(s.price)
        if price is None:
            raise HTTPException(422, f"price {s.price!r} is not a decimal string")
        if not has_precision(price, shop.currency):
            raise HTTPException(422, f"price {s.price!r} has more decimals than {shop.currency} allows")
        inventory = s.inventory or {shop.default_warehouse().id: s.quantity or 0}
        unknown = [w for w in inventory if shop.warehouse(w) is None]
        if unknown:
            raise HTTPException(422, f"unknown warehouses {unknown}")
        skus.append(
            {
                "seller_sku": s.seller_sku,
                "price": {"amount": s.price, "currency": shop.currency},
                "inventory": [{"warehouse_id": w, "quantity": q} for w, q in inventory.items()],
                "sales_attributes": s.sales_attributes,
            }
        )
    listing = ProductIn.model_validate(
        {
            "title": body.title,
            "description": body.description,
            "category_id": body.category_id,
            "brand_id": body.brand_id,
            "main_images": [{"uri": "tos-maliva-i-sandbox/placeholder"}],
            "product_attributes": body.product_attributes,
            "skus": skus,
        }
    )
    product = new_product(sb, shop, listing)
    if body.status == "ACTIVATE":
        product.status = "ACTIVATE"
        product.audit_status = "APPROVED"
        product.has_live_version = True
        product.passed_first_review = True
    sb.world.save(product)
    if body.status == "PENDING":
        submit_for_audit(sb, product)
    _done(sb)
    return product_json(product, shop)


@router.post("/products/{product_id}/audit", summary="Decide a pending audit (pass or fail)")
async def decide_audit(product_id: str, body: AuditIn, request: Request) -> dict[str, Any]:
    sb = _sb(request)
    product = sb.world.get(Product, product_id)
    if product is None:
        raise HTTPException(404, f"unknown product {product_id}")
    product.audit_forced = body.result
    if body.immediately and product.audit_status == "AUDITING":
        product.audit_due_at = sb.clock.now_s()
    sb.world.save(product)
    _done(sb)
    return product_json(product, _shop(sb, product.shop_id))


class PlatformStatusIn(BaseModel):
    status: Literal["PLATFORM_DEACTIVATED", "FREEZE", "ACTIVATE"]
    reason: str = "Violation of TikTok Shop listing policy"


@router.post("/products/{product_id}/platform_status", summary="The platform deactivates, freezes or restores")
async def platform_status(product_id: str, body: PlatformStatusIn, request: Request) -> dict[str, Any]:
    sb = _sb(request)
    product = sb.world.get(Product, product_id)
    if product is None:
        raise HTTPException(404, f"unknown product {product_id}")
    now = sb.clock.now_s()
    product.status = body.status
    product.update_time = now
    sb.world.save(product)
    sb.webhooks.emit(
        product.shop_id,
        5,
        {
            "product_id": int(product.id),
            "status": "PRODUCT_STATUS_CHANGED",
            "suspended_reason": "" if body.status == "ACTIVATE" else body.reason,
            "update_time": now,
        },
    )
    _done(sb)
    return product_json(product, _shop(sb, product.shop_id))


@router.put("/stock", summary="Set a SKU's stock in one warehouse (the sandbox's own truth)")
async def put_stock(body: StockIn, request: Request) -> dict[str, Any]:
    sb = _sb(request)
    product = sb.world.product_of_sku(body.sku_id)
    sku = product.sku(body.sku_id) if product else None
    if product is None or sku is None:
        raise HTTPException(404, f"unknown SKU {body.sku_id}")
    shop = _shop(sb, product.shop_id)
    warehouse_id = body.warehouse_id or shop.default_warehouse().id
    if shop.warehouse(warehouse_id) is None:
        raise HTTPException(422, f"unknown warehouse {warehouse_id}")
    sku.inventory[warehouse_id] = body.quantity
    sb.world.save(product)
    _done(sb)
    return {"sku_id": sku.id, "inventory": sku.inventory}


# --- buyers, carriers and order lifecycle ---------------------------------------------------------------------


class OrderLineIn(BaseModel):
    sku_id: str
    quantity: int = Field(default=1, ge=1, le=1000)


class BuyerOrderIn(BaseModel):
    shop_id: str
    items: list[OrderLineIn] = Field(min_length=1)
    buyer_user_id: str | None = None
    paid: bool = True
    is_cod: bool = Field(default=False, description="cash on delivery; offered in ID, MY, TH, VN, PH and SG only")
    shipping_type: Literal["TIKTOK", "SELLER"] = "TIKTOK"
    shipping_fee: str = "0.00"
    tax: str = "0.00"
    buyer_message: str = ""
    recipient_address: Address | None = None
    # An affiliate order: this share of net sales is paid to the creator (shows up in statements).
    affiliate_commission_rate: str = "0"


class CancelIn(BaseModel):
    reason: str = Field(
        default=DEFAULT_BUYER_REASON,
        description="A buyer reason key (e.g. ecom_order_to_ship_canceled_reason_created_by_mistakes) or its text; "
        "other words are filed under ecom_order_to_ship_canceled_reason_other with the words as the text",
    )


def _order(sb: TikTokSandbox, order_id: str) -> Order:
    order = sb.world.get(Order, order_id)
    if order is None:
        raise HTTPException(404, f"unknown order {order_id}")
    return order


def _order_truth(order: Order) -> dict[str, Any]:
    # The control API shows the whole order, including what the Partner API withholds during ON_HOLD, and when it
    # settles (the statement it settled on, or the statement_time it will settle on).
    return {
        **order_flow.order_json(order),
        "hold_until": order.hold_until,
        "sandbox_recipient_address": order.recipient_address.model_dump(),
        "sandbox_settlement": {
            "statement_id": order.statement_id,
            "settlement_due": finance.settlement_due(order),
            "discrepancy": _discrepancy_json(order),
        },
    }


def _discrepancy_json(order: Order) -> dict[str, Any]:
    d = order.discrepancy
    return {
        "withhold": d.withhold,
        "revenue_delta": fmt(d.revenue_delta, order.currency),
        "delay_days": d.delay_days,
        "skip_refund": d.skip_refund,
        "referral_fee_rate": str(d.referral_fee_rate) if d.referral_fee_rate is not None else None,
    }


def _rate(value: str, name: str) -> Decimal:
    try:
        rate = Decimal(value)
    except ArithmeticError as exc:
        raise HTTPException(422, f"{name} {value!r} is not a decimal") from exc
    if not Decimal(0) <= rate < Decimal(1):
        raise HTTPException(422, f"{name} must be in [0, 1)")
    return rate


def _amount(value: str, name: str, currency: str) -> Decimal:
    amount = parse_amount(value)
    if amount is None:
        raise HTTPException(422, f"{name} {value!r} is not a decimal string")
    if not has_precision(amount, currency):
        raise HTTPException(422, f"{name} {value!r} has more decimals than {currency} allows")
    return amount


@router.post("/orders", status_code=201, summary="A buyer places (and by default pays) an order")
async def post_order(body: BuyerOrderIn, request: Request) -> dict[str, Any]:
    sb = _sb(request)
    shop = _shop(sb, body.shop_id)
    if body.is_cod and not offers_cod(shop.region):
        raise HTTPException(
            400, f"cash on delivery is not offered in {shop.region}; it is in {', '.join(sorted(COD_MARKETS))}"
        )
    try:
        order = order_flow.place_order(
            sb,
            shop,
            [order_flow.BuyerLine(i.sku_id, i.quantity) for i in body.items],
            buyer_user_id=body.buyer_user_id,
            paid=body.paid,
            is_cod=body.is_cod,
            shipping_type=body.shipping_type,
            shipping_fee=_amount(body.shipping_fee, "shipping_fee", shop.currency),
            tax=_amount(body.tax, "tax", shop.currency),
            address=body.recipient_address,
            buyer_message=body.buyer_message,
            affiliate_commission_rate=_rate(body.affiliate_commission_rate, "affiliate_commission_rate"),
        )
    except order_flow.OrderRejected as exc:
        sb.world.commit()
        raise HTTPException(409, {"message": exc.message, "shortages": exc.shortages}) from exc
    _done(sb)
    return _order_truth(order)


@router.get("/orders/{order_id}", summary="The whole order as the sandbox knows it")
async def get_order(order_id: str, request: Request) -> dict[str, Any]:
    sb = _sb(request)
    sb.tick()
    return _order_truth(_order(sb, order_id))


async def _lifecycle(
    request: Request, order_id: str, step: Callable[[TikTokSandbox, Order], object], silent: bool = False
) -> dict[str, Any]:
    sb = _sb(request)
    sb.tick()
    order = _order(sb, order_id)
    try:
        with sb.webhooks.silenced() if silent else contextlib.nullcontext():
            step(sb, order)
    except order_flow.OrderRejected as exc:
        sb.world.commit()
        raise HTTPException(409, {"message": exc.message, "shortages": exc.shortages}) from exc
    _done(sb)
    return _order_truth(order)


@router.post("/orders/{order_id}/pay", summary="The buyer pays an UNPAID order")
async def pay(order_id: str, request: Request, silent: bool = SILENT) -> dict[str, Any]:
    return await _lifecycle(request, order_id, order_flow.pay_order, silent)


@router.post(
    "/orders/{order_id}/buyer_cancel",
    summary="The buyer cancels: at once during the hold, as a request for the seller afterwards",
)
async def buyer_cancel(order_id: str, body: CancelIn, request: Request, silent: bool = SILENT) -> dict[str, Any]:
    return await _lifecycle(request, order_id, lambda sb, order: cancellations.buyer_cancel(sb, order, body.reason),
                            silent)  # fmt: skip


@router.post(
    "/orders/{order_id}/platform_cancel",
    summary="The platform cancels every unshipped line (as when the seller did not ship in time)",
)
async def platform_cancel(order_id: str, request: Request, silent: bool = SILENT) -> dict[str, Any]:
    def cancel(sb: TikTokSandbox, order: Order) -> None:
        order_flow.cancel_order(sb, order, "SYSTEM", SYSTEM_NOT_SHIPPED_REASON, sb.clock.now_s())

    return await _lifecycle(request, order_id, cancel, silent)


@router.post("/orders/{order_id}/ship", summary="Arrange shipment of every unshipped package (TikTok label)")
async def ship(order_id: str, request: Request, silent: bool = SILENT) -> dict[str, Any]:
    return await _lifecycle(request, order_id, order_flow.ship_with_tiktok_label, silent)


@router.post("/orders/{order_id}/collect", summary="The carrier collects: AWAITING_COLLECTION → IN_TRANSIT")
async def collect(order_id: str, request: Request, silent: bool = SILENT) -> dict[str, Any]:
    return await _lifecycle(request, order_id, order_flow.collect, silent)


@router.post("/orders/{order_id}/deliver", summary="The carrier delivers: IN_TRANSIT → DELIVERED")
async def deliver(order_id: str, request: Request, silent: bool = SILENT) -> dict[str, Any]:
    return await _lifecycle(request, order_id, order_flow.deliver, silent)


@router.post("/orders/{order_id}/complete", summary="The order completes: DELIVERED → COMPLETED")
async def complete(order_id: str, request: Request, silent: bool = SILENT) -> dict[str, Any]:
    return await _lifecycle(request, order_id, order_flow.complete, silent)


class ReturnRequestIn(BaseModel):
    return_type: Literal["REFUND", "RETURN_AND_REFUND"] = "RETURN_AND_REFUND"
    reason: str = "ecom_order_delivered_refund_and_return_reason_damaged"
    # Default: every line item that can still be returned.
    line_item_ids: list[str] | None = None


class BuyerShipIn(BaseModel):
    tracking_number: str = "9400111899223197428490"


class OfferAnswerIn(BaseModel):
    accept: bool


def _return(sb: TikTokSandbox, return_id: str) -> Return:
    found = sb.world.get(Return, return_id)
    if found is None:
        raise HTTPException(404, f"unknown return {return_id}")
    return found


def _return_truth(sb: TikTokSandbox, r: Return) -> dict[str, Any]:
    return return_flow.return_json(r, sb.world.get(Order, r.order_id))


@router.post("/orders/{order_id}/request_return", status_code=201, summary="The buyer asks for a return or refund")
async def request_return(order_id: str, body: ReturnRequestIn, request: Request) -> dict[str, Any]:
    sb = _sb(request)
    sb.tick()
    try:
        r = return_flow.request_return(
            sb, _order(sb, order_id), return_type=body.return_type, reason=body.reason, line_ids=body.line_item_ids
        )
    except order_flow.OrderRejected as exc:
        sb.world.commit()
        raise HTTPException(409, {"message": exc.message}) from exc
    _done(sb)
    return _return_truth(sb, r)


@router.post("/returns/{return_id}/buyer_ship", summary="The buyer ships the return parcel")
async def return_buyer_ship(return_id: str, body: BuyerShipIn, request: Request) -> dict[str, Any]:
    sb = _sb(request)
    r = _return(sb, return_id)
    try:
        return_flow.buyer_ships(sb, r, body.tracking_number)
    except order_flow.OrderRejected as exc:
        raise HTTPException(409, {"message": exc.message}) from exc
    _done(sb)
    return _return_truth(sb, r)


@router.post("/returns/{return_id}/buyer_response", summary="The buyer accepts or refuses a partial refund offer")
async def return_buyer_response(return_id: str, body: OfferAnswerIn, request: Request) -> dict[str, Any]:
    sb = _sb(request)
    r = _return(sb, return_id)
    try:
        return_flow.buyer_answers_offer(sb, r, body.accept)
    except order_flow.OrderRejected as exc:
        raise HTTPException(409, {"message": exc.message}) from exc
    _done(sb)
    return _return_truth(sb, r)


# --- faults and rate limits ----------------------------------------------------------------------------------


class EndpointFaultIn(BaseModel):
    endpoint: str = Field(description='"METHOD /path/template" as listed by GET /_sandbox/endpoints, or "*"')
    latency: LatencySpec = Field(default_factory=LatencySpec)
    error_rate: float = Field(default=0.0, ge=0, le=1)
    error_code: int = 36009003
    rate_429: float = Field(default=0.0, ge=0, le=1)
    timeout_rate: float = Field(default=0.0, ge=0, le=1)
    timeout_seconds: float = Field(default=10.0, ge=0)


class WebhookFaultIn(BaseModel):
    event_type: str = Field(description='A topic such as "ORDER_STATUS_CHANGE", or "*"')
    drop_rate: float = Field(default=0.0, ge=0, le=1)
    duplicate_rate: float = Field(default=0.0, ge=0, le=1)
    reorder_window_seconds: float = Field(default=0.0, ge=0)


class RateLimitIn(BaseModel):
    path: str = Field(
        description='A path template such as "/order/202309/orders/search", "*" for every path without its own, '
        'or "shop" for one bucket per shop that every path draws from as well'
    )
    qps: float = Field(ge=0)
    burst: int = Field(ge=1)


@router.get("/endpoints", summary="Every Partner API endpoint the sandbox serves")
async def list_endpoints(request: Request) -> list[dict[str, Any]]:
    gateway = request.app.state.gateway
    return [
        {"endpoint": e.key, "method": e.method, "path": e.template, "shop_cipher": e.shop_scoped}
        for e in gateway.router.endpoints
    ]


@router.get("/faults", summary="Configured endpoint and webhook faults")
async def get_faults(request: Request) -> dict[str, Any]:
    sb = _sb(request)
    return {
        "endpoints": [f.model_dump() for f in sb.world.table(EndpointFault).values()],
        "webhooks": [f.model_dump() for f in sb.world.table(WebhookFault).values()],
    }


@router.put("/faults/endpoints", summary="Inject latency, errors, 429s or timeouts into an endpoint")
async def put_endpoint_fault(body: EndpointFaultIn, request: Request) -> dict[str, Any]:
    sb = _sb(request)
    fault = EndpointFault(id=body.endpoint, **body.model_dump(exclude={"endpoint"}))
    sb.world.save(fault)
    sb.world.commit()
    return fault.model_dump()


@router.put("/faults/webhooks", summary="Drop, duplicate or reorder one webhook stream")
async def put_webhook_fault(body: WebhookFaultIn, request: Request) -> dict[str, Any]:
    sb = _sb(request)
    fault = WebhookFault(id=body.event_type, **body.model_dump(exclude={"event_type"}))
    sb.world.save(fault)
    sb.world.commit()
    return fault.model_dump()


@router.delete("/faults", status_code=204, summary="Remove every fault")
async def clear_faults(request: Request) -> None:
    sb = _sb(request)
    for cls in (EndpointFault, WebhookFault):
        for key in list(sb.world.table(cls)):
            sb.world.remove(cls, key)
    sb.world.commit()


@router.put("/rate_limits", summary="Set the token bucket for one path template (* for all, shop for per shop)")
async def put_rate_limit(body: RateLimitIn, request: Request) -> dict[str, Any]:
    sb = _sb(request)
    limit = RateLimit(id=body.path, qps=body.qps, burst=body.burst)
    sb.world.save(limit)
    sb.limiter.reset()
    sb.world.commit()
    return limit.model_dump()


@router.delete("/rate_limits", status_code=204, summary="Back to the default bucket; refill every bucket")
async def clear_rate_limits(request: Request) -> None:
    sb = _sb(request)
    for key in list(sb.world.table(RateLimit)):
        sb.world.remove(RateLimit, key)
    sb.limiter.reset()
    sb.world.commit()


# --- webhooks ------------------------------------------------------------------------------------------------


@router.get("/webhooks/deliveries", summary="The webhook outbox: every delivery and its attempts")
async def list_deliveries(request: Request, status: str | None = None) -> list[dict[str, Any]]:
    deliveries = _sb(request).world.table(Delivery).values()
    chosen = [d for d in deliveries if status is None or d.status == status]
    return [d.model_dump() for d in sorted(chosen, key=lambda d: d.seq)]


@router.post("/webhooks/dispatch", summary="Run one dispatcher pass now (due transitions, due deliveries)")
async def dispatch(request: Request) -> dict[str, int]:
    return {"attempted": await _sb(request).run_once()}


@router.get(
    "/documents/{package_id}/{document_type}.pdf",
    summary="A shipping document handed out by Get Package Shipping Document (valid 24 h)",
    response_class=Response,
)
async def shipping_document(
    package_id: str, document_type: str, request: Request, size: str = "A6", expires: int = 0
) -> Response:
    sb = _sb(request)
    if expires < sb.clock.now_s():
        raise HTTPException(410, "this document URL has expired; ask for a new one")
    order_id = sb.world.order_by_package.get(package_id)
    order = sb.world.get(Order, order_id) if order_id else None
    package = next((p for p in order.packages if p.id == package_id), None) if order else None
    if order is None or package is None or not package.tracking_number:
        raise HTTPException(404, f"no document for package {package_id}")
    return Response(fulfillment.document_pdf(order, package, document_type, size), media_type="application/pdf")


class AdjustmentIn(BaseModel):
    shop_id: str
    amount: str = Field(description="Signed decimal string: positive pays the seller, negative charges them")
    type: Literal[
        "PLATFORM_COMPENSATION",
        "PLATFORM_REIMBURSEMENT",
        "PLATFORM_PENALTY",
        "CHARGE_BACK",
        "CUSTOMER_SERVICE_COMPENSATION",
        "PROMOTION_ADJUSTMENT",
        "REBATE",
    ] = "PLATFORM_COMPENSATION"


@router.post("/finance/adjustments", status_code=201, summary="Queue an adjustment for the shop's next statement")
async def post_adjustment(body: AdjustmentIn, request: Request) -> dict[str, Any]:
    sb = _sb(request)
    shop = _shop(sb, body.shop_id)
    try:
        amount = in_precision(Decimal(body.amount), shop.currency)
    except ArithmeticError as exc:
        raise HTTPException(422, f"amount {body.amount!r} is not a decimal string") from exc
    adjustment = Adjustment(
        id=sb.ids.generic(), shop_id=body.shop_id, type=body.type, amount=amount, create_time=sb.clock.now_s()
    )
    sb.world.save(adjustment)
    sb.world.commit()
    return {
        "id": adjustment.id,
        "type": adjustment.type,
        "amount": fmt(amount, shop.currency),
        "create_time": adjustment.create_time,
    }


# Sandbox-only, not part of TikTok's API: what each kind of settlement discrepancy needs besides `kind`.
DISCREPANCY_FIELDS: dict[str, tuple[str, ...]] = {
    "withhold": ("order_id",),
    "revenue_delta": ("order_id", "amount"),
    "unknown_order": ("shop_id", "amount"),
    "delay": ("order_id", "days"),
    "skip_refund": ("order_id",),
    "fee_rate": ("order_id", "referral_fee_rate"),
}
DISCREPANCY_EXAMPLES: dict[str, Example] = {
    "withhold": {"value": {"kind": "withhold", "order_id": "576461413038785752"}},
    "revenue_delta": {"value": {"kind": "revenue_delta", "order_id": "576461413038785752", "amount": "-1.50"}},
    "unknown_order": {"value": {"kind": "unknown_order", "shop_id": "7494049642642441621", "amount": "12.00"}},
    "delay": {"value": {"kind": "delay", "order_id": "576461413038785752", "days": 3}},
    "skip_refund": {"value": {"kind": "skip_refund", "order_id": "576461413038785752"}},
    "fee_rate": {"value": {"kind": "fee_rate", "order_id": "576461413038785752", "referral_fee_rate": "0.08"}},
}
DISCREPANCY_BODY = Body(openapi_examples=DISCREPANCY_EXAMPLES)


def _signed_amount(body: dict[str, Any], currency: str) -> Decimal:
    amount = parse_signed(body["amount"], currency)
    if amount is None:
        raise HTTPException(400, f"amount {body['amount']!r} is not a decimal string in {currency}'s precision")
    return amount


@router.post(
    "/finance/discrepancies",
    status_code=201,
    summary="Sandbox-only (not TikTok's API): make a settlement disagree with the orders, for reconciliation tests",
    description="Kinds: `withhold {order_id}` (the order and its refunds never settle), `revenue_delta {order_id, "
    "amount}` (its revenue and settlement are off by the signed amount), `unknown_order {shop_id, amount}` (the "
    "shop's next statement has an ORDER line for a made-up order id, answered as `order_id`), `delay {order_id, "
    "days}` (it settles days later), `skip_refund {order_id}` (its refunds are never deducted), `fee_rate "
    "{order_id, referral_fee_rate}` (its referral fee at this rate). An order that already settled takes only "
    "`skip_refund` (409 otherwise).",
)
async def post_discrepancy(request: Request, body: dict[str, Any] = DISCREPANCY_BODY) -> dict[str, Any]:
    kind = body.get("kind")
    if not kind:
        raise HTTPException(400, "missing field: kind")
    if kind not in DISCREPANCY_FIELDS:
        raise HTTPException(400, f"unknown kind {kind!r}: one of {', '.join(DISCREPANCY_FIELDS)}")
    missing = [name for name in DISCREPANCY_FIELDS[kind] if body.get(name) in (None, "")]
    if missing:
        raise HTTPException(400, f"{kind} needs missing field: {', '.join(missing)}")
    sb = _sb(request)
    sb.tick()
    if kind == "unknown_order":
        shop = _shop(sb, str(body["shop_id"]))
        amount = _signed_amount(body, shop.currency)
        line = finance.queue_unknown_order(sb, shop, amount)
        _done(sb)
        return {"kind": kind, "shop_id": shop.id, "order_id": line.order_id, "amount": fmt(amount, shop.currency)}
    order = _order(sb, str(body["order_id"]))
    if kind != "skip_refund" and order.statement_id is not None:
        raise HTTPException(409, f"order {order.id} already settled on statement {order.statement_id}")
    recorded: dict[str, Any] = {}
    d = order.discrepancy
    if kind == "withhold":
        d.withhold = True
    elif kind == "skip_refund":
        d.skip_refund = True
    elif kind == "revenue_delta":
        d.revenue_delta = _signed_amount(body, order.currency)
        recorded["amount"] = fmt(d.revenue_delta, order.currency)
    elif kind == "delay":
        days = body["days"]
        if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= 365:
            raise HTTPException(400, f"days {days!r} is not a whole number of days from 1 to 365")
        d.delay_days = days
        recorded["days"] = days
    else:
        try:
            d.referral_fee_rate = _rate(str(body["referral_fee_rate"]), "referral_fee_rate")
        except HTTPException as exc:
            raise HTTPException(400, exc.detail) from exc
        recorded["referral_fee_rate"] = str(d.referral_fee_rate)
    sb.world.save(order)
    _done(sb)
    return {
        "kind": kind,
        "order_id": order.id,
        "shop_id": order.shop_id,
        **recorded,
        "settlement_due": finance.settlement_due(order),
        "discrepancy": _discrepancy_json(order),
    }


@router.get("/finance/discrepancies", summary="Sandbox-only: every settlement discrepancy injected, and where it is")
async def list_discrepancies(request: Request, shop_id: str | None = None) -> list[dict[str, Any]]:
    sb = _sb(request)
    sb.tick()
    out: list[dict[str, Any]] = []
    for order in sb.world.table(Order).values():
        if order.discrepancy.injected and (shop_id is None or order.shop_id == shop_id):
            out.append(
                {
                    "order_id": order.id,
                    "shop_id": order.shop_id,
                    "statement_id": order.statement_id,
                    "settlement_due": finance.settlement_due(order),
                    **_discrepancy_json(order),
                }
            )
    for line in sb.world.table(Adjustment).values():
        if line.type == "ORDER" and line.order_id and (shop_id is None or line.shop_id == shop_id):
            shop = sb.world.get(Shop, line.shop_id)
            out.append(
                {
                    "kind": "unknown_order",
                    "order_id": line.order_id,
                    "shop_id": line.shop_id,
                    "statement_id": line.statement_id,
                    "settlement_due": finance.settlement_due(line),
                    "amount": fmt(line.amount, shop.currency if shop else None),
                }
            )
    return out


@router.post("/finance/statements/generate", summary="Close every ended day now (also happens on its own)")
async def generate_statements(request: Request) -> list[dict[str, Any]]:
    sb = _sb(request)
    sb.tick()
    made = finance.generate_due(sb)
    sb.world.commit()
    return [finance.statement_json(s) for s in made]


class BuyerMessageIn(BaseModel):
    shop_id: str
    buyer_user_id: str
    text: str = Field(min_length=1, max_length=2000)
    nickname: str = "Buyer"


@router.post("/messages", status_code=201, summary="A buyer writes to the shop (NEW_MESSAGE webhook, type 14)")
async def post_buyer_message(body: BuyerMessageIn, request: Request) -> dict[str, Any]:
    sb = _sb(request)
    message = customer_service.buyer_sends(sb, _shop(sb, body.shop_id), body.buyer_user_id, body.text, body.nickname)
    _done(sb)
    return customer_service.message_json(message) | {"conversation_id": message.conversation_id}


# --- truth views ---------------------------------------------------------------------------------------------


@router.get("/truth/stock", summary="Stock per SKU and warehouse, as the sandbox holds it")
async def truth_stock(request: Request, shop_id: str | None = None) -> list[dict[str, Any]]:
    sb = _sb(request)
    sb.tick()
    out = []
    for product in sb.world.table(Product).values():
        if shop_id is not None and product.shop_id != shop_id:
            continue
        for sku in product.skus:
            out.append(
                {
                    "shop_id": product.shop_id,
                    "product_id": product.id,
                    "sku_id": sku.id,
                    "seller_sku": sku.seller_sku,
                    "product_status": product.status,
                    "warehouses": dict(sku.inventory),
                    "total": sum(sku.inventory.values()),
                }
            )
    return out


@router.get("/truth/sold", summary="Units sold per SKU: paid line items not cancelled")
async def truth_sold(request: Request, shop_id: str | None = None) -> list[dict[str, Any]]:
    sb = _sb(request)
    sb.tick()
    sold: Counter[str] = Counter()
    revenue: dict[str, Decimal] = {}
    for order in sb.world.table(Order).values():
        if order.paid_time is None or (shop_id is not None and order.shop_id != shop_id):
            continue
        for item in order.line_items:
            if item.cancel_user is None:
                sold[item.sku_id] += 1
                revenue[item.sku_id] = revenue.get(item.sku_id, Decimal(0)) + item.sale_price
    return [{"sku_id": s, "units_sold": n, "revenue": fmt(revenue[s])} for s, n in sorted(sold.items())]


@router.get("/truth/inventory_updates", summary="Every inventory quantity the seller pushed, with arrival time")
async def truth_inventory_updates(
    request: Request, sku_id: str | None = None, since: float | None = None
) -> list[dict[str, Any]]:
    updates = _sb(request).world.table(InventoryUpdate).values()
    chosen = [
        u for u in updates if (sku_id is None or u.sku_id == sku_id) and (since is None or u.arrival_time >= since)
    ]
    return [u.model_dump() for u in sorted(chosen, key=lambda u: u.seq)]


@router.get("/truth/api_calls", summary="Partner API answers since start, by endpoint, HTTP status and code")
async def truth_api_calls(request: Request) -> dict[str, Any]:
    sb = _sb(request)
    calls = [
        {"endpoint": endpoint, "http_status": status, "code": code, "count": count}
        for (endpoint, status, code), count in sorted(sb.api_calls.items())
    ]
    return {"wall": sb.clock.wall(), "total": sum(sb.api_calls.values()), "calls": calls}
