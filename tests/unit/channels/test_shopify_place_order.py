"""The store order the hub builds for a marketplace order: prices, money, address, and its idempotency key."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from shopbridge.channels.shopify.client import UserError
from shopbridge.channels.shopify.orders import (
    LineToPlace,
    Placement,
    explain,
    order_input,
    place_key,
    shipping_address,
    unit_prices,
)

NOW = datetime(2026, 5, 1, 12, tzinfo=UTC)
TEE = LineToPlace("gid://shopify/ProductVariant/1", "TEE-M", "Cotton tee", 2, 1990)
CAP = LineToPlace("gid://shopify/ProductVariant/2", None, "Cap", 1, 1200)


def placement(**changes: Any) -> Placement:
    values: dict[str, Any] = {
        "order_id": 7, "external_id": "5764", "origin_channel": "tiktok", "origin_label": "TikTok Shop Demo",
        "currency": "USD", "subtotal_minor": 5180, "shipping_minor": 499, "tax_minor": 350,
        "created_at": NOW - timedelta(hours=2), "lines": (TEE, CAP), "buyer": {"buyer_email": "ann@example.com"},
        "recipient": {},
    }  # fmt: skip
    return Placement(**{**values, **changes})


def amount(money: dict[str, Any]) -> Decimal:
    return Decimal(money["shopMoney"]["amount"])


def test_a_paid_order_at_the_prices_sold_with_shipping_tax_and_its_origin() -> None:
    order = order_input(placement(), now=NOW)
    assert [(line["variantId"], line["quantity"], amount(line["priceSet"])) for line in order["lineItems"]] == [
        ("gid://shopify/ProductVariant/1", 2, Decimal("19.90")), ("gid://shopify/ProductVariant/2", 1, Decimal("12.00"))
    ]  # fmt: skip
    (sale,) = order["transactions"]
    assert (sale["kind"], sale["status"], amount(sale["amountSet"])) == ("SALE", "SUCCESS", Decimal("60.29"))
    assert order["financialStatus"] == "PAID"
    assert [amount(line["priceSet"]) for line in order["shippingLines"]] == [Decimal("4.99")]
    assert [(tax["rate"], amount(tax["priceSet"])) for tax in order["taxLines"]] == [("0.0676", Decimal("3.50"))]
    assert (order["sourceName"], order["sourceIdentifier"], order["email"]) == ("tiktok", "5764", "ann@example.com")
    assert order["tags"] == ["TikTok Shop Demo", "shopbridge"]
    assert order["customAttributes"] == [{"key": "shopbridge_order_id", "value": "7"},
                                         {"key": "tiktok_order_id", "value": "5764"}]  # fmt: skip
    assert order["processedAt"] == (NOW - timedelta(hours=2)).isoformat()
    assert "shippingAddress" not in order, "no address given, none invented"


def test_without_shipping_or_tax_there_are_no_such_lines_and_a_clock_ahead_is_not_believed() -> None:
    order = order_input(placement(shipping_minor=None, tax_minor=0, created_at=NOW + timedelta(minutes=5)), now=NOW)
    assert "shippingLines" not in order and "taxLines" not in order
    assert amount(order["transactions"][0]["amountSet"]) == Decimal("51.80")
    assert order["processedAt"] == NOW.isoformat()


def test_the_discounts_setting_names_the_price_of_each_unit() -> None:
    discounted = placement(subtotal_minor=4662)  # a platform-funded 10% off 51.80
    assert unit_prices(discounted) == [1990, 1200], "seller: as the seller sold it"
    assert unit_prices(discounted, "all") == [1791, 1080], "all: every discount off"
    assert unit_prices(placement(subtotal_minor=None), "all") == [1990, 1200], "nothing to spread"


@given(st.integers(min_value=0, max_value=5180))
def test_spreading_every_discount_never_raises_a_price_and_lands_within_a_cent_a_unit(subtotal: int) -> None:
    prices = unit_prices(placement(subtotal_minor=subtotal), "all")
    assert all(0 <= new <= old for new, old in zip(prices, [1990, 1200], strict=True))
    assert abs(sum(price * line.quantity for price, line in zip(prices, (TEE, CAP), strict=True)) - subtotal) <= 3


def test_the_address_as_tiktok_gives_it() -> None:
    recipient = {
        "name": "Ann Lee", "phone_number": "(+1)512-***-0100", "address_line1": "1 Main St", "address_line2": "",
        "postal_code": "78701", "region_code": "US",
        "district_info": [{"address_level": "L1", "address_name": "Texas", "iso_code": "US-TX"},
                          {"address_level": "L3", "address_name": "Austin"}],
    }  # fmt: skip
    assert shipping_address(recipient) == {"firstName": "Ann", "lastName": "Lee", "address1": "1 Main St",
                                           "city": "Austin", "zip": "78701", "countryCode": "US",
                                           "provinceCode": "TX"}  # fmt: skip
    unmasked = shipping_address({**recipient, "phone_number": "+15125550100", "district_info": []})
    assert unmasked is not None and unmasked["phone"] == "+15125550100" and "provinceCode" not in unmasked
    assert shipping_address({"region_code": "US"}) is None, "withheld during ON_HOLD: no street, no address"


def test_the_key_repeats_for_the_same_attempt_only() -> None:
    order = order_input(placement(), now=NOW)
    key = place_key(3, "2026-05-01T10:00:00+00:00", order)
    assert key == place_key(3, "2026-05-01T10:00:00+00:00", order_input(placement(), now=NOW))
    assert key.startswith("shopbridge-place-3-")
    assert key != place_key(3, "2026-05-01T11:00:00+00:00", order), "a retry after a refusal is a new request"
    assert key != place_key(3, "2026-05-01T10:00:00+00:00", order_input(placement(tax_minor=400), now=NOW))


def test_what_the_store_said_names_the_line_by_its_sku() -> None:
    errors = [UserError(["order", "lineItems", "1", "variantId"], "Variant does not exist.", "INVALID"),
              UserError(["order", "lineItems", "0", "quantity"], "Quantity is too large"),
              UserError(None, "The shop is dormant", "SHOP_DORMANT")]  # fmt: skip
    assert explain(errors, [TEE, CAP]) == (
        "line Cap: Variant does not exist. (INVALID); line TEE-M: Quantity is too large; The shop is dormant "
        "(SHOP_DORMANT)"
    )
