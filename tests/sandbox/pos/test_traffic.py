"""The simulation: quiet unless asked; when on, tills sell what is available, associates take every task through
picking, picked and packed to shipped with a real carrier, the returns desk takes shipped units back, receipts
restock. Driven on a clock that moves only when advanced, and once live on the app's lifespan."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest

from shopbridge.sandbox.pos import SandboxClock, create_app, sandbox_of
from shopbridge.sandbox.pos.traffic import CARRIERS

from .conftest import FakeHub, Pos, make_config, open_pos

pytestmark = pytest.mark.anyio


async def run_for(pos: Pos, seconds: float, step: float = 0.1) -> None:
    for _ in range(round(seconds / step)):
        pos.sb.clock.advance(step)
        await pos.deliver()


async def test_quiet_by_default(pos: Pos) -> None:
    await pos.create_task("sb-1", [("TEE-M", 1)])
    await run_for(pos, 30, step=1.0)
    assert (await pos.control("GET", "/traffic"))["enabled"] is False
    assert pos.sb.world.sales == {} and pos.sb.world.tasks["T-1"].status == "open"
    assert [e["type"] for e in pos.hub.events()] == ["task.updated"]


@pytest.fixture
async def busy(hub: FakeHub) -> AsyncIterator[Pos]:
    async with open_pos(hub, clock=SandboxClock(speed=0.0), traffic=True, sales_per_second=20,
                        returns_per_second=3, receipts_per_second=1, fulfil_delay_min_seconds=0.2,
                        fulfil_delay_max_seconds=0.6) as pos:  # fmt: skip
        await pos.stock("store-downtown", {f"TEE-{size}": 40 for size in "SMLX"})
        await pos.stock("store-mall", {f"TEE-{size}": 20 for size in "SMLX"})
        yield pos


async def test_tills_sell_associates_ship_and_the_desk_takes_returns(busy: Pos) -> None:
    for n in range(5):
        assert (await busy.create_task(f"sb-{n}", [("TEE-S", 1), ("TEE-X", 2)])).status_code == 201
    await run_for(busy, 4.0)
    world = busy.sb.world
    assert len(world.sales) > 20 and len(world.returns) >= 1
    assert {t.status for t in world.tasks.values()} == {"shipped"}
    for task in world.tasks.values():
        assert task.shipment is not None and task.shipment["carrier"] in CARRIERS
        assert task.shipment["tracking_number"] and task.shipment["tracking_url"].startswith("https://")
        assert [h["status"] for h in task.history] == ["open", "picking", "picked", "packed", "shipped"]
    updates = [e["data"] for e in busy.hub.events("task.updated") if e["data"]["task_id"] == "T-1"]
    assert [u["status"] for u in updates] == ["open", "picking", "picked", "packed", "shipped"]
    for store in world.stores.values():
        for sku, level in store.levels.items():
            assert level.on_hand >= 0 and level.allocated == 0, (store.location_id, sku, level)
    # Every sale sold what was available, so a location's levels in the events never went below zero.
    for event in busy.hub.events("sale.completed"):
        assert all(lv["on_hand"] >= 0 for lv in event["data"]["levels"])
    returned = busy.hub.events("return.completed")
    assert returned and all(r["data"]["lines"][0]["quantity"] >= r["data"]["lines"][0]["restock_quantity"]
                            for r in returned)  # fmt: skip
    assert busy.hub.events("stock.levels")[-1]["data"]["reason"] == "receipt"


async def test_collect_share_hands_tasks_over_at_the_store(busy: Pos) -> None:
    await busy.control("POST", "/traffic", {"collect_share": 1.0, "sales_per_second": 0})
    await busy.create_task("sb-1", [("TEE-M", 1)])
    await run_for(busy, 1.0)
    (task,) = busy.sb.world.tasks.values()
    assert task.status == "collected" and task.shipment is not None and task.shipment["tracking_number"] is None
    stopped = await busy.control("DELETE", "/traffic")
    assert stopped["enabled"] is False


async def until(check: object, timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not check():  # type: ignore[operator]
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("timed out waiting for the simulation")
        await asyncio.sleep(0.02)


async def test_live_traffic_on_the_lifespan(hub: FakeHub) -> None:
    app = create_app(make_config(hub, dispatcher_interval=0.01))
    sandbox = sandbox_of(app)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://pos.test") as client:
            pos = Pos(client, sandbox, hub)
            await pos.stock("store-downtown", {"TEE-M": 50})
            await pos.control("POST", "/traffic", {"sales_per_second": 30, "fulfil_delay_min_seconds": 0.02,
                                                   "fulfil_delay_max_seconds": 0.05})  # fmt: skip
            assert (await pos.create_task("sb-1", [("TEE-M", 1)])).status_code == 201
            await until(lambda: sandbox.world.tasks["T-1"].status == "shipped" and len(sandbox.world.sales) >= 3)
            await until(lambda: any(e["data"].get("status") == "shipped" for e in hub.events("task.updated")))
            await pos.control("DELETE", "/traffic")
            sales = len(sandbox.world.sales)
            await asyncio.sleep(0.1)
            assert len(sandbox.world.sales) == sales
