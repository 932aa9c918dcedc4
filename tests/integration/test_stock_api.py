"""Stock from outside over the API: idempotent movements, clear refusals, one source of truth per SKU."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from shopbridge.bootstrap import Hub
from shopbridge.services.access import add_user, issue_token
from shopbridge.services.stock import record_movement
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
    move(client, kind="adjustment", quantity=2, idempotency_key="k3", location="POPUP")
    stock = client.get("/api/v1/stock/TEE-M").json()
    assert stock["on_hand"] == 10 - 3 + 2
    assert stock["locations"] == [
        {"location": "MAIN", "on_hand": 7, "reserved": 0, "free": 7},
        {"location": "POPUP", "on_hand": 2, "reserved": 0, "free": 2},
    ]


@pytest.mark.parametrize(
    ("fields", "status", "message"),
    [
        ({"sku": "NOPE"}, 404, "unknown SKU 'NOPE'"),
        ({"quantity": -5}, 422, "quantity must be a positive number of units for restock, got -5"),
        ({"kind": "adjustment", "quantity": 0}, 422, "an adjustment of 0 units changes nothing"),
        ({"kind": "teleport"}, 422, "kind must be 'restock', 'return', 'sale' or 'adjustment', got 'teleport'"),
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


# --- quantities within range, strict types, below zero, reused keys (issue #16) ---


def seed(hub: Hub, on_hand: int, sku: str = "TEE-M", location: str = "MAIN") -> None:
    """Put ``on_hand`` units on the ledger directly, as the hub's own writes do (no outside checks)."""
    with transaction(hub.sessions) as session:
        variant_id = session.scalars(select(Variant.id).where(Variant.sku == sku)).one()
        location_id = session.scalars(select(Location.id).where(Location.code == location)).one()
        record_movement(session, variant_id=variant_id, location_id=location_id, kind="restock",
                        idempotency_key=f"seed:{sku}:{location}", source="hub", now=hub.clock.now(),
                        on_hand_delta=on_hand)  # fmt: skip


@pytest.mark.parametrize(
    ("kind", "quantity"),
    [("restock", 10**12), ("restock", 1_000_001), ("restock", 2**63), ("sale", 2**64), ("adjustment", -(2**63)),
     ("adjustment", 1_000_001)],
)  # fmt: skip
def test_a_quantity_out_of_range_is_refused(client: TestClient, kind: str, quantity: int) -> None:
    status, body = move(client, kind=kind, quantity=quantity)
    assert status == 422, body
    assert body["detail"] == f"quantity {quantity} is out of range: at most 1,000,000 units in one movement"
    assert client.get("/api/v1/stock/TEE-M").json()["on_hand"] == 0


def test_large_restocks_cannot_overflow_on_hand(client: TestClient, hub: Hub) -> None:
    for key in ("big-1", "big-2"):
        assert move(client, quantity=2**62, idempotency_key=key)[0] == 422
    on_hand = client.get("/api/v1/stock/TEE-M").json()["on_hand"]
    assert on_hand == 0 and type(on_hand) is int
    seed(hub, 1_000_000_000 - 5)
    assert move(client, quantity=5, idempotency_key="to-the-ceiling")[0] == 200
    status, body = move(client, quantity=1, idempotency_key="past-the-ceiling")
    assert status == 422
    assert body["detail"] == (
        "TEE-M at MAIN has 1000000000 on hand; a restock of 1 would take it to 1000000001, "
        "above the ceiling of 1,000,000,000 units"
    )
    on_hand = client.get("/api/v1/stock/TEE-M").json()["on_hand"]
    assert on_hand == 1_000_000_000 and type(on_hand) is int


def test_an_adjustment_below_zero_is_refused_naming_the_stock(client: TestClient) -> None:
    move(client, quantity=3)
    status, body = move(client, kind="adjustment", quantity=-5, idempotency_key="audit-1")
    assert status == 422
    assert body["detail"] == "TEE-M at MAIN has 3 on hand; an adjustment of -5 would take it to -2, below zero"
    assert move(client, kind="adjustment", quantity=-3, idempotency_key="audit-2")[0] == 200, "down to zero is fine"
    assert client.get("/api/v1/stock/TEE-M").json()["on_hand"] == 0


def test_an_adjustment_towards_zero_is_taken_while_oversold(client: TestClient) -> None:
    move(client, kind="sale", quantity=4, idempotency_key="pos-1")  # sold what the hub did not have: -4
    assert move(client, kind="adjustment", quantity=1, idempotency_key="audit-1")[0] == 200
    assert client.get("/api/v1/stock/TEE-M").json()["on_hand"] == -3


def test_a_sale_from_outside_past_zero_is_recorded_and_raised_as_oversold(client: TestClient, hub: Hub) -> None:
    move(client, quantity=2)
    status, body = move(client, kind="sale", quantity=5, idempotency_key="pos-7")
    assert status == 200 and body["applied"] is True
    assert body["stock"]["on_hand"] == -3  # type: ignore[index]
    with hub.sessions() as session:
        issue = session.scalars(select(SyncIssue).where(SyncIssue.kind == "oversold")).one()
    assert (issue.subject_type, issue.subject_id, issue.severity) == ("sku", "TEE-M", "error")
    assert issue.message == (
        "TEE-M at MAIN: a sale reported from outside sold 3 unit(s) more than the hub had (-3 on hand)"
    )
    assert issue.details == {"location": "MAIN", "oversold_units": 3, "on_hand": -3}
    assert move(client, kind="sale", quantity=5, idempotency_key="pos-7")[0] == 200, "a replay raises nothing new"
    with hub.sessions() as session:
        assert session.scalars(select(SyncIssue.occurrences).where(SyncIssue.kind == "oversold")).one() == 1


def problem_fields(body: dict[str, object]) -> list[object]:
    """Where a validation error's problems are: FastAPI's list in ``detail``, or ``errors`` beside a text detail."""
    problems = body["errors"] if isinstance(body["detail"], str) else body["detail"]
    assert isinstance(problems, list)
    return [problem["loc"] for problem in problems]


@pytest.mark.parametrize("quantity", [True, "2", 2.0, "1e3", None])
def test_a_quantity_must_be_a_json_integer(client: TestClient, quantity: object) -> None:
    status, body = move(client, quantity=quantity)
    assert status == 422
    assert problem_fields(body) == [["body", "quantity"]]
    assert client.get("/api/v1/stock/TEE-M").json()["on_hand"] == 0


@pytest.mark.parametrize(
    "fields",
    [{"quantity": 11}, {"kind": "return"}, {"location": "POPUP"}, {"kind": "adjustment", "quantity": 10}],
    ids=["quantity", "kind", "location", "adjustment"],
)
def test_a_reused_key_with_other_content_is_a_conflict(client: TestClient, fields: dict[str, object]) -> None:
    assert move(client, idempotency_key="delivery-1042")[0] == 200
    status, body = move(client, idempotency_key="delivery-1042", **fields)
    assert status == 409
    assert isinstance(body["detail"], str) and body["detail"].startswith(
        "idempotency_key 'delivery-1042' was already used for restock of 10 TEE-M at MAIN; this is "
    )
    assert client.get("/api/v1/stock/TEE-M").json()["locations"] == [
        {"location": "MAIN", "on_hand": 10, "reserved": 0, "free": 10}
    ]


def test_a_reused_key_with_the_same_content_is_a_replay(client: TestClient) -> None:
    assert move(client, idempotency_key="delivery-1042", reference="van 1")[1]["applied"] is True
    status, body = move(client, idempotency_key="delivery-1042", reference="van 1, resent")  # a note, not content
    assert (status, body["applied"]) == (200, False)
    assert client.get("/api/v1/stock/TEE-M").json()["on_hand"] == 10
