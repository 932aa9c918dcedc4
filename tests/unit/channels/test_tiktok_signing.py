"""Every request and webhook signature vector of the reference (§1.2, §1.3, §9.2), reproduced by our signer."""

import pytest

from shopbridge.channels.tiktok.signing import sign_request, verify_webhook, webhook_signature

SECRET = "e59af819cc"
CIPHER_ROW = "ROW_xkMbgAAAeVAQra0eZWebFQq5aIK"
CIPHER_GCP = "GCP_XF90igAAAABh00qsWgtvOiGFNqyubMt3"
V2_QUERY = [("app_key", "68xu9ks5p4i8"), ("shop_cipher", CIPHER_ROW), ("timestamp", "1696909648")]
BASE = [("app_key", "29a39d"), ("timestamp", "1623812664")]
PAGE_TOKEN = "6AsPQsUMvH3RkchNUPPh22NROHkE0D8pmq/N5M1kHYcZmtRyv9aVrNv65W7Q6tFA+7D1ud64MPNz5OaT"
IDS = "576461413038785752,576461413038785753"  # the doc sample's order id and the next one


@pytest.mark.parametrize(
    ("secret", "path", "query", "body", "expected"),
    [
        pytest.param(SECRET, "/authorization/202309/shops", BASE, None,
                     "b596b73e0cc6de07ac26f036364178ab16b0a907af13d43f0a0cd2345f582dc8", id="V1"),
        pytest.param(SECRET, "/event/202309/webhooks", V2_QUERY, None,
                     "ed58e1b5e59865c22a7b828c1cab65007441f43cc91a6cb2f2cdc638e0995a37", id="V2"),
        pytest.param(SECRET, "/event/202309/webhooks", V2_QUERY,
                     b'{"event_type":"PACKAGE_UPDATE","address":"https://partner.tiktokshop.com"}',
                     "701dd6deb2389fe4c469b89bd37fc56f96a6da6afeb4d01c9077a65169752fa7", id="V3"),
        pytest.param("app_secret", "/test-api", [("foo", "bar")], None,
                     "d3cb7fe11ecae942802ceeca67e7cf10120cc12f1517d45fbc1c8cfe5413c80f", id="V4"),
        pytest.param(SECRET, "/event/202309/webhooks", V2_QUERY,
                     b'{"address":"https://partner.tiktokshop.com","event_type":"PACKAGE_UPDATE"}',
                     "cd0d6268252f4ba293bf7ea4c0a2873bf9beec600d22530638564ab301435f7a", id="V5"),
        pytest.param(SECRET, "/order/202309/orders/search",
                     [("page_size", "20"), ("shop_cipher", CIPHER_GCP), *BASE],
                     b'{"order_status":"UNPAID","create_time_ge":1623800000}',
                     "7a0ae3c9fee72f197641ece109e905f24dba1502df87c255cb4abdc15e78581c", id="V6"),
        pytest.param(SECRET, "/order/202309/orders/search",
                     [("page_size", "100"), ("shop_cipher", CIPHER_GCP), *BASE, ("sign", "ignored"),
                      ("access_token", "ignored"),
                      ("page_token", PAGE_TOKEN)],
                     b'{"order_status":"UNPAID"}',
                     "6b55918cfea8c0a45c2e533b88a5d8c2c379f23ded442d71d9be1fa86d28f73e", id="V7"),
        pytest.param(SECRET, "/product/202309/images/upload", BASE, None,
                     "2f292aaeecc6a6ce8c7240771265c3342b343f27ef91271fe72a9452d74fa844", id="V8-multipart"),
        pytest.param(SECRET, "/order/202507/orders", [*BASE, ("shop_cipher", CIPHER_GCP), ("ids", IDS)], None,
                     "aafec5193e65e35a859b9b151609f07fc494a08a9a6cef019fc4d35ad9ab2e96", id="ids-comma-joined"),
    ],
)  # fmt: skip
def test_request_vectors(
    secret: str, path: str, query: list[tuple[str, str]], body: bytes | None, expected: str
) -> None:
    assert sign_request(secret, path, query, body) == expected


W1_BODY = (
    b'{"type":1,"tts_notification_id":"7380066284010030890","shop_id":"7495540735365777507","timestamp":1718305585,'
    b'"data":{"is_on_hold_order":true,"order_id":"576653688135258178","order_status":"UNPAID",'
    b'"update_time":1718305585}}'
)
W2_BODY = (
    b'{"type":1,"shop_id":"7494726673780148744","timestamp":1664095733,"data":{"order_id":"576684019603311365",'
    b'"order_status":"AWAITING_SHIPMENT","update_time":1664095610}}'
)


def test_webhook_vectors() -> None:
    assert (
        webhook_signature("abcdef", "123", W1_BODY)
        == "5dec0f11ec2f6783b8deee53c9ffbf8d024302f7c7e7fa55a35d17629031ac05"
    )
    assert (
        webhook_signature("fake_app_key", "fake_app_secret", W2_BODY)
        == "21109834de72ec53c9959716d8514ae388ce1f123e5ffdcafc46713fcdf62b27"
    )


def test_webhook_verification_refuses_forgeries() -> None:
    good = "5dec0f11ec2f6783b8deee53c9ffbf8d024302f7c7e7fa55a35d17629031ac05"
    assert verify_webhook("abcdef", "123", W1_BODY, good)
    assert verify_webhook("abcdef", "123", W1_BODY, good.upper())
    assert not verify_webhook("abcdef", "123", W1_BODY + b" ", good), "one byte more is another body"
    assert not verify_webhook("abcdef", "wrong", W1_BODY, good)
    assert not verify_webhook("abcdef", "123", W1_BODY, None)
    assert not verify_webhook("abcdef", "123", W1_BODY, "")
