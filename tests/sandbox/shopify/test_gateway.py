"""The endpoint itself (reference §1.1, §1.2, §11.1): auth, versions, body parsing, GraphQL errors."""

from __future__ import annotations

import pytest

from .conftest import Env

pytestmark = pytest.mark.anyio

INVALID = {"errors": "[API] Invalid API key or access token (unrecognized login or wrong password)"}


async def test_missing_or_wrong_token_is_401(env: Env) -> None:
    missing = await env.post("{ shop { name } }", token=None)
    assert missing.status_code == 401 and missing.json() == INVALID
    wrong = await env.post("{ shop { name } }", token="shpat_wrong")
    assert wrong.status_code == 401 and wrong.json() == INVALID


async def test_versions_are_echoed_and_old_ones_fall_forward(env: Env) -> None:
    for asked, served in (
        ("2026-01", "2026-01"),
        ("2026-04", "2026-04"),
        ("unstable", "unstable"),
        ("2023-01", "2025-04"),
    ):
        response = await env.post("{ shop { name } }", version=asked)
        assert response.status_code == 200 and response.headers["x-shopify-api-version"] == served
    for bad in ("2026-02", "latest", "2026-1"):
        assert (await env.post("{ shop { name } }", version=bad)).status_code == 404


async def test_unparseable_json_is_400_and_graphql_errors_are_200(env: Env) -> None:
    headers = {"X-Shopify-Access-Token": "shpat_test_token", "content-type": "application/json"}
    broken = await env.client.post("/admin/api/2026-01/graphql.json", content=b"{not json", headers=headers)
    assert broken.status_code == 400 and "query" in broken.json()["errors"]
    syntax = await env.gql("{ shop { name ")
    assert syntax["errors"][0]["locations"] and "data" not in syntax
    unknown = await env.gql("{ shop { nope } }")
    assert "nope" in unknown["errors"][0]["message"] and "cost" in unknown["extensions"]


async def test_application_graphql_bodies_are_accepted(env: Env) -> None:
    response = await env.client.post(
        "/admin/api/2026-01/graphql.json",
        content=b"{ shop { currencyCode } }",
        headers={"X-Shopify-Access-Token": "shpat_test_token", "content-type": "application/graphql"},
    )
    assert response.json()["data"] == {"shop": {"currencyCode": "USD"}}


async def test_schema_differs_by_version(env: Env) -> None:
    query = """mutation($input: InventorySetQuantitiesInput!) { inventorySetQuantities(input: $input) {
                 userErrors { code } } }"""
    base = {"name": "available", "reason": "correction", "quantities": []}
    old = await env.gql(query, {"input": {**base, "ignoreCompareQuantity": True}}, version="2025-10")
    assert "errors" not in old
    new = await env.gql(query, {"input": {**base, "ignoreCompareQuantity": True}}, version="2026-04")
    assert "ignoreCompareQuantity" in new["errors"][0]["message"]


async def test_unknown_search_fields_are_ignored_with_a_warning(env: Env) -> None:
    body = await env.gql('{ productVariants(first: 10, query: "sku:MUG-1 colour:red") { nodes { sku } } }')
    assert [n["sku"] for n in body["data"]["productVariants"]["nodes"]] == ["MUG-1"]
    warning = body["extensions"]["search"][0]["warnings"][0]
    assert warning == {"field": "colour", "message": "Invalid search field for this query."}


async def test_node_and_typed_lookups(env: Env) -> None:
    data = await env.data(
        "query($id: ID!, $bad: ID!) { node(id: $id) { id ... on ProductVariant { sku } } "
        "productVariant(id: $bad) { id } }",
        {"id": env.store["MUG-1"], "bad": env.store["MUG-1"].replace("ProductVariant", "Order")},
    )
    assert data["node"]["sku"] == "MUG-1" and data["productVariant"] is None
