"""HMAC test vectors: the OAuth callback (reference §1.5) and webhooks (§7.3), checked against the sandbox's own
implementations and, for §1.5, against ShopifyAPI's."""

from __future__ import annotations

import shopify

from shopbridge.sandbox.shopify.oauth import calculate_hmac
from shopbridge.sandbox.shopify.webhooks import hmac_sha256_base64


def test_oauth_hmac_vector_from_the_python_library() -> None:
    params = {
        "shop": "some-shop.myshopify.com",
        "code": "a94a110d86d2452eb3e2af4cfb8a3828",
        "timestamp": "1337178173",
        "hmac": "ignored",
    }
    assert calculate_hmac(params, "hush") == "2cb1a277650a659f1b11e92a4a64275b128e037f2c3390e3c8fd2d8721dac9e2"


def test_oauth_hmac_vector_with_array_params() -> None:
    params = {"shop": "some-shop.myshopify.com", "ids[]": ["2", "1"]}
    assert calculate_hmac(params, "hush") == "b93b9f82996f6f8bf9f1b7bbddec284c8fabacdc4e12dc80550b4705f3003b1e"


def test_oauth_hmac_agrees_with_shopifyapi_on_escaped_values() -> None:
    shopify.Session.setup(api_key="k", secret="hush")
    params = {"shop": "a&b=c%d.myshopify.com", "state": "x=1&y=2", "timestamp": "1700000000"}
    assert calculate_hmac(params, "hush") == shopify.Session.calculate_hmac(params)


def test_webhook_hmac_vectors() -> None:
    assert hmac_sha256_base64("hush", b'"my secret message"') == "hMTq0K2x7oyOjoBwGYeTj5oxfnaVYXzbanUG9aajpKI="
    assert hmac_sha256_base64("hush", b"my secret message") == "7/WDe43pNWxHoCMD7ukeWbZMtWEMfYQy8wPrdA6jiwc="
    assert hmac_sha256_base64("hush", b'"my secret message"\n') == "T2zuVaopuVX3zTakawiaHKLmMCAoVSe/igoRVbE+7VE="
