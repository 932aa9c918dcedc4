"""The TikTok sandbox and the hub, each served on its own loopback port, connected through the real OAuth flow.

Nothing is faked between them: the hub signs its calls and the sandbox checks them; the sandbox signs its webhooks
and POSTs them to the hub's receiver."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI

from shopbridge.bootstrap import Hub, build_hub
from shopbridge.channels.tiktok import connect
from shopbridge.channels.tiktok.signing import webhook_signature
from shopbridge.config import Settings
from shopbridge.sandbox.tiktok import SandboxConfig, create_app
from shopbridge.services.access import add_user, issue_token
from shopbridge.store.db import transaction
from shopbridge.store.secrets import SecretBox
from shopbridge.store.tables import Product, Variant
from shopbridge.web.app import create_app as create_hub_app

APP_KEY = "harness_app_key"
APP_SECRET = "harness_app_secret"
SERVICE_ID = "7000000000000000042"
SKUS = {"TEE-M": "19.90", "TEE-L": "19.90", "MUG": "8.50"}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def serving(app: FastAPI, port: int) -> Iterator[str]:
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error", lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError(f"server on port {port} did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(15)


def wait_until(condition: Callable[[], Any], *, timeout: float = 30.0, message: str = "condition") -> Any:
    """Poll until ``condition()`` is truthy; the test fails with ``message`` if it never is (no fixed sleeps)."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for: {message}")
        time.sleep(0.05)


@dataclass
class World:
    hub: Hub
    hub_url: str
    sandbox_url: str
    api: httpx.Client  # the hub's REST API, with an owner's token
    control: httpx.Client  # the sandbox's /_sandbox control API
    shop_id: str
    sku_ids: dict[str, str]

    # --- the sandbox side ----------------------------------------------------------------------------------

    def place_order(self, items: dict[str, int], **extra: Any) -> str:
        body = {
            "shop_id": self.shop_id,
            "items": [{"sku_id": self.sku_ids[s], "quantity": q} for s, q in items.items()],
        }
        response = self.control.post("/_sandbox/orders", json={**body, **extra})
        assert response.status_code == 201, response.text
        return str(response.json()["id"])

    def sandbox_order(self, order_id: str) -> dict[str, Any]:
        response = self.control.get(f"/_sandbox/orders/{order_id}")
        assert response.status_code == 200, response.text
        return dict(response.json())

    def advance(self, seconds: float) -> None:
        assert self.control.post("/_sandbox/clock/advance", json={"seconds": seconds}).status_code == 200

    def buyer_cancel(self, order_id: str) -> None:
        response = self.control.post(f"/_sandbox/orders/{order_id}/buyer_cancel", json={"reason": "Changed my mind"})
        assert response.status_code == 200, response.text

    def webhook_faults(self, **fault: float) -> None:
        response = self.control.put("/_sandbox/faults/webhooks", json={"event_type": "*", **fault})
        assert response.status_code == 200, response.text

    # --- the hub side --------------------------------------------------------------------------------------

    def hub_orders(self, **filters: Any) -> list[dict[str, Any]]:
        orders: list[dict[str, Any]] = []
        cursor = None
        while True:
            params = {**filters, "limit": 500, **({"cursor": cursor} if cursor else {})}
            page = self.api.get("/api/v1/orders", params=params)
            assert page.status_code == 200, page.text
            orders += page.json()["orders"]
            cursor = page.json()["next_cursor"]
            if not cursor:
                return orders

    def hub_order(self, external_id: str) -> dict[str, Any] | None:
        for order in self.hub_orders():
            if order["external_id"] == external_id:
                detail = self.api.get(f"/api/v1/orders/{order['id']}")
                assert detail.status_code == 200
                return dict(detail.json())
        return None

    def send_webhook(self, payload: dict[str, Any], *, signature: str | None = None) -> httpx.Response:
        raw = json.dumps(payload, separators=(",", ":")).encode()
        header = signature if signature is not None else webhook_signature(APP_KEY, APP_SECRET, raw)
        return httpx.post(f"{self.hub_url}/hooks/tiktok", content=raw, headers={"authorization": header})


@contextmanager
def tiktok_world(database_url: str, data_dir: Path, *, poll_seconds: float = 3600.0, **hub: Any) -> Iterator[World]:
    sandbox_port, hub_port = free_port(), free_port()
    hub_base = f"http://127.0.0.1:{hub_port}"
    sandbox_app = create_app(
        SandboxConfig(app_key=APP_KEY, app_secret=APP_SECRET, service_id=SERVICE_ID,
                      redirect_url=f"{hub_base}/connect/tiktok/callback", random_seed=11, dispatcher_interval=0.05)
    )  # fmt: skip
    with serving(sandbox_app, sandbox_port) as sandbox_url, httpx.Client(base_url=sandbox_url, timeout=30) as control:
        seller = control.post("/_sandbox/sellers", json={"name": "Maomao"}).json()
        shop = control.post("/_sandbox/shops", json={"seller_id": seller["id"], "name": "Maomao beauty"}).json()
        product = control.post("/_sandbox/products", json={
            "shop_id": shop["id"], "title": "Everyday cotton tee and mug",
            "skus": [{"seller_sku": sku, "price": price, "quantity": 5000} for sku, price in SKUS.items()],
        })  # fmt: skip
        assert product.status_code == 201, product.text
        sku_ids = {sku["seller_sku"]: sku["id"] for sku in product.json()["skus"]}
        settings = Settings(
            data_dir=data_dir, database_url=database_url, secret_key=SecretBox.generate_key(), workers=2,
            worker_poll_seconds=0.05, public_url=hub_base, currency="USD", timezone="America/Los_Angeles",
            tiktok_app_key=APP_KEY, tiktok_app_secret=APP_SECRET, tiktok_service_id=SERVICE_ID,
            tiktok_api_base_url=sandbox_url, tiktok_auth_base_url=sandbox_url, tiktok_authorize_base_url=sandbox_url,
            tiktok_poll_seconds=poll_seconds, log_level="warning", log_format="console", **hub,
        )  # fmt: skip
        built = build_hub(settings)
        with transaction(built.sessions) as session:
            catalogue = Product(title="Everyday cotton tee and mug")
            session.add(catalogue)
            session.flush()
            session.add_all(Variant(product_id=catalogue.id, sku=sku) for sku in SKUS)
            add_user(session, "owner@example.com", "owner", now=built.clock.now())
            token = issue_token(session, "owner@example.com", "tests", now=built.clock.now())
        with serving(create_hub_app(built, workers=2), hub_port) as hub_url:
            authorized = httpx.get(connect.start(built.tiktok), follow_redirects=True, timeout=30)  # type: ignore[arg-type]
            assert authorized.status_code == 200 and "Connected" in authorized.text, authorized.text
            with httpx.Client(base_url=hub_url, headers={"authorization": f"Bearer {token}"}, timeout=30) as api:
                yield World(built, hub_url, sandbox_url, api, control, shop["id"], sku_ids)
        built.close()
