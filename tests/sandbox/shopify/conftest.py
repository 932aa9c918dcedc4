"""Shared fixtures: an in-process Shopify sandbox with a small store, a GraphQL helper, and a tiny local webhook
receiver (a real HTTP server on a loopback port)."""

from __future__ import annotations

import json
import threading
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from shopbridge.sandbox.shopify import SandboxClock, ShopifySandbox, ShopifySandboxConfig, create_app, sandbox_of

TOKEN = "shpat_test_token"
API_KEY = "test_api_key"
SECRET = "test_api_secret"
SHOP = "test-store.myshopify.com"
REDIRECT = "https://connector.example/shopify/callback"


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class Receiver:
    """Records every POST; answers with the queued statuses first, then ``default_status``."""

    def __init__(self) -> None:
        self.requests: list[Received] = []
        self.statuses: list[int] = []
        self.default_status = 200
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", "0"))
                body = self.rfile.read(length)
                with receiver.lock:
                    receiver.requests.append(Received(self.path, dict(self.headers.items()), body))
                    status = receiver.statuses.pop(0) if receiver.statuses else receiver.default_status
                self.send_response(status)
                if 300 <= status < 400:
                    self.send_header("Location", "/elsewhere")
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
        self.thread.start()

    def topics(self) -> list[str]:
        with self.lock:
            return [r.headers["X-Shopify-Topic"] for r in self.requests]

    def of(self, topic: str) -> list[Received]:
        with self.lock:
            return [r for r in self.requests if r.headers["X-Shopify-Topic"] == topic]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@dataclass
class Env:
    client: httpx.AsyncClient
    sb: ShopifySandbox
    store: dict[str, str] = field(default_factory=dict)

    async def post(
        self,
        query: str,
        variables: dict[str, Any] | None = None,
        *,
        version: str = "2026-01",
        token: str | None = TOKEN,
    ) -> httpx.Response:
        headers = {"X-Shopify-Access-Token": token} if token is not None else {}
        return await self.client.post(
            f"/admin/api/{version}/graphql.json", json={"query": query, "variables": variables}, headers=headers
        )

    async def gql(self, query: str, variables: dict[str, Any] | None = None, **kwargs: Any) -> dict[str, Any]:
        response = await self.post(query, variables, **kwargs)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    async def data(self, query: str, variables: dict[str, Any] | None = None, **kwargs: Any) -> dict[str, Any]:
        body = await self.gql(query, variables, **kwargs)
        assert "errors" not in body, body["errors"]
        data: dict[str, Any] = body["data"]
        return data

    async def control(self, method: str, path: str, body: Any = None, expect: int | None = None) -> Any:
        response = await self.client.request(method, "/_sandbox" + path, json=body)
        if expect is not None:
            assert response.status_code == expect, response.text
        else:
            assert response.status_code < 300, response.text
        return response.json() if response.content else None

    async def inventory(self, sku: str, location: str = "Main Warehouse") -> dict[str, int]:
        variants = await self.control("GET", f"/inventory?sku={sku}")
        level = next(lv for lv in variants[0]["inventory"] if lv["location"] == location)
        return {k: v for k, v in level.items() if isinstance(v, int)}

    async def subscribe(self, topic: str, uri: str, **extra: Any) -> dict[str, Any]:
        data = await self.data(
            """mutation($topic: WebhookSubscriptionTopic!, $sub: WebhookSubscriptionInput!) {
                 webhookSubscriptionCreate(topic: $topic, webhookSubscription: $sub) {
                   webhookSubscription { id topic uri includeFields } userErrors { field message } } }""",
            {"topic": topic, "sub": {"uri": uri, "format": "JSON", **extra}},
        )
        result: dict[str, Any] = data["webhookSubscriptionCreate"]
        assert result["userErrors"] == [], result
        return result


def make_config(**overrides: Any) -> ShopifySandboxConfig:
    values: dict[str, Any] = {
        "shop_domain": SHOP,
        "access_token": TOKEN,
        "api_key": API_KEY,
        "api_secret": SECRET,
        "redirect_url": REDIRECT,
        "random_seed": 7,
        **overrides,
    }
    return ShopifySandboxConfig(**values)


async def build_store(env: Env) -> None:
    """Two locations and four products; ``env.store`` maps names to GIDs."""
    for name, online in (("Main Warehouse", True), ("Downtown Store", False)):
        loc = await env.control(
            "POST",
            "/locations",
            {"name": name, "fulfills_online_orders": online, "city": "Los Angeles", "province_code": "CA"},
        )
        env.store[name] = loc["gid"]
    products = [
        (
            "Relaxed Tee",
            [
                {
                    "sku": "TEE-S",
                    "price": "19.90",
                    "options": [["Size", "S"]],
                    "stock": {"Main Warehouse": 10, "Downtown Store": 3},
                },
                {"sku": "TEE-M", "price": "19.90", "options": [["Size", "M"]], "stock": {"Downtown Store": 5}},
            ],
        ),
        ("Stoneware Mug", [{"sku": "MUG-1", "price": "12.50", "stock": {"Main Warehouse": 20}}]),
        (
            "Canvas Cap",
            [{"sku": "CAP-1", "price": "15.00", "inventory_policy": "CONTINUE", "stock": {"Main Warehouse": 0}}],
        ),
        ("Sticker", [{"sku": "STICKER-1", "price": "2.00", "stock": {"Downtown Store": 50}}]),
    ]
    for title, variants in products:
        product = await env.control("POST", "/products", {"title": title, "variants": variants})
        for v in product["variants"]:
            env.store[v["sku"]] = v["gid"]
            env.store[v["sku"] + ":item"] = v["inventory_item_gid"]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


@pytest.fixture
async def env() -> AsyncIterator[Env]:
    """A sandbox with a small store; no background dispatcher (tests call ``sb.run_once()``)."""
    app = create_app(make_config(clock=SandboxClock()))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://sandbox.test") as client:
        e = Env(client=client, sb=sandbox_of(app))
        await e.control("PATCH", "/settings", {"cancel_delay_seconds": 0.05, "webhook_retry_base_seconds": 0.05})
        await build_store(e)
        yield e
        await e.sb.stop()


@pytest.fixture
async def live() -> AsyncIterator[Env]:
    """The same, with the app's lifespan running: background dispatcher, jobs, traffic and webhook delivery."""
    app = create_app(make_config())
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://sandbox.test") as client:
            e = Env(client=client, sb=sandbox_of(app))
            await e.control("PATCH", "/settings", {"cancel_delay_seconds": 0.05, "webhook_retry_base_seconds": 0.05})
            await build_store(e)
            yield e
