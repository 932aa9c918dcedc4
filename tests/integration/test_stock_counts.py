"""Stock counts over the API: on-hand set absolutely, all rows or none, a replayed count applied once."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from shopbridge.bootstrap import Hub
from shopbridge.services import stock_counts
from shopbridge.services.access import add_user, issue_token
from shopbridge.store.db import transaction
from shopbridge.store.tables import (
    ChannelAccount,
    ChannelListing,
    Job,
    Location,
    Product,
    StockMovement,
    SyncIssue,
    Variant,
)
from shopbridge.web.app import create_app


@pytest.fixture
def client(hub: Hub) -> Iterator[TestClient]:
    with transaction(hub.sessions) as session:
        product = Product(title="Cotton tee")
        session.add_all([product, Location(code="MAIN", name="Main"), Location(code="POPUP", name="Pop-up")])
        session.flush()
        session.add_all([Variant(product_id=product.id, sku="TEE-S"), Variant(product_id=product.id, sku="TEE-M"),
                         Variant(product_id=product.id, sku="TEE-L", stock_source="external")])  # fmt: skip
        add_user(session, "ops@example.com", "ops", now=hub.clock.now())
        token = issue_token(session, "ops@example.com", "tests", now=hub.clock.now())
    with TestClient(create_app(hub), headers={"authorization": f"Bearer {token}"}) as test_client:
        yield test_client


def move(client: TestClient, key: str, kind: str, quantity: int, sku: str = "TEE-M") -> None:
    body = {"sku": sku, "location": "MAIN", "kind": kind, "quantity": quantity, "idempotency_key": key}
    assert client.post("/api/v1/stock/movements", json=body).status_code == 200


def count(client: TestClient, *rows: tuple[str, str, int], **fields: object) -> tuple[int, dict[str, object]]:
    counts = [{"sku": sku, "location": location, "on_hand": on_hand} for sku, location, on_hand in rows]
    response = client.put("/api/v1/stock/levels", json={"counts": counts, **fields})
    return response.status_code, response.json()


def on_hand(client: TestClient, sku: str) -> dict[str, int]:
    stock = client.get(f"/api/v1/stock/{sku}").json()
    return {row["location"]: row["on_hand"] for row in stock["locations"]}


def test_a_count_sets_on_hand_with_one_adjustment_per_difference(client: TestClient, hub: Hub) -> None:
    move(client, "delivery-1", "restock", 10)
    status, body = count(client, ("TEE-M", "MAIN", 7), ("TEE-M", "POPUP", 3), ("TEE-S", "MAIN", 0),
                         reference="cycle-1")  # fmt: skip
    assert status == 200, body
    assert body["counts"] == [
        {"sku": "TEE-M", "location": "MAIN", "idempotency_key": "count:TEE-M:MAIN:cycle-1", "previous_on_hand": 10,
         "on_hand": 7, "applied": True, "outcome": "applied"},
        {"sku": "TEE-M", "location": "POPUP", "idempotency_key": "count:TEE-M:POPUP:cycle-1", "previous_on_hand": 0,
         "on_hand": 3, "applied": True, "outcome": "applied"},
        {"sku": "TEE-S", "location": "MAIN", "idempotency_key": "count:TEE-S:MAIN:cycle-1", "previous_on_hand": 0,
         "on_hand": 0, "applied": False, "outcome": "unchanged"},
    ]  # fmt: skip
    assert on_hand(client, "TEE-M") == {"MAIN": 7, "POPUP": 3}
    with hub.sessions() as session:
        adjustments = session.execute(
            select(StockMovement.idempotency_key, StockMovement.on_hand_delta, StockMovement.reference)
            .where(StockMovement.kind == "adjustment")
            .order_by(StockMovement.id)
        ).all()
    assert [tuple(row) for row in adjustments] == [
        ("count:TEE-M:MAIN:cycle-1", -3, "cycle-1"),
        ("count:TEE-M:POPUP:cycle-1", 3, "cycle-1"),
    ]


@pytest.mark.parametrize("fields", [{"reference": "cycle-1"}, {}], ids=["reference", "digest"])
def test_a_replayed_count_changes_nothing(client: TestClient, fields: dict[str, object]) -> None:
    move(client, "delivery-1", "restock", 10)
    assert count(client, ("TEE-M", "MAIN", 8), **fields)[1]["counts"][0]["outcome"] == "applied"  # type: ignore[index]
    move(client, "sale-1", "sale", 2)  # sold after the count
    status, body = count(client, ("TEE-M", "MAIN", 8), **fields)
    assert status == 200
    assert body["counts"] == [  # the replay must not undo the sale
        {"sku": "TEE-M", "location": "MAIN", "idempotency_key": body["counts"][0]["idempotency_key"],  # type: ignore[index]
         "previous_on_hand": 6, "on_hand": 6, "applied": False, "outcome": "already_applied"},
    ]  # fmt: skip
    assert on_hand(client, "TEE-M") == {"MAIN": 6}
    status, body = count(client, ("TEE-M", "MAIN", 8), reference="cycle-2")  # a new count of the same figure
    assert body["counts"][0]["outcome"] == "applied"  # type: ignore[index]
    assert on_hand(client, "TEE-M") == {"MAIN": 8}


def test_an_explicit_key_is_used_as_given(client: TestClient) -> None:
    rows = [{"sku": "TEE-M", "location": "MAIN", "on_hand": 4, "idempotency_key": "pos-count-77"}]
    first = client.put("/api/v1/stock/levels", json={"counts": rows}).json()
    again = client.put("/api/v1/stock/levels", json={"counts": [{**rows[0], "on_hand": 9}]}).json()
    assert first["counts"][0]["idempotency_key"] == "pos-count-77"
    assert (first["counts"][0]["outcome"], again["counts"][0]["outcome"]) == ("applied", "already_applied")
    assert on_hand(client, "TEE-M") == {"MAIN": 4}


@pytest.mark.parametrize(
    ("bad", "status", "message"),
    [
        (("NOPE", "MAIN", 1), 404, "counts[1]: unknown SKU 'NOPE'"),
        (("TEE-S", "MOON", 1), 422, "counts[1]: unknown location 'MOON'"),
        (("TEE-S", "MAIN", -1), 422, "counts[1]: on_hand must be 0 or more units, got -1"),
        (("TEE-M", "MAIN", 2), 422, "counts[1]: TEE-M at MAIN is counted twice (also counts[0])"),
    ],
)
def test_one_bad_row_refuses_the_whole_count(
    client: TestClient, bad: tuple[str, str, int], status: int, message: str
) -> None:
    move(client, "delivery-1", "restock", 10)
    got_status, body = count(client, ("TEE-M", "MAIN", 5), bad, ("TEE-S", "POPUP", 4))
    assert (got_status, body["detail"]) == (status, message)
    assert on_hand(client, "TEE-M") == {"MAIN": 10}, "nothing partial was applied"
    assert on_hand(client, "TEE-S") == {}


def test_every_bad_row_is_named(client: TestClient) -> None:
    status, body = count(client, ("NOPE", "MAIN", 1), ("TEE-M", "MAIN", 1), ("TEE-S", "MAIN", -4), origin="hub")
    assert status == 404
    assert body["detail"] == "counts[0]: unknown SKU 'NOPE'; counts[2]: on_hand must be 0 or more units, got -4"
    assert count(client, ("TEE-M", "MAIN", 1), origin="pos")[1]["detail"] == (
        "origin must be 'hub' or 'external', got 'pos'"
    )


def test_a_count_from_the_other_side_is_refused_and_kept_as_an_issue(client: TestClient, hub: Hub) -> None:
    status, body = count(client, ("TEE-M", "MAIN", 5), ("TEE-L", "MAIN", 5))
    assert status == 409
    assert body["detail"] == (
        "counts[1]: TEE-L's stock is kept by the external side; a write from the hub side is refused"
    )
    assert on_hand(client, "TEE-M") == {}, "nothing partial was applied"
    with hub.sessions() as session:
        issue = session.scalar(select(SyncIssue).where(SyncIssue.kind == "stock_source_conflict"))
    assert issue is not None and issue.subject_id == "TEE-L"
    assert issue.message == "TEE-L's stock is kept by the external side; a write from the hub side is refused"
    assert count(client, ("TEE-L", "MAIN", 5), origin="external")[0] == 200


def test_counting_needs_an_operator(client: TestClient, hub: Hub) -> None:
    with transaction(hub.sessions) as session:
        add_user(session, "viewer@example.com", "viewer", now=hub.clock.now())
        token = issue_token(session, "viewer@example.com", "tests", now=hub.clock.now())
    body = {"counts": [{"sku": "TEE-M", "location": "MAIN", "on_hand": 1}]}
    response = client.put("/api/v1/stock/levels", json=body, headers={"authorization": f"Bearer {token}"})
    assert response.status_code == 403


def test_movements_in_bulk_apply_each_key_once_across_chunks(
    client: TestClient, hub: Hub, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(stock_counts, "CHUNK", 3)  # keys repeat within a chunk, across chunks and from the ledger
    move(client, "pos-1", "sale", 1)
    rows = [("pos-1", "sale", 1), ("d-1", "restock", 10), ("d-1", "restock", 10), ("s-1", "sale", 2),
            ("a-1", "adjustment", -3), ("d-1", "restock", 10), ("r-1", "return", 1), ("s-1", "sale", 2)]  # fmt: skip
    movements = [stock_counts.Movement("TEE-M", "MAIN", kind, quantity, key) for key, kind, quantity in rows]
    with transaction(hub.sessions) as session:
        outcomes = stock_counts.apply_movements(session, movements, origin="hub", now=hub.clock.now())
    assert outcomes == ["already_applied", "applied", "already_applied", "applied", "applied", "already_applied",
                        "applied", "already_applied"]  # fmt: skip
    assert on_hand(client, "TEE-M") == {"MAIN": -1 + 10 - 2 - 3 + 1}
    with hub.sessions() as session:
        ledger = session.execute(select(StockMovement.idempotency_key, StockMovement.on_hand_delta)).all()
    assert sorted(tuple(row) for row in ledger) == [("a-1", -3), ("d-1", 10), ("pos-1", -1), ("r-1", 1), ("s-1", -2)]


def test_a_count_that_moves_a_listed_sku_queues_its_push(client: TestClient, hub: Hub) -> None:
    with transaction(hub.sessions) as session:
        account = ChannelAccount(channel="tiktok", label="Shop", external_id="shop-1")
        session.add(account)
        session.flush()
        tee_m = session.scalars(select(Variant).where(Variant.sku == "TEE-M")).one()
        session.add(ChannelListing(channel_account_id=account.id, variant_id=tee_m.id, external_product_id="1729",
                                   external_sku_id="17291", seller_sku="TEE-M"))  # fmt: skip
    count(client, ("TEE-M", "MAIN", 12), ("TEE-S", "MAIN", 3), reference="cycle-1")
    count(client, ("TEE-M", "MAIN", 12), reference="cycle-2")  # unchanged: nothing to push
    with hub.sessions() as session:
        assert session.scalars(select(ChannelListing.stock_version)).one() == 1
        pushes = session.execute(select(Job.kind, Job.payload)).all()
    assert [tuple(push) for push in pushes] == [("tiktok.push_stock", {"product_id": "1729"})]


# --- counts within range, strict types, reused keys (issue #16) ---


@pytest.mark.parametrize("figure", [1_000_001, 10**12, 2**63])
def test_a_count_out_of_range_is_refused(client: TestClient, figure: int) -> None:
    status, body = count(client, ("TEE-M", "MAIN", 5), ("TEE-S", "MAIN", figure))
    assert (status, body["detail"]) == (422, f"counts[1]: on_hand {figure} is out of range: at most 1,000,000 units")
    assert on_hand(client, "TEE-M") == {}, "nothing partial was applied"


@pytest.mark.parametrize("figure", [True, "4", 4.0])
def test_a_counted_figure_must_be_a_json_integer(client: TestClient, figure: object) -> None:
    response = client.put(
        "/api/v1/stock/levels", json={"counts": [{"sku": "TEE-M", "location": "MAIN", "on_hand": figure}]}
    )
    assert response.status_code == 422
    body = response.json()
    problems = body["errors"] if isinstance(body["detail"], str) else body["detail"]  # see test_stock_api
    assert [problem["loc"] for problem in problems] == [["body", "counts", 0, "on_hand"]]
    assert on_hand(client, "TEE-M") == {}


@pytest.mark.parametrize(
    ("row", "used_for"),
    [({"sku": "TEE-S", "location": "MAIN", "on_hand": 4}, "count of TEE-S at MAIN"),
     ({"sku": "TEE-M", "location": "POPUP", "on_hand": 4}, "count of TEE-M at POPUP")],
)  # fmt: skip
def test_a_count_key_reused_for_another_sku_or_location_is_a_conflict(
    client: TestClient, row: dict[str, object], used_for: str
) -> None:
    first = {"sku": "TEE-M", "location": "MAIN", "on_hand": 4, "idempotency_key": "pos-count-77"}
    assert client.put("/api/v1/stock/levels", json={"counts": [first]}).status_code == 200
    other = {"sku": "TEE-S", "location": "POPUP", "on_hand": 2}
    response = client.put("/api/v1/stock/levels", json={"counts": [other, {**row, "idempotency_key": "pos-count-77"}]})
    assert response.status_code == 409
    assert response.json()["detail"] == (
        f"counts[1]: idempotency_key 'pos-count-77' was already used for adjustment of +4 TEE-M at MAIN; "
        f"this is {used_for} (another movement needs a key of its own)"
    )
    assert on_hand(client, "TEE-M") == {"MAIN": 4}
    assert on_hand(client, "TEE-S") == {}, "nothing of the refused count was applied"


def test_a_count_reusing_a_movement_key_is_a_conflict(client: TestClient) -> None:
    move(client, "delivery-1", "restock", 10)
    row = {"sku": "TEE-M", "location": "MAIN", "on_hand": 3, "idempotency_key": "delivery-1"}
    response = client.put("/api/v1/stock/levels", json={"counts": [row]})
    assert response.status_code == 409
    assert "idempotency_key 'delivery-1' was already used for restock of 10 TEE-M at MAIN" in response.json()["detail"]
    assert on_hand(client, "TEE-M") == {"MAIN": 10}


def test_movements_in_bulk_refuse_a_key_reused_for_other_content(client: TestClient, hub: Hub) -> None:
    move(client, "pos-1", "sale", 1)

    def apply(*rows: tuple[str, str, int]) -> list[str]:
        movements = [stock_counts.Movement("TEE-M", "MAIN", kind, quantity, key) for key, kind, quantity in rows]
        with pytest.raises(stock_counts.RowsRefused) as refused, transaction(hub.sessions) as session:
            stock_counts.apply_movements(session, movements, origin="hub", now=hub.clock.now())
        return [str(problem) for problem in refused.value.problems]

    assert apply(("d-1", "restock", 10), ("pos-1", "sale", 1), ("d-1", "restock", 99)) == [
        "row 2: idempotency_key 'd-1' is also on row 0, for restock of 10 TEE-M at MAIN; this is restock of 99 "
        "TEE-M at MAIN (another movement needs a key of its own)",
    ]
    assert apply(("d-1", "restock", 10), ("pos-1", "sale", 5), ("a-1", "adjustment", 2), ("pos-1", "sale", 5)) == [
        "row 1: idempotency_key 'pos-1' was already used for sale of 1 TEE-M at MAIN; this is sale of 5 TEE-M at "
        "MAIN (another movement needs a key of its own)",
        "row 3: idempotency_key 'pos-1' was already used for sale of 1 TEE-M at MAIN; this is sale of 5 TEE-M at "
        "MAIN (another movement needs a key of its own)",
    ]
    assert on_hand(client, "TEE-M") == {"MAIN": -1}, "nothing of either batch was applied"
