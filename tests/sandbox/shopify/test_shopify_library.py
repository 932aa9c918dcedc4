"""Fidelity with Shopify's own Python library, ShopifyAPI, against the sandbox served by uvicorn on a loopback port.

The library builds ``https://{shop}/admin/api/{version}`` from the session; ``ShopifyResource.set_site`` (part of its
public surface) points the active session at ``http://127.0.0.1:PORT/admin/api/{version}`` instead, so the library
itself is unchanged: it sends its own headers (``X-Shopify-Access-Token``) and body.
"""

from __future__ import annotations

import json
import socket
import threading
import time
import urllib.error
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import shopify
import uvicorn

from shopbridge.sandbox.shopify import create_app

from .conftest import API_KEY, REDIRECT, SECRET, SHOP, TOKEN, make_config

VERSION = "2026-01"


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    app = create_app(make_config(seed="demo"))
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", access_log=False))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not srv.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}"
    srv.should_exit = True
    thread.join(10)


@pytest.fixture
def session(server: str) -> Iterator[None]:
    shopify.Session.setup(api_key=API_KEY, secret=SECRET)
    shopify.ShopifyResource.activate_session(shopify.Session(SHOP, VERSION, TOKEN))
    assert shopify.ShopifyResource.get_site() == f"https://{SHOP}/admin/api/{VERSION}"
    shopify.ShopifyResource.set_site(f"{server}/admin/api/{VERSION}")
    yield
    shopify.ShopifyResource.clear_session()


def execute(query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(shopify.GraphQL().execute(query, variables))
    return result


def test_graphql_queries_through_the_library(session: None) -> None:
    shop = execute("{ shop { name myshopifyDomain currencyCode ianaTimezone } }")
    assert shop["data"]["shop"] == {
        "name": "Demo Apparel & Home",
        "myshopifyDomain": SHOP,
        "currencyCode": "USD",
        "ianaTimezone": "America/Los_Angeles",
    }
    assert shop["extensions"]["cost"]["requestedQueryCost"] == 1
    variants = execute(
        "query($q: String!) { productVariants(first: 5, query: $q) { nodes { id sku inventoryItem { id } } } }",
        {"q": "sku:HEAVYWEIGHT-HOODIE-0-3"},
    )
    nodes = variants["data"]["productVariants"]["nodes"]
    assert len(nodes) == 1 and nodes[0]["sku"] == "HEAVYWEIGHT-HOODIE-0-3"


def test_a_mutation_through_the_library(session: None) -> None:
    variant = execute('{ productVariants(first: 1, query: "sku:INSULATED-TUMBLER-0-1") { nodes { id } } }')
    variant_id = variant["data"]["productVariants"]["nodes"][0]["id"]
    created = execute(
        """mutation($order: OrderCreateOrderInput!, $options: OrderCreateOptionsInput) {
             orderCreate(order: $order, options: $options) { order { name sourceIdentifier
               lineItems(first: 1) { nodes { sku quantity } } } userErrors { message } } }""",
        {
            "order": {
                "lineItems": [{"variantId": variant_id, "quantity": 1}],
                "sourceIdentifier": "576400000000001",
                "sourceName": "tiktok_shop",
                "financialStatus": "PAID",
            },
            "options": {"inventoryBehaviour": "DECREMENT_IGNORING_POLICY"},
        },
    )
    order = created["data"]["orderCreate"]["order"]
    assert created["data"]["orderCreate"]["userErrors"] == []
    assert order["sourceIdentifier"] == "576400000000001"
    assert order["lineItems"]["nodes"] == [{"sku": "INSULATED-TUMBLER-0-1", "quantity": 1}]


def test_a_wrong_token_is_a_401_for_the_library(server: str) -> None:
    shopify.ShopifyResource.activate_session(shopify.Session(SHOP, VERSION, "shpat_wrong"))
    shopify.ShopifyResource.set_site(f"{server}/admin/api/{VERSION}")
    try:
        with pytest.raises(urllib.error.HTTPError) as raised:
            shopify.GraphQL().execute("{ shop { name } }")
        assert raised.value.code == 401
    finally:
        shopify.ShopifyResource.clear_session()


def test_oauth_callback_validates_with_the_library(server: str) -> None:
    shopify.Session.setup(api_key=API_KEY, secret=SECRET)
    permission_url = shopify.Session(SHOP, VERSION).create_permission_url(
        ["read_orders", "write_inventory"], REDIRECT, state="abc"
    )
    query = urlsplit(permission_url).query  # the library's own authorize URL, sent to the loopback shop
    response = httpx.get(f"{server}/admin/oauth/authorize?{query}")
    assert response.status_code == 302
    params = {k: v[0] for k, v in parse_qs(urlsplit(response.headers["location"]).query).items()}
    assert shopify.Session.validate_params(params)
    assert shopify.Session.calculate_hmac(params) == params["hmac"]
    # What Session.request_token posts (form-encoded client_id, client_secret, code), to the loopback shop.
    token = httpx.post(
        f"{server}/admin/oauth/access_token",
        data={"client_id": API_KEY, "client_secret": SECRET, "code": params["code"]},
    ).json()
    assert token["scope"] == "read_orders,write_inventory"
    shopify.ShopifyResource.activate_session(shopify.Session(SHOP, VERSION, token["access_token"]))
    shopify.ShopifyResource.set_site(f"{server}/admin/api/{VERSION}")
    try:
        assert execute("{ shop { myshopifyDomain } }")["data"]["shop"]["myshopifyDomain"] == SHOP
    finally:
        shopify.ShopifyResource.clear_session()
