"""The store's carriers as TikTok's shipping providers, the hub's cancel reasons as TikTok's seller reasons, and the
reject reason sent for a buyer's cancellation request."""

from __future__ import annotations

import pytest

from shopbridge.channels.tiktok.cancellations import DEFAULT_REJECT_REASON, pick_reject_reason
from shopbridge.channels.tiktok.fulfilment import (
    GENERIC_SELLER_REASON,
    ShippingProvider,
    default_provider,
    match_provider,
    seller_cancel_reason,
)
from shopbridge.domain.orders import CancelReason

USPS = ShippingProvider("7117858858072016686", "USPS")
UPS = ShippingProvider("7117859084333745966", "UPS")
FEDEX = ShippingProvider("7129736293521327877", "FedEx")
DHL_ECOMMERCE = ShippingProvider("7000000000000000001", "DHL eCommerce")
PROVIDERS = [USPS, UPS, FEDEX]


@pytest.mark.parametrize(
    ("carrier", "expected"),
    [
        ("USPS", USPS),
        ("usps", USPS),
        (" UPS ", UPS),
        ("FedEx", FEDEX),
        ("FEDEX", FEDEX),
        ("FedEx Ground", FEDEX),
        ("UPS Mail Innovations", UPS),
        ("DHL Express", None),
        ("Groups Courier", None),  # "ups" inside a word is not UPS
        ("", None),
        (None, None),
    ],
)
def test_carriers_match_by_name_ignoring_case_then_by_whole_words(
    carrier: str | None, expected: ShippingProvider | None
) -> None:
    assert match_provider(carrier, PROVIDERS) == expected


def test_a_carrier_named_within_one_provider_matches_it_but_not_when_several_hold_it() -> None:
    assert match_provider("DHL", [*PROVIDERS, DHL_ECOMMERCE]) == DHL_ECOMMERCE
    two = [ShippingProvider("1", "Royal Mail Tracked"), ShippingProvider("2", "Royal Mail 48")]
    assert match_provider("Royal Mail", two) is None


def test_the_accounts_carrier_map_comes_first_and_an_unknown_target_falls_through() -> None:
    assert match_provider("DHL Express", PROVIDERS, {"dhl express": "FedEx"}) == FEDEX
    assert match_provider("UPS", PROVIDERS, {"UPS": "usps"}) == USPS
    assert match_provider("UPS", PROVIDERS, {"UPS": "Pony Express"}) == UPS
    assert match_provider("DHL Express", PROVIDERS, {"DHL Express": "Pony Express"}) is None


def test_the_default_provider_is_the_named_one_else_tiktoks_first() -> None:
    assert default_provider(PROVIDERS, "fedex") == FEDEX
    assert default_provider(PROVIDERS, "Pony Express") == USPS
    assert default_provider(PROVIDERS, None) == USPS
    assert default_provider([], "USPS") is None


@pytest.mark.parametrize(
    ("reason", "key"),
    [
        (CancelReason.OUT_OF_STOCK, "seller_cancel_reason_out_of_stock"),
        (CancelReason.UNDELIVERABLE, "seller_cancel_reason_unable_to_deliver"),
        (CancelReason.STAFF, "seller_cancel_reason_wrong_price"),
        (CancelReason.FRAUD, GENERIC_SELLER_REASON),
        (CancelReason.DECLINED, GENERIC_SELLER_REASON),
        (CancelReason.BUYER, GENERIC_SELLER_REASON),
        (CancelReason.OTHER, GENERIC_SELLER_REASON),
        ("inventory", GENERIC_SELLER_REASON),  # not one of the hub's reasons: other
        (None, GENERIC_SELLER_REASON),
    ],
)
def test_each_cancel_reason_has_a_seller_reason(reason: str | None, key: str) -> None:
    assert seller_cancel_reason(reason) == key


def test_the_accounts_reason_map_overrides_a_reason() -> None:
    overrides = {"fraud": "seller_cancel_reason_suspected_fraud"}
    assert seller_cancel_reason("fraud", overrides) == "seller_cancel_reason_suspected_fraud"
    assert seller_cancel_reason("out_of_stock", overrides) == "seller_cancel_reason_out_of_stock"


OFFERED = [
    {"name": "seller_reject_apply_product_has_been_packed", "text": "Product has been packed"},
    {"name": "seller_reject_apply_package_has_been_shipped", "text": "Package has been shipped"},
]


def test_the_reject_reason_is_the_one_named_else_the_accounts_else_tiktoks_first() -> None:
    shipped = "seller_reject_apply_package_has_been_shipped"
    assert pick_reject_reason(OFFERED, shipped, None) == shipped
    assert pick_reject_reason(OFFERED, "package has been SHIPPED", None) == shipped
    assert pick_reject_reason(OFFERED, "the buyer called us", shipped) == shipped
    assert pick_reject_reason(OFFERED, "the buyer called us", "not offered") == OFFERED[0]["name"]
    assert pick_reject_reason([], None, None) == DEFAULT_REJECT_REASON
