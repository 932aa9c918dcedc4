"""Cursor pagination (reference §8.1) and search queries on orders and variants."""

from __future__ import annotations

from typing import Any

import pytest

from .conftest import Env

pytestmark = pytest.mark.anyio


async def place(env: Env, sku: str, **extra: Any) -> dict[str, Any]:
    order: dict[str, Any] = await env.control("POST", "/orders", {"lines": [{"sku": sku, "quantity": 1}], **extra})
    return order


async def test_pages_cover_every_item_once_forward_and_backward(env: Env) -> None:
    names = []
    for _ in range(7):
        names.append((await place(env, "MUG-1"))["name"])
    seen: list[str] = []
    after = None
    pages = 0
    while True:
        data = await env.data(
            "query($after: String) { orders(first: 3, after: $after, sortKey: CREATED_AT) { "
            "edges { cursor node { name } } pageInfo { hasNextPage hasPreviousPage startCursor endCursor } } }",
            {"after": after},
        )
        conn = data["orders"]
        pages += 1
        seen.extend(e["node"]["name"] for e in conn["edges"])
        assert conn["pageInfo"]["hasPreviousPage"] == (after is not None)
        assert conn["pageInfo"]["endCursor"] == conn["edges"][-1]["cursor"]
        if not conn["pageInfo"]["hasNextPage"]:
            break
        after = conn["pageInfo"]["endCursor"]
    assert pages == 3 and seen == names
    back = await env.data(
        "query($before: String) { orders(last: 2, before: $before, sortKey: CREATED_AT) { nodes { name } "
        "pageInfo { hasNextPage hasPreviousPage } } }",
        {"before": after},
    )
    assert [n["name"] for n in back["orders"]["nodes"]] == names[3:5]  # the two before page 2's end
    reverse = await env.data("{ orders(first: 2, reverse: true, sortKey: CREATED_AT) { nodes { name } } }")
    assert [n["name"] for n in reverse["orders"]["nodes"]] == names[::-1][:2]


async def test_page_arguments_are_checked(env: Env) -> None:
    missing = await env.gql("{ orders { nodes { id } } }")
    assert missing["errors"][0]["message"] == "you must provide one of first or last"
    too_many = await env.gql("{ products(first: 251) { nodes { id } } }")
    assert "250" in too_many["errors"][0]["message"]
    bad_cursor = await env.gql('{ products(first: 2, after: "nope") { nodes { id } } }')
    assert "cursor" in bad_cursor["errors"][0]["message"]


async def test_order_search_filters(env: Env) -> None:
    first = await place(env, "MUG-1", tags=["vip"])
    second = await place(env, "TEE-S")
    env.sb.clock.advance(5)
    third = await place(env, "MUG-1")
    created = await env.data("query($id: ID!) { order(id: $id) { createdAt } }", {"id": third["gid"]})
    moment = created["order"]["createdAt"]

    async def names(query: str) -> list[str]:
        data = await env.data(
            "query($q: String) { orders(first: 50, query: $q, sortKey: ID) { nodes { name } } }", {"q": query}
        )
        return [n["name"] for n in data["orders"]["nodes"]]

    assert await names(f"created_at:>='{moment}'") == [third["name"]]
    assert await names(f"updated_at:<'{moment}'") == [first["name"], second["name"]]
    assert await names("tag:vip") == [first["name"]]
    assert await names("-tag:vip AND sku:MUG-1") == [third["name"]]
    assert await names(f"name:{second['name']}") == [second["name"]]
    assert await names("status:open") == [first["name"], second["name"], third["name"]]
    await env.control("POST", f"/orders/{second['id']}/cancel", {"reason": "CUSTOMER"})
    assert await names("status:cancelled") == [second["name"]]
    assert await names("status:open tag:vip OR status:cancelled") == [first["name"], second["name"]]
    count = await env.data('{ ordersCount(query: "status:any") { count precision } }')
    assert count["ordersCount"] == {"count": 3, "precision": "EXACT"}


async def test_source_identifier_search(env: Env) -> None:
    mutation = """mutation($order: OrderCreateOrderInput!) { orderCreate(order: $order) {
                    order { id sourceIdentifier } userErrors { message } } }"""
    for ident in ("576461234567890123", "576461234567890999"):
        await env.data(
            mutation,
            {
                "order": {
                    "sourceIdentifier": ident,
                    "sourceName": "tiktok_shop",
                    "lineItems": [{"variantId": env.store["MUG-1"], "quantity": 1}],
                }
            },
        )
    data = await env.data(
        '{ orders(first: 5, query: "source_identifier:576461234567890999") { nodes { sourceName } } }'
    )
    assert data["orders"]["nodes"] == [{"sourceName": "tiktok_shop"}]


async def test_variant_search_by_sku_and_update_time(env: Env) -> None:
    data = await env.data('{ productVariants(first: 5, query: "sku:TEE-*") { nodes { sku } } }')
    assert sorted(n["sku"] for n in data["productVariants"]["nodes"]) == ["TEE-M", "TEE-S"]
    future = await env.data("{ productVariants(first: 5, query: \"updated_at:>'2999-01-01'\") { nodes { sku } } }")
    assert future["productVariants"]["nodes"] == []
