"""The Shopify client's handling of the store's answers (reference §2.1, §11.1): the cost bucket waited for in the
worker when the wait is short, a job deferred (not failed) when it is long, THROTTLED answers sent again, server
trouble retried, a revoked token a reconnection, GraphQL errors permanent."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from shopbridge.channels.shopify.client import (
    ShopifyBusy,
    ShopifyClient,
    ShopifyPermanent,
    ShopifyReauth,
    ShopifyRetryable,
    Store,
    UserErrors,
)
from shopbridge.runtime.errors import classify

Answer = Callable[[dict[str, Any]], httpx.Response]


def cost(available: float, *, requested: float = 10, restore: float = 100.0) -> dict[str, Any]:
    return {"cost": {"requestedQueryCost": requested, "actualQueryCost": requested,
                     "throttleStatus": {"maximumAvailable": 2000.0, "currentlyAvailable": available,
                                        "restoreRate": restore}}}  # fmt: skip


THROTTLED = {"errors": [{"message": "Throttled", "extensions": {"code": "THROTTLED"}}]}


class FakeTime:
    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.slept.append(round(seconds, 3))
        self.now += seconds


def client(*answers: Answer) -> tuple[ShopifyClient, FakeTime, list[dict[str, Any]]]:
    sent: list[dict[str, Any]] = []
    queue = list(answers)

    def handle(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        assert request.headers["X-Shopify-Access-Token"] == "shpat_test"
        assert request.url.path == "/admin/api/2026-07/graphql.json"
        sent.append(body)
        return queue.pop(0)(body)

    time = FakeTime()
    http = httpx.Client(transport=httpx.MockTransport(handle))
    store = Store("shop.myshopify.com", "shpat_test", "2026-07", "http://store.test")
    return ShopifyClient(store, http, clock=lambda: time.now, sleep=time.sleep), time, sent


def ok(data: dict[str, Any], available: float = 1990.0) -> Answer:
    return lambda _: httpx.Response(200, json={"data": data, "extensions": cost(available)})


def test_a_call_returns_its_data_and_learns_the_bucket() -> None:
    shopify, _, sent = client(ok({"shop": {"name": "S"}}, available=1500))
    assert shopify.query("{ shop { name } }", cost=1) == {"shop": {"name": "S"}}
    assert sent == [{"query": "{ shop { name } }", "variables": {}}]
    assert (shopify.bucket.available, shopify.bucket.restore_rate) == (1500.0, 100.0)


def test_a_short_wait_for_the_bucket_is_taken_in_the_worker() -> None:
    shopify, time, _ = client(ok({}, available=50), ok({"x": 1}))
    shopify.query("{ a }", cost=10)
    assert shopify.query("{ b }", cost=100) == {"x": 1}
    assert time.slept == [0.5], "(100 - 50) / 100 points a second"


def test_a_long_wait_defers_the_job_instead_of_holding_the_worker() -> None:
    shopify, time, sent = client(ok({}, available=0))
    shopify.query("{ a }", cost=10)
    with pytest.raises(ShopifyBusy) as raised:
        shopify.query("{ b }", cost=400)
    assert raised.value.retry_after == pytest.approx(4.0)
    assert classify(raised.value) == "deferred", "waits its turn without using up an attempt"
    assert len(sent) == 1 and time.slept == []


def test_a_throttled_answer_is_waited_out_and_sent_again() -> None:
    throttled: Answer = lambda _: httpx.Response(200, json={**THROTTLED, "extensions": cost(960, requested=1000)})  # noqa: E731
    shopify, time, sent = client(throttled, ok({"done": True}))
    assert shopify.query("{ big }", cost=1000) == {"done": True}
    assert len(sent) == 2 and time.slept == [0.4] and shopify.throttled == 1


def test_a_429_is_waited_out_as_its_retry_after_says() -> None:
    shopify, time, _ = client(lambda _: httpx.Response(429, headers={"Retry-After": "0.5"}), ok({"done": True}))
    assert shopify.query("{ a }") == {"done": True}
    assert time.slept == [0.5]


def test_server_trouble_is_retried_then_left_to_the_job() -> None:
    shopify, time, sent = client(*[lambda _: httpx.Response(503, text="busy")] * 3)
    with pytest.raises(ShopifyRetryable, match="HTTP 503"):
        shopify.query("{ a }")
    assert len(sent) == 3 and len(time.slept) == 2


def test_a_revoked_token_asks_for_reconnection() -> None:
    shopify, _, _ = client(lambda _: httpx.Response(401, json={"errors": "[API] Invalid API key or access token"}))
    with pytest.raises(ShopifyReauth):
        shopify.query("{ a }")


def test_graphql_errors_are_permanent_and_user_errors_name_the_field() -> None:
    shopify, _, _ = client(
        lambda _: httpx.Response(200, json={"errors": [{"message": "Field 'nope' doesn't exist on type 'Shop'"}]}),
        ok({"orderCreate": {"order": None, "userErrors": [
            {"field": ["order", "lineItems", "0", "variantId"], "message": "is invalid", "code": "INVALID"}]}}),
    )  # fmt: skip
    with pytest.raises(ShopifyPermanent, match="doesn't exist"):
        shopify.query("{ shop { nope } }")
    with pytest.raises(UserErrors) as refused:
        shopify.mutate("mutation { orderCreate }", {}, "orderCreate")
    assert str(refused.value.errors[0]) == "order.lineItems.0.variantId: is invalid"
    assert refused.value.code == "INVALID"
