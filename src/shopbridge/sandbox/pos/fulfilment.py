"""Fulfilment tasks (docs/pos-protocol.md §4.1-§4.4, §3.4): created by the hub, moved by the store's associates
(or the control API), cancelled by either.

* **Create**: idempotent on ``task_ref`` (the same body answers 200 with the task, another body 409
  ``task_ref_conflict``); a new task allocates its units (``allocated`` grows) and answers 201, or 409
  ``insufficient_stock`` when ``on_hand - allocated`` does not cover a SKU, 404 ``unknown_sku`` for a SKU the POS
  does not carry anywhere. The allocation is a stock change: the location's sequence grows and a ``task.updated``
  (status ``open``) carries the levels, so the hub's mirror of ``allocated`` never lags its own reservation (§5).
* **Progress** moves forward only: open -> picking -> picked -> packed -> shipped | collected. Shipping or
  collecting takes the units off ``on_hand`` and ``allocated`` (sequence, levels); the other steps carry the
  location's current sequence and no levels.
* **Cancel** releases the allocation (sequence, levels); cancelling a cancelled task answers it again and changes
  nothing; a shipped or collected task answers 409 ``already_shipped``.
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Any

from .errors import PosError, unknown_task
from .models import CreateTask, TaskStatus, dispatch_by_text
from .state import STATUS_RANK, Task
from .times import iso_ms, millis

if TYPE_CHECKING:
    from .runtime import PosSandbox

PROGRESS: tuple[TaskStatus, ...] = ("picking", "picked", "packed", "shipped", "collected")


def task_json(task: Task) -> dict[str, Any]:
    """A task, as every operation answers it (§4.1)."""
    return {
        "task_id": task.task_id,
        "task_ref": task.task_ref,
        "location_id": task.location_id,
        "status": task.status,
        "order_ref": task.order_ref,
        "lines": task.lines,
        "shipment": task.shipment,
        "created_at": iso_ms(task.created_at),
        "updated_at": iso_ms(task.updated_at),
    }


def task_detail_json(task: Task) -> dict[str, Any]:
    """The control API's view: the task plus what the protocol does not answer (ship_to, dispatch_by, history)."""
    return {
        **task_json(task),
        "ship_to": task.ship_to,
        "dispatch_by": task.dispatch_by,
        "cancel_reason": task.cancel_reason,
        "history": task.history,
    }


def get_task(sb: PosSandbox, task_id: str) -> Task:
    task = sb.world.tasks.get(task_id)
    if task is None:
        raise unknown_task(task_id=task_id)
    return task


def _units(lines: list[dict[str, Any]]) -> Counter[str]:
    units: Counter[str] = Counter()
    for line in lines:
        units[line["sku"]] += line["quantity"]
    return units


def _touch(sb: PosSandbox, task: Task, status: TaskStatus, by: str, silent: bool) -> None:
    task.status = status
    task.updated_at = millis(sb.now())
    task.change_no = sb.world.next_change()
    task.history.append({"status": status, "at": iso_ms(task.updated_at), "by": by, "silent": silent})


def _publish(sb: PosSandbox, task: Task, sequence: int, levels: list[dict[str, Any]] | None, silent: bool) -> None:
    data: dict[str, Any] = {
        "task_id": task.task_id,
        "task_ref": task.task_ref,
        "status": task.status,
        "sequence": sequence,
    }
    if task.shipment is not None:
        data["shipment"] = task.shipment
    if levels is not None:
        data["levels"] = levels
    sb.outbox.publish("task.updated", task.location_id, task.updated_at, data, silent=silent)


def create_task(sb: PosSandbox, body: CreateTask) -> tuple[int, Task]:
    """(201, the new task) or (200, the task this task_ref already made); raises the protocol's refusals."""
    world = sb.world
    store = sb.store(body.location_id)
    sb.require_online(store)
    request = body.model_dump()
    existing = world.task_by_ref(body.task_ref)
    if existing is not None:
        if existing.request == request:
            return 200, existing
        differing = sorted(key for key in request if request[key] != existing.request.get(key))
        raise PosError(
            409,
            "task_ref_conflict",
            f"task_ref {body.task_ref} already made {existing.task_id} from another body ({', '.join(differing)})",
            {"task_ref": body.task_ref, "task_id": existing.task_id, "fields": differing},
        )
    if not store.config.active:
        raise PosError(409, "location_inactive", f"{store.location_id} is not active",
                       {"location_id": store.location_id})  # fmt: skip
    lines = [line.model_dump() for line in body.lines]
    needed = _units(lines)
    for sku in needed:
        if sku not in world.catalogue:
            raise PosError(404, "unknown_sku", f"the POS does not carry {sku}",
                           {"sku": sku, "location_id": store.location_id})  # fmt: skip
    for sku, quantity in needed.items():
        available = store.available(sku)
        if available < quantity:
            shown = max(available, 0)
            raise PosError(
                409,
                "insufficient_stock",
                f"{store.location_id} has {shown} of {sku}, the task needs {quantity}",
                {"sku": sku, "location_id": store.location_id, "available": shown, "needed": quantity},
            )
    for sku, quantity in needed.items():
        store.level(sku).allocated += quantity
    sequence = world.bump(store)
    now = millis(sb.now())
    task = Task(
        task_id=world.next_task_id(),
        task_ref=body.task_ref,
        location_id=store.location_id,
        order_ref=body.order_ref.model_dump(exclude_none=True),
        lines=lines,
        ship_to=body.ship_to.model_dump() if body.ship_to is not None else None,
        dispatch_by=dispatch_by_text(body.dispatch_by),
        request=request,
        created_at=now,
        updated_at=now,
        change_no=world.next_change(),
    )
    task.history.append({"status": "open", "at": iso_ms(now), "by": "hub", "silent": False})
    world.tasks[task.task_id] = task
    world.task_refs[task.task_ref] = task.task_id
    sb.traffic.task_opened(task)
    _publish(sb, task, sequence, store.levels_json(list(needed)), silent=False)
    return 201, task


def cancel_task(sb: PosSandbox, task: Task, reason: str, *, by: str = "hub", silent: bool = False) -> Task:
    """Cancel ``task`` and release its allocation; a cancelled task is answered as it is (§4.4)."""
    if task.status == "cancelled":
        return task
    if task.status in ("shipped", "collected"):
        raise PosError(409, "already_shipped", f"task {task.task_id} is {task.status}",
                       {"task_id": task.task_id, "status": task.status})  # fmt: skip
    store = sb.store(task.location_id)
    needed = _units(task.lines)
    for sku, quantity in needed.items():
        level = store.level(sku)
        level.allocated = max(0, level.allocated - quantity)
    sequence = sb.world.bump(store)
    task.cancel_reason = reason
    _touch(sb, task, "cancelled", by, silent)
    sb.traffic.task_closed(task)
    _publish(sb, task, sequence, store.levels_json(list(needed)), silent)
    return task


def advance_task(
    sb: PosSandbox,
    task: Task,
    status: TaskStatus,
    *,
    carrier: str | None = None,
    tracking_number: str | None = None,
    tracking_url: str | None = None,
    by: str = "associate",
    silent: bool = False,
) -> Task:
    """Move ``task`` forward to ``status`` (steps in between are skipped); the same status again changes nothing.
    Shipping needs a carrier and a tracking number; collecting has neither."""
    if status not in PROGRESS:
        raise PosError(422, "invalid_status", f"a task cannot be moved to {status}", {"status": status})
    if task.status == status:
        return task
    if task.status == "cancelled":
        raise PosError(409, "task_cancelled", f"task {task.task_id} is cancelled", {"task_id": task.task_id})
    if task.status in ("shipped", "collected"):
        raise PosError(409, "already_shipped", f"task {task.task_id} is {task.status}",
                       {"task_id": task.task_id, "status": task.status})  # fmt: skip
    if STATUS_RANK[status] <= STATUS_RANK[task.status]:
        raise PosError(409, "not_forward", f"task {task.task_id} is {task.status}; tasks move forward only",
                       {"task_id": task.task_id, "status": task.status})  # fmt: skip
    store = sb.store(task.location_id)
    if status not in ("shipped", "collected"):
        _touch(sb, task, status, by, silent)
        _publish(sb, task, store.sequence, None, silent)
        return task
    if status == "shipped" and not (carrier and tracking_number):
        raise PosError(422, "invalid_body", "shipping needs a carrier and a tracking number",
                       {"field": "carrier" if not carrier else "tracking_number"})  # fmt: skip
    needed = _units(task.lines)
    for sku, quantity in needed.items():
        level = store.level(sku)
        level.on_hand = max(0, level.on_hand - quantity)
        level.allocated = max(0, level.allocated - quantity)
    sequence = sb.world.bump(store)
    _touch(sb, task, status, by, silent)
    task.shipment = {
        "carrier": carrier if status == "shipped" else None,
        "tracking_number": tracking_number if status == "shipped" else None,
        "tracking_url": tracking_url if status == "shipped" else None,
        "shipped_at": iso_ms(task.updated_at),
        "lines": [{"sku": line["sku"], "quantity": line["quantity"]} for line in task.lines],
    }
    sb.traffic.task_closed(task)
    _publish(sb, task, sequence, store.levels_json(list(needed)), silent)
    return task
