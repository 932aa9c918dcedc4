"""docs/pos-examples/: every file validates against the sandbox's own models of the protocol, and every event type
and answer has one."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from shopbridge.sandbox.pos.models import (
    EVENT_TYPES,
    CancelTask,
    CreateTask,
    ErrorBody,
    EventEnvelope,
    LocationList,
    ReturnsPage,
    StockPage,
    Task,
    TaskList,
)

from .conftest import EVENTS

EXAMPLES = Path(__file__).resolve().parents[3] / "docs" / "pos-examples"
ANSWERS: dict[str, type[BaseModel]] = {
    "task.json": Task,
    "task-list.json": TaskList,
    "error.json": ErrorBody,
    "locations.json": LocationList,
    "stock-page.json": StockPage,
    "returns-page.json": ReturnsPage,
    "request-create-task.json": CreateTask,
    "request-cancel-task.json": CancelTask,
}


def load(name: str) -> Any:
    return json.loads((EXAMPLES / name).read_text())


def test_every_example_is_known_and_every_event_type_has_one() -> None:
    names = {path.name for path in EXAMPLES.glob("*.json")}
    events = {f"event-{event_type}.json" for event_type in EVENT_TYPES}
    assert names == set(ANSWERS) | events


@pytest.mark.parametrize("event_type", EVENT_TYPES)
def test_event_examples_validate(event_type: str) -> None:
    body = load(f"event-{event_type}.json")
    event = EVENTS.validate_python(body)
    assert event.type == event_type
    assert EventEnvelope.model_validate(body).data == event.data
    assert "sequence" in body["data"] and "levels" in body["data"]


@pytest.mark.parametrize("name", sorted(ANSWERS))
def test_answer_examples_validate(name: str) -> None:
    model = ANSWERS[name]
    parsed = model.model_validate(load(name))
    assert parsed.model_dump(mode="json", exclude_unset=True) == load(name)


def test_the_models_refuse_what_the_protocol_does_not_allow() -> None:
    event = load("event-task.updated.json")
    event["data"]["status"] = "lost"
    with pytest.raises(ValueError):
        EVENTS.validate_python(event)
    stock = load("event-stock.levels.json")
    stock["occurred_at"] = "2026-12-05T14:01:12"  # no zone
    with pytest.raises(ValueError):
        EVENTS.validate_python(stock)
    returned = load("event-return.completed.json")
    returned["data"]["lines"][0]["restock_quantity"] = 3
    with pytest.raises(ValueError):
        EVENTS.validate_python(returned)
