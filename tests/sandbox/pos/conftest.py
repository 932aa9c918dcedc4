"""Shared fixtures: an in-process POS sandbox, a client that signs its calls as the hub does, and a fake hub
endpoint (an httpx MockTransport) that records every event delivery and answers as told."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from pydantic import TypeAdapter

from shopbridge.sandbox.pos import PosSandbox, PosSandboxConfig, SandboxClock, create_app, sandbox_of, sign
from shopbridge.sandbox.pos.models import PosEvent

ACCOUNT = "acct-test"
SECRET = "test_secret_0123456789abcdef0123456789"
HUB_URL = "http://hub.test/hooks/pos"
SEQUENCE_START = 100
EVENTS: TypeAdapter[Any] = TypeAdapter(PosEvent)


class FakeHub:
    """Records each delivery; answers the queued statuses first, then ``default_status``."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []
        self.statuses: list[int] = []
        self.default_status = 200

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        status = self.statuses.pop(0) if self.statuses else self.default_status
        return httpx.Response(status, json={"message": "accepted"} if status == 200 else {"error": {}})

    def events(self, event_type: str | None = None) -> list[dict[str, Any]]:
        bodies = [json.loads(r.content) for r in self.requests]
        return [b for b in bodies if event_type is None or b["type"] == event_type]


@dataclass
class Pos:
    client: httpx.AsyncClient
    sb: PosSandbox
    hub: FakeHub

    async def api(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        timestamp: int | None = None,
        secret: str = SECRET,
        account: str = ACCOUNT,
    ) -> httpx.Response:
        """A call signed as §2 says, over the raw path with its query and the raw body."""
        raw = b"" if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
        stamp = int(time.time()) if timestamp is None else timestamp
        headers = {
            "X-POS-Account": account,
            "X-POS-Timestamp": str(stamp),
            "X-POS-Signature": sign(secret, stamp, method, path, raw),
        }
        if body is not None:
            headers["Content-Type"] = "application/json"
        return await self.client.request(method, path, content=raw, headers=headers)

    async def control(self, method: str, path: str, body: Any = None, expect: int | None = None) -> Any:
        response = await self.client.request(method, "/_sandbox" + path, json=body)
        if expect is not None:
            assert response.status_code == expect, response.text
        else:
            assert response.status_code < 300, response.text
        return response.json()

    async def stock(self, location_id: str, levels: dict[str, int], *, reason: str = "count") -> Any:
        body = {"location_id": location_id, "reason": reason,
                "levels": [{"sku": sku, "on_hand": n} for sku, n in levels.items()]}  # fmt: skip
        return await self.control("PUT", "/stock", body)

    async def level(self, location_id: str, sku: str) -> dict[str, int]:
        stores = await self.control("GET", f"/stock?location_id={location_id}&sku={sku}")
        level: dict[str, int] = stores[0]["levels"][0]
        return level

    async def create_task(self, task_ref: str, lines: list[tuple[str, int]], location_id: str = "store-downtown",
                          **extra: Any) -> httpx.Response:  # fmt: skip
        return await self.api("POST", "/v1/fulfilment-tasks", task_body(task_ref, lines, location_id, **extra))

    async def deliver(self) -> int:
        """Due work, then every due delivery, awaited."""
        return await self.sb.run_once()


def task_body(task_ref: str, lines: list[tuple[str, int]], location_id: str = "store-downtown",
              **extra: Any) -> dict[str, Any]:  # fmt: skip
    return {
        "task_ref": task_ref,
        "location_id": location_id,
        "order_ref": {"channel": "tiktok", "order_id": f"5764{task_ref}", "hub_order_id": 12},
        "dispatch_by": "2026-12-06T23:59:59Z",
        "ship_to": {"name": "Ann Lee", "address_line1": "1 Main St", "address_line2": "", "city": "Austin",
                    "region": "TX", "postal_code": "78701", "country_code": "US", "phone": "+1 512 555 0100"},
        "lines": [{"sku": sku, "quantity": quantity} for sku, quantity in lines],
        **extra,
    }  # fmt: skip


def make_config(hub: FakeHub, **overrides: Any) -> PosSandboxConfig:
    values: dict[str, Any] = {
        "account": ACCOUNT,
        "secret": SECRET,
        "hub_event_url": HUB_URL,
        "random_seed": 7,
        "sequence_start": SEQUENCE_START,
        "event_transport": httpx.MockTransport(hub),
        "event_retry_base_seconds": 0.0,
        **overrides,
    }
    return PosSandboxConfig(**values)


@asynccontextmanager
async def open_pos(hub: FakeHub, **overrides: Any) -> AsyncIterator[Pos]:
    """A sandbox on ``hub`` without its lifespan: nothing runs in the background."""
    app = create_app(make_config(hub, **overrides))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://pos.test") as client:
        pos = Pos(client, sandbox_of(app), hub)
        try:
            yield pos
        finally:
            await pos.sb.stop()


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def hub() -> FakeHub:
    return FakeHub()


@pytest.fixture
async def pos(hub: FakeHub) -> AsyncIterator[Pos]:
    """A sandbox without its background dispatcher (tests call ``deliver``), on a clock that moves only when
    advanced: TEE-M (5) and TEE-L (2) at store-downtown, TEE-M (1) at store-mall, set without events."""
    async with open_pos(hub, clock=SandboxClock(speed=0.0)) as p:
        await p.client.put("/_sandbox/stock?silent=true", json={"location_id": "store-downtown", "levels": [
            {"sku": "TEE-M", "on_hand": 5, "unit_price": "19.99"}, {"sku": "TEE-L", "on_hand": 2}]})  # fmt: skip
        await p.client.put("/_sandbox/stock?silent=true",
                           json={"location_id": "store-mall", "levels": [{"sku": "TEE-M", "on_hand": 1}]})  # fmt: skip
        yield p
