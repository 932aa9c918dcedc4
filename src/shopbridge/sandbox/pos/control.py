"""The control API under ``/_sandbox/``: the stores' staff and the test harness's hands on the POS. Unsigned, like
the other sandboxes' control APIs, and described at ``/docs``: it stands for what happens at the stores (a count, a
till sale, the returns desk, an associate shipping a parcel), for faults and for time.

Every change that sends an event takes ``?silent=true``: the state changes (the sequence included) and no event is
sent, which is how tests and benchmarks inject drift for the hub's backstops to find.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field

from .config import PosFaults
from .fulfilment import advance_task, cancel_task, get_task, task_detail_json
from .models import ChannelOrderRef, ReturnLine, StockReason, TaskOrderRef, TaskStatus
from .runtime import PosSandbox
from .signing import EVENT_PATH, signed_headers, signed_text
from .stock import LevelChange, ReturnedLine, SaleLine, return_json, sale_json, sell, set_levels, take_return
from .times import iso
from .traffic import CARRIER_WEIGHTS, CARRIERS, TRACKING_URLS, tracking_number

router = APIRouter(prefix="/_sandbox", tags=["sandbox control"])

SILENT = Query(False, description="change the state without sending the event (drift injection)")


def _sb(request: Request) -> PosSandbox:
    sandbox: PosSandbox = request.app.state.sandbox
    return sandbox


# --- settings and time ---------------------------------------------------------------------------------------


class SettingsPatch(BaseModel):
    hub_event_url: str | None = Field(default=None, description="where events go from now on")
    event_retry_base_seconds: float | None = Field(default=None, ge=0)
    event_retry_max_seconds: float | None = Field(default=None, ge=0)
    event_max_retries: int | None = Field(default=None, ge=0)


def _settings(sb: PosSandbox) -> dict[str, Any]:
    outbox = sb.outbox
    return {
        "account": sb.config.account,
        "secret": sb.config.secret,
        "hub_event_url": outbox.url,
        "event_retry_base_seconds": outbox.retry_base_seconds,
        "event_retry_max_seconds": outbox.retry_max_seconds,
        "event_max_retries": outbox.max_retries,
        "event_concurrency": sb.config.event_concurrency,
        "currency": sb.config.currency,
        "traffic": sb.traffic.settings(),
    }


@router.get("/settings", summary="The account, secret, hub event URL, delivery and simulation settings")
async def get_settings(request: Request) -> dict[str, Any]:
    return _settings(_sb(request))


@router.patch("/settings", summary="Change where events go and how they are retried")
async def patch_settings(body: SettingsPatch, request: Request) -> dict[str, Any]:
    sb = _sb(request)
    outbox = sb.outbox
    if body.hub_event_url is not None:
        outbox.url = body.hub_event_url
    if body.event_retry_base_seconds is not None:
        outbox.retry_base_seconds = body.event_retry_base_seconds
    if body.event_retry_max_seconds is not None:
        outbox.retry_max_seconds = body.event_retry_max_seconds
    if body.event_max_retries is not None:
        outbox.max_retries = body.event_max_retries
    return _settings(sb)


class AdvanceIn(BaseModel):
    seconds: float = Field(ge=0)


@router.get("/clock", summary="Read the sandbox clock")
async def get_clock(request: Request) -> dict[str, Any]:
    sb = _sb(request)
    return {"now": sb.now(), "iso": iso(sb.now()), "speed": sb.clock.speed, "wall": sb.clock.wall()}


@router.post("/clock/advance", summary="Move sandbox time forward (associates, retries and offline stores catch up)")
async def advance_clock(body: AdvanceIn, request: Request) -> dict[str, Any]:
    sb = _sb(request)
    sb.clock.advance(body.seconds)
    sb.tick()
    return {"now": sb.now(), "iso": iso(sb.now())}


class SignIn(BaseModel):
    method: str = "GET"
    path: str = Field(description="with its query, e.g. /v1/fulfilment-tasks?task_ref=sb-12")
    body: str = ""
    timestamp: int | None = Field(default=None, description="Unix seconds; now by default")


@router.post("/sign", summary="The three headers for a request to this POS (or an event, path /hooks/pos)")
async def sign_request(body: SignIn, request: Request) -> dict[str, Any]:
    sb = _sb(request)
    timestamp = body.timestamp if body.timestamp is not None else int(sb.clock.wall())
    raw = body.body.encode()
    return {
        "headers": signed_headers(sb.config.account, sb.config.secret, timestamp, body.method, body.path, raw),
        "signed_text": signed_text(str(timestamp), body.method, body.path, raw).decode(),
        "event_path": EVENT_PATH,
    }


# --- stores and stock ------------------------------------------------------------------------------------------


def _store_json(sb: PosSandbox, location_id: str) -> dict[str, Any]:
    store = sb.store(location_id)
    offline = sb.is_offline(location_id)
    return {
        "location_id": store.location_id,
        "name": store.config.name,
        "timezone": store.config.timezone,
        "active": store.config.active,
        "sequence": store.sequence,
        "skus": len(store.levels),
        "offline": offline,
        "offline_until": iso(store.offline_until) if offline and store.offline_until is not None else None,
        "held_events": len(sb.outbox.history(status="held", location_id=location_id)),
    }


@router.get("/locations", summary="The stores: sequence, offline state, events held")
async def locations(request: Request) -> list[dict[str, Any]]:
    sb = _sb(request)
    return [_store_json(sb, location_id) for location_id in sb.world.stores]


class OfflineIn(BaseModel):
    seconds: float = Field(gt=0, description="how long the store stays offline")


@router.post("/locations/{location_id}/offline", summary="Take a store offline: its API answers 503, events wait")
async def take_offline(location_id: str, body: OfflineIn, request: Request) -> dict[str, Any]:
    sb = _sb(request)
    sb.set_offline(location_id, body.seconds)
    return _store_json(sb, location_id)


@router.delete("/locations/{location_id}/offline", summary="Bring a store back now: its held events go out")
async def bring_online(location_id: str, request: Request) -> dict[str, Any]:
    sb = _sb(request)
    sb.set_online(location_id)
    return _store_json(sb, location_id)


@router.get("/stock", summary="Levels per store (of one store, one SKU)")
async def stock(request: Request, location_id: str | None = None, sku: str | None = None) -> list[dict[str, Any]]:
    sb = _sb(request)
    stores = [sb.store(location_id)] if location_id is not None else list(sb.world.stores.values())
    out = []
    for store in stores:
        skus = sorted(store.levels) if sku is None else ([sku] if sku in store.levels else [])
        out.append({"location_id": store.location_id, "sequence": store.sequence, "levels": store.levels_json(skus)})
    return out


@router.get("/catalogue", summary="The SKUs the POS carries, with their unit prices")
async def catalogue(request: Request) -> dict[str, str]:
    return dict(sorted(_sb(request).world.catalogue.items()))


class LevelIn(BaseModel):
    sku: str = Field(min_length=1)
    on_hand: int = Field(ge=0)
    allocated: int | None = Field(default=None, ge=0, description="kept as it is when left out")
    unit_price: str | None = Field(default=None, description="the till's price of a SKU new to the POS (10.00)")


class StockIn(BaseModel):
    location_id: str
    reason: StockReason = "count"
    levels: list[LevelIn] = Field(min_length=1)


@router.put("/stock", summary="Set levels at a store (stock.levels)")
async def put_stock(body: StockIn, request: Request, silent: bool = SILENT) -> dict[str, Any]:
    changes = [LevelChange(x.sku, x.on_hand, x.allocated, x.unit_price) for x in body.levels]
    return set_levels(_sb(request), body.location_id, body.reason, changes, silent=silent)


class SaleLineIn(BaseModel):
    sku: str = Field(min_length=1)
    quantity: int = Field(ge=1)
    unit_price: str | None = Field(default=None, description="the catalogue's price by default")


class SaleIn(BaseModel):
    location_id: str
    lines: list[SaleLineIn] = Field(min_length=1)
    allow_oversell: bool = Field(default=False, description="sell units held for tasks too")


@router.post("/sales", status_code=201, summary="A till sale at a store (sale.completed)")
async def post_sale(body: SaleIn, request: Request, silent: bool = SILENT) -> dict[str, Any]:
    lines = [SaleLine(x.sku, x.quantity, x.unit_price) for x in body.lines]
    sale = sell(_sb(request), body.location_id, lines, allow_oversell=body.allow_oversell, silent=silent)
    return sale_json(sale)


@router.get("/sales", summary="Till sales, oldest first")
async def sales(request: Request, location_id: str | None = None) -> list[dict[str, Any]]:
    sb = _sb(request)
    return [sale_json(s) for s in sb.world.sales.values() if location_id is None or s.location_id == location_id]


class ReturnIn(BaseModel):
    location_id: str
    order_ref: ChannelOrderRef | TaskOrderRef
    lines: list[ReturnLine] = Field(min_length=1)


@router.post("/returns", status_code=201, summary="The returns desk takes units back (return.completed)")
async def post_return(body: ReturnIn, request: Request, silent: bool = SILENT) -> dict[str, Any]:
    lines = [ReturnedLine(x.sku, x.quantity, x.restock_quantity) for x in body.lines]
    order_ref = body.order_ref.model_dump(exclude_none=True)
    record = take_return(_sb(request), body.location_id, order_ref, lines, silent=silent)
    return {**return_json(record), "silent": record.silent}


@router.get("/returns", summary="Returns, oldest first")
async def returns(request: Request) -> list[dict[str, Any]]:
    return [{**return_json(r), "silent": r.silent} for r in _sb(request).world.returns.values()]


# --- tasks -----------------------------------------------------------------------------------------------------


@router.get("/tasks", summary="Every task, with ship_to, dispatch_by and its history")
async def tasks(request: Request, status: str | None = None, location_id: str | None = None) -> list[dict[str, Any]]:
    sb = _sb(request)
    return [
        task_detail_json(t)
        for t in sb.world.tasks.values()
        if (status is None or t.status == status) and (location_id is None or t.location_id == location_id)
    ]


@router.get("/tasks/{task_id}", summary="One task, with ship_to, dispatch_by and its history")
async def task(task_id: str, request: Request) -> dict[str, Any]:
    return task_detail_json(get_task(_sb(request), task_id))


class ShipIn(BaseModel):
    carrier: str | None = Field(default=None, description="UPS, USPS or FedEx at random by default")
    tracking_number: str | None = Field(default=None, description="one of the carrier's shape by default")
    tracking_url: str | None = Field(default=None, description="the carrier's page for UPS, USPS, FedEx by default")


class AdvanceTaskIn(ShipIn):
    status: TaskStatus = Field(description="picking, picked, packed, shipped or collected")


def _ship(sb: PosSandbox, task_id: str, status: TaskStatus, body: ShipIn, silent: bool) -> dict[str, Any]:
    task = get_task(sb, task_id)
    carrier, number, url = body.carrier, body.tracking_number, body.tracking_url
    if status == "shipped":
        carrier = carrier or sb.rng.choices(CARRIERS, weights=CARRIER_WEIGHTS)[0]
        number = number or tracking_number(carrier, sb.rng)
        if url is None and carrier in TRACKING_URLS:
            url = TRACKING_URLS[carrier].format(n=number)
    advance_task(sb, task, status, carrier=carrier, tracking_number=number, tracking_url=url, by="control",
                 silent=silent)  # fmt: skip
    return task_detail_json(task)


@router.post("/tasks/{task_id}/advance", summary="Move a task forward to a status (task.updated)")
async def advance(task_id: str, body: AdvanceTaskIn, request: Request, silent: bool = SILENT) -> dict[str, Any]:
    return _ship(_sb(request), task_id, body.status, body, silent)


@router.post("/tasks/{task_id}/ship", summary="Ship a task now with a carrier and tracking number (task.updated)")
async def ship(task_id: str, request: Request, body: ShipIn | None = None, silent: bool = SILENT) -> dict[str, Any]:
    return _ship(_sb(request), task_id, "shipped", body or ShipIn(), silent)


@router.post("/tasks/{task_id}/collect", summary="The buyer collects the task at the store (task.updated)")
async def collect(task_id: str, request: Request, silent: bool = SILENT) -> dict[str, Any]:
    return _ship(_sb(request), task_id, "collected", ShipIn(), silent)


class StoreCancelIn(BaseModel):
    reason: str = Field(default="store_cancelled", min_length=1)


@router.post("/tasks/{task_id}/cancel", summary="The store cancels a task (task.updated; 409 when shipped)")
async def cancel(
    task_id: str, request: Request, body: StoreCancelIn | None = None, silent: bool = SILENT
) -> dict[str, Any]:
    sb = _sb(request)
    task = cancel_task(sb, get_task(sb, task_id), (body or StoreCancelIn()).reason, by="control", silent=silent)
    return task_detail_json(task)


# --- events, faults, traffic, stats ----------------------------------------------------------------------------


@router.get("/events", summary="The events made and their deliveries, oldest first (status: pending, held, "
            "delivered, rejected, failed, lost)")  # fmt: skip
async def events(
    request: Request,
    type: str | None = None,
    status: str | None = None,
    location_id: str | None = None,
    limit: int = Query(1000, ge=1),
) -> list[dict[str, Any]]:
    chosen = _sb(request).outbox.history(event_type=type, status=status, location_id=location_id)
    return [d.as_json() for d in chosen[-limit:]]


@router.post("/events/dispatch", summary="One dispatcher pass now: due work, then due deliveries, awaited")
async def dispatch(request: Request) -> dict[str, int]:
    return {"attempted": await _sb(request).run_once()}


class FaultsIn(BaseModel):
    api_latency_min_ms: float | None = Field(default=None, ge=0)
    api_latency_max_ms: float | None = Field(default=None, ge=0)
    api_error_rate: float | None = Field(default=None, ge=0, le=1)
    api_error_status: int | None = Field(default=None, ge=500, le=599)
    api_rate_limited_rate: float | None = Field(default=None, ge=0, le=1)
    rate_limit_retry_after_seconds: int | None = Field(default=None, ge=0)
    event_loss_rate: float | None = Field(default=None, ge=0, le=1)
    event_duplicate_rate: float | None = Field(default=None, ge=0, le=1)
    event_reorder_max_delay_seconds: float | None = Field(default=None, ge=0)


def _faults(sb: PosSandbox) -> dict[str, Any]:
    faults = {name: getattr(sb.faults, name) for name in FaultsIn.model_fields}
    offline = {}
    for location_id, store in sb.world.stores.items():
        if sb.is_offline(location_id) and store.offline_until is not None:
            offline[location_id] = iso(store.offline_until)
    return {**faults, "offline_until": offline}


@router.get("/faults", summary="The faults in force, and the stores offline")
async def get_faults(request: Request) -> dict[str, Any]:
    return _faults(_sb(request))


@router.put("/faults", summary="Change faults (fields left out stay as they are)")
async def put_faults(body: FaultsIn, request: Request) -> dict[str, Any]:
    sb = _sb(request)
    for name, value in body.model_dump(exclude_none=True).items():
        setattr(sb.faults, name, value)
    return _faults(sb)


@router.delete("/faults", summary="Remove every fault and bring every store back online")
async def clear_faults(request: Request) -> dict[str, Any]:
    sb = _sb(request)
    defaults = PosFaults()
    for name in FaultsIn.model_fields:
        setattr(sb.faults, name, getattr(defaults, name))
    for location_id, store in sb.world.stores.items():
        if store.offline_until is not None:
            sb.set_online(location_id)
    return _faults(sb)


class TrafficIn(BaseModel):
    sales_per_second: float | None = Field(default=None, ge=0)
    returns_per_second: float | None = Field(default=None, ge=0)
    receipts_per_second: float | None = Field(default=None, ge=0)
    associates: bool | None = None
    fulfil_delay_min_seconds: float | None = Field(default=None, ge=0)
    fulfil_delay_max_seconds: float | None = Field(default=None, ge=0)
    collect_share: float | None = Field(default=None, ge=0, le=1)


@router.get("/traffic", summary="The simulation's settings")
async def get_traffic(request: Request) -> dict[str, Any]:
    return _sb(request).traffic.settings()


@router.post("/traffic", summary="Start the simulation (tills, associates, returns desk, receipts), with rates")
async def start_traffic(request: Request, body: TrafficIn | None = None) -> dict[str, Any]:
    traffic = _sb(request).traffic
    traffic.configure(enabled=True, **(body or TrafficIn()).model_dump(exclude_none=True))
    return traffic.settings()


@router.delete("/traffic", summary="Stop the simulation (the associates' plans are dropped)")
async def stop_traffic(request: Request) -> dict[str, Any]:
    traffic = _sb(request).traffic
    traffic.configure(enabled=False)
    return traffic.settings()


@router.get("/stats", summary="API requests by operation and status, faults injected, events by type and outcome")
async def stats(request: Request) -> dict[str, Any]:
    sb = _sb(request)
    return {
        "api": sb.api_stats.as_json(),
        "events": sb.outbox.counts(),
        "tasks_by_status": dict(Counter(t.status for t in sb.world.tasks.values())),
        "sales": len(sb.world.sales),
        "returns": len(sb.world.returns),
    }
