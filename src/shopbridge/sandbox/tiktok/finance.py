"""Finance (§8): daily statements, their transactions (202309 flat shape and 202501 breakdown shape), per-order
transactions, payments.

When a record settles is one rule, `settlement_due`, which both the timeline and `close_days` follow:
- an order when it has been delivered (COMPLETED implies delivered) plus its shop's `settlement_delay_days`;
- a refund (a completed return or refund-only request) when it completes, as a negative ORDER line of its own,
  whether its order settled before it or not;
- an adjustment from the control API at once, and a held reserve `reserve_days` after it was held.
A record lands on the statement of the UTC day that contains that moment, stamped with the midnight that ends it.

A statement whose settlement is positive holds `reserve_rate` of it back as a RESERVE line; the same amount comes
back as a positive RESERVE line on the statement stamped `reserve_days` later. RESERVE lines are apart from the
settlement (§8.5): a statement's revenue, fee, shipping cost, adjustment and settlement totals are the sums of its
other lines, its reserve is the sum of its RESERVE lines, and its payout is the two together.

Amounts are signed like the doc samples (income positive, charges negative) and carry the shop currency's precision
(whole units for zero-decimal currencies). Discrepancies injected through the control API are read from the
records they were put on (`Order.discrepancy`, an Adjustment for a made-up order), never from module state.
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Any

from .errors import ErrorSpec, invalid_parameter
from .gateway import Call, Endpoint
from .models import Adjustment, Order, Return, Shop, Statement, StatementTransaction
from .money import fmt, in_precision
from .pagination import Page, paginate, scope_of

if TYPE_CHECKING:
    from .runtime import TikTokSandbox

DAY = 86_400
TRANSACTION_FEE_RATE = Decimal("0.029")
COD_FEE_RATE = Decimal("0.01")
# TikTok keeps 20% of the referral fee it gives back on a refund ("refund administration fee").
REFUND_ADMIN_SHARE = Decimal("0.20")
# What a TikTok Shipping label costs the seller per package, in the market's currency ([INFERRED]).
LABEL_COSTS = {
    "USD": Decimal("4.50"),
    "GBP": Decimal("3.50"),
    "EUR": Decimal("4.00"),
    "SGD": Decimal("4.50"),
    "MYR": Decimal("6.00"),
    "PHP": Decimal("85.00"),
    "THB": Decimal("40.00"),
    "IDR": Decimal("12000.00"),
    "VND": Decimal("25000"),
    "JPY": Decimal("600"),
    "MXN": Decimal("80.00"),
    "BRL": Decimal("20.00"),
}
DEFAULT_LABEL_COST = Decimal("4.50")
PAYOUT_DELAY_SECONDS = DAY
RESERVE = "RESERVE"
# An order is settleable once delivered; COMPLETED comes after DELIVERED only.
DELIVERED_STATUSES = ("DELIVERED", "COMPLETED")
STATEMENT_NOT_FOUND = ErrorSpec(
    36009004, "Invalid identifier. The `statement_id` path parameter is invalid.", 400
)  # [INFERRED]

TOTAL_KEYS = ("revenue_amount", "fee_amount", "adjustment_amount", "shipping_cost_amount")


def label_cost(currency: str) -> Decimal:
    return LABEL_COSTS.get(currency, DEFAULT_LABEL_COST)


def referral_rate(order: Order | None, shop: Shop) -> Decimal:
    """The shop's referral fee rate, unless the control API made this order's differ."""
    if order is not None and order.discrepancy.referral_fee_rate is not None:
        return order.discrepancy.referral_fee_rate
    return shop.referral_fee_rate


def order_amounts(order: Order, shop: Shop) -> tuple[dict[str, Decimal], list[dict[str, Any]]]:
    """The settlement of a delivered order's live line items, and its per-SKU split."""

    def q(value: Decimal) -> Decimal:
        return in_precision(value, order.currency)

    items = [i for i in order.line_items if i.cancel_user is None]
    gross = q(sum((i.original_price for i in items), Decimal(0)))
    net = q(sum((i.sale_price for i in items), Decimal(0)))
    shipping_fee, tax = q(order.shipping_fee), q(order.tax)
    packages = {i.package_id for i in items}
    actual_shipping = max(shipping_fee, label_cost(order.currency) * len(packages))
    customer_payment = net + shipping_fee + tax
    referral = -q(net * referral_rate(order, shop))
    transaction = -q(customer_payment * TRANSACTION_FEE_RATE)
    affiliate = -q(net * order.affiliate_commission_rate)
    cod = -q(customer_payment * COD_FEE_RATE) if order.is_cod else Decimal(0)
    # An injected revenue error reads as if TikTok had the goods at another price; fees stay those of the order.
    delta = order.discrepancy.revenue_delta
    a = {
        "gross_sales_amount": gross + delta,
        "seller_discount_amount": net - gross,
        "platform_discount_amount": Decimal(0),
        "net_sales_amount": net + delta,
        "revenue_amount": net + delta,
        "referral_fee_amount": referral,
        "transaction_fee_amount": transaction,
        "affiliate_commission_amount": affiliate,
        "cod_service_fee_amount": cod,
        "platform_commission_amount": Decimal(0),
        "fee_amount": referral + transaction + affiliate + cod,
        "actual_shipping_fee_amount": -actual_shipping,
        "customer_paid_shipping_fee_amount": shipping_fee,
        "platform_shipping_fee_discount_amount": Decimal(0),
        "shipping_cost_amount": shipping_fee - actual_shipping,
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


def refund_amounts(r: Return, currency: str, rate: Decimal) -> dict[str, Decimal]:
    """A refund's line: the goods part comes out of revenue and the referral fee charged on it comes back, less
    the refund administration share."""

    def q(value: Decimal) -> Decimal:
        return in_precision(value, currency)

    refund = q(r.refund_total)
    # Refunded tax was never the seller's revenue; only the goods part comes back out of it.
    subtotal = min(q(r.refund_subtotal), refund)
    referral_back = q(subtotal * rate * (1 - REFUND_ADMIN_SHARE))
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


def _next_midnight(t: int) -> int:
    return (t // DAY + 1) * DAY


def delivered_at(order: Order) -> int | None:
    """When the order reached DELIVERED (a COMPLETED order without a recorded delivery was delivered by then)."""
    if order.status not in DELIVERED_STATUSES:
        return None
    return order.delivery_time if order.delivery_time is not None else order.complete_time


def settleable_at(record: Order | Return | Adjustment) -> int | None:
    """The moment this record may settle, if it still waits for a statement (None: not yet, or never)."""
    if record.statement_id is not None:
        return None
    if isinstance(record, Order):
        delivered = delivered_at(record)
        if delivered is None or record.discrepancy.withhold:
            return None
        return delivered + ((record.settlement_delay_days or 0) + record.discrepancy.delay_days) * DAY
    if isinstance(record, Return):
        return record.update_time if record.return_status == "RETURN_OR_REFUND_REQUEST_COMPLETE" else None
    return record.settle_time if record.settle_time is not None else record.create_time


def settlement_due(record: Order | Return | Adjustment) -> int | None:
    """The midnight that closes the day this record becomes settleable: the `statement_time` it settles on."""
    moment = settleable_at(record)
    return _next_midnight(moment) if moment is not None else None


def follow_terms(sb: TikTokSandbox, shop: Shop) -> None:
    """Copy the shop's settlement delay onto its delivered orders still waiting to settle, so each waits by the
    shop's current terms; saving an order that changed schedules its settlement anew."""
    for order in sb.world.table(Order).values():
        if (
            order.shop_id == shop.id
            and order.statement_id is None
            and order.status in DELIVERED_STATUSES
            and order.settlement_delay_days != shop.settlement_delay_days
        ):
            order.settlement_delay_days = shop.settlement_delay_days
            sb.world.save(order)


def _waiting(sb: TikTokSandbox, shop_id: str) -> list[Order | Return | Adjustment]:
    """Every record of the shop that will settle some day. The refunds of an order the control API withholds, or
    whose refunds it said to skip, never will."""
    orders = {o.id: o for o in sb.world.table(Order).values() if o.shop_id == shop_id}
    out: list[Order | Return | Adjustment] = list(orders.values())
    for r in sb.world.table(Return).values():
        parent = orders.get(r.order_id)
        if r.shop_id != shop_id or (
            parent is not None and (parent.discrepancy.withhold or parent.discrepancy.skip_refund)
        ):
            continue
        out.append(r)
    out += [a for a in sb.world.table(Adjustment).values() if a.shop_id == shop_id]
    return [record for record in out if settleable_at(record) is not None]


def close_days(sb: TikTokSandbox, shop_id: str) -> list[Statement]:
    """Close every day that has ended: one statement per active day, stamped at the midnight that ends it."""
    shop = sb.world.get(Shop, shop_id)
    if shop is None:
        return []
    follow_terms(sb, shop)
    made: list[Statement] = []
    today = int(sb.clock.now()) // DAY * DAY
    while True:
        due: list[tuple[int, Order | Return | Adjustment]] = []
        for record in _waiting(sb, shop.id):
            midnight = settlement_due(record)
            if midnight is not None and midnight <= today:
                due.append((midnight, record))
        if not due:
            return made
        first = min(midnight for midnight, _ in due)
        made.append(_statement(sb, shop, [record for midnight, record in due if midnight == first], first))


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


def _line(
    sb: TikTokSandbox, shop: Shop, statement_id: str, record: Order | Return | Adjustment
) -> StatementTransaction:
    """The statement line a settling record writes."""
    line = StatementTransaction(
        id=sb.ids.generic(), statement_id=statement_id, shop_id=shop.id, type="ORDER", currency=shop.currency,
        amounts={},
    )  # fmt: skip
    if isinstance(record, Order):
        line.amounts, line.skus = order_amounts(record, shop)
        line.order_id, line.order_create_time, line.currency = record.id, record.create_time, record.currency
    elif isinstance(record, Return):
        parent = sb.world.get(Order, record.order_id)
        line.amounts = refund_amounts(record, shop.currency, referral_rate(parent, shop))
        line.order_id = record.order_id
        line.order_create_time = parent.create_time if parent else None
    elif record.type == RESERVE:
        line.type = RESERVE
        line.amounts = _reserve_amounts(record.amount)
    elif record.order_id is not None:
        # An injected line for an order the sandbox never had: all revenue, nothing charged.
        line.order_id, line.order_create_time = record.order_id, record.create_time
        line.amounts = {
            "gross_sales_amount": record.amount,
            "net_sales_amount": record.amount,
            "revenue_amount": record.amount,
            "fee_amount": Decimal(0),
            "shipping_cost_amount": Decimal(0),
            "adjustment_amount": Decimal(0),
            "customer_refund_amount": Decimal(0),
            "settlement_amount": record.amount,
        }
    else:
        line.type = record.type
        line.amounts = {
            "revenue_amount": Decimal(0),
            "fee_amount": Decimal(0),
            "shipping_cost_amount": Decimal(0),
            "adjustment_amount": record.amount,
            "settlement_amount": record.amount,
        }
    return line


def _reserve_amounts(amount: Decimal) -> dict[str, Decimal]:
    """A RESERVE line (negative when held, positive when released): its settlement is the reserve, apart from the
    revenue, fees, shipping cost and adjustment a statement totals."""
    zero = Decimal(0)
    return {
        "revenue_amount": zero,
        "fee_amount": zero,
        "shipping_cost_amount": zero,
        "adjustment_amount": zero,
        "reserve_amount": amount,
        "settlement_amount": amount,
    }


def _statement(sb: TikTokSandbox, shop: Shop, records: list[Order | Return | Adjustment], at: int) -> Statement:
    statement_id = sb.ids.generic()
    lines: list[StatementTransaction] = []
    for record in sorted(records, key=lambda r: settleable_at(r) or 0):
        lines.append(_line(sb, shop, statement_id, record))
        record.statement_id = statement_id
        sb.world.save(record)
    counted = [line for line in lines if line.type != RESERVE]
    totals = {k: sum((line.amounts.get(k, Decimal(0)) for line in counted), Decimal(0)) for k in TOTAL_KEYS}
    settlement = sum(totals.values(), Decimal(0))
    held = in_precision(settlement * shop.reserve_rate, shop.currency) if settlement > 0 else Decimal(0)
    if held > 0:
        lines.append(
            StatementTransaction(
                id=sb.ids.generic(),
                statement_id=statement_id,
                shop_id=shop.id,
                type=RESERVE,
                currency=shop.currency,
                amounts=_reserve_amounts(-held),
            )
        )
        # It comes back on the statement stamped reserve_days later: settleable from the start of that day.
        release_day_start = at + (max(1, shop.reserve_days) - 1) * DAY
        sb.world.save(
            Adjustment(
                id=sb.ids.generic(),
                shop_id=shop.id,
                type=RESERVE,
                amount=held,
                create_time=at,
                settle_time=release_day_start,
                held_by=statement_id,
            )
        )
    for line in lines:
        sb.world.save(line)
    statement = Statement(
        id=statement_id,
        shop_id=shop.id,
        statement_time=at,
        currency=shop.currency,
        revenue_amount=totals["revenue_amount"],
        fee_amount=totals["fee_amount"],
        adjustment_amount=totals["adjustment_amount"],
        shipping_cost_amount=totals["shipping_cost_amount"],
        net_sales_amount=sum((line.amounts.get("net_sales_amount", Decimal(0)) for line in counted), Decimal(0)),
        settlement_amount=settlement,
        reserve_amount=sum((line.amounts["settlement_amount"] for line in lines if line.type == RESERVE), Decimal(0)),
        payment_id=sb.ids.generic(),
    )
    sb.world.save(statement)
    return statement


def queue_unknown_order(sb: TikTokSandbox, shop: Shop, amount: Decimal) -> Adjustment:
    """Sandbox-only discrepancy: an ORDER line for an order id the sandbox never had, on the shop's next statement
    (the one closing the current day)."""
    adjustment = Adjustment(
        id=sb.ids.generic(),
        shop_id=shop.id,
        type="ORDER",
        amount=amount,
        create_time=sb.clock.now_s(),
        order_id=sb.ids.order_id(),
    )
    sb.world.save(adjustment)
    return adjustment


def statement_json(s: Statement) -> dict[str, Any]:
    c = s.currency
    return {
        "id": s.id,
        "statement_time": s.statement_time,
        "currency": c,
        "revenue_amount": fmt(s.revenue_amount, c),
        "fee_amount": fmt(s.fee_amount, c),
        "adjustment_amount": fmt(s.adjustment_amount, c),
        "shipping_cost_amount": fmt(s.shipping_cost_amount, c),
        "net_sales_amount": fmt(s.net_sales_amount, c),
        "settlement_amount": fmt(s.settlement_amount, c),
        "payment_id": s.payment_id,
        "payment_status": s.payment_status,
        "payment_time": s.paid_time or 0,
    }


def transaction_json(t: StatementTransaction) -> dict[str, Any]:
    out: dict[str, Any] = {"id": t.id, "type": t.type, "currency": t.currency}
    if t.order_id:
        out["order_id"] = t.order_id
        out["order_create_time"] = t.order_create_time
    out.update({k: fmt(v, t.currency) for k, v in t.amounts.items()})
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
    the reference lists it, rather than among the fees as in the flat shape. A RESERVE line has zero parts and a
    `reserve_amount` equal to its settlement."""
    a = t.amounts

    def amount(key: str) -> Decimal:
        return a.get(key, Decimal(0))

    def show(value: Decimal) -> str:
        return fmt(value, t.currency)

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
            "settlement_amount": show(amount("settlement_amount")),
            "revenue_amount": show(revenue),
            "revenue_breakdown": {
                "subtotal_before_discount_amount": show(gross),
                "seller_discount_amount": show(discount),
                # What a refund takes back (the sandbox refunds goods net of the seller's discount).
                "refund_subtotal_before_discount_amount": show(amount("revenue_amount") - gross - discount),
                "seller_discount_refund_amount": show(Decimal(0)),
                "cod_service_fee_amount": show(cod),
            },
            "shipping_cost_amount": show(amount("shipping_cost_amount")),
            "shipping_cost_breakdown": {
                "actual_shipping_fee_amount": show(amount("actual_shipping_fee_amount")),
                "shipping_fee_discount_amount": show(amount("platform_shipping_fee_discount_amount")),
                "customer_paid_shipping_fee_amount": show(amount("customer_paid_shipping_fee_amount")),
                "return_shipping_fee_amount": show(Decimal(0)),
                "replacement_shipping_fee_amount": show(Decimal(0)),
                "shipping_insurance_fee_amount": show(Decimal(0)),
            },
            "fee_tax_amount": show(fee_tax),
            "fee_tax_breakdown": {
                "fee": {
                    key: show(amount(key))
                    for key in (
                        "platform_commission_amount",
                        "referral_fee_amount",
                        "refund_administration_fee_amount",
                        "transaction_fee_amount",
                        "affiliate_commission_amount",
                    )
                },
                # Marketplace-facilitator tax is remitted by the platform, never settled (see order_amounts).
                "tax": {key: show(Decimal(0)) for key in ("vat_amount", "import_vat_amount", "customs_duty_amount")},
            },
            "adjustment_amount": show(amount("adjustment_amount")),
        }
    )
    if t.type == RESERVE:
        # A reserve's settlement is the reserve itself: the one line whose parts do not add up to it.
        out["reserve_amount"] = show(amount("reserve_amount"))
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
    transactions with breakdown objects. Totals cover the whole statement, not the page; the breakdown leaves out
    RESERVE lines (their parts are zero), whose sum is `total_reserve_amount`, and `payable_amount` is the
    settlement plus the reserve."""
    statement, page = _statement_and_page(call, "statement_transactions_202501")
    every = [transaction_json_202501(t) for t in _lines_of(call, statement) if t.type != RESERVE]
    c = statement.currency

    def total(key: str) -> Decimal:
        return sum((Decimal(t[key]) for t in every), Decimal(0))

    return {
        "id": statement.id,
        "create_time": statement.statement_time,
        # A statement exists once its day has settled; `SETTLED` is the one value §8.5 documents.
        "status": "SETTLED",
        "currency": c,
        "payable_amount": fmt(statement.settlement_amount + statement.reserve_amount, c),
        "total_reserve_amount": fmt(statement.reserve_amount, c),
        "total_settlement_amount": fmt(statement.settlement_amount, c),
        "total_settlement_breakdown": {
            "total_revenue_amount": fmt(total("revenue_amount"), c),
            "total_shipping_cost_amount": fmt(total("shipping_cost_amount"), c),
            "total_fee_tax_amount": fmt(total("fee_tax_amount"), c),
            "total_adjustment_amount": fmt(total("adjustment_amount"), c),
        },
        "transactions": [transaction_json_202501(t) for t in page.items],
        "next_page_token": page.next_page_token,
        "total_count": page.total_count,
    }


def get_order_transactions(call: Call) -> dict[str, Any]:
    """§8.6: the order's settlement and refund lines summed, and per SKU the share of each line it accounts for."""
    shop = call.require_shop()
    order = call.world.get(Order, call.path_params["order_id"])
    if order is None or order.shop_id != shop.id:
        raise ErrorSpec(21008111, "The order or package does not belong to the current seller.", 200).error()
    lines = [t for t in call.world.table(StatementTransaction).values() if t.order_id == order.id]
    c = order.currency

    def total(key: str) -> Decimal:
        return sum((t.amounts.get(key, Decimal(0)) for t in lines), Decimal(0))

    sku_rows = []
    for t in lines:
        revenue = sum((sku["revenue"] for sku in t.skus), Decimal(0))
        for sku in t.skus:
            share = sku["revenue"] / revenue if revenue else Decimal(0)
            sku_rows.append(
                {
                    "sku_id": sku["sku_id"],
                    "sku_name": sku["sku_name"],
                    "product_name": sku["product_name"],
                    "quantity": str(sku["quantity"]),
                    "statement_id": t.statement_id,
                    "revenue_amount": fmt(sku["revenue"], c),
                    "settlement_amount": fmt(t.amounts["settlement_amount"] * share, c),
                }
            )
    return {
        "order_id": order.id,
        "order_create_time": order.create_time,
        "currency": c,
        "revenue_amount": fmt(total("revenue_amount"), c),
        "fee_and_tax_amount": fmt(total("fee_amount"), c),
        "shipping_cost_amount": fmt(total("shipping_cost_amount"), c),
        "settlement_amount": fmt(total("settlement_amount"), c),
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
        return {"value": fmt(value, currency), "currency": currency}

    # The payout is the statement's settlement plus its reserve (held negative, released positive), paid in the
    # statement's own currency (no exchange).
    payments = [
        {
            "id": s.payment_id,
            "create_time": s.statement_time,
            "status": s.payment_status,
            "amount": money(s.settlement_amount + s.reserve_amount, s.currency),
            "settlement_amount": money(s.settlement_amount, s.currency),
            "payment_amount_before_exchange": money(s.settlement_amount + s.reserve_amount, s.currency),
            "reserve_amount": money(s.reserve_amount, s.currency),
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
