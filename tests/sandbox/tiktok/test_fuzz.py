"""Whatever JSON a client sends to whichever endpoint, the answer is an envelope and never a 500."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

from shopbridge.sandbox.tiktok.app import ENDPOINTS

from .conftest import APP_KEY, APP_SECRET, SERVICE_ID, Captured, FakeWall, independent_sign, make_sandbox_app

JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=5),
    max_leaves=12,
)
# Keys the sandbox's bodies actually read, so the fuzzer reaches past the first validation error.
KNOWN_KEYS = [
    "skus",
    "id",
    "inventory",
    "warehouse_id",
    "quantity",
    "price",
    "amount",
    "currency",
    "product_ids",
    "title",
    "description",
    "category_id",
    "main_images",
    "uri",
    "order_status",
    "create_time_ge",
    "page_size",
    "order_id",
    "cancel_reason",
    "order_line_item_ids",
    "decision",
    "partial_refund",
    "refund_total",
    "return_type",
    "type",
    "content",
    "address",
    "event_type",
    "packages",
    "self_shipment",
    "tracking_number",
    "shipping_provider_id",
    "begin_time_ge",
    "begin_time_lt",
    "buyer_user_id",
    "reject_reason",
    "request_type",
    "sku_ids",
    "status",
]
BODIES = st.dictionaries(st.sampled_from(KNOWN_KEYS), JSON, max_size=6) | JSON


def _client() -> tuple[TestClient, FakeWall, str, str]:
    wall = FakeWall()
    app = make_sandbox_app(wall, Captured())
    client = TestClient(app, base_url="http://sandbox.test")
    location = client.get("/open/authorize", params={"service_id": SERVICE_ID, "state": "s"}, follow_redirects=False)
    code = parse_qs(urlsplit(location.headers["location"]).query)["code"][0]
    token = client.get(
        "/api/v2/token/get",
        params={"app_key": APP_KEY, "app_secret": APP_SECRET, "auth_code": code, "grant_type": "authorized_code"},
    ).json()["data"]["access_token"]
    shops = client.get("/_sandbox/sellers").json()
    return client, wall, token, shops[0]["shops"][0]["cipher"]


def _world_ids() -> list[str]:
    """Real ids of every kind, in every state, so fuzzed calls get past "not found"."""
    shop = CLIENT.get("/_sandbox/sellers").json()[0]["shops"][0]
    product = CLIENT.post(
        "/_sandbox/products",
        json={
            "shop_id": shop["id"],
            "title": "Fuzz tee",
            "skus": [
                {"seller_sku": "F-1", "price": "9.99", "quantity": 500},
                {"seller_sku": "F-2", "price": "5.00", "quantity": 500},
            ],
        },
    ).json()
    sku = product["skus"][0]["id"]
    orders = [
        CLIENT.post("/_sandbox/orders", json={"shop_id": shop["id"], "items": [{"sku_id": sku, "quantity": 2}]}).json()
        for _ in range(6)
    ]
    CLIENT.post("/_sandbox/clock/advance", json={"seconds": 3600})
    CLIENT.post(f"/_sandbox/orders/{orders[1]['id']}/ship")
    for step in ("ship", "collect", "deliver"):
        CLIENT.post(f"/_sandbox/orders/{orders[2]['id']}/{step}")
    ret = CLIENT.post(f"/_sandbox/orders/{orders[2]['id']}/request_return", json={}).json()
    CLIENT.post(f"/_sandbox/orders/{orders[3]['id']}/buyer_cancel", json={})
    for step in ("ship", "collect", "deliver", "complete"):
        CLIENT.post(f"/_sandbox/orders/{orders[4]['id']}/{step}")
    msg = CLIENT.post("/_sandbox/messages", json={"shop_id": shop["id"], "buyer_user_id": "1", "text": "hi"}).json()
    # A day later the completed order has settled into a statement.
    CLIENT.post("/_sandbox/clock/advance", json={"seconds": 86_400})
    ids = [
        product["id"],
        sku,
        ret["return_id"],
        msg["conversation_id"],
        shop["warehouses"][0]["id"],
        "601302",
        "7091146663229654785",
    ]
    for order in orders:
        detail = CLIENT.get(f"/_sandbox/orders/{order['id']}").json()
        ids += [order["id"], *(p["id"] for p in detail["packages"])]
    return ids


CLIENT, WALL, TOKEN, CIPHER = _client()
REAL_IDS = _world_ids()


def _call(method: str, template: str, shop_scoped: bool, path_id: str, query: list[tuple[str, str]], body: Any):
    path = template
    for name in (
        "product_id",
        "order_id",
        "package_id",
        "cancel_id",
        "return_id",
        "statement_id",
        "conversation_id",
        "warehouse_id",
        "category_id",
        "delivery_option_id",
    ):
        path = path.replace("{" + name + "}", path_id)
    raw = json.dumps(body).encode()
    pairs = [("app_key", APP_KEY), ("timestamp", str(int(WALL.t))), *query]
    if shop_scoped:
        pairs.append(("shop_cipher", CIPHER))
    pairs.append(("sign", independent_sign(APP_SECRET, path, pairs, raw)))
    return CLIENT.request(
        method,
        path,
        params=pairs,
        content=raw,
        headers={"content-type": "application/json", "x-tts-access-token": TOKEN},
    )


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    endpoint=st.sampled_from(ENDPOINTS),
    path_id=st.sampled_from(["1", "abc", "%20"]) | st.sampled_from(REAL_IDS),
    query=st.lists(
        st.tuples(
            st.sampled_from(
                [
                    "page_size",
                    "page_token",
                    "sort_order",
                    "sort_field",
                    "ids",
                    "document_type",
                    "statement_time_ge",
                    "request_types",
                ]
            ),
            st.text(max_size=10),
        ),
        max_size=3,
    ),
    body=BODIES,
)
def test_no_500_whatever_the_input(endpoint: Any, path_id: str, query: list[tuple[str, str]], body: Any) -> None:
    response: httpx.Response = _call(endpoint.method, endpoint.template, endpoint.shop_scoped, path_id, query, body)
    assert response.status_code < 500, (endpoint.key, body, response.text)
    payload = response.json()
    assert set(payload) == {"code", "message", "request_id", "data"}
