"""Stock at the stores (§3.1-§3.3, §4.6, §4.7): the per-location sequence, till sales, returns restocking only
what goes back on the shelf, and the stock and returns listings."""

from __future__ import annotations

import pytest

from shopbridge.sandbox.pos.models import ReturnsPage, StockPage

from .conftest import SEQUENCE_START, Pos

pytestmark = pytest.mark.anyio


async def test_every_stock_change_raises_the_location_sequence_by_one(pos: Pos) -> None:
    downtown = pos.sb.world.stores["store-downtown"]
    start = downtown.sequence
    assert start == SEQUENCE_START + 1  # the fixture's silent count
    seen = [start]
    await pos.stock("store-downtown", {"TEE-M": 8}, reason="receipt")
    seen.append(downtown.sequence)
    await pos.control("POST", "/sales", {"location_id": "store-downtown", "lines": [{"sku": "TEE-M", "quantity": 1}]})
    seen.append(downtown.sequence)
    await pos.create_task("sb-1", [("TEE-M", 2)])
    seen.append(downtown.sequence)
    await pos.control("POST", "/tasks/T-1/advance", {"status": "picking"})  # moves no stock
    seen.append(downtown.sequence)
    await pos.control("POST", "/tasks/T-1/ship", {})
    seen.append(downtown.sequence)
    line = {"sku": "TEE-M", "quantity": 1, "restock_quantity": 1}
    await pos.control("POST", "/returns", {"location_id": "store-downtown", "order_ref": {"task_ref": "sb-1"},
                                           "lines": [line]})  # fmt: skip
    seen.append(downtown.sequence)
    assert seen == [start, start + 1, start + 2, start + 3, start + 3, start + 4, start + 5]
    # Another location has a sequence of its own.
    assert pos.sb.world.stores["store-mall"].sequence == SEQUENCE_START + 1
    page = StockPage.model_validate((await pos.api("GET", "/v1/stock?location_id=store-downtown")).json())
    assert page.sequence == start + 5 and page.next_cursor is None
    assert {lv.sku: (lv.on_hand, lv.allocated) for lv in page.levels} == {"TEE-L": (2, 0), "TEE-M": (6, 0)}
    # The events carried those sequences, and each its absolute levels.
    await pos.deliver()
    events = pos.hub.events()
    assert [e["data"]["sequence"] for e in events] == [start + 1, start + 2, start + 3, start + 3, start + 4,
                                                       start + 5]  # fmt: skip
    assert [e["data"].get("levels") for e in events][:3] == [
        [{"sku": "TEE-M", "on_hand": 8, "allocated": 0}],
        [{"sku": "TEE-M", "on_hand": 7, "allocated": 0}],
        [{"sku": "TEE-M", "on_hand": 7, "allocated": 2}],
    ]


async def test_the_sequence_starts_from_the_clock_without_a_configured_start(hub: object) -> None:
    from shopbridge.sandbox.pos import PosSandbox, PosSandboxConfig, SandboxClock

    sandbox = PosSandbox(PosSandboxConfig(clock=SandboxClock(start=1_765_000_000.5, speed=0.0)))
    assert {s.sequence for s in sandbox.world.stores.values()} == {1_765_000_000_500}


async def test_a_return_restocks_only_what_goes_back_on_the_shelf(pos: Pos) -> None:
    body = {
        "location_id": "store-downtown",
        "order_ref": {"channel": "tiktok", "order_id": "576461413038785752"},
        "lines": [{"sku": "TEE-M", "quantity": 3, "restock_quantity": 1},
                  {"sku": "TEE-L", "quantity": 1, "restock_quantity": 0}],
    }  # fmt: skip
    taken = await pos.control("POST", "/returns", body, expect=201)
    assert taken["return_id"] == "R-1"
    assert await pos.level("store-downtown", "TEE-M") == {"sku": "TEE-M", "on_hand": 6, "allocated": 0}
    assert await pos.level("store-downtown", "TEE-L") == {"sku": "TEE-L", "on_hand": 2, "allocated": 0}
    await pos.deliver()
    (event,) = pos.hub.events("return.completed")
    assert event["location_id"] == "store-downtown"
    assert event["data"]["order_ref"] == {"channel": "tiktok", "order_id": "576461413038785752"}
    assert event["data"]["lines"] == body["lines"]
    assert event["data"]["levels"] == [{"sku": "TEE-M", "on_hand": 6, "allocated": 0},
                                       {"sku": "TEE-L", "on_hand": 2, "allocated": 0}]  # fmt: skip
    listed = ReturnsPage.model_validate((await pos.api("GET", "/v1/returns")).json())
    (record,) = listed.returns
    assert record.return_id == "R-1" and record.occurred_at == event["occurred_at"]
    assert record.sequence == event["data"]["sequence"] and listed.next_cursor is None
    bad = {**body, "lines": [{"sku": "TEE-M", "quantity": 1, "restock_quantity": 2}]}
    assert (await pos.control("POST", "/returns", bad, expect=422))["error"]["code"] == "invalid_body"


async def test_a_till_sells_only_what_is_available_unless_told_to_oversell(pos: Pos) -> None:
    await pos.create_task("sb-1", [("TEE-L", 2)])
    sale = {"location_id": "store-downtown", "lines": [{"sku": "TEE-L", "quantity": 1}]}
    refused = await pos.control("POST", "/sales", sale, expect=409)
    assert refused["error"]["code"] == "insufficient_stock"
    sold = await pos.control("POST", "/sales", {**sale, "allow_oversell": True}, expect=201)
    assert sold["sale_id"] == "S-1" and sold["lines"] == [{"sku": "TEE-L", "quantity": 1, "unit_price": "10.00"}]
    assert sold["levels"] == [{"sku": "TEE-L", "on_hand": 1, "allocated": 2}]
    await pos.control("POST", "/sales", {"location_id": "store-downtown", "lines": [{"sku": "TEE-M", "quantity": 2}]})
    await pos.deliver()
    last = pos.hub.events("sale.completed")[-1]["data"]
    assert last["currency"] == "USD" and last["lines"] == [{"sku": "TEE-M", "quantity": 2, "unit_price": "19.99"}]


async def test_stock_pages_500_at_a_time(pos: Pos) -> None:
    await pos.stock("store-airport", {f"SKU-{n:04d}": n for n in range(600)})
    first = StockPage.model_validate((await pos.api("GET", "/v1/stock?location_id=store-airport")).json())
    assert len(first.levels) == 500 and first.levels[0].sku == "SKU-0000" and first.next_cursor
    second = StockPage.model_validate(
        (await pos.api("GET", f"/v1/stock?location_id=store-airport&cursor={first.next_cursor}")).json()
    )
    assert [lv.sku for lv in second.levels] == [f"SKU-{n:04d}" for n in range(500, 600)]
    assert second.next_cursor is None and second.sequence == first.sequence
    other = await pos.api("GET", f"/v1/stock?location_id=store-mall&cursor={first.next_cursor}")
    assert other.status_code == 400 and other.json()["error"]["code"] == "invalid_query"
    missing = await pos.api("GET", "/v1/stock")
    assert missing.status_code == 400 and missing.json()["error"]["details"] == {"parameter": "location_id"}
    unknown = await pos.api("GET", "/v1/stock?location_id=store-moon")
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "unknown_location"


async def test_returns_page_100_at_a_time_from_an_instant(pos: Pos) -> None:
    line = [{"sku": "TEE-M", "quantity": 1, "restock_quantity": 1}]
    for n in range(110):
        await pos.control("POST", "/returns", {"location_id": "store-mall", "order_ref": {"task_ref": f"sb-{n}"},
                                               "lines": line})  # fmt: skip
    pos.sb.clock.advance(5)
    late = await pos.control("POST", "/returns", {"location_id": "store-mall", "order_ref": {"task_ref": "late"},
                                                  "lines": line})  # fmt: skip
    first = ReturnsPage.model_validate((await pos.api("GET", "/v1/returns?updated_since=2000-01-01T00:00:00Z")).json())
    assert [r.return_id for r in first.returns] == [f"R-{n}" for n in range(1, 101)] and first.next_cursor
    second = ReturnsPage.model_validate((await pos.api("GET", f"/v1/returns?cursor={first.next_cursor}")).json())
    assert [r.return_id for r in second.returns] == [f"R-{n}" for n in range(101, 112)]
    assert second.next_cursor is None
    recent = ReturnsPage.model_validate(
        (await pos.api("GET", f"/v1/returns?updated_since={late['occurred_at']}")).json()
    )
    assert [r.return_id for r in recent.returns] == ["R-111"]
    assert recent.returns[0].order_ref.model_dump() == {"task_ref": "late"}
