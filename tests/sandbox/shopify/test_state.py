"""The SQLite state file, the demo seed, the CLI entry point."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from shopbridge.sandbox.cli import sandbox_app
from shopbridge.sandbox.shopify import ShopifySandboxConfig, create_app, sandbox_of
from shopbridge.sandbox.shopify.models import Location, Order, Product, Variant, WebhookSubscription
from shopbridge.sandbox.shopify.seed import DUPLICATED_SKU, STORE_ONLY, TIKTOK_ONLY, tiktok_demo_skus
from shopbridge.sandbox.tiktok import SandboxConfig
from shopbridge.sandbox.tiktok import create_app as tiktok_app
from shopbridge.sandbox.tiktok import sandbox_of as tiktok_sandbox_of
from shopbridge.sandbox.tiktok.models import Product as TikTokProduct

from .conftest import TOKEN, Env, build_store, make_config

pytestmark = pytest.mark.anyio


async def test_state_survives_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "shopify.sqlite"
    app = create_app(make_config(state_path=path))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://s") as client:
        env = Env(client=client, sb=sandbox_of(app))
        await build_store(env)
        first = await env.control("POST", "/orders", {"lines": [{"sku": "MUG-1", "quantity": 2}]})
        await env.subscribe("ORDERS_CREATE", "http://127.0.0.1:9/hooks")
        await env.sb.stop()
    again = create_app(make_config(state_path=path))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=again), base_url="http://s") as client:
        env = Env(client=client, sb=sandbox_of(again))
        world = env.sb.world
        assert len(world.table(Product)) == 4 and len(world.table(Location)) == 2
        assert len(world.table(WebhookSubscription)) == 1
        assert (await env.inventory("MUG-1"))["committed"] == 2
        second = await env.control("POST", "/orders", {"lines": [{"sku": "MUG-1", "quantity": 1}]})
        assert second["name"] == "#1002" and int(second["id"]) > int(first["id"])
        data = await env.data("{ orders(first: 5) { nodes { name } } }")
        assert [n["name"] for n in data["orders"]["nodes"]] == ["#1001", "#1002"]
        await env.sb.stop()


def test_demo_seed_carries_the_tiktok_demo_skus() -> None:
    tiktok = tiktok_sandbox_of(tiktok_app(SandboxConfig(seed="demo", random_seed=1)))
    tiktok_skus = {s.seller_sku for p in tiktok.world.table(TikTokProduct).values() for s in p.skus}
    assert set(tiktok_demo_skus()) == tiktok_skus
    sb = sandbox_of(create_app(ShopifySandboxConfig(seed="demo", random_seed=1)))
    world = sb.world
    skus = [v.sku for v in world.table(Variant).values()]
    store_only = {sku for _, _, group in STORE_ONLY for sku in group}
    assert set(skus) == (tiktok_skus - set(TIKTOK_ONLY)) | store_only
    assert skus.count(DUPLICATED_SKU) == 2 and len(skus) == len(set(skus)) + 1
    locations = {loc.name: loc for loc in world.locations()}
    assert set(locations) == {"Main Warehouse", "Downtown Store"}
    assert locations["Main Warehouse"].fulfills_online_orders and not locations["Downtown Store"].fulfills_online_orders
    assert world.shop.currency == "USD" and world.shop.timezone == "America/Los_Angeles"
    stocked = sum(
        1
        for v in world.table(Variant).values()
        for lv in world.levels_of_item(v.inventory_item_id)
        if lv.get("available") > 0
    )
    assert stocked > 200
    assert not world.table(Order)


def test_cli_lists_the_shopify_command() -> None:
    result = CliRunner().invoke(sandbox_app, ["--help"])
    assert "shopify" in result.output and "Shopify" in result.output
    result = CliRunner().invoke(sandbox_app, ["shopify", "--help"])
    for flag in ("--shop-domain", "--access-token", "--api-key", "--api-secret", "--traffic", "--stop-on-stdin-eof"):
        assert flag in result.output


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def test_cli_serves_and_stops_when_stdin_closes(tmp_path: Path) -> None:
    port = _free_port()
    command = [
        sys.executable,
        "-m",
        "shopbridge.sandbox.cli",
        "shopify",
        "--port",
        str(port),
        "--quiet",
        "--seed",
        "demo",
        "--access-token",
        TOKEN,
        "--state",
        str(tmp_path / "s.sqlite"),
        "--stop-on-stdin-eof",
    ]
    process = subprocess.Popen(
        command,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                response = httpx.post(
                    f"http://127.0.0.1:{port}/admin/api/2026-01/graphql.json",
                    json={"query": "{ shop { name } }"},
                    headers={"X-Shopify-Access-Token": TOKEN},
                )
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline and process.poll() is None, "the sandbox did not start"
                time.sleep(0.1)
        assert response.json()["data"]["shop"]["name"] == "Demo Apparel & Home"
        assert process.stdin is not None
        process.stdin.close()
        assert process.wait(timeout=10) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
