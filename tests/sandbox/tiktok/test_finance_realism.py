"""Finance realistic enough to reconcile against: settlement after delivery plus the shop's delay, reserves held and
released, refunds after settlement, each market's currency and precision, cash on delivery only where offered,
and the control API's settlement discrepancies. Whatever happens, every statement still adds up."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

import pytest

from .conftest import Env

pytestmark = pytest.mark.anyio
DAY = 86_400
AMOUNT_KEYS = ("revenue_amount", "fee_amount", "shipping_cost_amount", "adjustment_amount")


# --- helpers ---------------------------------------------------------------------------------------------------


async def now(env: Env) -> int:
    return int((await env.control("GET", "/clock"))["now"])


async def past_midnight(env: Env, days: int = 1) -> int:
    """Move just past the `days`-th coming midnight (UTC); answers that midnight."""
    t = await now(env)
    midnight = (t // DAY + days) * DAY
    await env.advance(midnight + 60 - t)
    return midnight


async def tee(env: Env, price: str = "25.00") -> str:
    product = await env.product([{"seller_sku": "TEE-1", "price": price, "quantity": 50}])
    sku_id: str = product["skus"][0]["id"]
    return sku_id


async def delivered(env: Env, sku: str, quantity: int = 1, *, complete: bool = True, **extra: Any) -> str:
    """An order past its hold, shipped, collected, delivered and (by default) completed."""
    placed = await env.order([(sku, quantity)], **extra)
    await env.advance(3600)
    steps = ("ship", "collect", "deliver", "complete") if complete else ("ship", "collect", "deliver")
    for step in steps:
        await env.control("POST", f"/orders/{placed['id']}/{step}")
    order_id: str = placed["id"]
    return order_id


async def statements(env: Env) -> list[dict[str, Any]]:
    found = await env.ok(
        "GET",
        "/finance/202309/statements",
        query=[("sort_field", "statement_time"), ("sort_order", "ASC"), ("page_size", "100")],
    )
    result: list[dict[str, Any]] = found["statements"]
    return result


async def lines_of(env: Env, statement_id: str) -> list[dict[str, Any]]:
    found = await env.ok(
        "GET",
        f"/finance/202309/statements/{statement_id}/statement_transactions",
        query=[("sort_field", "order_create_time"), ("page_size", "100")],
    )
    result: list[dict[str, Any]] = found["statement_transactions"]
    return result


async def order_lines(env: Env, order_id: str) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """(statement, line) for every statement line of the order, oldest statement first."""
    return [(s, line) for s in await statements(env) for line in await lines_of(env, s["id"])
            if line.get("order_id") == order_id]  # fmt: skip


async def payments(env: Env) -> dict[str, dict[str, Any]]:
    found = await env.ok("GET", "/finance/202309/payments", query=[("sort_field", "create_time"), ("page_size", "100")])
    return {p["id"]: p for p in found["payments"]}


async def seller_refund(env: Env, order_id: str, amount: str, currency: str = "USD") -> None:
    """A seller-created refund of part of the order; it completes an hour later."""
    await env.ok(
        "POST",
        "/return_refund/202309/returns",
        body={
            "order_id": order_id,
            "return_reason": "ecom_order_delivered_refund_reason_missing_item",
            "return_type": "REFUND",
            "refund_total": amount,
            "currency": currency,
        },
    )
    await env.advance(3601)


async def discrepancy(env: Env, body: dict[str, Any], expect: int = 201) -> Any:
    return await env.control("POST", "/finance/discrepancies", body, expect=expect)


def d(value: str) -> Decimal:
    return Decimal(value)


async def assert_adds_up(env: Env) -> None:
    """Every statement total is the sum of its non-RESERVE lines (202309 and 202501), its reserve the sum of its
    RESERVE lines, its payment settlement plus reserve; each order's own view is the sum of its lines."""
    pays = await payments(env)
    per_order: dict[str, Decimal] = {}
    for statement in await statements(env):
        lines = await lines_of(env, statement["id"])
        counted = [line for line in lines if line["type"] != "RESERVE"]
        reserve = sum((d(line["settlement_amount"]) for line in lines if line["type"] == "RESERVE"), Decimal(0))
        assert sum((d(line["settlement_amount"]) for line in counted), Decimal(0)) == d(statement["settlement_amount"])
        for key in AMOUNT_KEYS:
            assert sum((d(line[key]) for line in counted), Decimal(0)) == d(statement[key]), key
        for line in lines:
            if line["type"] == "RESERVE":
                assert line["reserve_amount"] == line["settlement_amount"]
                assert all(d(line[key]) == 0 for key in AMOUNT_KEYS)
            else:
                assert sum(d(line[key]) for key in AMOUNT_KEYS) == d(line["settlement_amount"])
            if line.get("order_id"):
                per_order[line["order_id"]] = per_order.get(line["order_id"], Decimal(0)) + d(line["settlement_amount"])
        data = await env.ok(
            "GET",
            f"/finance/202501/statements/{statement['id']}/statement_transactions",
            query=[("sort_field", "order_create_time"), ("page_size", "100")],
        )
        assert d(data["total_settlement_amount"]) == d(statement["settlement_amount"])
        assert d(data["total_reserve_amount"]) == reserve
        assert d(data["payable_amount"]) == d(statement["settlement_amount"]) + reserve
        breakdown = data["total_settlement_breakdown"]
        assert sum(d(v) for v in breakdown.values()) == d(data["total_settlement_amount"])
        for t in data["transactions"]:
            if t["type"] == "RESERVE":
                assert t["reserve_amount"] == t["settlement_amount"]
        paid = pays[statement["payment_id"]]
        assert d(paid["amount"]["value"]) == d(paid["payment_amount_before_exchange"]["value"])
        assert d(paid["amount"]["value"]) == d(statement["settlement_amount"]) + reserve
        assert d(paid["settlement_amount"]["value"]) == d(statement["settlement_amount"])
        assert d(paid["reserve_amount"]["value"]) == reserve
    for order_id, settled in per_order.items():
        truth = await env.client.get(f"/_sandbox/orders/{order_id}")
        if truth.status_code == 404:
            continue  # an injected line for an order the sandbox never had
        view = await env.ok("GET", f"/finance/202309/orders/{order_id}/statement_transactions")
        assert d(view["settlement_amount"]) == settled


# --- settlement after delivery plus the shop's delay -----------------------------------------------------------


async def test_an_order_settles_on_its_delivery_day_without_completing(env: Env) -> None:
    sku = await tee(env)
    order_id = await delivered(env, sku, complete=False)
    midnight = await past_midnight(env)
    [(statement, line)] = await order_lines(env, order_id)
    assert statement["statement_time"] == midnight and line["type"] == "ORDER"
    truth = await env.control("GET", f"/orders/{order_id}")
    assert truth["status"] == "DELIVERED" and truth["sandbox_settlement"]["statement_id"] == statement["id"]


async def test_an_order_settles_the_shops_delay_after_delivery(env: Env) -> None:
    sku = await tee(env)
    order_id = await delivered(env, sku, complete=False)
    delivery_day_ends = (await now(env) // DAY + 1) * DAY
    # Terms changed while the order waits apply to it.
    shop = await env.control("PATCH", f"/shops/{env.shop_id}", {"settlement_delay_days": 3})
    assert shop["settlement_delay_days"] == 3
    truth = await env.control("GET", f"/orders/{order_id}")
    assert truth["sandbox_settlement"]["settlement_due"] == delivery_day_ends + 3 * DAY

    await past_midnight(env)
    assert await statements(env) == []
    await env.control("POST", f"/orders/{order_id}/complete")  # completing does not move it
    await env.advance(2 * DAY)
    assert await statements(env) == []
    await past_midnight(env)
    [(statement, _)] = await order_lines(env, order_id)
    assert statement["statement_time"] == delivery_day_ends + 3 * DAY
    await assert_adds_up(env)


async def test_a_new_shop_takes_its_terms(env: Env) -> None:
    shop = await env.open_shop("US", settlement_delay_days=2, reserve_rate="0.05", reserve_days=14)
    assert (shop["settlement_delay_days"], shop["reserve_rate"], shop["reserve_days"]) == (2, "0.05", 14)
    assert shop["referral_fee_rate"] == "0.06"
    bad = await env.client.patch(f"/_sandbox/shops/{env.shop_id}", json={"reserve_rate": "1.5"})
    assert bad.status_code == 422 and "reserve_rate" in bad.text


# --- reserves ---------------------------------------------------------------------------------------------------


async def test_a_reserve_is_held_and_released_with_the_payments(env: Env) -> None:
    await env.control("PATCH", f"/shops/{env.shop_id}", {"reserve_rate": "0.10", "reserve_days": 3})
    sku = await tee(env)
    await delivered(env, sku, 2, shipping_fee="5.00")
    held_at = await past_midnight(env)

    [statement] = await statements(env)
    assert statement["statement_time"] == held_at
    lines = await lines_of(env, statement["id"])
    [hold] = [line for line in lines if line["type"] == "RESERVE"]
    settlement = d(statement["settlement_amount"])
    assert settlement == sum(d(line["settlement_amount"]) for line in lines if line["type"] == "ORDER") > 0
    held = (settlement * Decimal("0.10")).quantize(Decimal("0.01"))
    assert d(hold["settlement_amount"]) == d(hold["reserve_amount"]) == -held
    assert "order_id" not in hold and hold["currency"] == "USD"

    data = await env.ok(
        "GET",
        f"/finance/202501/statements/{statement['id']}/statement_transactions",
        query=[("sort_field", "order_create_time")],
    )
    assert d(data["total_settlement_amount"]) == settlement
    assert d(data["total_reserve_amount"]) == -held
    assert d(data["payable_amount"]) == settlement - held
    [reserve_202501] = [t for t in data["transactions"] if t["type"] == "RESERVE"]
    assert d(reserve_202501["reserve_amount"]) == d(reserve_202501["settlement_amount"]) == -held

    payment = (await payments(env))[statement["payment_id"]]
    assert payment["amount"] == {"value": str(settlement - held), "currency": "USD"}
    assert payment["payment_amount_before_exchange"] == payment["amount"]
    assert payment["settlement_amount"] == {"value": str(settlement), "currency": "USD"}
    assert payment["reserve_amount"] == {"value": str(-held), "currency": "USD"}

    # Nothing comes back before reserve_days have passed...
    await past_midnight(env, 2)
    assert len(await statements(env)) == 1
    # ...then it does, on the statement stamped reserve_days later, which has nothing else and is paid.
    await past_midnight(env)
    held_on, released = await statements(env)
    assert held_on["id"] == statement["id"] and released["statement_time"] == held_at + 3 * DAY
    [back] = await lines_of(env, released["id"])
    assert back["type"] == "RESERVE" and d(back["settlement_amount"]) == d(back["reserve_amount"]) == held
    assert d(released["settlement_amount"]) == 0
    payment = (await payments(env))[released["payment_id"]]
    assert d(payment["amount"]["value"]) == held and d(payment["reserve_amount"]["value"]) == held
    assert d(payment["settlement_amount"]["value"]) == 0
    await assert_adds_up(env)
    await past_midnight(env)
    assert [s["payment_status"] for s in await statements(env)] == ["PAID", "PAID"]


async def test_a_negative_statement_holds_nothing(env: Env) -> None:
    await env.control("PATCH", f"/shops/{env.shop_id}", {"reserve_rate": "0.10"})
    await env.control("POST", "/finance/adjustments", {"shop_id": env.shop_id, "amount": "-3.50",
                                                        "type": "PLATFORM_PENALTY"})  # fmt: skip
    await past_midnight(env)
    [statement] = await statements(env)
    assert [line["type"] for line in await lines_of(env, statement["id"])] == ["PLATFORM_PENALTY"]


# --- refunds ----------------------------------------------------------------------------------------------------


async def test_a_refund_after_settlement_is_its_own_line_on_a_later_statement(env: Env) -> None:
    sku = await tee(env)
    order_id = await delivered(env, sku, complete=False)  # returns open while an order is DELIVERED
    await past_midnight(env)
    await seller_refund(env, order_id, "10.00")
    await past_midnight(env)

    [(first, sale), (second, refund)] = await order_lines(env, order_id)
    assert first["statement_time"] < second["statement_time"]
    assert sale["type"] == refund["type"] == "ORDER"
    assert d(refund["revenue_amount"]) == Decimal("-10.00")
    assert d(refund["customer_refund_amount"]) == Decimal("-10.00")
    assert d(refund["referral_fee_amount"]) == Decimal("0.48")  # 80 % of the 6 % charged on 10.00 comes back
    assert d(refund["settlement_amount"]) == Decimal("-9.52")
    assert d(second["settlement_amount"]) == Decimal("-9.52")
    view = await env.ok("GET", f"/finance/202309/orders/{order_id}/statement_transactions")
    assert d(view["revenue_amount"]) == Decimal("15.00")
    assert d(view["settlement_amount"]) == d(sale["settlement_amount"]) - Decimal("9.52")
    await assert_adds_up(env)


async def test_a_refund_before_the_order_settles_is_still_its_own_line(env: Env) -> None:
    await env.control("PATCH", f"/shops/{env.shop_id}", {"settlement_delay_days": 2})
    sku = await tee(env)
    order_id = await delivered(env, sku, complete=False)
    await seller_refund(env, order_id, "10.00")
    await past_midnight(env)
    [(_, refund)] = await order_lines(env, order_id)
    assert d(refund["revenue_amount"]) == Decimal("-10.00")
    await past_midnight(env, 2)
    [(first, refund), (later, sale)] = await order_lines(env, order_id)
    assert (
        d(sale["revenue_amount"]) == Decimal("25.00") and later["statement_time"] == first["statement_time"] + 2 * DAY
    )
    await assert_adds_up(env)


# --- currency per market, cash on delivery ----------------------------------------------------------------------

WHOLE = re.compile(r"^-?\d+$")


def money_strings(found: Any) -> list[str]:
    """Every amount in a response: the values of `*_amount` keys and of `{value, currency}` objects."""
    out: list[str] = []
    if isinstance(found, dict):
        for key, value in found.items():
            if isinstance(value, str) and (key.endswith("_amount") or key == "value"):
                out.append(value)
            else:
                out += money_strings(value)
    elif isinstance(found, list):
        for value in found:
            out += money_strings(value)
    return out


async def test_a_shop_sells_and_settles_in_its_markets_currency(env: Env) -> None:
    shop = await env.open_shop("VN")
    assert shop["currency"] == "VND"
    sellers = await env.control("GET", "/sellers")
    seller_id = sellers[0]["id"]
    assert (await env.control("POST", "/shops", {"seller_id": seller_id, "name": "UK", "region": "GB"}))[
        "currency"
    ] == "GBP"
    mismatch = await env.client.post(
        "/_sandbox/shops", json={"seller_id": seller_id, "name": "UK", "region": "GB", "currency": "USD"}
    )
    assert mismatch.status_code == 422 and "GBP" in mismatch.text
    nowhere = await env.client.post("/_sandbox/shops", json={"seller_id": seller_id, "name": "?", "region": "XX"})
    assert nowhere.status_code == 422 and "XX" in nowhere.text

    cents = await env.client.post(
        "/_sandbox/products",
        json={"shop_id": env.shop_id, "title": "Áo thun", "skus": [{"seller_sku": "A", "price": "19.99"}]},
    )
    assert cents.status_code == 422 and "VND" in cents.text
    sku = await tee(env, price="99999")
    order_id = await delivered(env, sku, shipping_fee="15000", is_cod=True)
    await past_midnight(env)

    [statement] = await statements(env)
    assert statement["currency"] == "VND"
    [line] = await lines_of(env, statement["id"])
    assert line["currency"] == "VND"
    assert line["revenue_amount"] == "99999"
    assert line["referral_fee_amount"] == "-6000"  # 6 % of 99 999 is 5 999.94
    assert line["transaction_fee_amount"] == "-3335"  # 2.9 % of the 114 999 paid
    assert line["cod_service_fee_amount"] == "-1150"  # 1 % of it
    assert line["actual_shipping_fee_amount"] == "-25000"  # a label in Vietnam
    assert line["shipping_cost_amount"] == "-10000"
    responses = [
        statement,
        line,
        await env.ok(
            "GET",
            f"/finance/202501/statements/{statement['id']}/statement_transactions",
            query=[("sort_field", "order_create_time")],
        ),
        await env.ok("GET", f"/finance/202309/orders/{order_id}/statement_transactions"),
        await payments(env),
    ]
    amounts = money_strings(responses)
    assert len(amounts) > 40 and all(WHOLE.match(a) for a in amounts), amounts
    await assert_adds_up(env)


async def test_cash_on_delivery_only_where_the_market_offers_it(env: Env) -> None:
    sku = await tee(env)
    refused = await env.client.post(
        "/_sandbox/orders", json={"shop_id": env.shop_id, "items": [{"sku_id": sku}], "is_cod": True}
    )
    assert refused.status_code == 400
    assert "cash on delivery is not offered in US" in refused.json()["detail"]
    await env.open_shop("MY")
    sku = await tee(env, price="59.00")
    placed = await env.order([(sku, 1)], is_cod=True)
    assert placed["is_cod"] is True and placed["payment"]["currency"] == "MYR"


# --- discrepancies (sandbox-only control API) ------------------------------------------------------------------


async def twins(env: Env) -> tuple[str, str]:
    """Two identical delivered orders of one 25.00 tee (not completed, so they can still be refunded): one to
    tamper with, one to compare against."""
    sku = await tee(env)
    return await delivered(env, sku, complete=False), await delivered(env, sku, complete=False)


async def the_line(env: Env, order_id: str) -> dict[str, Any]:
    [(_, line)] = await order_lines(env, order_id)
    return line


async def test_withhold_keeps_the_order_and_its_refunds_off_every_statement(env: Env) -> None:
    withheld, plain = await twins(env)
    recorded = await discrepancy(env, {"kind": "withhold", "order_id": withheld})
    assert recorded["kind"] == "withhold" and recorded["order_id"] == withheld and recorded["shop_id"] == env.shop_id
    assert recorded["discrepancy"]["withhold"] is True and recorded["settlement_due"] is None
    await seller_refund(env, withheld, "5.00")
    await past_midnight(env, 3)
    assert await order_lines(env, withheld) == []
    assert len(await order_lines(env, plain)) == 1
    view = await env.ok("GET", f"/finance/202309/orders/{withheld}/statement_transactions")
    assert view["sku_transactions"] == [] and d(view["settlement_amount"]) == 0
    listed = await env.control("GET", f"/finance/discrepancies?shop_id={env.shop_id}")
    assert [(x["order_id"], x["withhold"]) for x in listed] == [(withheld, True)]
    await assert_adds_up(env)


async def test_revenue_delta_moves_revenue_and_settlement_only(env: Env) -> None:
    off, plain = await twins(env)
    recorded = await discrepancy(env, {"kind": "revenue_delta", "order_id": off, "amount": "-1.50"})
    assert recorded["amount"] == "-1.50" and recorded["discrepancy"]["revenue_delta"] == "-1.50"
    await past_midnight(env)
    tampered, expected = await the_line(env, off), await the_line(env, plain)
    assert d(tampered["revenue_amount"]) == d(expected["revenue_amount"]) - Decimal("1.50")
    assert d(tampered["settlement_amount"]) == d(expected["settlement_amount"]) - Decimal("1.50")
    assert tampered["fee_amount"] == expected["fee_amount"]
    assert tampered["shipping_cost_amount"] == expected["shipping_cost_amount"]
    await assert_adds_up(env)


async def test_unknown_order_lands_on_the_next_statement(env: Env) -> None:
    sku = await tee(env)
    await delivered(env, sku)
    recorded = await discrepancy(env, {"kind": "unknown_order", "shop_id": env.shop_id, "amount": "12.00"})
    made_up = recorded["order_id"]
    assert recorded["kind"] == "unknown_order" and recorded["amount"] == "12.00" and made_up
    await env.control("GET", f"/orders/{made_up}", expect=404)
    midnight = await past_midnight(env)
    [(statement, line)] = await order_lines(env, made_up)
    assert statement["statement_time"] == midnight
    assert line["type"] == "ORDER" and line["revenue_amount"] == line["settlement_amount"] == "12.00"
    assert d(line["fee_amount"]) == 0 and isinstance(line["order_create_time"], int)
    missing = await env.api("GET", f"/finance/202309/orders/{made_up}/statement_transactions")
    assert missing.json()["code"] == 21008111
    await assert_adds_up(env)


async def test_delay_settles_days_later(env: Env) -> None:
    late, plain = await twins(env)
    recorded = await discrepancy(env, {"kind": "delay", "order_id": late, "days": 2})
    assert recorded["days"] == 2 and recorded["discrepancy"]["delay_days"] == 2
    await past_midnight(env, 3)
    [(on_time, _)] = await order_lines(env, plain)
    [(delayed, _)] = await order_lines(env, late)
    assert delayed["statement_time"] == on_time["statement_time"] + 2 * DAY
    await assert_adds_up(env)


async def test_skip_refund_never_deducts_the_refund(env: Env) -> None:
    skipped, plain = await twins(env)
    await past_midnight(env)
    # Allowed after the order settled: it is about refunds still to come.
    await discrepancy(env, {"kind": "skip_refund", "order_id": skipped})
    await seller_refund(env, skipped, "10.00")
    await seller_refund(env, plain, "10.00")
    await past_midnight(env, 2)
    assert len(await order_lines(env, skipped)) == 1
    assert len(await order_lines(env, plain)) == 2
    view = await env.ok("GET", f"/finance/202309/orders/{skipped}/statement_transactions")
    assert d(view["revenue_amount"]) == Decimal("25.00")
    await assert_adds_up(env)


async def test_fee_rate_charges_the_order_another_referral_fee(env: Env) -> None:
    dear, plain = await twins(env)
    recorded = await discrepancy(env, {"kind": "fee_rate", "order_id": dear, "referral_fee_rate": "0.10"})
    assert recorded["referral_fee_rate"] == "0.10"
    await past_midnight(env)
    assert (await the_line(env, dear))["referral_fee_amount"] == "-2.50"
    assert (await the_line(env, plain))["referral_fee_amount"] == "-1.50"
    await assert_adds_up(env)


async def test_discrepancy_errors_name_what_is_wrong(env: Env) -> None:
    order_id, _ = await twins(env)
    assert "kind" in (await discrepancy(env, {"order_id": order_id}, expect=400))["detail"]
    assert "bogus" in (await discrepancy(env, {"kind": "bogus", "order_id": order_id}, expect=400))["detail"]
    missing = await discrepancy(env, {"kind": "revenue_delta", "order_id": order_id}, expect=400)
    assert "amount" in missing["detail"]
    assert "shop_id" in (await discrepancy(env, {"kind": "unknown_order", "amount": "1"}, expect=400))["detail"]
    fine = await discrepancy(env, {"kind": "revenue_delta", "order_id": order_id, "amount": "1.005"}, expect=400)
    assert "amount" in fine["detail"]
    assert (
        "days" in (await discrepancy(env, {"kind": "delay", "order_id": order_id, "days": "2"}, expect=400))["detail"]
    )
    rate = await discrepancy(env, {"kind": "fee_rate", "order_id": order_id, "referral_fee_rate": "2"}, expect=400)
    assert "referral_fee_rate" in rate["detail"]
    await discrepancy(env, {"kind": "withhold", "order_id": "576400000000000000"}, expect=404)
    await discrepancy(env, {"kind": "unknown_order", "shop_id": "1", "amount": "1.00"}, expect=404)
    await past_midnight(env)
    settled = await discrepancy(env, {"kind": "withhold", "order_id": order_id}, expect=409)
    assert "already settled" in settled["detail"]
