"""The OAuth callback's HMAC (reference §1.5) against its test vectors, and the checks a forged or stale callback
fails."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from shopbridge.channels.shopify.connect import SetupError
from shopbridge.channels.shopify.oauth import calculate_hmac, callback_params, verify_callback

VECTOR = {"shop": "some-shop.myshopify.com", "code": "a94a110d86d2452eb3e2af4cfb8a3828", "timestamp": "1337178173"}
SIGNED_AT = datetime.fromtimestamp(1337178173, UTC)


def test_the_reference_vector() -> None:
    assert calculate_hmac(VECTOR, "hush") == "2cb1a277650a659f1b11e92a4a64275b128e037f2c3390e3c8fd2d8721dac9e2"


def test_the_reference_vector_with_an_array_parameter() -> None:
    params = callback_params([("shop", "some-shop.myshopify.com"), ("ids[]", "2"), ("ids[]", "1")])
    assert params == {"shop": "some-shop.myshopify.com", "ids[]": ["2", "1"]}
    assert calculate_hmac(params, "hush") == "b93b9f82996f6f8bf9f1b7bbddec284c8fabacdc4e12dc80550b4705f3003b1e"


def test_the_hmac_parameter_itself_is_not_signed_and_escapes_apply() -> None:
    signed = calculate_hmac(VECTOR, "hush")
    assert calculate_hmac({**VECTOR, "hmac": "anything"}, "hush") == signed
    # "&" and "%" inside a value, "=" inside a key, are escaped so they cannot forge another pair
    assert calculate_hmac({"a": "1&b=2"}, "s") != calculate_hmac({"a": "1", "b": "2"}, "s")
    assert calculate_hmac({"a=b": "c"}, "s") != calculate_hmac({"a": "b=c"}, "s")


def test_a_genuine_callback_passes() -> None:
    params = {**VECTOR, "hmac": "2cb1a277650a659f1b11e92a4a64275b128e037f2c3390e3c8fd2d8721dac9e2"}
    verify_callback(params, "hush", now=SIGNED_AT + timedelta(hours=23))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"hmac": "0" * 64}, "hmac does not match"),
        ({"hmac": None}, "hmac does not match"),
        ({"shop": "other-shop.myshopify.com"}, "hmac does not match"),
        ({"code": "stolen"}, "hmac does not match"),
    ],
)
def test_a_forged_callback_is_refused(change: dict[str, str | None], message: str) -> None:
    params = {**VECTOR, "hmac": calculate_hmac(VECTOR, "hush"), **change}
    with pytest.raises(SetupError, match=message):
        verify_callback({k: v for k, v in params.items() if v is not None}, "hush", now=SIGNED_AT)


def test_a_callback_signed_with_another_secret_is_refused() -> None:
    params = {**VECTOR, "hmac": calculate_hmac(VECTOR, "not-hush")}
    with pytest.raises(SetupError, match="did not come from Shopify"):
        verify_callback(params, "hush", now=SIGNED_AT)


def test_a_callback_older_than_a_day_is_refused() -> None:
    params = {**VECTOR, "hmac": calculate_hmac(VECTOR, "hush")}
    with pytest.raises(SetupError, match="more than 24 hours old"):
        verify_callback(params, "hush", now=SIGNED_AT + timedelta(hours=24, seconds=1))
