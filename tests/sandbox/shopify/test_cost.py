"""Calculated query cost and the leaky bucket (reference §2.1)."""

from __future__ import annotations

import pytest

from .conftest import Env

pytestmark = pytest.mark.anyio

VARIANTS = (
    "{ productVariants(first: 10) { edges { cursor node { sku inventoryItem { id } } } pageInfo { hasNextPage } } }"
)


async def test_cost_figures_object_connection_and_refund(env: Env) -> None:
    shop = await env.gql("{ shop { name plan { displayName } } }")
    assert shop["extensions"]["cost"]["requestedQueryCost"] == 2  # shop 1 + plan 1
    body = await env.gql(VARIANTS)
    cost = body["extensions"]["cost"]
    # connection: 2 + first(10) x (node 1 + inventoryItem 1) = 22; 5 variants came back: 2 + 5 x 2 = 12.
    assert cost["requestedQueryCost"] == 22 and cost["actualQueryCost"] == 12
    status = cost["throttleStatus"]
    assert status["maximumAvailable"] == 2000.0 and status["restoreRate"] == 100.0
    assert 2000 - 2 - 12 - 1 <= status["currentlyAvailable"] <= 2000


async def test_mutations_cost_ten(env: Env) -> None:
    body = await env.gql('mutation { tagsAdd(id: "gid://shopify/Order/1", tags: ["x"]) { userErrors { message } } }')
    assert body["extensions"]["cost"]["requestedQueryCost"] == 10
    assert body["extensions"]["cost"]["actualQueryCost"] == 10


async def test_single_query_over_1000_is_refused_before_execution(env: Env) -> None:
    query = "{ orders(first: 250) { nodes { lineItems(first: 250) { nodes { sku } } } } }"
    body = await env.gql(query)
    error = body["errors"][0]
    assert error["extensions"]["code"] == "MAX_COST_EXCEEDED" and error["extensions"]["maxCost"] == 1000
    assert error["message"] == (
        f"Query cost is {error['extensions']['cost']}, which exceeds the single query max cost limit (1000)."
    )
    assert "data" not in body


async def test_throttled_when_the_bucket_is_drained(env: Env) -> None:
    await env.control("PATCH", "/settings", {"bucket_size": 50, "restore_rate": 0})
    await env.control("DELETE", "/throttle")
    first = await env.gql(VARIANTS)  # takes 22, gives back 10
    assert first["extensions"]["cost"]["throttleStatus"]["currentlyAvailable"] == 38
    await env.gql(VARIANTS)  # 26 left
    await env.gql(VARIANTS)  # 14 left
    throttled = await env.post(VARIANTS)
    assert throttled.status_code == 200
    body = throttled.json()
    assert body["errors"] == [
        {
            "message": "Throttled",
            "extensions": {"code": "THROTTLED", "documentation": "https://shopify.dev/api/usage/rate-limits"},
        }
    ]
    assert "data" not in body
    cost = body["extensions"]["cost"]
    assert cost["actualQueryCost"] is None and cost["requestedQueryCost"] == 22
    assert cost["throttleStatus"] == {"maximumAvailable": 50.0, "currentlyAvailable": 14, "restoreRate": 0.0}
    stats = await env.control("GET", "/stats")
    assert stats["throttled"] == 1


async def test_throttle_can_answer_429_with_retry_after(env: Env) -> None:
    await env.control("PATCH", "/settings", {"bucket_size": 20, "restore_rate": 4, "throttle_status": 429})
    await env.control("DELETE", "/throttle")
    response = await env.post(VARIANTS)
    assert response.status_code == 429
    assert float(response.headers["retry-after"]) >= 1.0
    assert response.json()["errors"][0]["extensions"]["code"] == "THROTTLED"


async def test_injected_throttle_and_5xx_faults(env: Env) -> None:
    await env.control("PUT", "/faults/api", {"operation": "orders", "throttle_rate": 1.0})
    throttled = await env.gql("{ orders(first: 1) { nodes { id } } }")
    assert throttled["errors"][0]["extensions"]["code"] == "THROTTLED"
    assert "errors" not in await env.gql("{ shop { name } }")  # other root fields are untouched
    await env.control("PUT", "/faults/api", {"operation": "*", "error_rate": 1.0, "error_status": 502})
    assert (await env.post("{ shop { name } }")).status_code == 502
    await env.control("DELETE", "/faults")
    assert (await env.post("{ shop { name } }")).status_code == 200


async def test_injected_latency(env: Env) -> None:
    import time

    await env.control("PUT", "/faults/api", {"operation": "shop", "latency": {"distribution": "fixed", "mean_ms": 80}})
    started = time.perf_counter()
    assert "errors" not in await env.gql("{ shop { name } }")
    assert time.perf_counter() - started >= 0.08
    stats = await env.control("GET", "/stats")
    assert stats["api_calls"]["shop"] >= 1
