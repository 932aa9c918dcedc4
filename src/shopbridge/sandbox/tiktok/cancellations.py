"""Cancellations (§7.2): buyer requests, seller approval or rejection, seller-initiated (line-level) cancels.

During ON_HOLD a buyer cancels without approval; afterwards the request waits for the seller and is approved
automatically after 24 hours ([TH-UNI]). Units that never left the warehouse go back to stock.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, Field

from .errors import ErrorSpec, invalid_parameter
from .gateway import Call, Endpoint
from .models import Cancellation, Order
from .money import fmt
from .orders import OrderRejected, cancel_order, cancellable_items, emit_cancellation, refund_for
from .pagination import paginate, scope_of, within
from .reasons import SELLER_CANCEL_REASONS, buyer_reason

if TYPE_CHECKING:
    from .runtime import TikTokSandbox

AUTO_APPROVE_SECONDS = 24 * 3600
# Seller-facing reject reasons (names are what Reject Cancellation takes; texts are shown to people).
REJECT_REASONS = {
    "seller_reject_apply_product_has_been_packed": "Product has been packed",
    "seller_reject_apply_package_has_been_shipped": "Package has been shipped",
    "seller_reject_apply_buyer_agreed_to_keep_order": "Buyer agreed to keep the order",
}
# Both spellings of the doc's conflicting enums are accepted on input (Appendix B §6).
CANCEL_TYPE_ALIASES = {"REQUEST_CANCEL_REFUND": "BUYER_CANCEL"}
CANCEL_STATUS_ALIASES = {"CANCELLATION_REQUEST_CANCELLED": "CANCELLATION_REQUEST_CANCEL"}
# [INFERRED]: the reference gives no code for these.
CANCEL_NOT_FOUND = ErrorSpec(64001001, "The cancellation does not exist or does not belong to the current seller.", 200)
CANCEL_NOT_PENDING = ErrorSpec(64001002, "The cancellation request is not pending the seller's response.", 200)
ORDER_NOT_CANCELLABLE = ErrorSpec(64001003, "The order cannot be cancelled in its current status.", 200)


def buyer_cancel(sb: TikTokSandbox, order: Order, reason: str) -> Cancellation:
    """The buyer cancels: at once during UNPAID/ON_HOLD, as a request for the seller afterwards.

    `reason` is a buyer reason key or text (`reasons.buyer_reason`); the cancellation keeps both."""
    key, text = buyer_reason(reason)
    now = sb.clock.now_s()
    order.is_buyer_request_cancel = True
    order.request_cancel_time = now
    if order.status in ("UNPAID", "ON_HOLD"):
        return cancel_order(sb, order, "BUYER", key, now, text=text)
    if order.status != "AWAITING_SHIPMENT":
        raise OrderRejected(f"a buyer cannot cancel an order that is {order.status}")
    items = cancellable_items(order)
    subtotal, shipping, tax = refund_for(order, [i.id for i in items], include_shipping=True)
    request = Cancellation(
        id=sb.ids.generic(),
        order_id=order.id,
        shop_id=order.shop_id,
        cancel_type="BUYER_CANCEL",
        cancel_status="CANCELLATION_REQUEST_PENDING",
        role="BUYER",
        cancel_reason=key,
        cancel_reason_text=text,
        line_item_ids=[i.id for i in items],
        refund_subtotal=subtotal,
        refund_shipping_fee=shipping,
        refund_tax=tax,
        respond_deadline=now + AUTO_APPROVE_SECONDS,
        create_time=now,
        update_time=now,
    )
    order.update_time = now
    sb.world.save(order)
    sb.world.save(request)
    emit_cancellation(sb, request)
    return request


def _approve(sb: TikTokSandbox, request: Cancellation, at: int) -> None:
    order = sb.world.get(Order, request.order_id)
    assert order is not None
    order.is_buyer_request_cancel = False
    cancel_order(
        sb,
        order,
        "BUYER",
        request.cancel_reason,
        at,
        line_ids=request.line_item_ids,
        request=request,
        text=request.cancel_reason_text,
    )


def response_due(request: Cancellation) -> int | None:
    return request.respond_deadline if request.cancel_status == "CANCELLATION_REQUEST_PENDING" else None


def run_due(sb: TikTokSandbox, request: Cancellation) -> None:
    """A request the seller left unanswered is approved at its deadline (closed if nothing is left to cancel)."""
    deadline = response_due(request)
    if deadline is None or deadline > sb.clock.now():
        return
    order = sb.world.get(Order, request.order_id)
    if order is not None and cancellable_items(order):
        _approve(sb, request, deadline)
    else:
        request.cancel_status = "CANCELLATION_REQUEST_CANCEL"
        request.update_time = deadline
        sb.world.save(request)
        emit_cancellation(sb, request)


def cancellation_json(c: Cancellation, order: Order | None) -> dict[str, Any]:
    items = {i.id: i for i in order.line_items} if order else {}
    total = c.refund_subtotal + c.refund_shipping_fee + c.refund_tax
    out: dict[str, Any] = {
        "cancel_id": c.id,
        "order_id": c.order_id,
        "role": c.role,
        "cancel_type": c.cancel_type,
        "cancel_status": c.cancel_status,
        "cancel_reason": c.cancel_reason,
        "cancel_reason_text": c.cancel_reason_text,
        "create_time": c.create_time,
        "update_time": c.update_time,
        "should_replenish_stock": c.should_replenish_stock,
        "refund_amount": {
            "currency": order.currency if order else "USD",
            "refund_total": fmt(total),
            "refund_subtotal": fmt(c.refund_subtotal),
            "refund_shipping_fee": fmt(c.refund_shipping_fee),
            "refund_tax": fmt(c.refund_tax),
            "retail_delivery_fee": "0.00",
            "buyer_service_fee": "0.00",
        },
        "cancel_line_items": [
            {
                "cancel_line_item_id": f"{c.id[:10]}{n:09d}",
                "order_line_item_id": line_id,
                "sku_id": items[line_id].sku_id if line_id in items else "",
                "sku_name": items[line_id].sku_name if line_id in items else "",
                "product_name": items[line_id].product_name if line_id in items else "",
                "seller_sku": items[line_id].seller_sku if line_id in items else "",
                "refund_amount": {
                    "currency": order.currency if order else "USD",
                    "refund_total": fmt(items[line_id].sale_price) if line_id in items else "0.00",
                },
            }
            for n, line_id in enumerate(c.line_item_ids)
        ],
    }
    if c.cancel_status == "CANCELLATION_REQUEST_PENDING" and c.respond_deadline:
        out["seller_next_action_response"] = [{"action": "SELLER_RESPOND_BUYER_CANCEL", "deadline": c.respond_deadline}]
    return out


class SearchCancellationsIn(BaseModel):
    cancel_ids: list[str] | None = Field(default=None, max_length=50)
    order_ids: list[str] | None = Field(default=None, max_length=50)
    buyer_user_ids: list[str] | None = None
    cancel_types: list[Literal["CANCEL", "BUYER_CANCEL", "REQUEST_CANCEL_REFUND"]] | None = None
    cancel_status: (
        list[
            Literal[
                "CANCELLATION_REQUEST_PENDING",
                "CANCELLATION_REQUEST_SUCCESS",
                "CANCELLATION_REQUEST_CANCEL",
                "CANCELLATION_REQUEST_CANCELLED",
                "CANCELLATION_REQUEST_COMPLETE",
            ]
        ]
        | None
    ) = None
    create_time_ge: int | None = None
    create_time_lt: int | None = None
    update_time_ge: int | None = None
    update_time_lt: int | None = None
    locale: str | None = None


def search_cancellations(call: Call) -> dict[str, Any]:
    shop = call.require_shop()
    size = call.page_size(100)
    sort_field = call.enum_param("sort_field", ("create_time", "update_time"), "create_time")
    sort_order = call.enum_param("sort_order", ("ASC", "DESC"), "DESC")
    f = call.body(SearchCancellationsIn)
    types = {CANCEL_TYPE_ALIASES.get(t, t) for t in f.cancel_types or []}
    statuses = {CANCEL_STATUS_ALIASES.get(s, s) for s in f.cancel_status or []}

    def keep(c: Cancellation) -> bool:
        order = call.world.get(Order, c.order_id)
        checks = (
            c.shop_id == shop.id,
            not f.cancel_ids or c.id in f.cancel_ids,
            not f.order_ids or c.order_id in f.order_ids,
            not f.buyer_user_ids or (order is not None and order.user_id in f.buyer_user_ids),
            not types or c.cancel_type in types,
            not statuses or c.cancel_status in statuses,
            within(c.create_time, f.create_time_ge, f.create_time_lt),
            within(c.update_time, f.update_time_ge, f.update_time_lt),
        )
        return all(checks)

    page = paginate(
        [c for c in call.world.table(Cancellation).values() if keep(c)],
        key=lambda c: (getattr(c, sort_field), c.id),
        descending=sort_order == "DESC",
        page_size=size,
        page_token=call.param("page_token"),
        scope=scope_of("cancellations", shop.id, sort_field, sort_order, f.model_dump()),
    )
    return {
        "cancellations": [cancellation_json(c, call.world.get(Order, c.order_id)) for c in page.items],
        "next_page_token": page.next_page_token,
        "total_count": page.total_count,
    }


def _pending(call: Call) -> Cancellation:
    request = call.world.get(Cancellation, call.path_params["cancel_id"])
    if request is None or request.shop_id != call.require_shop().id:
        raise CANCEL_NOT_FOUND.error()
    if request.cancel_status != "CANCELLATION_REQUEST_PENDING":
        raise CANCEL_NOT_PENDING.error()
    return request


def approve_cancellation(call: Call) -> dict[str, Any]:
    request = _pending(call)
    _approve(call.sb, request, call.now)
    return {}


class RejectCancellationIn(BaseModel):
    reject_reason: str
    comment: str | None = Field(default=None, max_length=500)
    images: list[dict[str, Any]] | None = None


def reject_cancellation(call: Call) -> dict[str, Any]:
    request = _pending(call)
    body = call.body(RejectCancellationIn)
    if body.reject_reason not in REJECT_REASONS:
        raise invalid_parameter("reject_reason", "unknown reason name", "a name from Get Reject Reasons")
    order = call.world.get(Order, request.order_id)
    if order is not None:
        order.is_buyer_request_cancel = False
        order.update_time = call.now
        call.world.save(order)
    request.cancel_status = "CANCELLATION_REQUEST_CANCEL"
    request.update_time = call.now
    call.world.save(request)
    emit_cancellation(call.sb, request)
    return {}


class SkuQuantityIn(BaseModel):
    sku_id: str
    quantity: int = Field(ge=1)


class OrderLineRefIn(BaseModel):
    order_line_item_id: str
    sub_order_line_item_id: str | None = None


class SellerCancelIn(BaseModel):
    order_id: str
    cancel_reason: str
    skus: list[SkuQuantityIn] | None = None
    order_line_item_ids: list[str] | None = None
    order_line_list: list[OrderLineRefIn] | None = None


def _line_ids(order: Order, body: SellerCancelIn) -> list[str] | None:
    if body.order_line_item_ids:
        return body.order_line_item_ids
    if body.order_line_list:
        return [ref.order_line_item_id for ref in body.order_line_list]
    if body.skus:
        chosen: list[str] = []
        open_items = cancellable_items(order)
        for want in body.skus:
            matching = [i.id for i in open_items if i.sku_id == want.sku_id]
            if len(matching) < want.quantity:
                raise invalid_parameter("skus.quantity", "more units than the order has left", "at most the units left")
            chosen += matching[: want.quantity]
        return chosen
    return None


def seller_cancel(call: Call) -> dict[str, Any]:
    shop = call.require_shop()
    body = call.body(SellerCancelIn)
    order = call.world.get(Order, body.order_id)
    if order is None or order.shop_id != shop.id:
        raise ErrorSpec(21008111, "The order or package does not belong to the current seller.", 200).error()
    if body.cancel_reason not in SELLER_CANCEL_REASONS:
        raise invalid_parameter("cancel_reason", "unknown reason", "a seller cancel reason name")
    if order.status not in ("UNPAID", "ON_HOLD", "AWAITING_SHIPMENT", "PARTIALLY_SHIPPING"):
        raise ORDER_NOT_CANCELLABLE.error()
    line_ids = _line_ids(order, body)
    known = {i.id for i in order.line_items}
    if line_ids and not set(line_ids) <= known:
        raise invalid_parameter("order_line_item_ids", "not a line item of this order", "line item ids of the order")
    try:
        request = cancel_order(call.sb, order, "SELLER", body.cancel_reason, call.now, line_ids=line_ids)
    except OrderRejected as exc:
        raise ORDER_NOT_CANCELLABLE.error() from exc
    return {"cancel_id": request.id, "cancel_status": request.cancel_status}


ENDPOINTS = [
    *(Endpoint("POST", f"/return_refund/{v}/cancellations/search", search_cancellations) for v in ("202309", "202602")),
    *(Endpoint("POST", f"/return_refund/{v}/cancellations", seller_cancel) for v in ("202309", "202602")),
    Endpoint("POST", "/return_refund/202309/cancellations/{cancel_id}/approve", approve_cancellation),
    Endpoint("POST", "/return_refund/202309/cancellations/{cancel_id}/reject", reject_cancellation),
]
