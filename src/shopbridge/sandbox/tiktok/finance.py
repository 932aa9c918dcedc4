"""Finance (§8): daily statements, their transactions (202309 flat shape and 202501 breakdown shape), per-order
transactions, payments.

An order settles on the first statement after it COMPLETES; a refund settles after its return completes;
adjustments from the control API settle on the next statement. Amounts are signed like the doc samples
(income positive, charges negative) and every statement total is the sum of its transactions.
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Any

from .errors import ErrorSpec, invalid_parameter
from .gateway import Call, Endpoint
from .models import Adjustment, Order, Return, Shop, Statement, StatementTransaction
from .money import CENT, fmt
from .pagination import Page, paginate, scope_of

if TYPE_CHECKING:
    from .runtime import TikTokSandbox

DAY = 86_400
REFERRAL_FEE_RATE = Decimal("0.06")
TRANSACTION_FEE_RATE = Decimal("0.029")
COD_FEE_RATE = Decimal("0.01")
# TikTok keeps 20% of the referral fee it gives back on a refund ("refund administration fee").
REFUND_ADMIN_SHARE = Decimal("0.20")
LABEL_COST_PER_PACKAGE = Decimal("4.50")
PAYOUT_DELAY_SECONDS = DAY
STATEMENT_NOT_FOUND = ErrorSpec(
    36009004, "Invalid identifier. The `statement_id` path parameter is invalid.", 400
)  # [INFERRED]

TOTAL_KEYS = ("revenue_amount", "fee_amount", "adjustment_amount", "shipping_cost_amount")


def _q(value: Decimal) -> Decimal:
    return value.quantize(CENT)


def order_amounts(order: Order) -> tuple[dict[str, Decimal], list[dict[str, Any]]]:
    """The settlement of a completed order's live line items, and its per-SKU split."""
    items = [i for i in order.line_items if i.cancel_user is None]
    gross = sum((i.original_price for i in items), Decimal(0))
    net = sum((i.sale_price for i in items), Decimal(0))
    packages = {i.package_id for i in items}
    actual_shipping = max(order.shipping_fee, LABEL_COST_PER_PACKAGE * len(packages))
    customer_payment = net + order.shipping_fee + order.tax
    referral = -_q(net * REFERRAL_FEE_RATE)
    transaction = -_q(customer_payment * TRANSACTION_FEE_RATE)
    affiliate = -_q(net * order.affiliate_commission_rate)
    cod = -_q(customer_payment * COD_FEE_RATE) if order.is_cod else Decimal(0)
    a = {
        "gross_sales_amount": gross,
        "seller_discount_amount": net - gross,
        "platform_discount_amount": Decimal(0),
        "net_sales_amount": net,
        "revenue_amount": net,
        "referral_fee_amount": referral,
        "transaction_fee_amount": transaction,
        "affiliate_commission_amount": affiliate,
        "cod_service_fee_amount": cod,
        "platform_commission_amount": Decimal(0),
        "fee_amount": referral + transaction + affiliate + cod,
        "actual_shipping_fee_amount": -actual_shipping,
        "customer_paid_shipping_fee_amount": order.shipping_fee,
        "platform_shipping_fee_discount_amount": Decimal(0),
        "shipping_cost_amount": order.shipping_fee - actual_shipping,
        "adjustment_amount": Decimal(0),
        "customer_payment_amount": customer_payment,
        "customer_refund_amount": Decimal(0),
        # Marketplace-facilitator tax is collected and remitted by the platform: shown, not settled.
        "sales_tax_amount": Decimal(0),
    }
    a["settlement_amount"] = sum((a[k] for k in TOTAL_KEYS), Decimal(0))
    skus: dict[str, dict[str, Any]] = {}
    for item in items:
        entry = skus.setdefault(
            item.sku_id,
            {
                "sku_id": item.sku_id,
                "sku_name": item.sku_name,
                "product_name": item.product_name,
                "quantity": 0,
                "revenue": Decimal(0),
            },
        )
        entry["quantity"] += 1
        entry["revenue"] += item.sale_price
    return a, list(skus.values())


def refund_amounts(r: Return) -> dict[str, Decimal]:
    refund = r.refund_total
    # Refunded tax was never the seller's revenue; only the goods part comes back out of it.
    subtotal = min(r.refund_subtotal, refund)
    referral_back = _q(subtotal * REFERRAL_FEE_RATE * (1 - REFUND_ADMIN_SHARE))
    a = {
        "gross_sales_amount": Decimal(0),
        "net_sales_amount": -subtotal,
        "revenue_amount": -subtotal,
        "referral_fee_amount": referral_back,
        "refund_administration_fee_amount": Decimal(0),
        "fee_amount": referral_back,
        "shipping_cost_amount": Decimal(0),
        "adjustment_amount": Decimal(0),
        "customer_payment_amount": Decimal(0),
        "customer_refund_amount": -refund,
    }
    a["settlement_amount"] = sum((a[k] for k in TOTAL_KEYS), Decimal(0))
    return a


def _events(sb: TikTokSandbox, shop_id: str) -> list[tuple[int, str, Any]]:
    out: list[tuple[int, str, Any]] = []
    for o in sb.world.table(Order).values():
        if o.shop_id == shop_id and o.statement_id is None and o.status == "COMPLETED" and o.complete_time:
            out.append((o.complete_time, "order", o))
    for r in sb.world.table(Return).values():
        if r.shop_id == shop_id and r.statement_id is None and r.return_status == "RETURN_OR_REFUND_REQUEST_COMPLETE":
            out.append((r.update_time, "refund", r))
    for adj in sb.world.table(Adjustment).values():
        if adj.shop_id == shop_id and adj.statement_id is None:
            out.append((adj.create_time, "adjustment", adj))
    return out


def _next_midnight(t: int) -> int:
    return (t // DAY + 1) * DAY


def settlement_due(record: Order | Return | Adjustment) -> int | None:
    """The midnight that closes the day this record became settleable, if it still waits for a statement."""
    if record.statement_id is not None:
        return None
    if isinstance(record, Order):
        ready = record.status == "COMPLETED" and record.complete_time
        return _next_midnight(record.complete_time) if ready and record.complete_time else None
    if isinstance(record, Return):
        done = record.return_status == "RETURN_OR_REFUND_REQUEST_COMPLETE"
        return _next_midnight(record.update_time) if done else None
    return _next_midnight(record.create_time)


def close_days(sb: TikTokSandbox, shop_id: str) -> list[Statement]:
    """Close every day that has ended: one statement per active day, stamped at the midnight that ends it."""
    shop = sb.world.get(Shop, shop_id)
    if shop is None:
        return []
    made: list[Statement] = []
    today = int(sb.clock.now()) // DAY * DAY
    while True:
        due = [e for e in _events(sb, shop.id) if e[0] < today]
        if not due:
            return made
        midnight = _next_midnight(min(e[0] for e in due))
        made.append(_statement(sb, shop, [e for e in due if e[0] < midnight], midnight))


def payout_due(statement: Statement) -> int | None:
    return statement.statement_time + PAYOUT_DELAY_SECONDS if statement.payment_status == "PROCESSING" else None


def pay_out(sb: TikTokSandbox, statement: Statement) -> None:
    due = payout_due(statement)
    if due is None or due > sb.clock.now():
        return
    statement.payment_status = "PAID"
    statement.paid_time = due
    sb.world.save(statement)


def generate_due(sb: TikTokSandbox) -> list[Statement]:
    """Every shop's ended days and due payouts, at once (the control API's "generate statements")."""
    made = [s for shop_id in list(sb.world.table(Shop)) for s in close_days(sb, shop_id)]
    for statement in list(sb.world.table(Statement).values()):
        pay_out(sb, statement)
    return made


def _statement(sb: TikTokSandbox, shop: Shop, events: list[tuple[int, str, Any]], at: int) -> Statement:
    statement_id = sb.ids.generic()
    lines: list[StatementTransaction] = []
    for _, kind, source in sorted(events, key=lambda e: e[0]):
        if kind == "order":
            amounts, skus = order_amounts(source)
            order: Order = source
            line = StatementTransaction(
                id=sb.ids.generic(),
                statement_id=statement_id,
                shop_id=shop.id,
                type="ORDER",
                order_id=order.id,
                order_create_time=order.create_time,
                currency=order.currency,
                amounts=amounts,
                skus=skus,
            )
        elif kind == "refund":
            r: Return = source
            parent = sb.world.get(Order, r.order_id)
            line = StatementTransaction(
                id=sb.ids.generic(),
                statement_id=statement_id,
                shop_id=shop.id,
                type="ORDER",
                order_id=r.order_id,
                order_create_time=parent.create_time if parent else None,
                currency=shop.currency,
                amounts=refund_amounts(r),
            )
        else:
            adj: Adjustment = source
            amounts = {
                "revenue_amount": Decimal(0),
                "fee_amount": Decimal(0),
                "shipping_cost_amount": Decimal(0),
                "adjustment_amount": adj.amount,
                "settlement_amount": adj.amount,
            }
            line = StatementTransaction(
                id=sb.ids.generic(),
                statement_id=statement_id,
                shop_id=shop.id,
                type=adj.type,
                currency=shop.currency,
                amounts=amounts,
            )
        source.statement_id = statement_id
        sb.world.save(source)
        sb.world.save(line)
        lines.append(line)
    totals = {k: sum((line.amounts.get(k, Decimal(0)) for line in lines), Decimal(0)) for k in TOTAL_KEYS}
    statement = Statement(
        id=statement_id,
        shop_id=shop.id,
        statement_time=at,
        currency=shop.currency,
        revenue_amount=totals["revenue_amount"],
        fee_amount=totals["fee_amount"],
        adjustment_amount=totals["adjustment_amount"],
        shipping_cost_amount=totals["shipping_cost_amount"],
        net_sales_amount=sum((line.amounts.get("net_sales_amount", Decimal(0)) for line in lines), Decimal(0)),
        settlement_amount=sum(totals.values(), Decimal(0)),
        payment_id=sb.ids.generic(),
    )
    sb.world.save(statement)
    return statement


def statement_json(s: Statement) -> dict[str, Any]:
    return {
        "id": s.id,
        "statement_time": s.statement_time,
        "currency": s.currency,
        "revenue_amount": fmt(s.revenue_amount),
        "fee_amount": fmt(s.fee_amount),
        "adjustment_amount": fmt(s.adjustment_amount),
        "shipping_cost_amount": fmt(s.shipping_cost_amount),
        "net_sales_amount": fmt(s.net_sales_amount),
        "settlement_amount": fmt(s.settlement_amount),
        "payment_id": s.payment_id,
        "payment_status": s.payment_status,
        "payment_time": s.paid_time or 0,
    }


def transaction_json(t: StatementTransaction) -> dict[str, Any]:
    out: dict[str, Any] = {"id": t.id, "type": t.type, "currency": t.currency}
    if t.order_id:
        out["order_id"] = t.order_id
        out["order_create_time"] = t.order_create_time
    out.update({k: fmt(v) for k, v in t.amounts.items()})
    return out


def _require_sort_field(call: Call, allowed: tuple[str, ...]) -> str:
    """sort_field is required on the finance endpoints."""
    value = call.enum_param("sort_field", allowed, "")
    if not value:
        raise invalid_parameter("sort_field", "missing", " | ".join(allowed))
    return value


def get_statements(call: Call) -> dict[str, Any]:
    shop = call.require_shop()
    size = call.page_size(100, required=False, default=20)
    _require_sort_field(call, ("statement_time",))
    sort_order = call.enum_param("sort_order", ("ASC", "DESC"), "DESC")
    ge = call.int_param("statement_time_ge")
    lt = call.int_param("statement_time_lt")
    status = call.enum_param("payment_status", ("PAID", "FAILED", "PROCESSING"), "")
    rows = [
        s
        for s in call.world.table(Statement).values()
        if s.shop_id == shop.id
        and (ge is None or s.statement_time >= ge)
        and (lt is None or s.statement_time < lt)
        and (not status or s.payment_status == status)
    ]
    page = paginate(
        rows,
        key=lambda s: (s.statement_time, s.id),
        descending=sort_order == "DESC",
        page_size=size,
        page_token=call.param("page_token"),
        scope=scope_of("statements", shop.id, ge, lt, status, sort_order),
    )
    return {
        "statements": [statement_json(s) for s in page.items],
        "next_page_token": page.next_page_token,
        "total_count": page.total_count,
    }


def transaction_json_202501(t: StatementTransaction) -> dict[str, Any]:
    """One transaction in the 202501 shape (§8.5, §8.6): four amounts, each with the breakdown that adds up to it.

    Signs are the 202309 ones (income positive, charges negative), so `settlement_amount` is the plain sum of
    revenue, shipping cost, fees and taxes, and adjustment. The COD service fee sits in `revenue_breakdown`, where
    the reference lists it, rather than among the fees as in the flat shape."""
    a = t.amounts

    def amount(key: str) -> Decimal:
        return a.get(key, Decimal(0))

    gross, discount, cod = (
        amount("gross_sales_amount"),
        amount("seller_discount_amount"),
        amount("cod_service_fee_amount"),
    )
    revenue = amount("revenue_amount") + cod
    fee_tax = amount("fee_amount") - cod
    out: dict[str, Any] = {"id": t.id, "type": t.type}
    if t.order_id:
        out["order_id"] = t.order_id
        out["order_create_time"] = t.order_create_time
    out.update(
        {
            "settlement_amount": fmt(amount("settlement_amount")),
            "revenue_amount": fmt(revenue),
            "revenue_breakdown": {
                "subtotal_before_discount_amount": fmt(gross),
                "seller_discount_amount": fmt(discount),
                # What a refund takes back (the sandbox refunds goods net of the seller's discount).
                "refund_subtotal_before_discount_amount": fmt(amount("revenue_amount") - gross - discount),
                "seller_discount_refund_amount": fmt(Decimal(0)),
                "cod_service_fee_amount": fmt(cod),
            },
            "shipping_cost_amount": fmt(amount("shipping_cost_amount")),
            "shipping_cost_breakdown": {
                "actual_shipping_fee_amount": fmt(amount("actual_shipping_fee_amount")),
                "shipping_fee_discount_amount": fmt(amount("platform_shipping_fee_discount_amount")),
                "customer_paid_shipping_fee_amount": fmt(amount("customer_paid_shipping_fee_amount")),
                "return_shipping_fee_amount": fmt(Decimal(0)),
                "replacement_shipping_fee_amount": fmt(Decimal(0)),
                "shipping_insurance_fee_amount": fmt(Decimal(0)),
            },
            "fee_tax_amount": fmt(fee_tax),
            "fee_tax_breakdown": {
                "fee": {
                    key: fmt(amount(key))
                    for key in (
                        "platform_commission_amount",
                        "referral_fee_amount",
                        "refund_administration_fee_amount",
                        "transaction_fee_amount",
                        "affiliate_commission_amount",
                    )
                },
                # Marketplace-facilitator tax is remitted by the platform, never settled (see order_amounts).
                "tax": {key: fmt(Decimal(0)) for key in ("vat_amount", "import_vat_amount", "customs_duty_amount")},
            },
            "adjustment_amount": fmt(amount("adjustment_amount")),
        }
    )
    return out


def _statement_and_page(call: Call, kind: str) -> tuple[Statement, Page[StatementTransaction]]:
    """The statement named in the path and one page of its transactions (both versions take the same query)."""
    shop = call.require_shop()
    statement = call.world.get(Statement, call.path_params["statement_id"])
    if statement is None or statement.shop_id != shop.id:
        raise STATEMENT_NOT_FOUND.error()
    size = call.page_size(100, required=False, default=20)
    _require_sort_field(call, ("order_create_time",))
    sort_order = call.enum_param("sort_order", ("ASC", "DESC"), "DESC")
    page = paginate(
        _lines_of(call, statement),
        key=lambda t: (t.order_create_time or 0, t.id),
        descending=sort_order == "DESC",
        page_size=size,
        page_token=call.param("page_token"),
        scope=scope_of(kind, statement.id, sort_order),
    )
    return statement, page


def _lines_of(call: Call, statement: Statement) -> list[StatementTransaction]:
    return [t for t in call.world.table(StatementTransaction).values() if t.statement_id == statement.id]


def get_statement_transactions(call: Call) -> dict[str, Any]:
    statement, page = _statement_and_page(call, "statement_transactions")
    return {
        "statement_id": statement.id,
        "statement_time": statement.statement_time,
        **{k: v for k, v in statement_json(statement).items() if k.endswith("_amount") or k == "currency"},
        "statement_transactions": [transaction_json(t) for t in page.items],
        "next_page_token": page.next_page_token,
        "total_count": page.total_count,
    }


def get_statement_transactions_202501(call: Call) -> dict[str, Any]:
    """§8.5: the statement's own fields (`id`, `create_time`, `status`, totals with their breakdown) and its
    transactions with breakdown objects. Totals cover the whole statement, not the page."""
    statement, page = _statement_and_page(call, "statement_transactions_202501")
    every = [transaction_json_202501(t) for t in _lines_of(call, statement)]

    def total(key: str) -> Decimal:
        return sum((Decimal(t[key]) for t in every), Decimal(0))

    reserve = Decimal(0)  # the sandbox holds no reserve ([INFERRED]; UK/US only per §8.5)
    return {
        "id": statement.id,
        "create_time": statement.statement_time,
        # A statement exists once its day has settled; `SETTLED` is the one value §8.5 documents.
        "status": "SETTLED",
        "currency": statement.currency,
        "payable_amount": fmt(statement.settlement_amount + reserve),
        "total_reserve_amount": fmt(reserve),
        "total_settlement_amount": fmt(statement.settlement_amount),
        "total_settlement_breakdown": {
            "total_revenue_amount": fmt(total("revenue_amount")),
            "total_shipping_cost_amount": fmt(total("shipping_cost_amount")),
            "total_fee_tax_amount": fmt(total("fee_tax_amount")),
            "total_adjustment_amount": fmt(total("adjustment_amount")),
        },
        "transactions": [transaction_json_202501(t) for t in page.items],
        "next_page_token": page.next_page_token,
        "total_count": page.total_count,
    }


def get_order_transactions(call: Call) -> dict[str, Any]:
    shop = call.require_shop()
    order = call.world.get(Order, call.path_params["order_id"])
    if order is None or order.shop_id != shop.id:
        raise ErrorSpec(21008111, "The order or package does not belong to the current seller.", 200).error()
    lines = [t for t in call.world.table(StatementTransaction).values() if t.order_id == order.id]

    def total(key: str) -> Decimal:
        return sum((t.amounts.get(key, Decimal(0)) for t in lines), Decimal(0))

    sku_rows = []
    for t in lines:
        for sku in t.skus:
            share = sku["revenue"] / t.amounts["net_sales_amount"] if t.amounts["net_sales_amount"] else Decimal(0)
            sku_rows.append(
                {
                    "sku_id": sku["sku_id"],
                    "sku_name": sku["sku_name"],
                    "product_name": sku["product_name"],
                    "quantity": str(sku["quantity"]),
                    "statement_id": t.statement_id,
                    "revenue_amount": fmt(sku["revenue"]),
                    "settlement_amount": fmt(_q(t.amounts["settlement_amount"] * share)),
                }
            )
    return {
        "order_id": order.id,
        "order_create_time": order.create_time,
        "currency": order.currency,
        "revenue_amount": fmt(total("revenue_amount")),
        "fee_and_tax_amount": fmt(total("fee_amount")),
        "shipping_cost_amount": fmt(total("shipping_cost_amount")),
        "settlement_amount": fmt(total("settlement_amount")),
        "sku_transactions": sku_rows,
    }


def get_payments(call: Call) -> dict[str, Any]:
    shop = call.require_shop()
    size = call.page_size(100, required=False, default=20)
    _require_sort_field(call, ("create_time",))
    sort_order = call.enum_param("sort_order", ("ASC", "DESC"), "DESC")
    ge = call.int_param("create_time_ge")
    lt = call.int_param("create_time_lt")
    rows = [
        s
        for s in call.world.table(Statement).values()
        if s.shop_id == shop.id and (ge is None or s.statement_time >= ge) and (lt is None or s.statement_time < lt)
    ]
    page = paginate(
        rows,
        key=lambda s: (s.statement_time, s.id),
        descending=sort_order == "DESC",
        page_size=size,
        page_token=call.param("page_token"),
        scope=scope_of("payments", shop.id, ge, lt, sort_order),
    )

    def money(value: Decimal, currency: str) -> dict[str, str]:
        return {"value": fmt(value), "currency": currency}

    payments = [
        {
            "id": s.payment_id,
            "create_time": s.statement_time,
            "status": s.payment_status,
            "amount": money(s.settlement_amount, s.currency),
            "settlement_amount": money(s.settlement_amount, s.currency),
            "payment_amount_before_exchange": money(s.settlement_amount, s.currency),
            "reserve_amount": money(Decimal(0), s.currency),
            "exchange_rate": "1.000000",
            "paid_time": s.paid_time or 0,
            "bank_account": "****1234",
        }
        for s in page.items
    ]
    return {"payments": payments, "next_page_token": page.next_page_token, "total_count": page.total_count}


ENDPOINTS = [
    Endpoint("GET", "/finance/202309/statements", get_statements),
    Endpoint("GET", "/finance/202309/statements/{statement_id}/statement_transactions", get_statement_transactions),
    Endpoint(
        "GET", "/finance/202501/statements/{statement_id}/statement_transactions", get_statement_transactions_202501
    ),
    Endpoint("GET", "/finance/202309/orders/{order_id}/statement_transactions", get_order_transactions),
    Endpoint("GET", "/finance/202501/orders/{order_id}/statement_transactions", get_order_transactions),
    Endpoint("GET", "/finance/202309/payments", get_payments),
    Endpoint("GET", "/finance/202605/payments", get_payments),
]
