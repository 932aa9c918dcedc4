"""Returns and refunds (§7.3), refund calculation, reject reasons and after-sale eligibility.

Buyers request returns through the control API once an order is delivered; the seller approves (refund,
return, received package, partial refund) or rejects through the Partner API. Returned goods are not restocked
automatically: the seller decides, as in production.
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, Field

from .cancellations import REJECT_REASONS as CANCEL_REJECT_REASONS
from .errors import ErrorSpec, invalid_parameter
from .gateway import Call, Endpoint
from .models import Cancellation, Order, Return, ReturnStatus
from .money import fmt, parse_amount
from .orders import OrderRejected, cancellable_items, refund_for
from .pagination import paginate, scope_of, within
from .reasons import SELLER_CANCEL_REASONS

if TYPE_CHECKING:
    from .runtime import TikTokSandbox

RESPOND_SECONDS = 48 * 3600
REFUND_SETTLE_SECONDS = 3600
RETURNABLE_STATUSES = {"DELIVERED"}
RETURN_REJECT_REASONS = {
    "seller_reject_apply_package_has_not_exceeded_estimated_delivery_time": "Package is still in transit",
    "seller_reject_apply_product_is_not_defective": "Product is not defective",
    "seller_reject_receive_package_item_damaged_by_buyer": "Returned item was damaged by the buyer",
}
RETURN_REASONS = {
    "ecom_order_delivered_refund_and_return_reason_wrong_product_seller": "Wrong product",
    "ecom_order_delivered_refund_and_return_reason_damaged": "Damaged item",
    "ecom_order_delivered_refund_and_return_reason_not_as_described": "Not as described",
    "ecom_order_delivered_refund_reason_missing_item": "Missing item",
}
SELLER_REASONS_FOR_CANCEL = tuple(SELLER_CANCEL_REASONS)
# [INFERRED]: the reference gives no codes for these.
RETURN_NOT_FOUND = ErrorSpec(64002001, "The return does not exist or does not belong to the current seller.", 200)
DECISION_NOT_ALLOWED = ErrorSpec(64002002, "The decision is not allowed in the return's current status.", 200)
NOT_ELIGIBLE = ErrorSpec(64002003, "The order is not eligible for this after-sale request.", 200)
ORDER_NOT_FOUND = ErrorSpec(21008111, "The order or package does not belong to the current seller.", 200)

ACTIVE = {
    "RETURN_OR_REFUND_REQUEST_PENDING",
    "AWAITING_BUYER_SHIP",
    "BUYER_SHIPPED_ITEM",
    "RETURN_OR_REFUND_REQUEST_SUCCESS",
    "RETURN_OR_REFUND_REQUEST_COMPLETE",
    "AWAITING_BUYER_RESPONSE",
}


def set_return_status(sb: TikTokSandbox, r: Return, status: ReturnStatus, at: int, event: str, role: str) -> None:
    r.return_status = status
    r.update_time = at
    r.respond_deadline = (
        at + RESPOND_SECONDS if status in ("RETURN_OR_REFUND_REQUEST_PENDING", "BUYER_SHIPPED_ITEM") else None
    )
    r.records.append({"event": event, "role": role, "description": status, "create_time": at})
    sb.world.save(r)
    data = {
        "order_id": r.order_id,
        "return_role": r.role,
        "return_type": r.return_type,
        "return_status": status,
        "return_id": r.id,
        "create_time": r.create_time,
        "update_time": at,
    }
    sb.webhooks.emit(r.shop_id, 12, data)


def returnable_items(sb: TikTokSandbox, order: Order) -> list[str]:
    taken = {
        line
        for r in sb.world.table(Return).values()
        if r.order_id == order.id and r.return_status in ACTIVE
        for line in r.line_item_ids
    }
    return [i.id for i in order.line_items if i.cancel_user is None and i.id not in taken]


def request_return(
    sb: TikTokSandbox,
    order: Order,
    *,
    return_type: Literal["REFUND", "RETURN_AND_REFUND"],
    reason: str,
    line_ids: list[str] | None,
    role: Literal["BUYER", "SELLER"] = "BUYER",
    refund_total: Decimal | None = None,
) -> Return:
    if order.status not in RETURNABLE_STATUSES:
        raise OrderRejected(f"order {order.id} is {order.status}; returns open once it is DELIVERED")
    available = returnable_items(sb, order)
    chosen = line_ids or available
    if not chosen or len(set(chosen)) != len(chosen) or not set(chosen) <= set(available):
        raise OrderRejected("those line items cannot be returned (unknown, cancelled or already returned)")
    subtotal, shipping, tax = refund_for(order, chosen, include_shipping=False)
    if refund_total is not None and refund_total > subtotal + shipping + tax:
        raise OrderRejected("The total refund amount can not exceed the refundable amount")
    now = sb.clock.now_s()
    r = Return(
        id=sb.ids.generic(),
        order_id=order.id,
        shop_id=order.shop_id,
        return_type=return_type,
        return_status="RETURN_OR_REFUND_REQUEST_PENDING",
        role=role,
        return_reason=reason,
        return_reason_text=RETURN_REASONS.get(reason, reason),
        line_item_ids=list(chosen),
        refund_subtotal=subtotal,
        refund_shipping_fee=shipping,
        refund_tax=tax,
        partial_refund=refund_total,
        create_time=now,
        update_time=now,
    )
    if role == "SELLER":
        # A seller-initiated refund needs no review: it goes straight to refunding.
        set_return_status(sb, r, "RETURN_OR_REFUND_REQUEST_SUCCESS", now, "SELLER_CREATE_RETURN", "SELLER")
    else:
        set_return_status(sb, r, "RETURN_OR_REFUND_REQUEST_PENDING", now, "BUYER_APPLY", "BUYER")
    return r


def buyer_ships(sb: TikTokSandbox, r: Return, tracking: str) -> None:
    if r.return_status != "AWAITING_BUYER_SHIP":
        raise OrderRejected(f"return {r.id} is {r.return_status}, not AWAITING_BUYER_SHIP")
    r.return_tracking_number = tracking
    set_return_status(sb, r, "BUYER_SHIPPED_ITEM", sb.clock.now_s(), "BUYER_SHIP", "BUYER")


def buyer_answers_offer(sb: TikTokSandbox, r: Return, accept: bool) -> None:
    if r.return_status != "AWAITING_BUYER_RESPONSE":
        raise OrderRejected(f"return {r.id} has no offer waiting for the buyer")
    now = sb.clock.now_s()
    if accept:
        set_return_status(sb, r, "RETURN_OR_REFUND_REQUEST_SUCCESS", now, "BUYER_ACCEPT_PARTIAL_REFUND", "BUYER")
    else:
        r.partial_refund = None
        set_return_status(sb, r, "RETURN_OR_REFUND_REQUEST_PENDING", now, "BUYER_REJECT_PARTIAL_REFUND", "BUYER")


def next_due(r: Return) -> int | None:
    """Refunds settle an hour after approval; requests the seller ignores are approved after 48 hours."""
    if r.return_status == "RETURN_OR_REFUND_REQUEST_SUCCESS":
        return r.update_time + REFUND_SETTLE_SECONDS
    return r.respond_deadline


def run_due(sb: TikTokSandbox, r: Return) -> None:
    due = next_due(r)
    if due is None or due > sb.clock.now():
        return
    if r.return_status == "RETURN_OR_REFUND_REQUEST_SUCCESS":
        set_return_status(sb, r, "RETURN_OR_REFUND_REQUEST_COMPLETE", due, "REFUND", "SYSTEM")
    elif r.return_status == "BUYER_SHIPPED_ITEM" or r.return_type == "REFUND":
        set_return_status(sb, r, "RETURN_OR_REFUND_REQUEST_SUCCESS", due, "SYSTEM_AUTO_APPROVE", "SYSTEM")
    else:
        set_return_status(sb, r, "AWAITING_BUYER_SHIP", due, "SYSTEM_AUTO_APPROVE", "SYSTEM")


def _money(order: Order | None, amount: Decimal) -> dict[str, str]:
    return {"currency": order.currency if order else "USD", "refund_total": fmt(amount)}


def return_json(r: Return, order: Order | None) -> dict[str, Any]:
    items = {i.id: i for i in order.line_items} if order else {}
    out: dict[str, Any] = {
        "return_id": r.id,
        "order_id": r.order_id,
        "role": r.role,
        "return_type": r.return_type,
        "return_status": r.return_status,
        "arbitration_status": "",
        "return_reason": r.return_reason,
        "return_reason_text": r.return_reason_text,
        "shipment_type": "PLATFORM",
        "handover_method": "DROP_OFF",
        "return_method": "BUYER_SHIPPED",
        "can_buyer_keep_item": r.buyer_keep_item,
        "refund_amount": {
            **_money(order, r.refund_total),
            "refund_subtotal": fmt(r.refund_subtotal),
            "refund_shipping_fee": fmt(r.refund_shipping_fee),
            "refund_tax": fmt(r.refund_tax),
            "retail_delivery_fee": "0.00",
            "buyer_service_fee": "0.00",
        },
        "return_line_items": [
            {
                "return_line_item_id": f"{r.id[:10]}{n:09d}",
                "order_line_item_id": line_id,
                "sku_id": items[line_id].sku_id if line_id in items else "",
                "sku_name": items[line_id].sku_name if line_id in items else "",
                "seller_sku": items[line_id].seller_sku if line_id in items else "",
                "product_name": items[line_id].product_name if line_id in items else "",
                "refund_amount": _money(order, items[line_id].sale_price if line_id in items else Decimal(0)),
            }
            for n, line_id in enumerate(r.line_item_ids)
        ],
        "create_time": r.create_time,
        "update_time": r.update_time,
    }
    if r.return_tracking_number:
        out["return_tracking_number"] = r.return_tracking_number
        out["return_provider_name"] = "USPS"
    if r.partial_refund is not None:
        out["partial_refund"] = {"amount": fmt(r.partial_refund), "currency": order.currency if order else "USD"}
        out["seller_proposed_return_type"] = "PARTIAL_REFUND"
    if r.respond_deadline is not None:
        action = {
            "RETURN_OR_REFUND_REQUEST_PENDING": "SELLER_RESPOND_REFUND"
            if r.return_type == "REFUND"
            else "SELLER_RESPOND_RETURN",
            "BUYER_SHIPPED_ITEM": "SELLER_RESPOND_RECEIVE_PACKAGE",
        }.get(r.return_status)
        if action:
            out["seller_next_action_response"] = [{"action": action, "deadline": r.respond_deadline}]
    return out


# --- endpoints -----------------------------------------------------------------------------------------------


class SearchReturnsIn(BaseModel):
    return_ids: list[str] | None = None
    order_ids: list[str] | None = None
    buyer_user_ids: list[str] | None = None
    return_types: list[Literal["REFUND", "RETURN_AND_REFUND", "REPLACEMENT", "EXCHANGE"]] | None = None
    return_status: list[str] | None = None
    create_time_ge: int | None = None
    create_time_lt: int | None = None
    update_time_ge: int | None = None
    update_time_lt: int | None = None
    locale: str | None = None


def search_returns(call: Call) -> dict[str, Any]:
    shop = call.require_shop()
    size = call.page_size(100)
    sort_field = call.enum_param("sort_field", ("create_time", "update_time"), "create_time")
    sort_order = call.enum_param("sort_order", ("ASC", "DESC"), "DESC")
    f = call.body(SearchReturnsIn)

    def keep(r: Return) -> bool:
        order = call.world.get(Order, r.order_id)
        checks = (
            r.shop_id == shop.id,
            not f.return_ids or r.id in f.return_ids,
            not f.order_ids or r.order_id in f.order_ids,
            not f.buyer_user_ids or (order is not None and order.user_id in f.buyer_user_ids),
            not f.return_types or r.return_type in f.return_types,
            not f.return_status or r.return_status in f.return_status,
            within(r.create_time, f.create_time_ge, f.create_time_lt),
            within(r.update_time, f.update_time_ge, f.update_time_lt),
        )
        return all(checks)

    page = paginate(
        [r for r in call.world.table(Return).values() if keep(r)],
        key=lambda r: (getattr(r, sort_field), r.id),
        descending=sort_order == "DESC",
        page_size=size,
        page_token=call.param("page_token"),
        scope=scope_of("returns", shop.id, sort_field, sort_order, f.model_dump()),
    )
    return {
        "return_orders": [return_json(r, call.world.get(Order, r.order_id)) for r in page.items],
        "next_page_token": page.next_page_token,
        "total_count": page.total_count,
    }


def _return(call: Call) -> Return:
    r = call.world.get(Return, call.path_params["return_id"])
    if r is None or r.shop_id != call.require_shop().id:
        raise RETURN_NOT_FOUND.error()
    return r


class PartialRefundIn(BaseModel):
    amount: str
    currency: str


class ApproveReturnIn(BaseModel):
    decision: Literal[
        "APPROVE_REFUND",
        "APPROVE_RETURN",
        "APPROVE_RECEIVED_PACKAGE",
        "APPROVE_REPLACEMENT",
        "ISSUE_REPLACEMENT_REFUND",
        "OFFER_PARTIAL_REFUND",
        "DIRECT_REFUND",
    ]
    buyer_keep_item: bool | None = None
    partial_refund: PartialRefundIn | None = None


def _partial(r: Return, value: PartialRefundIn | None, order: Order | None) -> Decimal:
    amount = parse_amount(value.amount) if value else None
    full = r.refund_subtotal + r.refund_shipping_fee + r.refund_tax
    if amount is None or amount <= 0 or amount > full or (order and value and value.currency != order.currency):
        raise invalid_parameter(
            "partial_refund",
            "missing, malformed or above the refundable amount",
            f"a positive amount of at most {fmt(full)}",
        )
    return amount


def approve_return(call: Call) -> dict[str, Any]:
    r = _return(call)
    body = call.body(ApproveReturnIn)
    now = call.now
    status, decision = r.return_status, body.decision
    if decision in ("APPROVE_REPLACEMENT", "ISSUE_REPLACEMENT_REFUND"):
        raise DECISION_NOT_ALLOWED.error()
    if status == "RETURN_OR_REFUND_REQUEST_PENDING" and decision in ("APPROVE_REFUND", "DIRECT_REFUND"):
        set_return_status(call.sb, r, "RETURN_OR_REFUND_REQUEST_SUCCESS", now, decision, "SELLER")
    elif status == "RETURN_OR_REFUND_REQUEST_PENDING" and decision == "APPROVE_RETURN":
        if body.buyer_keep_item:
            r.buyer_keep_item = True
            set_return_status(call.sb, r, "RETURN_OR_REFUND_REQUEST_SUCCESS", now, decision, "SELLER")
        else:
            set_return_status(call.sb, r, "AWAITING_BUYER_SHIP", now, decision, "SELLER")
    elif status == "BUYER_SHIPPED_ITEM" and decision == "APPROVE_RECEIVED_PACKAGE":
        set_return_status(call.sb, r, "RETURN_OR_REFUND_REQUEST_SUCCESS", now, decision, "SELLER")
    elif status == "RETURN_OR_REFUND_REQUEST_PENDING" and decision == "OFFER_PARTIAL_REFUND":
        r.partial_refund = _partial(r, body.partial_refund, call.world.get(Order, r.order_id))
        set_return_status(call.sb, r, "AWAITING_BUYER_RESPONSE", now, decision, "SELLER")
    else:
        raise DECISION_NOT_ALLOWED.error()
    return {}


class PartialRefundAmountIn(BaseModel):
    partial_refund_total: str
    currency: str


class RejectReturnIn(BaseModel):
    decision: Literal[
        "REJECT_REFUND",
        "REJECT_RETURN",
        "REJECT_RECEIVED_PACKAGE",
        "REJECT_REPLACEMENT",
        "OFFER_PARTIAL_REFUND_AFTER_RECEIVING_PKG",
    ]
    reject_reason: str | None = None
    comment: str | None = None
    images: list[dict[str, Any]] | None = None
    partial_refund_amount: PartialRefundAmountIn | None = None


def reject_return(call: Call) -> dict[str, Any]:
    r = _return(call)
    body = call.body(RejectReturnIn)
    now = call.now
    if body.decision == "OFFER_PARTIAL_REFUND_AFTER_RECEIVING_PKG":
        if r.return_status != "BUYER_SHIPPED_ITEM":
            raise DECISION_NOT_ALLOWED.error()
        given = body.partial_refund_amount
        offer = PartialRefundIn(amount=given.partial_refund_total, currency=given.currency) if given else None
        r.partial_refund = _partial(r, offer, call.world.get(Order, r.order_id))
        set_return_status(call.sb, r, "AWAITING_BUYER_RESPONSE", now, body.decision, "SELLER")
        return {}
    if body.reject_reason not in RETURN_REJECT_REASONS:
        raise invalid_parameter("reject_reason", "unknown reason name", "a name from Get Reject Reasons")
    if r.return_status == "RETURN_OR_REFUND_REQUEST_PENDING" and body.decision in ("REJECT_REFUND", "REJECT_RETURN"):
        set_return_status(call.sb, r, "REFUND_OR_RETURN_REQUEST_REJECT", now, body.decision, "SELLER")
    elif r.return_status == "BUYER_SHIPPED_ITEM" and body.decision == "REJECT_RECEIVED_PACKAGE":
        set_return_status(call.sb, r, "REJECT_RECEIVE_PACKAGE", now, body.decision, "SELLER")
    else:
        raise DECISION_NOT_ALLOWED.error()
    return {}


class SkuQuantityIn(BaseModel):
    sku_id: str
    quantity: int = Field(ge=1)


class CreateReturnIn(BaseModel):
    order_id: str
    return_reason: str
    return_type: Literal["REFUND", "RETURN_AND_REFUND"]
    order_line_item_ids: list[str] | None = None
    skus: list[SkuQuantityIn] | None = None
    refund_total: str | None = None
    currency: str | None = None
    shipment_type: str | None = None
    handover_method: str | None = None


def _order(call: Call, order_id: str) -> Order:
    order = call.world.get(Order, order_id)
    if order is None or order.shop_id != call.require_shop().id:
        raise ORDER_NOT_FOUND.error()
    return order


def _lines_from_skus(order: Order, skus: list[SkuQuantityIn], open_lines: list[str]) -> list[str]:
    """The line items (one per unit) for ``skus``' quantities, taken from ``open_lines`` in order; a SKU named twice
    takes further units, never the same one again."""
    items = {i.id: i for i in order.line_items}
    chosen: list[str] = []
    for want in skus:
        matching = [lid for lid in open_lines if items[lid].sku_id == want.sku_id and lid not in chosen]
        if len(matching) < want.quantity:
            raise invalid_parameter("skus.quantity", "more units than can be returned", "at most the units left")
        chosen += matching[: want.quantity]
    return chosen


def create_return(call: Call) -> dict[str, Any]:
    """A seller-initiated refund. With an ``idempotency_key``, the same key of the same shop answers what its first
    success answered, so a retry after a lost answer never opens a second refund."""
    body = call.body(CreateReturnIn)
    order = _order(call, body.order_id)
    idem = call.param("idempotency_key")
    key = ("create_return", order.shop_id, idem or "")
    if idem and (cached := call.sb.idempotent.get(key)) is not None:
        return cached
    if body.skus and not body.order_line_item_ids:
        line_ids: list[str] | None = _lines_from_skus(order, body.skus, returnable_items(call.sb, order))
    else:
        line_ids = body.order_line_item_ids
    refund = None
    if body.refund_total is not None:
        refund = parse_amount(body.refund_total)
        if refund is None or refund <= 0 or (body.currency and body.currency != order.currency):
            raise invalid_parameter("refund_total", "not a positive decimal amount", "a decimal string like 12.50")
    try:
        r = request_return(
            call.sb,
            order,
            return_type=body.return_type,
            reason=body.return_reason,
            line_ids=line_ids,
            role="SELLER",
            refund_total=refund,
        )
    except OrderRejected as exc:
        if "refundable amount" in exc.message:
            raise invalid_parameter("refund_total", exc.message, "at most the refundable amount") from exc
        raise NOT_ELIGIBLE.error() from exc
    result = {"return_id": r.id, "return_status": r.return_status}
    if idem:
        call.sb.idempotent[key] = result
    return result


def return_records(call: Call) -> dict[str, Any]:
    r = _return(call)
    records = [
        {
            "event": x["event"],
            "role": x["role"],
            "description": x["description"],
            "reason_text": "",
            "note": "",
            "images": [],
            "videos": [],
            "create_time": x["create_time"],
        }
        for x in r.records
    ]
    return {"records": records}


def reject_reasons(call: Call) -> dict[str, Any]:
    target = call.param("return_or_cancel_id") or ""
    is_cancel = call.world.get(Cancellation, target) is not None
    reasons = CANCEL_REJECT_REASONS if is_cancel else RETURN_REJECT_REASONS
    return {"reasons": [{"name": name, "text": text} for name, text in reasons.items()]}


def aftersale_eligibility(call: Call) -> dict[str, Any]:
    order = _order(call, call.path_params["order_id"])
    requested = call.values("request_types") or ["CANCEL", "REFUND", "RETURN_AND_REFUND"]
    cancellable = (
        {i.id for i in cancellable_items(order)}
        if order.status in ("UNPAID", "ON_HOLD", "AWAITING_SHIPMENT", "PARTIALLY_SHIPPING")
        else set()
    )
    returnable = set(returnable_items(call.sb, order)) if order.status in RETURNABLE_STATUSES else set()
    by_sku: dict[str, list[dict[str, Any]]] = {}
    for item in order.line_items:
        for request_type in requested:
            eligible = item.id in (cancellable if request_type == "CANCEL" else returnable)
            by_sku.setdefault(item.sku_id, []).append(
                {
                    "request_type": request_type,
                    "eligible": eligible,
                    "ineligible_code": "" if eligible else "ORDER_STATUS_NOT_SUPPORTED",
                    "ineligible_reason": "" if eligible else f"The order is {order.status}.",
                    "available_reason_names": list(
                        (SELLER_REASONS_FOR_CANCEL if request_type == "CANCEL" else RETURN_REASONS) if eligible else []
                    ),
                    "order_line_list": [{"order_line_item_id": item.id}],
                }
            )
    return {"sku_eligibility": [{"sku_id": sku, "line_item_eligibility": lines} for sku, lines in by_sku.items()]}


class CalculateRefundIn(BaseModel):
    order_id: str
    request_type: Literal["CANCEL", "REFUND", "RETURN_AND_REFUND"]
    reason_name: str | None = None
    order_line_item_ids: list[str] | None = None
    skus: list[SkuQuantityIn] | None = None


def calculate_refund(call: Call) -> dict[str, Any]:
    body = call.body(CalculateRefundIn)
    order = _order(call, body.order_id)
    if body.request_type == "CANCEL":
        default = [i.id for i in cancellable_items(order)]
    elif order.status not in RETURNABLE_STATUSES:
        raise NOT_ELIGIBLE.error()  # as Get Aftersale Eligibility says: returns open once the order is delivered
    else:
        default = returnable_items(call.sb, order)
    line_ids = body.order_line_item_ids or (_lines_from_skus(order, body.skus, default) if body.skus else default)
    if not line_ids:
        raise NOT_ELIGIBLE.error()
    subtotal, shipping, tax = refund_for(order, line_ids, include_shipping=body.request_type == "CANCEL")
    return {
        "order_refund_amount": {
            "currency": order.currency,
            "refund_total": fmt(subtotal + shipping + tax),
            "refund_subtotal": fmt(subtotal),
            "refund_shipping_fee": fmt(shipping),
            "refund_tax": fmt(tax),
            "retail_delivery_fee": "0.00",
        }
    }


ENDPOINTS = [
    *(Endpoint("POST", f"/return_refund/{v}/returns/search", search_returns) for v in ("202309", "202602")),
    *(Endpoint("POST", f"/return_refund/{v}/returns", create_return) for v in ("202309", "202602")),
    Endpoint("POST", "/return_refund/202309/returns/{return_id}/approve", approve_return),
    Endpoint("POST", "/return_refund/202309/returns/{return_id}/reject", reject_return),
    Endpoint("POST", "/return_refund/202606/returns/{return_id}/reject", reject_return),
    Endpoint("GET", "/return_refund/202309/returns/{return_id}/records", return_records),
    Endpoint("GET", "/return_refund/202309/reject_reasons", reject_reasons),
    *(
        Endpoint("GET", f"/return_refund/{v}/orders/{{order_id}}/aftersale_eligibility", aftersale_eligibility)
        for v in ("202309", "202602")
    ),
    *(Endpoint("POST", f"/return_refund/{v}/refunds/calculate", calculate_refund) for v in ("202309", "202602")),
]
