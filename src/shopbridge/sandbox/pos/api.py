"""The POS API the hub calls (docs/pos-protocol.md §4), under ``/v1``, and the guard in front of it.

:class:`PosApiGuard` sees every ``/v1`` request before routing: the injected faults (latency, 5xx, 429), then the
signature of §2 on the raw path with its query and the raw body (401 ``unknown_account``, ``bad_signature`` or
``stale_timestamp``). Only a request that passes reaches the routes below. A replay inside the window is served
again: every operation is idempotent or a read.

A store that is offline answers 503 ``location_offline`` for the operations on it (creating, reading and
cancelling its tasks, reading its stock); the listings answer from what the POS's server knows.
"""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Query, Request
from starlette.datastructures import Headers
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .errors import error_body, unknown_task
from .fulfilment import cancel_task, create_task, get_task, task_json
from .models import CancelTask, CreateTask, ErrorBody, LocationList, ReturnsPage, StockPage, Task, TaskList
from .pagination import RETURNS_PAGE, STOCK_PAGE, TASKS_PAGE, decode, encode, invalid_query
from .runtime import PosSandbox
from .signing import REPLAY_WINDOW_SECONDS, check_request
from .stock import return_json
from .times import parse_instant_ms

API_PREFIX = "/v1"
MAX_BODY_BYTES = 1024 * 1024
SIGNED_TEXT = "{timestamp}\\n{METHOD}\\n{path}\\n{raw body}"


def is_api_path(path: str) -> bool:
    return path == API_PREFIX or path.startswith(API_PREFIX + "/")


def _error(description: str) -> dict[str, Any]:
    return {"model": ErrorBody, "description": description}


COMMON_ERRORS: dict[int | str, dict[str, Any]] = {
    400: _error("`invalid_body` or `invalid_query`, naming the field: the caller's bug, not retried"),
    401: _error("`unknown_account`, `bad_signature` or `stale_timestamp`: the connection needs attention"),
    413: _error("`payload_too_large`: the body is over 1 MiB"),
    429: _error("`rate_limited`, with `Retry-After` (seconds): retried after the wait"),
    503: _error("`unavailable`, or `location_offline` (with `Retry-After`): retried with backoff"),
}


def _errors(**extra: str) -> dict[int | str, dict[str, Any]]:
    """The errors every operation may answer, plus ``e404=``/``e409=`` descriptions of its own."""
    responses = dict(COMMON_ERRORS)
    for key, description in extra.items():
        responses[int(key.removeprefix("e"))] = _error(description)
    return responses


router = APIRouter(prefix=API_PREFIX, tags=["POS API (hub → POS)"])


def _sb(request: Request, operation: str) -> PosSandbox:
    sandbox: PosSandbox = request.app.state.sandbox
    sandbox.api_stats.requests[operation] += 1
    return sandbox


def _since(value: str | None) -> int | None:
    if value is None:
        return None
    try:
        return parse_instant_ms(value)
    except ValueError:
        message = f"updated_since {value!r} is not an RFC 3339 instant with a zone"
        raise invalid_query(message, "updated_since") from None


@router.post(
    "/fulfilment-tasks",
    status_code=201,
    response_model=Task,
    operation_id="createFulfilmentTask",
    summary="Fulfil an order at a location",
    description="Idempotent on `task_ref`: the same body again answers 200 with the task, another body 409 "
    "`task_ref_conflict`. A new task allocates its units and answers 201.",
    responses={
        200: {"model": Task, "description": "the task this `task_ref` already made, from the same body"},
        **_errors(
            e404="`unknown_location`, `unknown_sku`",
            e409="`insufficient_stock` (details: sku, location_id, available, needed), `task_ref_conflict`",
        ),
    },
)
async def create_fulfilment_task(body: CreateTask, request: Request) -> Response:
    sb = _sb(request, "createFulfilmentTask")
    status, task = create_task(sb, body)
    return JSONResponse(task_json(task), status)


@router.get(
    "/fulfilment-tasks",
    response_model=TaskList,
    operation_id="listFulfilmentTasks",
    summary="One task by the hub's reference, or the tasks changed since an instant",
    description="With `task_ref`: that task (`tasks` holds it; 404 `unknown_task` when there is none). Otherwise the "
    "tasks changed at or after `updated_since` (all of them without it), oldest change first, 100 a page; "
    "`next_cursor` is null on the last page.",
    responses=_errors(e404="`unknown_task` (with `task_ref`)"),
)
async def list_fulfilment_tasks(
    request: Request,
    task_ref: str | None = Query(None, description="the hub's reference of one task"),
    updated_since: str | None = Query(None, description="RFC 3339 with a zone; inclusive"),
    cursor: str | None = Query(None, description="`next_cursor` of the previous page"),
) -> Response:
    sb = _sb(request, "listFulfilmentTasks")
    if task_ref is not None:
        if updated_since is not None or cursor is not None:
            raise invalid_query("give task_ref alone, or updated_since and cursor", "task_ref")
        task = sb.world.task_by_ref(task_ref)
        if task is None:
            raise unknown_task(task_ref=task_ref)
        sb.require_online(sb.store(task.location_id))
        return JSONResponse({"tasks": [task_json(task)], "next_cursor": None})
    since = _since(updated_since)
    after = 0
    if cursor is not None:
        position = decode("tasks", cursor)
        since, after = position.get("since"), int(position.get("after", 0))
    changed = sorted(
        (t for t in sb.world.tasks.values() if t.change_no > after and (since is None or t.updated_at >= since)),
        key=lambda t: t.change_no,
    )
    page = changed[:TASKS_PAGE]
    next_cursor = encode("tasks", {"since": since, "after": page[-1].change_no}) if len(changed) > len(page) else None
    return JSONResponse({"tasks": [task_json(t) for t in page], "next_cursor": next_cursor})


@router.get(
    "/fulfilment-tasks/{task_id}",
    response_model=Task,
    operation_id="getFulfilmentTask",
    summary="One task by its id",
    responses=_errors(e404="`unknown_task`"),
)
async def get_fulfilment_task(task_id: str, request: Request) -> Response:
    sb = _sb(request, "getFulfilmentTask")
    task = get_task(sb, task_id)
    sb.require_online(sb.store(task.location_id))
    return JSONResponse(task_json(task))


@router.post(
    "/fulfilment-tasks/{task_id}/cancel",
    response_model=Task,
    operation_id="cancelFulfilmentTask",
    summary="Cancel a task and release its allocation",
    description="Cancelling a cancelled task answers it again and changes nothing.",
    responses=_errors(e404="`unknown_task`", e409="`already_shipped`: the task is shipped or collected"),
)
async def cancel_fulfilment_task(task_id: str, body: CancelTask, request: Request) -> Response:
    sb = _sb(request, "cancelFulfilmentTask")
    task = get_task(sb, task_id)
    sb.require_online(sb.store(task.location_id))
    return JSONResponse(task_json(cancel_task(sb, task, body.reason)))


@router.get(
    "/locations",
    response_model=LocationList,
    operation_id="listLocations",
    summary="The POS's locations",
    responses=_errors(),
)
async def list_locations(request: Request) -> Response:
    sb = _sb(request, "listLocations")
    locations = [
        {
            "location_id": store.location_id,
            "name": store.config.name,
            "timezone": store.config.timezone,
            "active": store.config.active,
        }
        for store in sb.world.stores.values()
    ]
    return JSONResponse({"locations": locations})


@router.get(
    "/stock",
    response_model=StockPage,
    operation_id="getStock",
    summary="A location's levels, 500 a page, with its sequence at the time of reading",
    responses=_errors(e404="`unknown_location`"),
)
async def get_stock(
    request: Request,
    location_id: str | None = Query(None, description="required"),
    cursor: str | None = Query(None, description="`next_cursor` of the previous page"),
) -> Response:
    sb = _sb(request, "getStock")
    if location_id is None:
        raise invalid_query("location_id is required", "location_id")
    store = sb.store(location_id)
    sb.require_online(store)
    after = ""
    if cursor is not None:
        position = decode("stock", cursor)
        if position.get("location_id") != location_id:
            raise invalid_query("the cursor belongs to another location", "cursor")
        after = str(position.get("after", ""))
    skus = sorted(sku for sku in store.levels if sku > after)
    page = skus[:STOCK_PAGE]
    next_cursor = encode("stock", {"location_id": location_id, "after": page[-1]}) if len(skus) > len(page) else None
    return JSONResponse(
        {
            "location_id": location_id,
            "sequence": store.sequence,
            "levels": store.levels_json(page),
            "next_cursor": next_cursor,
        }
    )


@router.get(
    "/returns",
    response_model=ReturnsPage,
    operation_id="listReturns",
    summary="Returns taken at or after an instant, oldest first, 100 a page",
    responses=_errors(),
)
async def list_returns(
    request: Request,
    updated_since: str | None = Query(None, description="RFC 3339 with a zone; inclusive"),
    cursor: str | None = Query(None, description="`next_cursor` of the previous page"),
) -> Response:
    sb = _sb(request, "listReturns")
    since = _since(updated_since)
    after = 0
    if cursor is not None:
        position = decode("returns", cursor)
        since, after = position.get("since"), int(position.get("after", 0))
    taken = [r for r in sb.world.returns.values() if r.number > after and (since is None or r.occurred_at >= since)]
    page = taken[:RETURNS_PAGE]
    next_cursor = encode("returns", {"since": since, "after": page[-1].number}) if len(taken) > len(page) else None
    return JSONResponse({"returns": [return_json(r) for r in page], "next_cursor": next_cursor})


# --- the guard ---------------------------------------------------------------------------------------------------


async def _read_body(receive: Receive) -> tuple[bytes, bool]:
    """The whole body, and whether it was over the limit (then it is read to its end and dropped)."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size <= MAX_BODY_BYTES:
            chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks), size > MAX_BODY_BYTES


def signed_path(scope: Scope) -> str:
    """The path as the sender wrote it: the raw path with its raw query string."""
    raw: bytes = scope.get("raw_path") or scope["path"].encode()
    path = raw.split(b"?", 1)[0].decode("latin-1")
    query: bytes = scope.get("query_string", b"")
    return path + ("?" + query.decode("latin-1") if query else "")


class PosApiGuard:
    """Faults, then signature checks, for every request under ``/v1``; everything else passes untouched."""

    def __init__(self, app: ASGIApp, sandbox: PosSandbox) -> None:
        self.app = app
        self.sb = sandbox

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not is_api_path(scope["path"]):
            await self.app(scope, receive, send)
            return
        body, too_large = await _read_body(receive)
        refusal = await self._refusal(scope, body, too_large)
        stats = self.sb.api_stats
        if refusal is not None:
            stats.statuses[refusal.status_code] += 1
            await refusal(scope, receive, send)
            return
        delivered = False

        async def replay() -> Message:
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        async def counted(message: Message) -> None:
            if message["type"] == "http.response.start":
                stats.statuses[message["status"]] += 1
            await send(message)

        await self.app(scope, replay, counted)

    async def _refusal(self, scope: Scope, body: bytes, too_large: bool) -> Response | None:
        sb = self.sb
        faults = sb.faults
        if faults.api_latency_max_ms > 0:
            low = min(faults.api_latency_min_ms, faults.api_latency_max_ms)
            await asyncio.sleep(sb.fault_rng.uniform(low, faults.api_latency_max_ms) / 1000)
        if faults.api_error_rate > 0 or faults.api_rate_limited_rate > 0:
            roll = sb.fault_rng.random()
            if roll < faults.api_error_rate:
                sb.api_stats.faults["unavailable"] += 1
                return JSONResponse(error_body("unavailable", "the POS is unavailable; try again"),
                                    faults.api_error_status)  # fmt: skip
            if roll < faults.api_error_rate + faults.api_rate_limited_rate:
                sb.api_stats.faults["rate_limited"] += 1
                wait = str(faults.rate_limit_retry_after_seconds)
                return JSONResponse(error_body("rate_limited", f"too many requests; retry after {wait} s",
                                               {"retry_after": faults.rate_limit_retry_after_seconds}),
                                    429, headers={"Retry-After": wait})  # fmt: skip
        if too_large:
            return JSONResponse(error_body("payload_too_large", "the body is over 1 MiB"), 413)
        headers = Headers(scope=scope)
        path = signed_path(scope)
        now = sb.clock.wall()
        failure = check_request(sb.config.account, sb.config.secret, headers, scope["method"], path, body, now=now)
        if failure is None:
            return None
        if failure == "unknown_account":
            given = headers.get("X-POS-Account")
            message = "X-POS-Account is missing" if given is None else f"X-POS-Account {given!r} is not an account here"
            details: dict[str, Any] = {"account": given}
        elif failure == "bad_signature":
            message = "X-POS-Signature is missing or does not match the signed text"
            details = {"signed_text": SIGNED_TEXT, "method": scope["method"], "path": path}
        else:
            message = f"X-POS-Timestamp is not Unix seconds within {REPLAY_WINDOW_SECONDS} s of the POS's clock"
            details = {"timestamp": headers.get("X-POS-Timestamp"), "server_time": int(now),
                       "window_seconds": REPLAY_WINDOW_SECONDS}  # fmt: skip
        return JSONResponse(error_body(failure, message, details), 401)
