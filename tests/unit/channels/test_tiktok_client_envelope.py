"""A code-0 envelope's ``data``: an object (§2.3), ``{}`` for calls that return nothing, and tolerated when absent
or ``null`` (issue #17): the connector treats all three as an empty object instead of failing."""

from typing import Any

import httpx
import pytest

from shopbridge.channels.tiktok.client import TikTokApp, TikTokClient, unwrap

SUCCESS = {"code": 0, "message": "Success", "request_id": "202203070749000101890810281E8C70B7"}


@pytest.mark.parametrize(
    "envelope",
    [{**SUCCESS, "data": {}}, dict(SUCCESS), {**SUCCESS, "data": None}],
    ids=["empty-object", "data-missing", "data-null"],
)
def test_a_success_without_data_is_an_empty_object(envelope: dict[str, Any]) -> None:
    assert unwrap(httpx.Response(200, json=envelope)) == {}


@pytest.mark.parametrize("envelope", [{**SUCCESS, "data": {}}, dict(SUCCESS)], ids=["empty-object", "data-missing"])
def test_webhook_subscription_call_succeeds_on_either_answer(envelope: dict[str, Any]) -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=envelope)

    client = TikTokClient(
        TikTokApp(app_key="k", app_secret="s", api_base_url="http://sandbox.test"),
        httpx.Client(transport=httpx.MockTransport(handler)),
        unix_time=lambda: 1_750_000_000.0,
    )
    body = {"address": "https://hooks.example/tiktok", "event_type": "ORDER_STATUS_CHANGE"}
    data = client.call("PUT", "/event/202309/webhooks", access_token="t", shop_cipher="c", body=body)
    assert data == {} and seen[0].method == "PUT"
    assert data.get("webhooks") is None  # callers read keys with .get() on whatever came back


def test_pagination_ends_on_a_page_without_data() -> None:
    client = TikTokClient(
        TikTokApp(app_key="k", app_secret="s", api_base_url="http://sandbox.test"),
        httpx.Client(transport=httpx.MockTransport(lambda request: httpx.Response(200, json=dict(SUCCESS)))),
        unix_time=lambda: 1_750_000_000.0,
    )
    assert list(client.pages("POST", "/order/202309/orders/search", "orders", access_token="t", shop_cipher="c")) == []
