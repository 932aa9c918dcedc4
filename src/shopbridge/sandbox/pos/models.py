"""The protocol's JSON shapes as pydantic models (docs/pos-protocol.md §3, §4): what the hub sends (requests, which
ignore fields they do not know, §6), and what the POS answers and posts (answers and events, which forbid fields
the protocol does not name, so the examples and the sandbox's own output are checked against the document).

The API answers are built as plain dicts (``fulfilment.task_json`` …); these models describe them in the OpenAPI
document (docs/pos-openapi.json) and check them in the tests.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, WithJsonSchema, model_validator

from .times import parse_instant

TaskStatus = Literal["open", "picking", "picked", "packed", "shipped", "collected", "cancelled"]
StockReason = Literal["count", "receipt", "transfer", "damage", "adjustment", "sync"]
EventType = Literal["stock.levels", "sale.completed", "return.completed", "task.updated"]
EVENT_TYPES: tuple[EventType, ...] = ("stock.levels", "sale.completed", "return.completed", "task.updated")


def _rfc3339(value: str) -> str:
    parse_instant(value)  # raises on a malformed or zone-less instant
    return value


Instant = Annotated[
    str,
    AfterValidator(_rfc3339),
    WithJsonSchema({"type": "string", "format": "date-time", "description": "RFC 3339 with a zone"}),
]
Sku = Annotated[str, Field(min_length=1, max_length=255)]


class Incoming(BaseModel):
    """A body the hub sends: unknown fields are ignored (§6)."""

    model_config = ConfigDict(extra="ignore")


class Outgoing(BaseModel):
    """A body the POS sends: exactly the protocol's fields."""

    model_config = ConfigDict(extra="forbid")


# --- shared ---------------------------------------------------------------------------------------------------


class Level(Outgoing):
    sku: Sku
    on_hand: int = Field(description="units physically at the location")
    allocated: int = Field(description="units held for open fulfilment tasks and the POS's own holds")


class TaskLine(Incoming):
    sku: Sku
    quantity: int = Field(ge=1)


class ChannelOrderRef(Incoming):
    """An order by its channel and that channel's order id (with the hub's id when the hub names it)."""

    channel: str = Field(min_length=1, max_length=50, examples=["tiktok"])
    order_id: str = Field(min_length=1, max_length=100)
    hub_order_id: int | None = None


class TaskOrderRef(Incoming):
    """An order by the hub's task reference."""

    task_ref: str = Field(min_length=1, max_length=100)


OrderRef = ChannelOrderRef | TaskOrderRef


class ShipTo(Incoming):
    name: str = Field(min_length=1)
    address_line1: str = Field(min_length=1)
    address_line2: str | None = None
    city: str = Field(min_length=1)
    region: str | None = None
    postal_code: str | None = None
    country_code: str = Field(min_length=2, max_length=2, description="ISO 3166-1 alpha-2")
    phone: str | None = None


class Shipment(Outgoing):
    carrier: str | None = Field(description="null when collected at the store")
    tracking_number: str | None = Field(description="null when collected at the store")
    tracking_url: str | None
    shipped_at: Instant = Field(description="when it left (or was handed over at the store)")
    lines: list[TaskLine]


# --- the API's requests and answers (§4) ---------------------------------------------------------------------


class CreateTask(Incoming):
    """``POST /fulfilment-tasks``: fulfil an order at a location."""

    task_ref: str = Field(min_length=1, max_length=100, description="the hub's idempotency key")
    location_id: str = Field(min_length=1)
    order_ref: ChannelOrderRef
    dispatch_by: AwareDatetime | None = None
    ship_to: ShipTo | None = None
    lines: list[TaskLine] = Field(min_length=1)


class CancelTask(Incoming):
    reason: str = Field(min_length=1, max_length=200, examples=["buyer_cancelled"])


class Task(Outgoing):
    task_id: str
    task_ref: str
    location_id: str
    status: TaskStatus
    order_ref: ChannelOrderRef
    lines: list[TaskLine]
    shipment: Shipment | None = Field(description="present from shipped (or collected) on")
    created_at: Instant
    updated_at: Instant


class TaskList(Outgoing):
    tasks: list[Task]
    next_cursor: str | None = Field(description="null on the last page")


class ErrorDetail(Outgoing):
    code: str = Field(examples=["insufficient_stock"])
    message: str
    details: dict[str, Any]


class ErrorBody(Outgoing):
    error: ErrorDetail


class Location(Outgoing):
    location_id: str
    name: str
    timezone: str = Field(description="IANA time zone")
    active: bool


class LocationList(Outgoing):
    locations: list[Location]


class StockPage(Outgoing):
    location_id: str
    sequence: int = Field(description="the location's sequence at the time of reading")
    levels: list[Level]
    next_cursor: str | None


class ReturnLine(Incoming):
    sku: Sku
    quantity: int = Field(ge=1, description="units taken back")
    restock_quantity: int = Field(ge=0, description="of them, units back on the shelf (0 to quantity)")

    @model_validator(mode="after")
    def _restock_within_quantity(self) -> ReturnLine:
        if self.restock_quantity > self.quantity:
            raise ValueError("restock_quantity must be at most quantity")
        return self


class Return(Outgoing):
    """A return as ``GET /returns`` lists it: the ``return.completed`` data plus ``location_id`` and ``occurred_at``."""

    return_id: str
    sequence: int
    order_ref: OrderRef
    lines: list[ReturnLine]
    levels: list[Level]
    location_id: str
    occurred_at: Instant


class ReturnsPage(Outgoing):
    returns: list[Return]
    next_cursor: str | None


# --- events (§3) -------------------------------------------------------------------------------------------------


class StockLevelsData(Outgoing):
    sequence: int
    reason: StockReason
    levels: list[Level]


class SaleLine(Outgoing):
    sku: Sku
    quantity: int = Field(ge=1)
    unit_price: str = Field(pattern=r"^-?\d+(\.\d+)?$", examples=["19.99"])


class SaleCompletedData(Outgoing):
    sale_id: str
    sequence: int
    currency: str = Field(pattern=r"^[A-Z]{3}$")
    lines: list[SaleLine] = Field(min_length=1)
    levels: list[Level]


class ReturnCompletedData(Outgoing):
    return_id: str
    sequence: int
    order_ref: OrderRef
    lines: list[ReturnLine] = Field(min_length=1)
    levels: list[Level]


class TaskUpdatedData(Outgoing):
    task_id: str
    task_ref: str
    status: TaskStatus
    sequence: int
    shipment: Shipment | None = Field(default=None, description="present from shipped (or collected) on")
    levels: list[Level] | None = Field(default=None, description="present when the status moved stock")


EventData = StockLevelsData | SaleCompletedData | ReturnCompletedData | TaskUpdatedData


class EventEnvelope(Outgoing):
    """``POST /hooks/pos``: one event per request."""

    version: Literal[1]
    event_id: str = Field(min_length=1, max_length=100)
    type: EventType
    occurred_at: Instant
    location_id: str
    data: EventData


class _Event(Outgoing):
    version: Literal[1]
    event_id: str = Field(min_length=1, max_length=100)
    occurred_at: Instant
    location_id: str


class StockLevelsEvent(_Event):
    type: Literal["stock.levels"]
    data: StockLevelsData


class SaleCompletedEvent(_Event):
    type: Literal["sale.completed"]
    data: SaleCompletedData


class ReturnCompletedEvent(_Event):
    type: Literal["return.completed"]
    data: ReturnCompletedData


class TaskUpdatedEvent(_Event):
    type: Literal["task.updated"]
    data: TaskUpdatedData


PosEvent = Annotated[
    StockLevelsEvent | SaleCompletedEvent | ReturnCompletedEvent | TaskUpdatedEvent, Field(discriminator="type")
]


def dispatch_by_text(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat().replace("+00:00", "Z")
