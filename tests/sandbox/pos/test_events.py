"""§3 events: signed as §2 says on /hooks/pos, the envelope and each type's data with sequence and levels,
retries on 5xx with the same event, 400/401 recorded and not retried, the order they were made, and the silent
changes that send nothing."""

from __future__ import annotations

import asyncio
import json
import time

import httpx
import pytest

from shopbridge.sandbox.pos import create_app, sandbox_of, verify

from .conftest import ACCOUNT, EVENTS, HUB_URL, SECRET, FakeHub, Pos, make_config

pytestmark = pytest.mark.anyio


async def test_events_are_signed_on_hooks_pos_and_match_the_protocol(pos: Pos) -> None:
    await pos.stock("store-downtown", {"TEE-M": 9}, reason="receipt")
    await pos.control("POST", "/sales", {"location_id": "store-downtown", "lines": [{"sku": "TEE-M", "quantity": 1}]})
    await pos.create_task("sb-12", [("TEE-M", 1)])
    line = {"sku": "TEE-M", "quantity": 1, "restock_quantity": 0}
    await pos.control("POST", "/returns", {"location_id": "store-mall", "order_ref": {"task_ref": "sb-12"},
                                           "lines": [line]})  # fmt: skip
    assert await pos.deliver() == 4
    assert [str(r.url) for r in pos.hub.requests] == [HUB_URL] * 4
    for request in pos.hub.requests:
        headers = request.headers
        assert request.method == "POST" and headers["content-type"] == "application/json"
        assert headers["x-pos-account"] == ACCOUNT
        assert verify(SECRET, headers["x-pos-timestamp"], "POST", "/hooks/pos", request.content,
                      headers["x-pos-signature"], now=time.time()) is None  # fmt: skip
        EVENTS.validate_python(json.loads(request.content))
    stock, sale, task, taken = pos.hub.events()
    assert [e["type"] for e in (stock, sale, task, taken)] == [
        "stock.levels", "sale.completed", "task.updated", "return.completed"]  # fmt: skip
    assert stock["version"] == 1 and stock["event_id"].startswith("evt_") and stock["occurred_at"].endswith("Z")
    assert stock["data"] == {"sequence": stock["data"]["sequence"], "reason": "receipt",
                             "levels": [{"sku": "TEE-M", "on_hand": 9, "allocated": 0}]}  # fmt: skip
    assert sale["data"]["sale_id"] == "S-1" and sale["data"]["levels"] == [{"sku": "TEE-M", "on_hand": 8,
                                                                            "allocated": 0}]  # fmt: skip
    assert task["data"] == {"task_id": "T-1", "task_ref": "sb-12", "status": "open",
                            "sequence": sale["data"]["sequence"] + 1,
                            "levels": [{"sku": "TEE-M", "on_hand": 8, "allocated": 1}]}  # fmt: skip
    assert taken["location_id"] == "store-mall" and taken["data"]["levels"] == [
        {"sku": "TEE-M", "on_hand": 1, "allocated": 0}]  # fmt: skip
    assert len({e["event_id"] for e in pos.hub.events()}) == 4


async def test_task_updates_carry_a_shipment_from_shipped_and_levels_when_stock_moved(pos: Pos) -> None:
    await pos.create_task("sb-12", [("TEE-M", 1)])
    for status in ("picking", "picked", "packed"):
        await pos.control("POST", "/tasks/T-1/advance", {"status": status})
    await pos.control("POST", "/tasks/T-1/ship", {"carrier": "UPS", "tracking_number": "1Z999AA10123456784"})
    await pos.deliver()
    updates = [e["data"] for e in pos.hub.events("task.updated")]
    assert [u["status"] for u in updates] == ["open", "picking", "picked", "packed", "shipped"]
    opened = updates[0]["sequence"]
    for update in updates[1:4]:
        assert update["sequence"] == opened and "levels" not in update and "shipment" not in update
    shipped = updates[-1]
    assert shipped["sequence"] == opened + 1
    assert shipped["levels"] == [{"sku": "TEE-M", "on_hand": 4, "allocated": 0}]
    assert shipped["shipment"]["carrier"] == "UPS" and shipped["shipment"]["tracking_number"] == "1Z999AA10123456784"
    assert shipped["shipment"]["lines"] == [{"sku": "TEE-M", "quantity": 1}]


async def test_5xx_and_transport_errors_are_retried_with_the_same_event(pos: Pos) -> None:
    pos.hub.statuses = [503, 500]
    await pos.stock("store-downtown", {"TEE-M": 3})
    for _ in range(3):
        await pos.deliver()
    first, second, third = pos.hub.requests
    assert first.content == second.content == third.content
    (delivery,) = await pos.control("GET", "/events")
    assert delivery["status"] == "delivered"
    assert [a["status_code"] for a in delivery["attempts"]] == [503, 500, 200]


async def test_400_and_401_are_recorded_and_not_retried(pos: Pos) -> None:
    pos.hub.statuses = [400, 401]
    await pos.stock("store-downtown", {"TEE-M": 3})
    await pos.stock("store-downtown", {"TEE-M": 4})
    for _ in range(3):
        await pos.deliver()
    assert len(pos.hub.requests) == 2
    rejected = await pos.control("GET", "/events?status=rejected")
    assert [d["attempts"][0]["status_code"] for d in rejected] == [400, 401]
    assert rejected[0]["attempts"][0]["answer"] == '{"error":{}}'


async def test_a_delivery_failing_every_retry_is_recorded_failed(pos: Pos) -> None:
    await pos.control("PATCH", "/settings", {"event_max_retries": 2})
    pos.hub.default_status = 502
    await pos.stock("store-downtown", {"TEE-M": 3})
    for _ in range(5):
        await pos.deliver()
    assert len(pos.hub.requests) == 3
    (failed,) = await pos.control("GET", "/events?status=failed")
    assert len(failed["attempts"]) == 3


async def test_events_go_out_in_the_order_they_were_made(pos: Pos) -> None:
    for n in range(20):
        await pos.stock("store-downtown", {"TEE-M": n})
    await pos.deliver()
    assert [e["data"]["levels"][0]["on_hand"] for e in pos.hub.events()] == list(range(20))


async def test_silent_changes_change_the_state_and_send_nothing(pos: Pos) -> None:
    await pos.create_task("sb-1", [("TEE-M", 1)])
    await pos.create_task("sb-2", [("TEE-M", 1)])
    await pos.deliver()
    before = len(pos.hub.requests)
    sequence = pos.sb.world.stores["store-downtown"].sequence
    shipped = await pos.control("POST", "/tasks/T-1/ship?silent=true", {})
    cancelled = await pos.control("POST", "/tasks/T-2/cancel?silent=true", {"reason": "no_stock"})
    taken = await pos.control("POST", "/returns?silent=true", {"location_id": "store-downtown", "order_ref": {
        "task_ref": "sb-1"}, "lines": [{"sku": "TEE-M", "quantity": 1, "restock_quantity": 1}]})  # fmt: skip
    await pos.control("POST", "/sales?silent=true",
                      {"location_id": "store-downtown", "lines": [{"sku": "TEE-L", "quantity": 1}]})  # fmt: skip
    await pos.deliver()
    assert len(pos.hub.requests) == before
    assert shipped["status"] == "shipped" and shipped["history"][-1]["silent"] is True
    assert cancelled["status"] == "cancelled" and taken["silent"] is True
    # The state moved on, sequence included: the API and the backstop listings show it.
    assert pos.sb.world.stores["store-downtown"].sequence == sequence + 4
    assert (await pos.api("GET", "/v1/fulfilment-tasks/T-1")).json()["status"] == "shipped"
    assert [r["return_id"] for r in (await pos.api("GET", "/v1/returns")).json()["returns"]] == ["R-1"]
    assert await pos.level("store-downtown", "TEE-M") == {"sku": "TEE-M", "on_hand": 5, "allocated": 0}
    stats = await pos.control("GET", "/stats")
    assert stats["events"]["by_type"]["task.updated"]["silent"] == 2


async def test_events_follow_the_hub_url_set_at_run_time(pos: Pos) -> None:
    await pos.control("PATCH", "/settings", {"hub_event_url": "http://elsewhere.test/hooks/pos"})
    await pos.stock("store-downtown", {"TEE-M": 3})
    await pos.deliver()
    assert str(pos.hub.requests[0].url) == "http://elsewhere.test/hooks/pos"
    # The signed path stays /hooks/pos whatever the address.
    request = pos.hub.requests[0]
    assert verify(SECRET, request.headers["x-pos-timestamp"], "POST", "/hooks/pos", request.content,
                  request.headers["x-pos-signature"], now=time.time()) is None  # fmt: skip


async def test_a_hub_that_does_not_answer_never_blocks_the_pos() -> None:
    answered = asyncio.Event()
    taken: list[bytes] = []

    async def slow_hub(request: httpx.Request) -> httpx.Response:
        taken.append(request.content)
        await answered.wait()
        return httpx.Response(200, json={"message": "accepted"})

    app = create_app(make_config(FakeHub(), event_transport=httpx.MockTransport(slow_hub), dispatcher_interval=0.01))
    sandbox = sandbox_of(app)
    transport = httpx.ASGITransport(app=app)
    async with app.router.lifespan_context(app), httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        pos = Pos(client, sandbox, FakeHub())
        await pos.stock("store-downtown", {"TEE-M": 3})
        await pos.stock("store-downtown", {"TEE-M": 4})
        while not taken:
            await asyncio.sleep(0.01)
        # The first delivery hangs; the API and the control API still answer, the second event waits its turn.
        assert (await pos.api("GET", "/v1/stock?location_id=store-downtown")).json()["levels"][0]["on_hand"] == 4
        assert [d["status"] for d in await pos.control("GET", "/events")] == ["pending", "pending"]
        assert len(taken) == 1
        answered.set()
        while len(sandbox.outbox.history(status="delivered")) < 2:
            await asyncio.sleep(0.01)
        assert len(taken) == 2
