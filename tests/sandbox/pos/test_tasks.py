"""§4.1-§4.4: creating (idempotent on task_ref, conflicts, stock), reading, cancelling and listing tasks."""

from __future__ import annotations

import pytest

from shopbridge.sandbox.pos.models import ErrorBody, Task, TaskList

from .conftest import Pos, task_body

pytestmark = pytest.mark.anyio


def error_of(response: object) -> tuple[int, str, dict[str, object]]:
    body = ErrorBody.model_validate(response.json())  # type: ignore[attr-defined]
    return response.status_code, body.error.code, body.error.details  # type: ignore[attr-defined]


async def test_a_new_task_allocates_its_units_and_answers_201(pos: Pos) -> None:
    response = await pos.create_task("sb-12", [("TEE-M", 2), ("TEE-L", 1)])
    assert response.status_code == 201, response.text
    task = Task.model_validate(response.json())
    assert task.task_id == "T-1" and task.status == "open" and task.shipment is None
    assert task.order_ref.model_dump() == {"channel": "tiktok", "order_id": "5764sb-12", "hub_order_id": 12}
    assert [(line.sku, line.quantity) for line in task.lines] == [("TEE-M", 2), ("TEE-L", 1)]
    assert await pos.level("store-downtown", "TEE-M") == {"sku": "TEE-M", "on_hand": 5, "allocated": 2}
    assert await pos.level("store-downtown", "TEE-L") == {"sku": "TEE-L", "on_hand": 2, "allocated": 1}
    detail = await pos.control("GET", "/tasks/T-1")
    assert detail["ship_to"]["city"] == "Austin" and detail["dispatch_by"] == "2026-12-06T23:59:59Z"


async def test_the_same_task_ref_answers_the_task_or_a_conflict(pos: Pos) -> None:
    first = await pos.create_task("sb-12", [("TEE-M", 1)])
    # The same body (an instant written in another zone is the same instant; unknown fields are ignored).
    same = await pos.api(
        "POST",
        "/v1/fulfilment-tasks",
        task_body("sb-12", [("TEE-M", 1)], dispatch_by="2026-12-06T17:59:59-06:00", note="x"),
    )
    assert same.status_code == 200 and same.json() == first.json()
    other = await pos.create_task("sb-12", [("TEE-M", 2)])
    assert error_of(other) == (409, "task_ref_conflict", {"task_ref": "sb-12", "task_id": "T-1", "fields": ["lines"]})
    assert await pos.level("store-downtown", "TEE-M") == {"sku": "TEE-M", "on_hand": 5, "allocated": 1}
    assert len(pos.sb.world.tasks) == 1


async def test_a_location_without_the_units_answers_insufficient_stock(pos: Pos) -> None:
    assert (await pos.create_task("sb-1", [("TEE-L", 2)])).status_code == 201
    response = await pos.create_task("sb-2", [("TEE-L", 1)])
    assert error_of(response) == (
        409,
        "insufficient_stock",
        {"sku": "TEE-L", "location_id": "store-downtown", "available": 0, "needed": 1},
    )
    assert response.json()["error"]["message"] == "store-downtown has 0 of TEE-L, the task needs 1"
    # Lines of one SKU count together.
    split = await pos.create_task("sb-3", [("TEE-M", 1), ("TEE-M", 1)], location_id="store-mall")
    assert error_of(split)[2]["needed"] == 2
    assert "sb-2" not in pos.sb.world.task_refs and "sb-3" not in pos.sb.world.task_refs


async def test_unknown_location_unknown_sku_and_bad_bodies(pos: Pos) -> None:
    assert error_of(await pos.create_task("a", [("TEE-M", 1)], location_id="store-moon"))[:2] == (
        404, "unknown_location")  # fmt: skip
    assert error_of(await pos.create_task("b", [("NOPE", 1)]))[:2] == (404, "unknown_sku")
    status, code, details = error_of(await pos.create_task("c", [("TEE-M", 0)]))
    assert (status, code, details["field"]) == (400, "invalid_body", "lines.0.quantity")
    status, code, details = error_of(await pos.api("POST", "/v1/fulfilment-tasks", {"task_ref": "d"}))
    assert (status, code, details["field"]) == (400, "invalid_body", "location_id")
    status, code, _ = error_of(await pos.api("POST", "/v1/fulfilment-tasks", b"{not json"))
    assert (status, code) == (400, "invalid_body")
    assert pos.sb.world.tasks == {}


async def test_reading_a_task_by_id_and_by_reference(pos: Pos) -> None:
    created = (await pos.create_task("sb-12", [("TEE-M", 1)])).json()
    by_id = await pos.api("GET", "/v1/fulfilment-tasks/T-1")
    assert by_id.status_code == 200 and by_id.json() == created
    by_ref = await pos.api("GET", "/v1/fulfilment-tasks?task_ref=sb-12")
    assert TaskList.model_validate(by_ref.json()).model_dump(mode="json") == {"tasks": [created], "next_cursor": None}
    assert error_of(await pos.api("GET", "/v1/fulfilment-tasks/T-99")) == (404, "unknown_task", {"task_id": "T-99"})
    assert error_of(await pos.api("GET", "/v1/fulfilment-tasks?task_ref=sb-99")) == (
        404, "unknown_task", {"task_ref": "sb-99"})  # fmt: skip


async def test_cancel_releases_the_allocation_and_is_idempotent(pos: Pos) -> None:
    await pos.create_task("sb-12", [("TEE-M", 2)])
    cancelled = await pos.api("POST", "/v1/fulfilment-tasks/T-1/cancel", {"reason": "buyer_cancelled"})
    assert cancelled.status_code == 200 and Task.model_validate(cancelled.json()).status == "cancelled"
    assert await pos.level("store-downtown", "TEE-M") == {"sku": "TEE-M", "on_hand": 5, "allocated": 0}
    sequence = pos.sb.world.stores["store-downtown"].sequence
    again = await pos.api("POST", "/v1/fulfilment-tasks/T-1/cancel", {"reason": "buyer_cancelled"})
    assert again.status_code == 200 and again.json() == cancelled.json()
    assert pos.sb.world.stores["store-downtown"].sequence == sequence
    assert error_of(await pos.api("POST", "/v1/fulfilment-tasks/T-1/cancel", {}))[:2] == (400, "invalid_body")
    assert error_of(await pos.api("POST", "/v1/fulfilment-tasks/T-7/cancel", {"reason": "x"}))[:2] == (
        404, "unknown_task")  # fmt: skip


async def test_a_shipped_or_collected_task_cannot_be_cancelled(pos: Pos) -> None:
    await pos.create_task("sb-1", [("TEE-M", 1)])
    await pos.create_task("sb-2", [("TEE-M", 1)])
    await pos.control("POST", "/tasks/T-1/ship", {"carrier": "UPS", "tracking_number": "1Z999AA10123456784"})
    await pos.control("POST", "/tasks/T-2/collect")
    for task_id, status in (("T-1", "shipped"), ("T-2", "collected")):
        response = await pos.api("POST", f"/v1/fulfilment-tasks/{task_id}/cancel", {"reason": "buyer_cancelled"})
        assert error_of(response) == (409, "already_shipped", {"task_id": task_id, "status": status})
    shipped = Task.model_validate((await pos.api("GET", "/v1/fulfilment-tasks/T-1")).json())
    assert shipped.shipment is not None and shipped.shipment.tracking_number == "1Z999AA10123456784"
    collected = Task.model_validate((await pos.api("GET", "/v1/fulfilment-tasks/T-2")).json())
    assert collected.shipment is not None and collected.shipment.carrier is None
    # Shipping and collecting took the units off on_hand and allocated.
    assert await pos.level("store-downtown", "TEE-M") == {"sku": "TEE-M", "on_hand": 3, "allocated": 0}


async def test_tasks_move_forward_only(pos: Pos) -> None:
    await pos.create_task("sb-1", [("TEE-M", 1)])
    await pos.control("POST", "/tasks/T-1/advance", {"status": "packed"})
    refused = await pos.control("POST", "/tasks/T-1/advance", {"status": "picking"}, expect=409)
    assert refused["error"]["code"] == "not_forward"
    assert (await pos.control("POST", "/tasks/T-1/advance", {"status": "packed"}))["status"] == "packed"
    await pos.control("POST", "/tasks/T-1/cancel", {"reason": "damaged_in_store"})
    refused = await pos.control("POST", "/tasks/T-1/ship", {}, expect=409)
    assert refused["error"]["code"] == "task_cancelled"


async def test_updated_since_pages_oldest_change_first(pos: Pos) -> None:
    await pos.stock("store-downtown", {"TEE-M": 1000})
    for n in range(1, 151):
        assert (await pos.create_task(f"sb-{n}", [("TEE-M", 1)])).status_code == 201
    pos.sb.clock.advance(60)
    since = "2000-01-01T00:00:00%2B00:00"
    first = TaskList.model_validate((await pos.api("GET", f"/v1/fulfilment-tasks?updated_since={since}")).json())
    assert [t.task_id for t in first.tasks] == [f"T-{n}" for n in range(1, 101)] and first.next_cursor
    # A task that changes between pages comes again later, after the others: it is a newer change.
    await pos.control("POST", "/tasks/T-3/advance", {"status": "picking"})
    second = TaskList.model_validate(
        (await pos.api("GET", f"/v1/fulfilment-tasks?updated_since={since}&cursor={first.next_cursor}")).json()
    )
    assert [t.task_id for t in second.tasks] == [f"T-{n}" for n in range(101, 151)] + ["T-3"]
    assert second.next_cursor is None and second.tasks[-1].status == "picking"
    # updated_since is inclusive and leaves out what changed before it.
    changed_at = second.tasks[-1].updated_at
    recent = TaskList.model_validate((await pos.api("GET", f"/v1/fulfilment-tasks?updated_since={changed_at}")).json())
    assert [t.task_id for t in recent.tasks] == ["T-3"] and recent.next_cursor is None
    bad = await pos.api("GET", "/v1/fulfilment-tasks?updated_since=yesterday")
    assert error_of(bad) == (400, "invalid_query", {"parameter": "updated_since"})
    assert error_of(await pos.api("GET", "/v1/fulfilment-tasks?cursor=garbage"))[:2] == (400, "invalid_query")


async def test_locations(pos: Pos) -> None:
    response = await pos.api("GET", "/v1/locations")
    locations = response.json()["locations"]
    assert [x["location_id"] for x in locations] == ["store-downtown", "store-mall", "store-airport", "store-harbor"]
    assert locations[0] == {"location_id": "store-downtown", "name": "Downtown", "timezone": "America/Chicago",
                            "active": True}  # fmt: skip
