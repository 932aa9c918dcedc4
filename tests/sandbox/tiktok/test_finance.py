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


async def test_statement_adds_up(env: Env) -> None:
    product = await env.product([{"seller_sku": "TEE-1", "price": "25.00", "quantity": 50}])
    sku = product["skus"][0]["id"]
    plain = await completed_order(env, sku, 2, shipping_fee="5.00", tax="4.00")
    affiliate = await completed_order(env, sku, 1, affiliate_commission_rate="0.10")
    await completed_order(env, sku, 1, is_cod=True)
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


async def test_refund_reduces_the_next_statement(env: Env) -> None:
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
    tx = await env.ok("GET", f"/finance/202309/orders/{placed['id']}/statement_transactions")
    revenue = Decimal(tx["revenue_amount"])
    assert revenue == Decimal("15.00")


async def test_finance_requires_sort_field(env: Env) -> None:
    response = await env.api("GET", "/finance/202309/statements", query=[("page_size", "10")])
    assert response.status_code == 400 and response.json()["code"] == 98001004
