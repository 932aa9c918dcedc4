"""Orders entered by hand (WhatsApp, phone, Facebook), by the API and the dashboard: one queue, the same
reservation as any channel's order, one order per idempotency key, clear refusals."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from shopbridge.bootstrap import Hub
from shopbridge.services.access import issue_token
from shopbridge.services.stock import stock_of
from shopbridge.store.db import reading, transaction
from shopbridge.store.tables import Location, Product, StockLevel, Variant
from shopbridge.web.app import create_app
from tests.integration.dashboard_world import add_people, audit_count, sign_in

ORDER = {
    "source": "whatsapp", "customer": {"name": "Siti Rahma", "phone": "+62 812 0000 1111"},
    "address": {"line1": "Jl. Melati 7", "city": "Bandung", "country": "ID"},
    "lines": [{"sku": "TEE-M", "quantity": 2}, {"sku": "MUG", "quantity": 1, "unit_price": "7.50"}],
    "payment": "cod", "shipping": "2.00",
}  # fmt: skip


@pytest.fixture
def client(hub: Hub) -> TestClient:
    add_people(hub)
    with transaction(hub.sessions) as session:
        main = Location(code="MAIN", name="Main")
        product = Product(title="Merch")
        session.add_all([main, product])
        session.flush()
        tee = Variant(product_id=product.id, sku="TEE-M", title="Cotton tee M", price_minor=1990, currency="USD")
        mug = Variant(product_id=product.id, sku="MUG", title="Mug")
        session.add_all([tee, mug])
        session.flush()
        session.add_all([StockLevel(variant_id=tee.id, location_id=main.id, on_hand=5),
                         StockLevel(variant_id=mug.id, location_id=main.id, on_hand=3)])  # fmt: skip
    return TestClient(create_app(hub))


def _token(hub: Hub, role: str) -> dict[str, str]:
    with transaction(hub.sessions) as session:
        return {"Authorization": f"Bearer {issue_token(session, f'{role}@example.com', 't', now=hub.clock.now())}"}


def _reserved(hub: Hub, sku: str) -> int:
    with reading(hub.sessions) as session:
        return int(stock_of(session, sku, now=hub.clock.now())["reserved"])


def test_an_order_entered_by_the_api_joins_the_queue_and_reserves_its_units(client: TestClient, hub: Hub) -> None:
    auth = {**_token(hub, "support"), "Idempotency-Key": "wa-chat-1"}
    answer = client.post("/api/v1/orders", json=ORDER, headers=auth)
    assert answer.status_code == 201, answer.text
    order: dict[str, Any] = answer.json()
    assert order["external_id"] == "WA-000001" and order["channel"] == "manual" and order["channel_label"] == "WhatsApp"
    assert order["status"] == "awaiting_shipment" and order["is_cod"] and order["payment_method"] == "cash on delivery"
    assert order["total"] == "49.30" and order["shipping"] == "2.00"  # 2 x 19.90 (the SKU's price) + 7.50 + 2.00
    assert order["recipient"]["city"] == "Bandung" and order["buyer"]["phone"] == "+62 812 0000 1111"
    assert order["blocked"] is None
    assert _reserved(hub, "TEE-M") == 2 and _reserved(hub, "MUG") == 1

    again = client.post("/api/v1/orders", json=ORDER, headers=auth)
    assert again.status_code == 200 and again.json()["id"] == order["id"], "the same key makes no second order"
    assert _reserved(hub, "TEE-M") == 2
    other = client.post("/api/v1/orders", json={**ORDER, "payment": "paid"}, headers=auth)
    assert other.status_code == 409 and "wa-chat-1" in other.json()["detail"]
    assert audit_count(hub, "order.enter") == 1
    listed = client.get("/api/v1/orders", params={"channel": "manual"}, headers=_token(hub, "viewer")).json()
    assert [o["external_id"] for o in listed["orders"]] == ["WA-000001"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"lines": [{"sku": "NOPE", "quantity": 1}]}, "line 1 (NOPE): the hub has no SKU 'NOPE'"),
        ({"lines": [{"sku": "TEE-M", "quantity": 6}]}, "line 1 (TEE-M): only 5 free to sell, 6 asked"),
        ({"lines": [{"sku": "MUG", "quantity": 1}]}, "line 1 (MUG): the SKU has no price in USD; enter the unit price"),
        ({"lines": [{"sku": "MUG", "quantity": 1, "unit_price": "1.005"}]}, "has more decimals than USD allows"),
        ({"lines": [{"sku": "MUG", "quantity": 1, "unit_price": "1"}] * 2}, "each SKU once"),
    ],
)
def test_an_entry_that_cannot_be_an_order_is_refused_and_changes_nothing(
    client: TestClient, hub: Hub, change: dict[str, Any], message: str
) -> None:
    answer = client.post("/api/v1/orders", json={**ORDER, **change},
                         headers={**_token(hub, "ops"), "Idempotency-Key": "k"})  # fmt: skip
    assert answer.status_code == 422 and message in answer.json()["detail"], answer.text
    assert _reserved(hub, "TEE-M") == 0 and _reserved(hub, "MUG") == 0
    assert client.post("/api/v1/orders", json=ORDER, headers=_token(hub, "ops")).status_code == 422, "no key"
    negative = {**ORDER, "lines": [{"sku": "MUG", "quantity": -1, "unit_price": "1"}]}
    assert client.post("/api/v1/orders", json=negative, headers={**_token(hub, "ops"), "Idempotency-Key": "n"}
                       ).status_code == 422  # fmt: skip


def test_staff_enter_an_order_in_the_dashboard(client: TestClient, hub: Hub) -> None:
    csrf = sign_in(client, "support")
    page = client.get("/orders/new")
    assert page.status_code == 200 and 'name="key"' in page.text
    key = page.text.split('name="key" value="', 1)[1].split('"', 1)[0]
    assert client.get("/orders/new/stock", params={"sku": "TEE-M"}).text.strip().endswith("5 free</span>")
    assert "unknown SKU" in client.get("/orders/new/stock", params={"sku": "X"}).text
    form = {"csrf_token": csrf, "key": key, "source": "phone", "name": "Budi", "phone": "0812", "city": "Jakarta",
            "sku": ["TEE-M", "", ""], "quantity": ["9", "", ""], "price": ["", "", ""], "payment": "paid"}  # fmt: skip
    refused = client.post("/orders/new", data=form)
    assert refused.status_code == 422 and "only 5 free to sell, 9 asked" in refused.text
    assert 'value="Budi"' in refused.text, "what was typed is kept"
    done = client.post("/orders/new", data={**form, "quantity": ["3", "", ""]}, follow_redirects=False)
    assert done.status_code == 303 and done.headers["location"].startswith("/orders/")
    shown = client.get(done.headers["location"]).text
    assert "PH-000001" in shown and "order entered" in shown and "Phone" in shown
    replay = client.post("/orders/new", data={**form, "quantity": ["3", "", ""]}, follow_redirects=False)
    assert "entered+already" in replay.headers["location"]
    assert _reserved(hub, "TEE-M") == 3
    assert "PH-000001" in client.get("/?channel=manual").text


def test_staff_find_an_entered_order_by_the_buyers_name_and_cancel_it(client: TestClient, hub: Hub) -> None:
    entered = client.post("/api/v1/orders", json=ORDER, headers={**_token(hub, "support"), "Idempotency-Key": "wa-9"})
    order_id = entered.json()["id"]
    assert _reserved(hub, "TEE-M") == 2
    csrf = sign_in(client, "ops")
    assert "WA-000001" in client.get("/", params={"q": "  siti   RAHMA "}).text, "case and spacing do not matter"
    assert "WA-000001" not in client.get("/", params={"q": "Siti Rahmawati"}).text
    page = client.get(f"/orders/{order_id}").text
    assert "Cancel this order" in page
    cancelled = client.post(f"/orders/{order_id}/cancel", data={"csrf_token": csrf, "reason": "buyer"},
                            follow_redirects=True)  # fmt: skip
    assert "cancelled; its units are free again" in cancelled.text
    assert _reserved(hub, "TEE-M") == 0 and _reserved(hub, "MUG") == 0
    shown = client.get(f"/api/v1/orders/{order_id}", headers=_token(hub, "viewer")).json()
    assert shown["status"] == "cancelled" and shown["history"][-1]["source"] == "hub:ops@example.com"
    again = client.post(f"/orders/{order_id}/cancel", data={"csrf_token": csrf, "reason": "buyer"},
                        follow_redirects=True)  # fmt: skip
    assert "not cancelled: order WA-000001 is cancelled already" in again.text
    assert "Cancel this order" not in again.text
    refused = client.post(f"/api/v1/orders/{order_id}/cancel", json={"reason": "buyer"}, headers=_token(hub, "support"))
    assert refused.status_code == 403
    assert audit_count(hub, "order.cancel") == 1
