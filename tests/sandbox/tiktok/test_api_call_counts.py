"""The read-only count of Partner API answers (`/_sandbox/truth/api_calls`) and the optional per-shop bucket."""

from __future__ import annotations

import pytest

from .conftest import Env

pytestmark = pytest.mark.anyio

WAREHOUSES = "/logistics/202309/warehouses"
CATEGORIES = "/product/202309/categories"


def counts(calls: dict[str, object]) -> dict[tuple[str, int, int], int]:
    rows = calls["calls"]
    assert isinstance(rows, list)
    return {(row["endpoint"], row["http_status"], row["code"]): row["count"] for row in rows}


async def test_every_answer_is_counted_by_endpoint_status_and_code(env: Env) -> None:
    before = counts(await env.control("GET", "/truth/api_calls"))
    await env.control("PUT", "/rate_limits", {"path": WAREHOUSES, "qps": 1, "burst": 1})
    assert (await env.api("GET", WAREHOUSES)).status_code == 200
    assert (await env.api("GET", WAREHOUSES)).status_code == 429
    assert (await env.api("GET", "/no/such/path")).status_code == 404
    after = await env.control("GET", "/truth/api_calls")
    seen = counts(after)
    assert seen.get((f"GET {WAREHOUSES}", 200, 0), 0) - before.get((f"GET {WAREHOUSES}", 200, 0), 0) == 1
    assert seen[(f"GET {WAREHOUSES}", 429, 36009002)] == 1
    assert seen[("unmatched", 404, 36009009)] == 1
    assert after["total"] == sum(seen.values())
    # The control API is not the Partner API: reading the counts counted nothing.
    assert counts(await env.control("GET", "/truth/api_calls")) == seen


async def test_a_shop_wide_bucket_is_shared_by_every_path(env: Env) -> None:
    await env.control("PUT", "/rate_limits", {"path": "shop", "qps": 1, "burst": 2})
    assert (await env.api("GET", WAREHOUSES)).json()["code"] == 0
    assert (await env.api("GET", CATEGORIES)).json()["code"] == 0
    throttled = await env.api("GET", CATEGORIES)
    assert throttled.status_code == 429 and throttled.json()["code"] == 36009002
    env.wall.t += 1.0
    assert (await env.api("GET", WAREHOUSES)).json()["code"] == 0
    await env.control("DELETE", "/rate_limits")
    assert (await env.api("GET", CATEGORIES)).json()["code"] == 0
