"""Faults, drawn from the seeded fault generator: lost, duplicated and reordered events, 5xx and 429 answers, and
a store offline (its API operations answer 503, its events wait until it is back)."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import pytest

from shopbridge.sandbox.pos import SandboxClock
from shopbridge.sandbox.pos.stock import LevelChange, set_levels

from .conftest import FakeHub, Pos, open_pos

pytestmark = pytest.mark.anyio


def make_changes(pos: Pos, count: int) -> None:
    for n in range(count):
        set_levels(pos.sb, "store-harbor", "count", [LevelChange("TEE-M", n)])


async def test_lost_and_duplicated_events_within_the_seeded_expectation(pos: Pos) -> None:
    await pos.control("PUT", "/faults", {"event_loss_rate": 0.25, "event_duplicate_rate": 0.2})
    make_changes(pos, 400)
    await pos.deliver()
    stats = (await pos.control("GET", "/stats"))["events"]["by_type"]["stock.levels"]
    lost, duplicated = stats["lost"], stats["duplicated"]
    # Binomial(400, 0.25) and Binomial(400 - lost, 0.2): well inside 3.5 standard deviations.
    assert 70 <= lost <= 130 and 30 <= duplicated <= 90, stats
    received = Counter(e["event_id"] for e in pos.hub.events())
    assert len(received) == 400 - lost
    assert sum(received.values()) == 400 - lost + duplicated
    twice = [event_id for event_id, n in received.items() if n == 2]
    assert len(twice) == duplicated
    bodies = [r.content for r in pos.hub.requests if twice[0].encode() in r.content]
    assert len(bodies) == 2 and bodies[0] == bodies[1]
    assert len(await pos.control("GET", "/events?status=lost")) == lost


async def collect_lost(hub: FakeHub) -> list[int]:
    async with open_pos(hub, clock=SandboxClock(speed=0.0)) as pos:
        await pos.control("PUT", "/faults", {"event_loss_rate": 0.3})
        make_changes(pos, 100)
        lost = await pos.control("GET", "/events?status=lost")
        return [d["event"]["data"]["levels"][0]["on_hand"] for d in lost]


async def test_the_same_seed_loses_the_same_events() -> None:
    first, second = await collect_lost(FakeHub()), await collect_lost(FakeHub())
    assert first == second and 10 < len(first) < 50


async def test_reordered_events_overtake_each_other(pos: Pos) -> None:
    await pos.control("PUT", "/faults", {"event_reorder_max_delay_seconds": 1.0})
    make_changes(pos, 20)
    assert await pos.deliver() == 0  # each waits its random delay
    pos.sb.clock.advance(1.0)
    await pos.deliver()
    order = [e["data"]["levels"][0]["on_hand"] for e in pos.hub.events()]
    assert sorted(order) == list(range(20)) and order != list(range(20))


async def test_api_5xx_and_429_at_their_rates(pos: Pos) -> None:
    await pos.control("PUT", "/faults", {"api_error_rate": 0.3, "api_error_status": 500, "api_rate_limited_rate": 0.1,
                                         "rate_limit_retry_after_seconds": 2})  # fmt: skip
    statuses: Counter[int] = Counter()
    for _ in range(200):
        response = await pos.api("GET", "/v1/locations")
        statuses[response.status_code] += 1
        if response.status_code == 429:
            assert response.headers["retry-after"] == "2"
            assert response.json()["error"]["code"] == "rate_limited"
        elif response.status_code == 500:
            assert response.json()["error"]["code"] == "unavailable"
    assert 35 <= statuses[500] <= 85 and 5 <= statuses[429] <= 40, statuses
    assert statuses[200] == 200 - statuses[500] - statuses[429]
    faults = await pos.control("DELETE", "/faults")
    assert faults["api_error_rate"] == 0.0
    assert (await pos.api("GET", "/v1/locations")).status_code == 200


async def test_an_offline_store_answers_503_and_holds_its_events(pos: Pos) -> None:
    await pos.create_task("sb-1", [("TEE-M", 1)])
    await pos.deliver()
    sent = len(pos.hub.requests)
    store = await pos.control("POST", "/locations/store-downtown/offline", {"seconds": 60})
    assert store["offline"] is True
    for method, path, body in (
        ("POST", "/v1/fulfilment-tasks", None),
        ("GET", "/v1/stock?location_id=store-downtown", None),
        ("GET", "/v1/fulfilment-tasks/T-1", None),
        ("GET", "/v1/fulfilment-tasks?task_ref=sb-1", None),
        ("POST", "/v1/fulfilment-tasks/T-1/cancel", {"reason": "buyer_cancelled"}),
    ):
        if body is None and method == "POST":
            response = await pos.create_task("sb-2", [("TEE-M", 1)])
        else:
            response = await pos.api(method, path, body)
        assert response.status_code == 503, (path, response.text)
        assert response.json()["error"]["code"] == "location_offline" and response.headers["retry-after"] == "60"
    assert (await pos.api("GET", "/v1/stock?location_id=store-mall")).status_code == 200
    assert (await pos.create_task("sb-3", [("TEE-M", 1)], location_id="store-mall")).status_code == 201
    # The store keeps selling; its events wait while the mall's go out.
    sale: dict[str, Any] = {"location_id": "store-downtown", "lines": [{"sku": "TEE-L", "quantity": 1}]}
    await pos.control("POST", "/sales", sale)
    await pos.control("POST", "/sales", sale)
    await pos.deliver()
    assert [e["location_id"] for e in pos.hub.events()[sent:]] == ["store-mall"]
    assert len(await pos.control("GET", "/events?status=held")) == 2
    pos.sb.clock.advance(61)
    await pos.deliver()
    held_then_sent = pos.hub.events()[sent + 1 :]
    assert [e["data"]["sale_id"] for e in held_then_sent] == ["S-1", "S-2"]
    assert (await pos.api("GET", "/v1/stock?location_id=store-downtown")).status_code == 200


async def test_bringing_a_store_back_sends_what_it_held(pos: Pos) -> None:
    await pos.stock("store-downtown", {"TEE-M": 7})  # queued, not yet sent
    await pos.control("POST", "/locations/store-downtown/offline", {"seconds": 600})
    await pos.stock("store-downtown", {"TEE-M": 8})
    await pos.deliver()
    assert pos.hub.requests == []
    await pos.control("DELETE", "/locations/store-downtown/offline")
    await pos.deliver()
    assert [e["data"]["levels"][0]["on_hand"] for e in pos.hub.events()] == [7, 8]


@pytest.fixture
async def offline_from_config(hub: FakeHub) -> AsyncIterator[Pos]:
    from shopbridge.sandbox.pos import PosFaults

    faults = PosFaults(offline_locations={"store-harbor": 30})
    async with open_pos(hub, clock=SandboxClock(speed=0.0), faults=faults) as pos:
        yield pos


async def test_a_store_can_start_offline(offline_from_config: Pos) -> None:
    pos = offline_from_config
    assert (await pos.api("GET", "/v1/stock?location_id=store-harbor")).status_code == 503
    assert (await pos.control("GET", "/faults"))["offline_until"].keys() == {"store-harbor"}
    pos.sb.clock.advance(30)
    assert (await pos.api("GET", "/v1/stock?location_id=store-harbor")).status_code == 200
