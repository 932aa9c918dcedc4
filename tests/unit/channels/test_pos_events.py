"""What the hub accepts of a POS event (docs/pos-protocol.md §3): a signed event it cannot act on is refused at the
door naming the field, never half-applied later."""

from __future__ import annotations

import json
from typing import Any

import pytest

from shopbridge.channels.pos.events import Unreadable, read_event


def event(**changes: Any) -> bytes:
    body: dict[str, Any] = {
        "version": 1, "event_id": "evt-1", "type": "return.completed", "occurred_at": "2026-12-05T14:03:07.412Z",
        "location_id": "store-downtown",
        "data": {"return_id": "R-1", "sequence": 7, "order_ref": {"task_ref": "sb-12"},
                 "lines": [{"sku": "TEE-M", "quantity": 2, "restock_quantity": 1}],
                 "levels": [{"sku": "TEE-M", "on_hand": 14, "allocated": 2}]},
    }  # fmt: skip
    body.update(changes)
    return json.dumps(body).encode()


def test_a_well_formed_event_is_read_with_its_instant_in_utc() -> None:
    read = read_event(event(occurred_at="2026-12-05T15:03:07+01:00"))
    assert (read.event_id, read.type, read.location_id) == ("evt-1", "return.completed", "store-downtown")
    assert read.occurred_at.isoformat() == "2026-12-05T14:03:07+00:00"
    assert read_event(event(type="customer.created", data={})).acted_on is False  # kept as ignored, not refused


@pytest.mark.parametrize(
    ("changes", "named"),
    [
        ({"version": 2}, "version"),
        ({"event_id": ""}, "event_id"),
        ({"occurred_at": "2026-12-05T14:03:07"}, "occurred_at"),
        ({"data": []}, "data"),
        (
            {
                "data": {
                    "return_id": "R-1",
                    "sequence": 7,
                    "order_ref": {},
                    "lines": [{"sku": "A", "quantity": 1, "restock_quantity": 0}],
                }
            },
            "data.order_ref",
        ),
        (
            {
                "data": {
                    "return_id": "R-1",
                    "sequence": 7,
                    "order_ref": {"task_ref": "sb-1"},
                    "lines": [{"sku": "A", "quantity": 1, "restock_quantity": 2}],
                }
            },
            "restock_quantity",
        ),
        (
            {"type": "stock.levels", "data": {"sequence": 1, "levels": [{"sku": "A", "on_hand": -1, "allocated": 0}]}},
            "data.levels[0].on_hand",
        ),
        (
            {"type": "task.updated", "data": {"task_id": "T-1", "task_ref": "sb-1", "status": "shipped"}},
            "shipment",
        ),
        ({"type": "task.updated", "data": {"task_id": "T-1", "task_ref": "sb-1", "status": "lost"}}, "status"),
    ],
)
def test_an_unreadable_event_is_refused_naming_what_is_wrong(changes: dict[str, Any], named: str) -> None:
    with pytest.raises(Unreadable) as refused:
        read_event(event(**changes))
    assert named in str(refused.value)


def test_a_body_that_is_not_an_object_is_refused() -> None:
    for raw in (b"not json", b"[1, 2]"):
        with pytest.raises(Unreadable):
            read_event(raw)
    with pytest.raises(Unreadable) as version:
        read_event(event(version=2))
    assert version.value.code == "unsupported_version"
