"""Every gateway error path with its code, HTTP status and message (§2.3, §2.4, Appendix C)."""

from __future__ import annotations

import re

import pytest

from .conftest import APP_SECRET, Env, independent_sign

pytestmark = pytest.mark.anyio

SHOPS = "/authorization/202309/shops"
WAREHOUSES = "/logistics/202309/warehouses"


def assert_error(response: object, status: int, code: int, message: str) -> None:
    import httpx

    assert isinstance(response, httpx.Response)
    payload = response.json()
    assert response.status_code == status, payload
    assert list(payload) == ["code", "message", "request_id", "data"]
    assert payload["code"] == code
    assert payload["message"] == message
    assert payload["data"] is None
    assert re.fullmatch(r"\d{14}[0-9A-F]{20}", payload["request_id"])


async def test_success_envelope(env: Env) -> None:
    response = await env.api("GET", WAREHOUSES)
    payload = response.json()
    assert response.status_code == 200
    assert list(payload) == ["code", "message", "request_id", "data"]
    assert payload["code"] == 0 and payload["message"] == "Success"
    warehouse = payload["data"]["warehouses"][0]
    assert isinstance(warehouse["id"], str) and warehouse["id"].isdigit()
    assert "distict" in warehouse["address"]


async def test_webhook_subscribe_and_delete_answer_an_object(env: Env) -> None:
    """§2.3: `data` is an object on success (only errors carry `null`), also for calls that return nothing."""
    hook = {"address": "https://hooks.example/tiktok", "event_type": "ORDER_STATUS_CHANGE"}
    for method, body in (("PUT", hook), ("DELETE", {"event_type": "ORDER_STATUS_CHANGE"})):
        response = await env.api(method, "/event/202309/webhooks", body=body)
        payload = response.json()
        assert response.status_code == 200 and payload["code"] == 0, payload
        assert payload["data"] == {}
    # Deleting what is not subscribed still succeeds (§9.1), with the same empty object.
    again = await env.api("DELETE", "/event/202309/webhooks", body={"event_type": "ORDER_STATUS_CHANGE"})
    assert again.json()["data"] == {}


async def test_unknown_path(env: Env) -> None:
    response = await env.api("GET", "/order/202309/nothing_here")
    assert_error(response, 404, 36009009, "Invalid path. The specified path does not match any available endpoint.")


async def test_wrong_method(env: Env) -> None:
    response = await env.api("DELETE", WAREHOUSES)
    assert_error(response, 405, 36009010, "Invalid method. The HTTP method used is not supported by this endpoint.")


async def test_bad_app_key_is_rejected_before_the_signature(env: Env) -> None:
    response = await env.api("GET", WAREHOUSES, query=[("app_key", "nope")], drop=["app_key"], sign="0" * 64)
    assert_error(response, 400, 36009004, "Invalid credentials. Invalid `app_key` query parameter.")


async def test_missing_sign(env: Env) -> None:
    response = await env.api("GET", WAREHOUSES, drop=["sign"])
    assert_error(
        response, 401, 36009004, "Missing credentials. The request does not include a required signature in the query."
    )


async def test_bad_sign(env: Env) -> None:
    response = await env.api("GET", WAREHOUSES, sign="0" * 64)
    assert_error(response, 401, 106001, "Invalid credentials. The `sign` query parameter is invalid.")


async def test_body_is_part_of_the_signature(env: Env) -> None:
    pairs = [
        ("app_key", "29a39d"),
        ("timestamp", str(int(env.wall.t))),
        ("shop_cipher", env.cipher),
        ("page_size", "10"),
    ]
    signature = independent_sign(APP_SECRET, "/order/202309/orders/search", pairs, b'{"order_status":"UNPAID"}')
    response = await env.api(
        "POST",
        "/order/202309/orders/search",
        query=[("page_size", "10")],
        body={"order_status": "CANCELLED"},
        sign=signature,
    )
    assert response.json()["code"] == 106001


@pytest.mark.parametrize(("offset", "ok"), [(-300, True), (-301, False), (30, True), (31, False), (0, True)])
async def test_timestamp_window(env: Env, offset: int, ok: bool) -> None:
    response = await env.api("GET", WAREHOUSES, timestamp=int(env.wall.t) + offset)
    if ok:
        assert response.json()["code"] == 0
    elif offset < 0:
        assert_error(
            response,
            400,
            36009004,
            "Invalid timestamp. The value of the `timestamp` query parameter must not be earlier than 5 minutes "
            "before the current time.",
        )
    else:
        assert_error(
            response,
            400,
            36009004,
            "Invalid timestamp. The value of the `timestamp` query parameter must not exceed the current time by "
            "more than 30 seconds.",
        )


@pytest.mark.parametrize("value", ["-5", "abc", ""])
async def test_timestamp_not_a_positive_integer(env: Env, value: str) -> None:
    response = await env.api("GET", WAREHOUSES, query=[("timestamp", value)], drop=["timestamp"])
    assert_error(
        response,
        400,
        36009004,
        "Invalid timestamp. The value of the `timestamp` query parameter must not be lesser than 0.",
    )


async def test_advancing_the_sandbox_clock_does_not_break_signing(env: Env) -> None:
    await env.advance(3 * 3600)
    assert (await env.api("GET", WAREHOUSES)).json()["code"] == 0


async def test_missing_token(env: Env) -> None:
    response = await env.api("GET", WAREHOUSES, token="")
    assert_error(response, 401, 36009004, "Invalid credentials. The `x-tts-access-token` header is invalid.")


async def test_unknown_token(env: Env) -> None:
    response = await env.api("GET", WAREHOUSES, token="TTP_not-a-token")
    assert_error(response, 401, 36009004, "Invalid credentials. The `x-tts-access-token` header is invalid.")


async def test_expired_token(env: Env) -> None:
    await env.advance(7 * 86400)
    response = await env.api("GET", WAREHOUSES)
    assert_error(
        response, 401, 105002, "Expired credentials. The `access_token` or `x-tts-access-token` header has expired."
    )


async def test_legacy_access_token_query_parameter_is_accepted_and_not_signed(env: Env) -> None:
    token = env.token
    env.token = ""
    response = await env.api("GET", WAREHOUSES, query=[("access_token", token)], token="")
    assert response.json()["code"] == 0


async def test_missing_shop_cipher(env: Env) -> None:
    response = await env.api("GET", WAREHOUSES, shop=False)
    assert_error(
        response,
        400,
        106013,
        "Missing identifier. The `shop_cipher` query parameter is required to identify the target shop.",
    )


async def test_unexpected_shop_cipher(env: Env) -> None:
    response = await env.api("GET", SHOPS, shop=True)
    assert_error(
        response,
        400,
        36009004,
        "Unexpected identifier. The `shop_cipher` query parameter is not required for this request.",
    )


async def test_image_upload_refuses_shop_cipher(env: Env) -> None:
    response = await env.api(
        "POST", "/product/202309/images/upload", raw=b"--b\r\n\r\n--b--", content_type="multipart/form-data; boundary=b"
    )
    assert response.json()["code"] == 36009004


async def test_multipart_body_is_not_signed(env: Env) -> None:
    # A 1x1 GIF: the upload now reads the image it is given, so the part must be one.
    gif = b"GIF89a\x01\x00\x01\x00\x00\x00\x00;"
    data = await env.ok(
        "POST",
        "/product/202309/images/upload",
        raw=b'--b\r\nContent-Disposition: form-data; name="data"\r\n\r\n' + gif + b"\r\n--b--\r\n",
        content_type="multipart/form-data; boundary=b",
        shop=False,
    )
    assert data["uri"].startswith("tos-maliva-i-sandbox/")


async def test_cipher_of_another_seller(env: Env) -> None:
    seller = await env.control("POST", "/sellers", {"name": "Other"})
    shop = await env.control("POST", "/shops", {"seller_id": seller["id"], "name": "Other shop"})
    env.cipher = shop["cipher"]
    response = await env.api("GET", WAREHOUSES)
    assert_error(
        response,
        400,
        101000,
        "Invalid query or header. The `category_asset_cipher` query parameter or `x-tts-access-token` header is "
        "invalid.",
    )


async def test_wrong_content_type_with_a_body(env: Env) -> None:
    response = await env.api(
        "POST", "/order/202309/orders/search", query=[("page_size", "5")], raw=b"a=b", content_type="text/plain"
    )
    assert_error(
        response,
        400,
        36009022,
        "Invalid request format. The request body format must be `application/json` for structured data or "
        "`multipart/form-data` for binary files.",
    )


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        (b"{not json", "body"),
        (b"[1, 2]", "body"),
        (b'{"create_time_ge": "yesterday"}', "create_time_ge"),
        (b'{"order_status": "SHIPPED_ISH"}', "order_status"),
        (b'{"warehouse_ids": "7000"}', "warehouse_ids"),
        (b'{"is_buyer_request_cancel": "perhaps"}', "is_buyer_request_cancel"),
    ],
)
async def test_bad_bodies_get_98001004_never_500(env: Env, raw: bytes, field: str) -> None:
    response = await env.api("POST", "/order/202309/orders/search", query=[("page_size", "5")], raw=raw)
    payload = response.json()
    assert response.status_code == 400
    assert payload["code"] == 98001004
    assert payload["message"].startswith(f"Parameter {field} is invalid. Reason: ")
    assert "Expected: " in payload["message"]


@pytest.mark.parametrize(
    "query",
    [
        [],
        [("page_size", "0")],
        [("page_size", "101")],
        [("page_size", "ten")],
        [("page_size", "5"), ("sort_order", "SIDEWAYS")],
        [("page_size", "5"), ("sort_field", "paid_time")],
        [("page_size", "5"), ("page_token", "not-a-token")],
    ],
)
async def test_bad_query_parameters(env: Env, query: list[tuple[str, str]]) -> None:
    response = await env.api("POST", "/order/202309/orders/search", query=query, body={})
    assert response.status_code == 400 and response.json()["code"] == 98001004


async def test_rate_limit_per_app_shop_path(env: Env) -> None:
    await env.control("PUT", "/rate_limits", {"path": WAREHOUSES, "qps": 1, "burst": 2})
    assert (await env.api("GET", WAREHOUSES)).json()["code"] == 0
    assert (await env.api("GET", WAREHOUSES)).json()["code"] == 0
    throttled = await env.api("GET", WAREHOUSES)
    assert_error(
        throttled, 429, 36009002, "Too many requests. You've made too many requests in a short period of time."
    )
    assert throttled.headers["retry-after"] == "1"
    # Another path has its own bucket.
    assert (await env.api("GET", "/product/202309/categories")).json()["code"] == 0
    env.wall.t += 1.0
    assert (await env.api("GET", WAREHOUSES)).json()["code"] == 0


async def test_injected_faults(env: Env) -> None:
    slept: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        slept.append(seconds)

    env.sb.sleep = fake_sleep
    key = f"GET {WAREHOUSES}"
    await env.control(
        "PUT",
        "/faults/endpoints",
        {
            "endpoint": key,
            "error_rate": 1.0,
            "error_code": 36009003,
            "latency": {"distribution": "fixed", "mean_ms": 250},
        },
    )
    response = await env.api("GET", WAREHOUSES)
    assert response.status_code == 500 and response.json()["code"] == 36009003
    assert slept == [0.25]
    await env.control("PUT", "/faults/endpoints", {"endpoint": key, "rate_429": 1.0})
    response = await env.api("GET", WAREHOUSES)
    assert response.status_code == 429 and response.json()["code"] == 36009002
    await env.control("PUT", "/faults/endpoints", {"endpoint": key, "timeout_rate": 1.0, "timeout_seconds": 30})
    response = await env.api("GET", WAREHOUSES)
    assert response.status_code == 504 and response.json()["code"] == 36009007
    assert slept[-1] == 30
    await env.control("DELETE", "/faults")
    assert (await env.api("GET", WAREHOUSES)).json()["code"] == 0


async def test_order_detail_accepts_the_three_repeated_key_forms(env: Env) -> None:
    product = await env.product([{"seller_sku": "TEE-1", "price": "10.00", "quantity": 5}])
    sku = product["skus"][0]["id"]
    a = (await env.order([(sku, 1)]))["id"]
    b = (await env.order([(sku, 1)]))["id"]
    for path in ("/order/202309/orders", "/order/202507/orders"):
        repeated = await env.ok("GET", path, query=[("ids", a), ("ids", b)])
        assert [o["id"] for o in repeated["orders"]] == [a, b]
        joined = await env.ok("GET", path, query=[("ids", f"{a},{b}")])
        assert [o["id"] for o in joined["orders"]] == [a, b]
        pairs = [("app_key", "29a39d"), ("timestamp", str(int(env.wall.t))), ("shop_cipher", env.cipher), ("ids", a)]
        first_only = independent_sign(APP_SECRET, path, pairs, b"")
        response = await env.api("GET", path, query=[("ids", a), ("ids", b)], sign=first_only)
        assert response.json()["code"] == 0


async def test_upload_needs_multipart(env: Env) -> None:
    response = await env.api("POST", "/product/202309/images/upload", body={"data": "x"}, shop=False)
    assert_error(
        response,
        400,
        36009023,
        "Invalid request format. The value of the `content-type` header must be `multipart/form-data`.",
    )
