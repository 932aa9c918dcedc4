"""Stock from outside over the API: idempotent movements, clear refusals, one source of truth per SKU."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from shopbridge.bootstrap import Hub
from shopbridge.services.access import add_user, issue_token
from shopbridge.store.db import transaction
from shopbridge.store.tables import Location, Product, SyncIssue, Variant
from shopbridge.web.app import create_app


@pytest.fixture
def client(hub: Hub) -> Iterator[TestClient]:
    with transaction(hub.sessions) as session:
        product = Product(title="Cotton tee")
        session.add_all([product, Location(code="MAIN", name="Main"), Location(code="POPUP", name="Pop-up")])
        session.flush()
        session.add_all([Variant(product_id=product.id, sku="TEE-M"),
                         Variant(product_id=product.id, sku="TEE-L", stock_source="external")])  # fmt: skip
        add_user(session, "ops@example.com", "ops", now=hub.clock.now())
        token = issue_token(session, "ops@example.com", "tests", now=hub.clock.now())
    with TestClient(create_app(hub), headers={"authorization": f"Bearer {token}"}) as test_client:
        yield test_client


def move(client: TestClient, **fields: object) -> tuple[int, dict[str, object]]:
    body = {"sku": "TEE-M", "location": "MAIN", "kind": "restock", "quantity": 10, "idempotency_key": "k1", **fields}
    response = client.post("/api/v1/stock/movements", json=body)
    return response.status_code, response.json()


def test_a_replayed_movement_moves_stock_once(client: TestClient) -> None:
    assert move(client)[1]["applied"] is True
    status, body = move(client)
    assert status == 200 and body["applied"] is False
    move(client, kind="sale", quantity=3, idempotency_key="k2")
    move(client, kind="adjustment", quantity=-2, idempotency_key="k3", location="POPUP")
    stock = client.get("/api/v1/stock/TEE-M").json()
    assert stock["on_hand"] == 10 - 3 - 2
    assert stock["locations"] == [
        {"location": "MAIN", "on_hand": 7, "reserved": 0, "free": 7},
        {"location": "POPUP", "on_hand": -2, "reserved": 0, "free": -2},
    ]


@pytest.mark.parametrize(
    ("fields", "status", "message"),
    [
        ({"sku": "NOPE"}, 404, "unknown SKU 'NOPE'"),
        ({"quantity": -5}, 422, "quantity must be a positive number of units for restock, got -5"),
        ({"kind": "adjustment", "quantity": 0}, 422, "an adjustment of 0 units changes nothing"),
        ({"kind": "teleport"}, 422, "kind must be one of restock, return, sale, adjustment, got 'teleport'"),
        ({"location": "MOON"}, 422, "unknown location 'MOON'"),
        ({"origin": "pos"}, 422, "origin must be 'hub' or 'external', got 'pos'"),
    ],
)
def test_bad_input_is_refused_naming_what_was_wrong(
    client: TestClient, fields: dict[str, object], status: int, message: str
) -> None:
    got_status, body = move(client, **fields)
    assert (got_status, body["detail"]) == (status, message)
    assert client.get("/api/v1/stock/TEE-M").json()["on_hand"] == 0, "nothing partial was applied"


def test_a_write_from_the_other_side_is_refused_and_kept_as_an_issue(client: TestClient, hub: Hub) -> None:
    status, body = move(client, sku="TEE-L")  # TEE-L's truth is an external master; the hub may not write it
    assert status == 409
    assert body["detail"] == "TEE-L's stock is kept by the external side; a write from the hub side is refused"
    assert move(client, sku="TEE-L", origin="external", idempotency_key="pos-1")[0] == 200
    with hub.sessions() as session:
        issue = session.scalar(select(SyncIssue).where(SyncIssue.kind == "stock_source_conflict"))
    assert issue is not None and issue.subject_id == "TEE-L"


def test_reading_needs_a_token(hub: Hub, client: TestClient) -> None:
    with TestClient(create_app(hub)) as anonymous:
        assert anonymous.get("/api/v1/stock/TEE-M").status_code == 401
