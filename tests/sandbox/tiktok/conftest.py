"""Shared fixtures: an in-process sandbox on a frozen clock, and a client that signs like an SDK would."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from shopbridge.sandbox.tiktok import SandboxClock, SandboxConfig, TikTokSandbox, create_app, sandbox_of

APP_KEY = "29a39d"
APP_SECRET = "e59af819cc"
SERVICE_ID = "7123456789"
REDIRECT = "https://connector.example/callback"
T0 = 1_750_000_000.0


class FakeWall:
    """A wall clock that only moves when a test says so."""

    def __init__(self, t: float = T0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def independent_sign(secret: str, path: str, pairs: Sequence[tuple[str, str]], body: bytes) -> str:
    """A second, deliberately separate implementation of §1.1 so the gateway is not checked against itself."""
    kept = sorted((kv for kv in pairs if kv[0] not in ("sign", "access_token")), key=lambda kv: kv[0])
    base = secret + path + "".join(k + v for k, v in kept)
    message = base.encode() + body + secret.encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


@dataclass
class Captured:
    requests: list[httpx.Request] = field(default_factory=list)
    status: int = 200

    def handler(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return httpx.Response(self.status)

    def bodies(self) -> list[dict[str, Any]]:
        return [json.loads(r.content) for r in self.requests]


@dataclass
class Env:
    client: httpx.AsyncClient
    sb: TikTokSandbox
    wall: FakeWall
    hooks: Captured
    token: str = ""
    cipher: str = ""
    shop_id: str = ""

    async def api(
        self,
        method: str,
        path: str,
        *,
        query: Sequence[tuple[str, str]] = (),
        body: Any = None,
        raw: bytes | None = None,
        content_type: str = "application/json",
        shop: bool = True,
        token: str | None = None,
        timestamp: int | None = None,
        sign: str | None = None,
        drop: Sequence[str] = (),
    ) -> httpx.Response:
        pairs = [("app_key", APP_KEY), ("timestamp", str(int(self.wall.t) if timestamp is None else timestamp))]
        if shop:
            pairs.append(("shop_cipher", self.cipher))
        pairs = [kv for kv in pairs if kv[0] not in drop]
        pairs.extend(query)
        content = raw if raw is not None else (b"" if body is None else json.dumps(body).encode())
        signed = content if not content_type.startswith("multipart/form-data") else b""
        if "sign" not in drop:
            pairs.append(("sign", sign or independent_sign(APP_SECRET, path, pairs, signed)))
        headers = {"content-type": content_type}
        if token is not None or self.token:
            headers["x-tts-access-token"] = self.token if token is None else token
        return await self.client.request(method, path, params=pairs, content=content or None, headers=headers)

    async def ok(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        response = await self.api(method, path, **kwargs)
        payload: dict[str, Any] = response.json()
        assert response.status_code == 200 and payload["code"] == 0, payload
        return payload["data"] if payload["data"] is not None else {}

    async def control(self, method: str, path: str, body: Any = None, expect: int | None = None) -> Any:
        response = await self.client.request(method, "/_sandbox" + path, json=body)
        if expect is not None:
            assert response.status_code == expect, response.text
        else:
            assert response.status_code < 300, response.text
        return response.json() if response.content else None

    async def advance(self, seconds: float) -> None:
        await self.control("POST", "/clock/advance", {"seconds": seconds})

    async def authorize(self) -> dict[str, Any]:
        response = await self.client.get("/open/authorize", params={"service_id": SERVICE_ID, "state": "xyz"})
        assert response.status_code == 302
        code = parse_qs(urlsplit(response.headers["location"]).query)["code"][0]
        token = await self.client.get(
            "/api/v2/token/get",
            params={"app_key": APP_KEY, "app_secret": APP_SECRET, "auth_code": code, "grant_type": "authorized_code"},
        )
        data: dict[str, Any] = token.json()["data"]
        self.token = data["access_token"]
        return data

    async def product(self, skus: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
        body = {"shop_id": self.shop_id, "title": "Relaxed Cotton Tee", "skus": skus, **extra}
        result: dict[str, Any] = await self.control("POST", "/products", body)
        return result

    async def order(self, items: list[tuple[str, int]], **extra: Any) -> dict[str, Any]:
        body = {"shop_id": self.shop_id, "items": [{"sku_id": s, "quantity": q} for s, q in items], **extra}
        result: dict[str, Any] = await self.control("POST", "/orders", body)
        return result

    async def open_shop(self, region: str, **terms: Any) -> dict[str, Any]:
        """A new shop of the authorized seller in `region` (with settlement `terms`), which the client acts for from
        now on."""
        sellers = await self.control("GET", "/sellers")
        seller = next(s for s in sellers if any(shop["id"] == self.shop_id for shop in s["shops"]))
        body = {"seller_id": seller["id"], "name": f"Shop in {region}", "region": region, **terms}
        shop: dict[str, Any] = await self.control("POST", "/shops", body)
        self.shop_id, self.cipher = shop["id"], shop["cipher"]
        return shop

    async def subscribe(self, event_type: str, address: str = "https://hooks.example/tiktok") -> None:
        await self.ok("PUT", "/event/202309/webhooks", body={"address": address, "event_type": event_type})


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def make_sandbox_app(wall: FakeWall, hooks: Captured, **overrides: Any) -> Any:
    config = SandboxConfig(
        app_key=APP_KEY,
        app_secret=APP_SECRET,
        service_id=SERVICE_ID,
        redirect_url=REDIRECT,
        clock=SandboxClock(wall=wall, start=T0, speed=0.0),
        random_seed=7,
        webhook_transport=httpx.MockTransport(hooks.handler),
        **overrides,
    )
    return create_app(config)


@pytest.fixture
async def env() -> AsyncIterator[Env]:
    """A sandbox with one authorized seller and shop (created by the first authorize)."""
    wall, hooks = FakeWall(), Captured()
    app = make_sandbox_app(wall, hooks)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://sandbox.test") as client:
        e = Env(client=client, sb=sandbox_of(app), wall=wall, hooks=hooks)
        await e.authorize()
        shops = await e.ok("GET", "/authorization/202309/shops", shop=False)
        e.cipher = shops["shops"][0]["cipher"]
        e.shop_id = shops["shops"][0]["id"]
        yield e
        await e.sb.stop()
