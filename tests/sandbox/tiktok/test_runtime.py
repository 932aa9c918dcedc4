"""State file, clock, demo seed, background dispatcher and the CLI entry point."""

from __future__ import annotations

import asyncio
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner

from shopbridge.sandbox.cli import sandbox_app
from shopbridge.sandbox.tiktok import SandboxClock, SandboxConfig, TikTokSandbox, create_app, sandbox_of
from shopbridge.sandbox.tiktok.models import Delivery, Order, Product, Seller, Shop, Sku, Subscription
from shopbridge.sandbox.tiktok.orders import BuyerLine, place_order
from shopbridge.sandbox.tiktok.pagination import decode_token, encode_token, paginate
from shopbridge.sandbox.tiktok.seed import seed_demo

from .conftest import T0, Env, FakeWall

pytestmark = pytest.mark.anyio


def test_clock_is_real_by_default_and_controllable() -> None:
    wall = FakeWall()
    clock = SandboxClock(wall=wall, speed=60.0)
    assert clock.now() == T0
    wall.t += 1
    assert clock.now() == T0 + 60
    clock.advance(3600)
    assert clock.now() == T0 + 3660
    clock.set_speed(0)
    wall.t += 100
    assert clock.now() == T0 + 3660 and clock.wall() == T0 + 101
    with pytest.raises(ValueError):
        clock.advance(-1)


def test_page_tokens_are_opaque_and_carry_url_special_characters() -> None:
    token = encode_token((1_750_000_000, "576461413038785752"), "scope")
    assert {"+", "/", "="} <= set(token)
    assert decode_token(token, "scope") == (1_750_000_000, "576461413038785752")


def test_state_survives_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "tiktok.sqlite"
    config = SandboxConfig(state_path=path, seed="demo", clock=SandboxClock(wall=FakeWall(), start=T0, speed=0))
    app = create_app(config)
    sb = sandbox_of(app)
    skus = [s for p in sb.world.table(Product).values() for s in p.skus]
    assert 195 <= len(skus) <= 215
    shop = sb.world.shops_of(next(iter(sb.world.table(Seller))))[0]
    sku = next(s for s in skus if sum(s.inventory.values()) > 0)
    order = place_order(sb, shop, [BuyerLine(sku.id, 1)])
    sb.world.commit()

    again = TikTokSandbox(SandboxConfig(state_path=path, clock=SandboxClock(wall=FakeWall(), start=T0, speed=0)))
    restored = again.world.get(Order, order.id)
    assert restored is not None and restored.status == "ON_HOLD"
    # What was due before the restart is due after it: the timeline is rebuilt from the state file.
    again.clock.advance(3600)
    again.tick()
    assert restored.status == "AWAITING_SHIPMENT"
    assert again.world.product_of_sku(sku.id) is not None
    # Seeding an existing world changes nothing.
    create_app(SandboxConfig(state_path=path, seed="demo"))
    assert len(TikTokSandbox(SandboxConfig(state_path=path)).world.table(Seller)) == 1


def _subscribed(config: SandboxConfig, address: str) -> tuple[FastAPI, TikTokSandbox, Shop, Sku]:
    """A demo sandbox whose first shop sends order events to ``address``, and a SKU in stock."""
    app = create_app(config)
    sb = sandbox_of(app)
    shop = sb.world.shops_of(next(iter(sb.world.table(Seller))))[0]
    topic = "ORDER_STATUS_CHANGE"
    sb.world.save(Subscription(id=f"{shop.id}:{topic}", shop_id=shop.id, event_type=topic, address=address,
                               create_time=0, update_time=0))  # fmt: skip
    sku = next(s for p in sb.world.table(Product).values() for s in p.skus if sum(s.inventory.values()) > 0)
    return app, sb, shop, sku


async def test_background_dispatcher_delivers_through_the_lifespan_as_soon_as_an_event_is_queued() -> None:
    """The dispatcher's interval is a minute here: only the wake-up on queueing can deliver within seconds."""
    delivered = asyncio.Event()
    received: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        received.append(request)
        delivered.set()
        return httpx.Response(204)

    config = SandboxConfig(seed="demo", dispatcher_interval=60, webhook_transport=httpx.MockTransport(handler),
                           clock=SandboxClock(start=T0, speed=0))  # fmt: skip
    app, sb, shop, sku = _subscribed(config, "https://hooks.example/")
    async with app.router.lifespan_context(app):
        await asyncio.sleep(0.2)  # the dispatcher's first pass has run and it waits for its next
        place_order(sb, shop, [BuyerLine(sku.id, 1)])
        await asyncio.wait_for(delivered.wait(), timeout=5)
    assert received[0].headers["authorization"]


class _Receiver(BaseHTTPRequestHandler):
    bodies: list[bytes] = []

    def do_POST(self) -> None:
        self.bodies.append(self.rfile.read(int(self.headers["Content-Length"])))
        self.send_response(200 if self.path == "/ok" else 503)
        self.end_headers()

    def log_message(self, *_: object) -> None:
        pass


async def test_a_sender_process_posts_deliveries_and_the_outbox_records_each_answer() -> None:
    """The standalone sandbox posts from a process of its own; outcomes and timings come back to the outbox."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    config = SandboxConfig(seed="demo", dispatcher_interval=0.05, webhook_sender_process=True,
                           clock=SandboxClock(start=T0, speed=0))  # fmt: skip
    app, sb, shop, sku = _subscribed(config, f"{base}/ok")
    try:
        async with app.router.lifespan_context(app):
            place_order(sb, shop, [BuyerLine(sku.id, 1)])
            sb.world.save(sb.world.get(Subscription, f"{shop.id}:ORDER_STATUS_CHANGE").model_copy(
                update={"address": f"{base}/down"}))  # fmt: skip
            place_order(sb, shop, [BuyerLine(sku.id, 1)])
            for _ in range(200):
                deliveries = list(sb.world.table(Delivery).values())
                if deliveries and all(d.attempts for d in deliveries):
                    break
                await asyncio.sleep(0.05)
    finally:
        server.shutdown()
    deliveries = list(sb.world.table(Delivery).values())
    ok = [d for d in deliveries if d.address.endswith("/ok")]
    down = [d for d in deliveries if d.address.endswith("/down")]
    assert ok and down and len(ok) + len(down) == len(deliveries) == len(_Receiver.bodies)
    assert all(d.status == "DELIVERED" and d.history[0]["status_code"] == 200 for d in ok)
    assert all(d.history[0]["response_ms"] > 0 for d in deliveries)
    assert all(d.status == "PENDING" and d.history[0]["status_code"] == 503 for d in down)  # retried later
    assert {json.loads(body)["shop_id"] for body in _Receiver.bodies} == {shop.id}


def test_cli_help_lists_the_contract_options() -> None:
    result = CliRunner().invoke(sandbox_app, ["tiktok", "--help"])
    assert result.exit_code == 0
    for option in (
        "--host",
        "--port",
        "--app-key",
        "--app-secret",
        "--service-id",
        "--redirect-url",
        "--state",
        "--seed",
        "--clock-speed",
    ):
        assert option in result.output


def test_unknown_seed_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown seed"):
        create_app(SandboxConfig(seed="bogus"))


async def test_platform_status_deauthorization_and_app_webhook(env: Env) -> None:
    await env.control("PATCH", "/settings", {"app_webhook_address": "https://partner.example/hook"})
    product = await env.product([{"seller_sku": "A", "price": "1.00", "quantity": 1}])
    frozen = await env.control("POST", f"/products/{product['id']}/platform_status", {"status": "FREEZE"})
    assert frozen["status"] == "FREEZE"
    edit = await env.api("POST", f"/product/202309/products/{product['id']}/partial_edit", body={"title": "New"})
    assert edit.json()["code"] == 12052048
    sellers = await env.control("GET", "/sellers")
    result = await env.control("POST", f"/sellers/{sellers[0]['id']}/deauthorize")
    assert result["revoked_tokens"] == 1
    denied = await env.api("GET", "/logistics/202309/warehouses")
    assert denied.status_code == 401 and denied.json()["code"] == 36009004
    await env.sb.run_once()
    types = [b["type"] for b in env.hooks.bodies()]
    assert 5 in types and 6 in types
    assert {str(r.url) for r in env.hooks.requests} == {"https://partner.example/hook"}


def test_a_restarted_seeded_world_does_not_reuse_ids(tmp_path: Path) -> None:
    path = tmp_path / "tiktok.sqlite"

    def boot() -> TikTokSandbox:
        clock = SandboxClock(wall=FakeWall(), start=T0, speed=0)
        return TikTokSandbox(SandboxConfig(state_path=path, random_seed=5, clock=clock))

    first = boot()
    seed_demo(first)
    before = set(first.world.table(Order)) | set(first.world.table(Product))
    second = boot()
    shop = second.world.shops_of(next(iter(second.world.table(Seller))))[0]
    sku = next(s for p in second.world.table(Product).values() for s in p.skus if sum(s.inventory.values()) > 0)
    order = place_order(second, shop, [BuyerLine(sku.id, 1)])
    assert order.id not in before


@given(
    keys=st.lists(st.tuples(st.integers(0, 5), st.text(min_size=1, max_size=3)), unique=True, max_size=40),
    size=st.integers(1, 7),
    descending=st.booleans(),
)
def test_pagination_round_trip(keys: list[tuple[int, str]], size: int, descending: bool) -> None:
    """Following next_page_token visits every item once, in order, whatever the page size."""
    seen: list[tuple[int, str]] = []
    token = ""
    while True:
        page = paginate(keys, key=lambda k: k, descending=descending, page_size=size, page_token=token, scope="s")
        assert page.total_count == len(keys) and len(page.items) <= size
        seen += page.items
        token = page.next_page_token
        if not token:
            break
    assert seen == sorted(keys, reverse=descending)
