"""Every request-signing and webhook-signature vector of the reference (§1.2, §1.3, §9.2)."""

from __future__ import annotations

import pytest

from shopbridge.sandbox.tiktok.signing import accepted_signatures, sign, string_to_sign, verify, webhook_signature

SECRET = "e59af819cc"
CIPHER_V2 = "ROW_xkMbgAAAeVAQra0eZWebFQq5aIK"
CIPHER = "GCP_XF90igAAAABh00qsWgtvOiGFNqyubMt3"
V2_QUERY = [("app_key", "68xu9ks5p4i8"), ("shop_cipher", CIPHER_V2), ("timestamp", "1696909648")]

VECTORS = [
    pytest.param(
        SECRET,
        "/authorization/202309/shops",
        [("app_key", "29a39d"), ("timestamp", "1623812664")],
        b"",
        "application/json",
        "b596b73e0cc6de07ac26f036364178ab16b0a907af13d43f0a0cd2345f582dc8",
        id="V1-official",
    ),
    pytest.param(
        SECRET,
        "/event/202309/webhooks",
        V2_QUERY,
        b"",
        "application/json",
        "ed58e1b5e59865c22a7b828c1cab65007441f43cc91a6cb2f2cdc638e0995a37",
        id="V2-net-get",
    ),
    pytest.param(
        SECRET,
        "/event/202309/webhooks",
        V2_QUERY,
        b'{"event_type":"PACKAGE_UPDATE","address":"https://partner.tiktokshop.com"}',
        "application/json",
        "701dd6deb2389fe4c469b89bd37fc56f96a6da6afeb4d01c9077a65169752fa7",
        id="V3-net-put",
    ),
    pytest.param(
        "app_secret",
        "/test-api",
        [("foo", "bar")],
        b"",
        "application/json",
        "d3cb7fe11ecae942802ceeca67e7cf10120cc12f1517d45fbc1c8cfe5413c80f",
        id="V4-php",
    ),
    pytest.param(
        SECRET,
        "/event/202309/webhooks",
        V2_QUERY,
        b'{"address":"https://partner.tiktokshop.com","event_type":"PACKAGE_UPDATE"}',
        "application/json",
        "cd0d6268252f4ba293bf7ea4c0a2873bf9beec600d22530638564ab301435f7a",
        id="V5-doc-body",
    ),
    pytest.param(
        SECRET,
        "/order/202309/orders/search",
        [("page_size", "20"), ("shop_cipher", CIPHER), ("app_key", "29a39d"), ("timestamp", "1623812664")],
        b'{"order_status":"UNPAID","create_time_ge":1623800000}',
        "application/json",
        "7a0ae3c9fee72f197641ece109e905f24dba1502df87c255cb4abdc15e78581c",
        id="V6-spec-client",
    ),
    pytest.param(
        SECRET,
        "/order/202309/orders/search",
        [
            ("app_key", "29a39d"),
            ("page_size", "100"),
            ("page_token", "6AsPQsUMvH3RkchNUPPh22NROHkE0D8pmq/N5M1kHYcZmtRyv9aVrNv65W7Q6tFA+7D1ud64MPNz5OaT"),
            ("shop_cipher", CIPHER),
            ("timestamp", "1623812664"),
            ("sign", "ignored"),
            ("access_token", "ignored-too"),
        ],
        b'{"order_status":"UNPAID"}',
        "application/json",
        "6b55918cfea8c0a45c2e533b88a5d8c2c379f23ded442d71d9be1fa86d28f73e",
        id="V7-page-token-decoded",
    ),
    pytest.param(
        SECRET,
        "/product/202309/images/upload",
        [("app_key", "29a39d"), ("timestamp", "1623812664")],
        b'--boundary\r\nContent-Disposition: form-data; name="data"\r\n\r\nxx\r\n--boundary--\r\n',
        "multipart/form-data; boundary=boundary",
        "2f292aaeecc6a6ce8c7240771265c3342b343f27ef91271fe72a9452d74fa844",
        id="V8-multipart-body-excluded",
    ),
]


@pytest.mark.parametrize(("secret", "path", "query", "body", "content_type", "expected"), VECTORS)
def test_request_vectors(
    secret: str, path: str, query: list[tuple[str, str]], body: bytes, content_type: str, expected: str
) -> None:
    assert sign(secret, path, query, body, content_type) == expected
    assert verify(secret, path, query, body, content_type, expected)


def test_v1_string_to_sign_is_the_documented_one() -> None:
    base = string_to_sign("/authorization/202309/shops", [("timestamp", "1623812664"), ("app_key", "29a39d")], b"", "")
    assert SECRET.encode() + base + SECRET.encode() == (
        b"e59af819cc/authorization/202309/shopsapp_key29a39dtimestamp1623812664e59af819cc"
    )


# The reference does not print the two ids; these reproduce all three of its digests.
A, B = "576461413038785752", "576461413038785753"
ORDERS_QUERY = [("app_key", "29a39d"), ("shop_cipher", CIPHER), ("timestamp", "1623812664")]


@pytest.mark.parametrize(
    ("ids", "expected"),
    [
        pytest.param(
            [("ids", A), ("ids", B)],
            "f1be7af422ea874c1cc1ca0a1ed3f2ba1661b85686dfab6b3c140ba22acade16",
            id="repeated-both-signed",
        ),
        pytest.param([("ids", A)], "017f790f1b26ed1d97a7365adbd0421f6410f4ac9f857a8f928b1d30e8299857", id="first"),
        pytest.param(
            [("ids", f"{A},{B}")], "aafec5193e65e35a859b9b151609f07fc494a08a9a6cef019fc4d35ad9ab2e96", id="comma"
        ),
    ],
)
def test_repeated_key_vectors(ids: list[tuple[str, str]], expected: str) -> None:
    assert sign(SECRET, "/order/202507/orders", [*ORDERS_QUERY, *ids]) == expected


def test_repeated_keys_accept_all_three_forms() -> None:
    sent = [*ORDERS_QUERY, ("ids", A), ("ids", B)]
    accepted = accepted_signatures(SECRET, "/order/202507/orders", sent, b"", "application/json")
    assert {
        "f1be7af422ea874c1cc1ca0a1ed3f2ba1661b85686dfab6b3c140ba22acade16",
        "017f790f1b26ed1d97a7365adbd0421f6410f4ac9f857a8f928b1d30e8299857",
        "aafec5193e65e35a859b9b151609f07fc494a08a9a6cef019fc4d35ad9ab2e96",
    } <= accepted
    joined = [*ORDERS_QUERY, ("ids", f"{A},{B}")]
    assert verify(
        SECRET,
        "/order/202507/orders",
        joined,
        b"",
        "application/json",
        "aafec5193e65e35a859b9b151609f07fc494a08a9a6cef019fc4d35ad9ab2e96",
    )


def test_empty_values_are_signed_as_sent() -> None:
    with_empty = sign(SECRET, "/x", [("a", ""), ("b", "1")])
    without = sign(SECRET, "/x", [("b", "1")])
    assert with_empty != without
    assert with_empty == sign(SECRET, "/x", [("b", "1"), ("a", "")])


def test_sort_is_ordinal() -> None:
    # Upper case sorts before lower case byte-wise; a locale-aware sort would differ.
    text = string_to_sign("/p", [("b", "1"), ("B", "2"), ("a", "3")], b"", "")
    assert text == b"/pB2a3b1"


def test_webhook_vector_w1_official() -> None:
    body = (
        b'{"type":1,"tts_notification_id":"7380066284010030890","shop_id":"7495540735365777507",'
        b'"timestamp":1718305585,"data":{"is_on_hold_order":true,"order_id":"576653688135258178",'
        b'"order_status":"UNPAID","update_time":1718305585}}'
    )
    assert (
        webhook_signature("abcdef", "123", body) == "5dec0f11ec2f6783b8deee53c9ffbf8d024302f7c7e7fa55a35d17629031ac05"
    )


def test_webhook_vector_w2_php() -> None:
    body = (
        b'{"type":1,"shop_id":"7494726673780148744","timestamp":1664095733,"data":{"order_id":"576684019603311365",'
        b'"order_status":"AWAITING_SHIPMENT","update_time":1664095610}}'
    )
    assert (
        webhook_signature("fake_app_key", "fake_app_secret", body)
        == "21109834de72ec53c9959716d8514ae388ce1f123e5ffdcafc46713fcdf62b27"
    )
