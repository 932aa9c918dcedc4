"""Finance (§8): statements, their transactions, per-order settlement and payments stay consistent."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from .conftest import Env

pytestmark = pytest.mark.anyio
DAY = 86_400


async def completed_order(env: Env, sku: str, quantity: int, **extra: Any) -> str:
    placed = await env.order([(sku, quantity)], **extra)
    await env.advance(3600)
    for step in ("ship", "collect", "deliver", "complete"):
        await env.control("POST", f"/orders/{placed['id']}/{step}")
    order_id: str = placed["id"]
    return order_id


async def three_orders(env: Env) -> tuple[str, str, str]:
    """Three completed orders of a 25.00 tee: two with shipping and tax, one with an affiliate, one cash on delivery.
    In a Singapore shop: cash on delivery is not offered in the US."""
    await env.open_shop("SG")
    product = await env.product([{"seller_sku": "TEE-1", "price": "25.00", "quantity": 50}])
    sku = product["skus"][0]["id"]
    plain = await completed_order(env, sku, 2, shipping_fee="5.00", tax="4.00")
    affiliate = await completed_order(env, sku, 1, affiliate_commission_rate="0.10")
    cod = await completed_order(env, sku, 1, is_cod=True)
    return plain, affiliate, cod


async def test_statement_adds_up(env: Env) -> None:
    plain, affiliate, _ = await three_orders(env)
    await env.control(
        "POST", "/finance/adjustments", {"shop_id": env.shop_id, "amount": "-3.50", "type": "PLATFORM_PENALTY"}
    )
    await env.advance(DAY)

    statements = (
        await env.ok("GET", "/finance/202309/statements", query=[("sort_field", "statement_time"), ("page_size", "10")])
    )["statements"]
    assert statements
    for statement in statements:
        tx = await env.ok(
            "GET",
            f"/finance/202309/statements/{statement['id']}/statement_transactions",
            query=[("sort_field", "order_create_time"), ("page_size", "100")],
        )
        lines = tx["statement_transactions"]
        assert tx["total_count"] == len(lines)
        total = sum(Decimal(line["settlement_amount"]) for line in lines)
        assert total == Decimal(statement["settlement_amount"]) == Decimal(tx["settlement_amount"])
        for key in ("revenue_amount", "fee_amount", "shipping_cost_amount", "adjustment_amount"):
            assert sum(Decimal(line.get(key, "0")) for line in lines) == Decimal(statement[key])
        for line in lines:
            parts = sum(
                Decimal(line[k]) for k in ("revenue_amount", "fee_amount", "shipping_cost_amount", "adjustment_amount")
            )
            assert parts == Decimal(line["settlement_amount"])

    all_lines = []
    for statement in statements:
        tx = await env.ok(
            "GET",
            f"/finance/202309/statements/{statement['id']}/statement_transactions",
            query=[("sort_field", "order_create_time")],
        )
        all_lines += tx["statement_transactions"]
    by_order = {line.get("order_id"): line for line in all_lines if line["type"] == "ORDER"}
    assert Decimal(by_order[affiliate]["affiliate_commission_amount"]) == Decimal("-2.50")
    assert any(line["type"] == "PLATFORM_PENALTY" and line["settlement_amount"] == "-3.50" for line in all_lines)
    cod_line = next(line for line in all_lines if Decimal(line.get("cod_service_fee_amount", "0")) < 0)
    assert Decimal(cod_line["shipping_cost_amount"]) == Decimal("-4.50")

    per_order = await env.ok("GET", f"/finance/202309/orders/{plain}/statement_transactions")
    assert per_order["order_id"] == plain and per_order["sku_transactions"][0]["quantity"] == "2"

    payments = await env.ok("GET", "/finance/202309/payments", query=[("sort_field", "create_time")])
    assert {p["id"] for p in payments["payments"]} == {s["payment_id"] for s in statements}
    assert all(p["status"] == "PROCESSING" for p in payments["payments"])
    await env.advance(DAY)
    paid = await env.ok(
        "GET", "/finance/202309/statements", query=[("sort_field", "statement_time"), ("payment_status", "PAID")]
    )
    assert len(paid["statements"]) == len(statements)


async def _delivered_refunded_and_settled(env: Env) -> dict[str, Any]:
    """An order of one 25.00 tee, delivered, refunded 10.00 for a missing item, completed, and a day later."""
    product = await env.product([{"seller_sku": "TEE-1", "price": "25.00", "quantity": 50}])
    sku = product["skus"][0]["id"]
    placed = await env.order([(sku, 1)])
    await env.advance(3600)
    for step in ("ship", "collect", "deliver"):
        await env.control("POST", f"/orders/{placed['id']}/{step}")
    await env.ok(
        "POST",
        "/return_refund/202309/returns",
        body={
            "order_id": placed["id"],
            "return_reason": "ecom_order_delivered_refund_reason_missing_item",
            "return_type": "REFUND",
            "refund_total": "10.00",
            "currency": "USD",
        },
    )
    await env.advance(3600)
    await env.control("POST", f"/orders/{placed['id']}/complete")
    await env.advance(DAY)
    return placed


async def test_refund_reduces_the_next_statement(env: Env) -> None:
    placed = await _delivered_refunded_and_settled(env)
    tx = await env.ok("GET", f"/finance/202309/orders/{placed['id']}/statement_transactions")
    revenue = Decimal(tx["revenue_amount"])
    assert revenue == Decimal("15.00")


async def test_finance_requires_sort_field(env: Env) -> None:
    response = await env.api("GET", "/finance/202309/statements", query=[("page_size", "10")])
    assert response.status_code == 400 and response.json()["code"] == 98001004


# --- 202501 Get Transactions by Statement (§8.5): breakdown objects instead of the flat 202309 keys -----------

REVENUE_PARTS = (
    "subtotal_before_discount_amount",
    "seller_discount_amount",
    "refund_subtotal_before_discount_amount",
    "seller_discount_refund_amount",
    "cod_service_fee_amount",
)
SHIPPING_PARTS = ("actual_shipping_fee_amount", "shipping_fee_discount_amount", "customer_paid_shipping_fee_amount")


def parts_total(breakdown: dict[str, Any]) -> Decimal:
    """Sum of a breakdown's amounts, nested objects included (fee_tax_breakdown has `fee` and `tax`)."""
    total = Decimal(0)
    for value in breakdown.values():
        total += parts_total(value) if isinstance(value, dict) else Decimal(value)
    return total


async def test_transactions_by_statement_202501(env: Env) -> None:
    plain, affiliate, cod = await three_orders(env)
    await env.control(
        "POST", "/finance/adjustments", {"shop_id": env.shop_id, "amount": "-3.50", "type": "PLATFORM_PENALTY"}
    )
    await env.advance(DAY)
    [statement] = (await env.ok("GET", "/finance/202309/statements", query=[("sort_field", "statement_time")]))[
        "statements"
    ]
    path = f"/finance/202501/statements/{statement['id']}/statement_transactions"

    data = await env.ok("GET", path, query=[("sort_field", "order_create_time"), ("page_size", "100")])
    assert data["id"] == statement["id"] and data["create_time"] == statement["statement_time"]
    assert data["status"] == "SETTLED" and data["currency"] == statement["currency"]
    assert Decimal(data["total_settlement_amount"]) == Decimal(statement["settlement_amount"])
    assert Decimal(data["payable_amount"]) == Decimal(data["total_settlement_amount"]) + Decimal(
        data["total_reserve_amount"]
    )
    assert set(data["total_settlement_breakdown"]) == {
        "total_revenue_amount",
        "total_shipping_cost_amount",
        "total_fee_tax_amount",
        "total_adjustment_amount",
    }
    assert parts_total(data["total_settlement_breakdown"]) == Decimal(data["total_settlement_amount"])
    transactions = data["transactions"]
    assert data["total_count"] == len(transactions) == 4 and data["next_page_token"] == ""
    assert "statement_transactions" not in data and "statement_id" not in data

    totals = dict.fromkeys(
        ("revenue_amount", "shipping_cost_amount", "fee_tax_amount", "adjustment_amount"), Decimal(0)
    )
    for t in transactions:
        assert "fee_amount" not in t and "gross_sales_amount" not in t  # the flat 202309 keys are gone
        for key in totals:
            totals[key] += Decimal(t[key])
        assert Decimal(t["settlement_amount"]) == sum(Decimal(t[key]) for key in totals)
        assert set(t["revenue_breakdown"]) == set(REVENUE_PARTS)
        assert parts_total(t["revenue_breakdown"]) == Decimal(t["revenue_amount"])
        assert set(SHIPPING_PARTS) <= set(t["shipping_cost_breakdown"])
        assert parts_total(t["shipping_cost_breakdown"]) == Decimal(t["shipping_cost_amount"])
        assert set(t["fee_tax_breakdown"]) == {"fee", "tax"}
        assert parts_total(t["fee_tax_breakdown"]) == Decimal(t["fee_tax_amount"])
    breakdown = data["total_settlement_breakdown"]
    for key, total in totals.items():
        assert Decimal(breakdown[f"total_{key}"]) == total

    by_order = {t.get("order_id"): t for t in transactions if t["type"] == "ORDER"}
    assert set(by_order) == {plain, affiliate, cod}
    assert by_order[plain]["revenue_breakdown"]["subtotal_before_discount_amount"] == "50.00"
    assert by_order[plain]["shipping_cost_breakdown"]["customer_paid_shipping_fee_amount"] == "5.00"
    assert by_order[affiliate]["fee_tax_breakdown"]["fee"]["affiliate_commission_amount"] == "-2.50"
    assert Decimal(by_order[cod]["revenue_breakdown"]["cod_service_fee_amount"]) < 0
    assert isinstance(by_order[plain]["order_create_time"], int)
    [penalty] = [t for t in transactions if t["type"] == "PLATFORM_PENALTY"]
    assert penalty["adjustment_amount"] == "-3.50" and penalty["settlement_amount"] == "-3.50"
    assert "order_id" not in penalty

    # Paging: two per page, the token only works for its own query; sort_field is required as on 202309.
    first = await env.ok("GET", path, query=[("sort_field", "order_create_time"), ("page_size", "2")])
    assert len(first["transactions"]) == 2 and first["total_count"] == 4 and first["next_page_token"]
    rest = await env.ok(
        "GET",
        path,
        query=[("sort_field", "order_create_time"), ("page_size", "2"), ("page_token", first["next_page_token"])],
    )
    seen = [t["id"] for t in first["transactions"] + rest["transactions"]]
    assert sorted(seen) == sorted(t["id"] for t in transactions)
    missing_sort = await env.api("GET", path, query=[("page_size", "10")])
    assert missing_sort.status_code == 400 and missing_sort.json()["code"] == 98001004
    unknown = await env.api(
        "GET",
        "/finance/202501/statements/1234567890/statement_transactions",
        query=[("sort_field", "order_create_time")],
    )
    assert unknown.json()["code"] == 36009004


async def test_refund_in_the_202501_breakdown(env: Env) -> None:
    await _delivered_refunded_and_settled(env)
    statements = (await env.ok("GET", "/finance/202309/statements", query=[("sort_field", "statement_time")]))[
        "statements"
    ]
    refunds = []
    for statement in statements:
        data = await env.ok(
            "GET",
            f"/finance/202501/statements/{statement['id']}/statement_transactions",
            query=[("sort_field", "order_create_time")],
        )
        assert Decimal(data["total_settlement_amount"]) == Decimal(statement["settlement_amount"])
        refunds += [t for t in data["transactions"] if Decimal(t["revenue_amount"]) < 0]
    [refund] = refunds
    assert refund["revenue_breakdown"]["refund_subtotal_before_discount_amount"] == "-10.00"
    assert parts_total(refund["revenue_breakdown"]) == Decimal("-10.00")
    assert Decimal(refund["fee_tax_breakdown"]["fee"]["referral_fee_amount"]) > 0  # part of the fee comes back
