"""Hardening of the web app (issue #16): body limits read as the body arrives, bounded ids and dates, one error body
the OpenAPI document declares, security headers on every response, offline docs and the separate ops listener."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from shopbridge.bootstrap import Hub
from shopbridge.channels.tiktok import connect
from shopbridge.config import Settings
from shopbridge.demo.world import free_port, wait_until
from shopbridge.web.app import create_app, create_ops_app
from tests.integration.conftest import owner_token

KiB, MiB = 1024, 1024 * 1024
BIGGEST_ID = 2**63 - 1


@pytest.fixture
def client(hub: Hub) -> Iterator[TestClient]:
    token = owner_token(hub)
    with TestClient(create_app(hub), headers={"authorization": f"Bearer {token}"}) as test_client:
        yield test_client


def drive(app: Any, path: str, chunks: list[bytes], headers: list[tuple[bytes, bytes]]) -> tuple[int, bytes, int]:
    """One POST straight through the ASGI interface, its body arriving in ``chunks``: (status, body, chunks read)."""
    pulled = 0
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        nonlocal pulled
        if pulled == len(chunks):
            return {"type": "http.disconnect"}
        pulled += 1
        return {"type": "http.request", "body": chunks[pulled - 1], "more_body": pulled < len(chunks)}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
             "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "", "headers": headers,
             "client": ("127.0.0.1", 1234), "server": ("testserver", 80), "state": {}}  # fmt: skip
    asyncio.run(app(scope, receive, send))
    start = next(message for message in sent if message["type"] == "http.response.start")
    body = b"".join(message.get("body", b"") for message in sent if message["type"] == "http.response.body")
    return start["status"], body, pulled


# --- 2. body limits ----------------------------------------------------------------------------------------------


def test_a_webhook_body_past_the_limit_is_refused_by_its_content_length_before_the_signature_check(
    tiktok_hub: Hub,
) -> None:
    with TestClient(create_app(tiktok_hub)) as client:
        response = client.post("/hooks/tiktok", content=b"x" * (256 * KiB + 1), headers={"authorization": "0" * 64})
        assert response.status_code == 413
        assert response.json() == {"detail": "the request body is larger than the 256 KiB this route accepts"}
        assert response.headers["connection"] == "close"
        # a body within the limit still reaches the signature check
        fits = client.post("/hooks/tiktok", content=b"x" * (256 * KiB), headers={"authorization": "0"})
        assert fits.status_code == 401


def test_a_streamed_webhook_body_is_refused_as_soon_as_it_passes_the_limit(tiktok_hub: Hub) -> None:
    chunks = [b"x" * (64 * KiB)] * 64  # 4 MiB, no Content-Length (chunked)
    status, body, pulled = drive(create_app(tiktok_hub), "/hooks/tiktok", chunks, [(b"authorization", b"0" * 64)])
    assert status == 413, body
    assert pulled == 5, "reading stops at the first chunk past 256 KiB"


def test_a_declared_content_length_past_the_limit_is_refused_without_reading(tiktok_hub: Hub) -> None:
    headers = [(b"content-length", str(100 * MiB).encode()), (b"authorization", b"0" * 64)]
    status, _, pulled = drive(create_app(tiktok_hub), "/hooks/tiktok", [b"x" * (64 * KiB)] * 1600, headers)
    assert (status, pulled) == (413, 0)


def test_api_bodies_have_per_route_limits(client: TestClient) -> None:
    movement = {"sku": "TEE-M", "location": "MAIN", "kind": "restock", "quantity": 1, "idempotency_key": "k1"}
    padded = json.dumps({**movement, "reference": "r" * MiB}).encode()
    response = client.post("/api/v1/stock/movements", content=padded, headers={"content-type": "application/json"})
    assert response.status_code == 413
    assert response.json()["detail"] == "the request body is larger than the 1 MiB this route accepts"

    rows = [{"sku": "TEE-M", "location": "MAIN", "on_hand": 5, "idempotency_key": f"{index:0>190}"}
            for index in range(10_000)]  # fmt: skip  # the largest count a client may send: about 2.5 MB
    levels = json.dumps({"counts": rows}).encode()
    assert 2 * MiB < len(levels) < 4 * MiB
    response = client.put("/api/v1/stock/levels", content=levels, headers={"content-type": "application/json"})
    assert response.status_code != 413, response.text
    too_big = json.dumps({"counts": rows, "reference": "r" * 200, "padding": "p" * (2 * MiB)}).encode()
    response = client.put("/api/v1/stock/levels", content=too_big, headers={"content-type": "application/json"})
    assert response.status_code == 413
    assert response.json()["detail"] == "the request body is larger than the 4 MiB this route accepts"


@pytest.mark.parametrize("depth", [33, 100_000])
def test_a_deeply_nested_json_body_is_refused(client: TestClient, depth: int) -> None:
    # FastAPI alone answers 400 "There was an error parsing the body" past Python's recursion limit, and parses
    # anything shallower (hundreds of levels) before validation.
    body = '{"sku": ' + "[" * depth + "]" * depth + "}"
    response = client.post("/api/v1/stock/movements", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 422
    assert response.json() == {"detail": "the JSON body is nested more than 32 levels deep"}


def test_json_nested_32_deep_is_parsed(client: TestClient) -> None:
    body = '{"sku": "TEE-M", "reference": ' + "[" * 31 + "]" * 31 + "}"
    response = client.post("/api/v1/stock/movements", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 422
    assert "nested" not in response.json()["detail"] and response.json()["errors"]


# --- 5. ids and dates --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("order_id", ["9223372036854775808", "0", "-1", "99999999999999999999999"])
def test_an_order_id_out_of_range_is_422(client: TestClient, order_id: str) -> None:
    for response in (client.get(f"/api/v1/orders/{order_id}"), client.post(f"/api/v1/orders/{order_id}/retry")):
        assert response.status_code == 422, response.text
        assert response.json()["detail"].startswith("order_id must be ")


@pytest.mark.parametrize("account_id", ["9223372036854775808", "848187474982203910103263870976", "0"])
def test_an_account_id_out_of_range_is_422_not_a_database_overflow(client: TestClient, account_id: str) -> None:
    assert client.delete(f"/api/v1/links/{account_id}/SKU-1").status_code == 422
    assert client.get("/api/v1/links", params={"account_id": account_id}).status_code == 422
    body = {"account_id": int(account_id), "external_sku_id": "SKU-1", "sku": "TEE-M"}
    assert client.post("/api/v1/links", json=body).status_code == 422


def test_the_largest_order_id_is_a_plain_404(client: TestClient) -> None:
    assert client.get(f"/api/v1/orders/{BIGGEST_ID}").status_code == 404
    assert client.post(f"/api/v1/orders/{BIGGEST_ID}/retry").status_code == 404


@pytest.mark.parametrize(
    "since",
    ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00", "0.5", "1700000000", "2026-11-23T10:00:00",
     "2026-11-23", "yesterday"],
)  # fmt: skip
def test_updated_since_must_be_an_iso_date_time_with_a_timezone(client: TestClient, since: str) -> None:
    response = client.get("/api/v1/orders", params={"updated_since": since})
    assert response.status_code == 422, response.text
    assert response.json()["detail"].startswith("updated_since ")


@pytest.mark.parametrize("since", ["2026-11-23T10:00:00Z", "2026-11-23T10:00:00+07:00", "2026-11-23T10:00:00.5-03:30"])
def test_updated_since_accepts_iso_date_times(client: TestClient, since: str) -> None:
    assert client.get("/api/v1/orders", params={"updated_since": since}).status_code == 200


# --- 7. one error body, declared ---------------------------------------------------------------------------------


def test_validation_errors_answer_a_readable_detail_and_the_problems(client: TestClient) -> None:
    response = client.get("/api/v1/orders/abc")
    assert response.status_code == 422
    body = response.json()
    assert body["detail"] == "order_id must be a valid integer, unable to parse string as an integer, got 'abc'"
    assert body["errors"] == [{"loc": ["path", "order_id"], "msg": "Input should be a valid integer, unable to parse "
                               "string as an integer", "type": "int_parsing"}]  # fmt: skip
    response = client.post("/api/v1/stock/movements", json={"sku": "TEE-M", "kind": "teleport"})
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert detail.startswith("location is required; kind must be 'restock', 'return', 'sale' or 'adjustment', got")


def test_every_error_answers_a_string_detail(client: TestClient, hub: Hub) -> None:
    with TestClient(create_app(hub)) as anonymous:
        answers = [
            anonymous.get("/api/v1/orders"),
            anonymous.get("/nowhere"),
            client.get("/api/v1/orders/12"),
            client.get("/api/v1/orders", params={"cursor": "nope"}),
            client.get("/api/v1/orders/x"),
            client.post("/api/v1/stock/movements", content=b"{", headers={"content-type": "application/json"}),
        ]
    assert [response.status_code for response in answers] == [401, 404, 404, 400, 422, 422]
    for response in answers:
        assert isinstance(response.json()["detail"], str), response.json()


def _operations(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in document["paths"].items():
        for method, operation in item.items():
            yield method.upper(), path, operation


def test_the_openapi_document_declares_the_errors_and_the_bearer_scheme(client: TestClient) -> None:
    document = client.get("/api/openapi.json").json()
    schemas = document["components"]["schemas"]
    assert "HTTPValidationError" not in schemas
    assert schemas["ErrorBody"]["properties"]["detail"]["type"] == "string"
    bearer = document["components"]["securitySchemes"]["HTTPBearer"]
    assert (bearer["type"], bearer["scheme"]) == ("http", "bearer")
    declared = {(method, path): set(operation["responses"]) for method, path, operation in _operations(document)}
    assert declared[("GET", "/api/v1/orders")] >= {"200", "400", "401", "403", "422"}
    assert declared[("GET", "/api/v1/orders/{order_id}")] >= {"200", "401", "403", "404", "422"}
    assert declared[("POST", "/api/v1/orders/{order_id}/retry")] >= {"202", "401", "403", "404", "422"}
    assert declared[("POST", "/api/v1/stock/movements")] >= {"200", "401", "403", "404", "409", "413", "422"}
    assert declared[("PUT", "/api/v1/stock/levels")] >= {"200", "401", "403", "404", "409", "413", "422"}
    assert declared[("GET", "/api/v1/stock/{sku}")] >= {"200", "401", "403", "404", "422"}
    assert declared[("POST", "/hooks/tiktok")] >= {"200", "400", "401", "413", "503"}
    for method, path, operation in _operations(document):
        if path.startswith("/api/v1/"):
            assert operation["security"] == [{"HTTPBearer": []}], (method, path)
        for status, response in operation["responses"].items():
            if status.startswith("4") and path.startswith("/api/"):
                assert response["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/ErrorBody"}
    movement = schemas["MovementIn"]["properties"]
    assert movement["kind"]["enum"] == ["restock", "return", "sale", "adjustment"]
    assert movement["origin"]["enum"] == ["hub", "external"]
    assert schemas["LevelsIn"]["properties"]["origin"]["enum"] == ["hub", "external"]
    since = next(p for p in document["paths"]["/api/v1/orders"]["get"]["parameters"] if p["name"] == "updated_since")
    assert {"type": "string", "format": "date-time"} in since["schema"]["anyOf"]
    order_id = document["paths"]["/api/v1/orders/{order_id}"]["get"]["parameters"][0]["schema"]
    assert (order_id["minimum"], order_id["maximum"]) == (1, BIGGEST_ID)
    metrics = document["paths"]["/metrics"]["get"]["responses"]["200"]["content"]
    assert list(metrics) == ["text/plain"]


def test_a_wrong_token_keeps_its_401(hub: Hub) -> None:
    with TestClient(create_app(hub)) as anonymous:
        missing = anonymous.get("/api/v1/orders")
        unknown = anonymous.get("/api/v1/orders", headers={"authorization": "Bearer nope"})
        basic = anonymous.get("/api/v1/orders", headers={"authorization": "Basic abc"})
    assert missing.json() == {"detail": "an API token is required: Authorization: Bearer <token>"}
    assert basic.json() == missing.json() and basic.status_code == missing.status_code == 401
    assert unknown.status_code == 401
    assert unknown.json() == {"detail": "the API token is unknown or its user is disabled"}


# --- 8. headers, request ids, offline docs, the ops listener -----------------------------------------------------

STRICT_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"


def assert_hardened(response: httpx.Response, csp: str = STRICT_CSP) -> None:
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["referrer-policy"] == "no-referrer"
    assert response.headers["content-security-policy"] == csp
    assert re.fullmatch(r"[0-9a-f]{32}", response.headers["x-request-id"])


def test_every_response_carries_the_security_headers(tiktok_hub: Hub, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*_: object, **__: object) -> None:
        raise connect.SetupError("nope")

    monkeypatch.setattr(connect, "complete", refuse)
    with TestClient(create_app(tiktok_hub), raise_server_exceptions=False) as client:
        for response in (
            client.get("/healthz"), client.get("/readyz"), client.get("/metrics"), client.get("/api/openapi.json"),
            client.get("/nowhere"), client.get("/api/v1/orders"), client.get("/api/v1/orders/x"),
            client.post("/hooks/tiktok", content=b"{}", headers={"authorization": "0"}),
            client.post("/hooks/tiktok", content=b"x" * MiB), client.get("/connect/tiktok/callback?state=s&code=c"),
        ):  # fmt: skip
            assert_hardened(response)


def test_an_unhandled_error_answers_json_with_the_headers(hub: Hub, monkeypatch: pytest.MonkeyPatch) -> None:
    from shopbridge.services import order_views

    def broken(*_: object, **__: object) -> None:
        raise RuntimeError("boom")

    token = owner_token(hub)
    monkeypatch.setattr(order_views, "order_detail", broken)
    with TestClient(create_app(hub), raise_server_exceptions=False) as client:
        response = client.get("/api/v1/orders/1", headers={"authorization": f"Bearer {token}"})
    assert response.status_code == 500
    assert response.json() == {"detail": "internal server error"}
    assert_hardened(response)


@pytest.mark.parametrize(
    ("sent", "kept"),
    [("abc-123_X.y", True), ("a" * 64, True), ("a" * 65, False), ("abc 123", False), ("<script>", False),
     ("", False), ("é", False)],
)  # fmt: skip
def test_only_a_sane_request_id_is_echoed(hub: Hub, sent: str, kept: bool) -> None:
    with TestClient(create_app(hub)) as client:
        echoed = client.get("/healthz", headers={"x-request-id": sent.encode()}).headers["x-request-id"]
    assert (echoed == sent) is kept
    if not kept:
        assert re.fullmatch(r"[0-9a-f]{32}", echoed)


def test_the_docs_load_nothing_from_the_internet(hub: Hub) -> None:
    with TestClient(create_app(hub)) as client:
        page = client.get("/api/docs")
        assert page.status_code == 200
        csp = page.headers["content-security-policy"]
        assert "script-src 'self' 'sha256-" in csp and "style-src 'self'" in csp and "frame-ancestors 'none'" in csp
        assert "http" not in csp and "unsafe" not in csp
        assert_hardened(page, csp)
        html = page.text
        assert re.findall(r"https?://", html) == [], html
        assets = re.findall(r'(?:src|href)="([^"]+)"', html)
        assert len(assets) == 3  # the script, the stylesheet and the favicon
        for asset in assets:
            assert asset.startswith("/api/docs/"), asset
            answer = client.get(asset)
            assert answer.status_code == 200 and len(answer.content) > 100, asset
        assert "url: '/api/openapi.json'" in html and '"validatorUrl": null' in html


def test_a_separate_ops_listener_takes_the_metrics_and_docs(hub: Hub) -> None:
    public = create_app(hub, separate_ops=True)
    ops = create_ops_app(public)
    with TestClient(public) as outside, TestClient(ops) as inside:
        assert outside.post("/hooks/tiktok", content=b"{}").status_code == 503  # webhooks still reach the hub
        for path in ("/metrics", "/api/docs", "/api/openapi.json"):
            response = outside.get(path)
            assert response.status_code == 404, path
            assert_hardened(response)
            assert inside.get(path).status_code == 200, path
        for path in ("/healthz", "/readyz"):
            assert outside.get(path).status_code == inside.get(path).status_code, path
        assert inside.get("/api/v1/orders").status_code == 404, "the ops listener serves no API"
        metrics = inside.get("/metrics").text
        assert 'shopbridge_http_requests_total{method="POST",route="/hooks/tiktok",status="503"} 1.0' in metrics
        document = inside.get("/api/openapi.json").json()
        assert document == create_app(hub).openapi(), "the same document in both layouts"
        assert_hardened(inside.get("/api/v1/orders"))


@pytest.mark.slow
def test_serve_with_an_ops_port_runs_two_listeners(env: Settings, tmp_path: Path) -> None:
    public, private = free_port(), free_port()
    environment = {**os.environ, "SHOPBRIDGE_OPS_PORT": str(private), "SHOPBRIDGE_WORKER_PROCESS": "false"}
    command = [sys.executable, "-c", "from shopbridge.cli import main; main()", "serve", "--port", str(public),
               "--workers", "0"]  # fmt: skip
    output = tmp_path / "serve.log"
    with output.open("wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=environment)
    try:

        def answering() -> bool:
            assert process.poll() is None, output.read_text()
            try:
                return httpx.get(f"http://127.0.0.1:{private}/healthz", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        wait_until(answering, timeout=30, message="the ops listener")
        assert httpx.get(f"http://127.0.0.1:{public}/healthz").status_code == 200
        assert httpx.get(f"http://127.0.0.1:{public}/metrics").status_code == 404
        assert httpx.get(f"http://127.0.0.1:{public}/api/openapi.json").status_code == 404
        assert httpx.get(f"http://127.0.0.1:{public}/api/docs").status_code == 404
        assert httpx.post(f"http://127.0.0.1:{public}/hooks/tiktok", content=b"{}").status_code == 503
        assert httpx.get(f"http://127.0.0.1:{private}/api/docs").status_code == 200
        metrics = httpx.get(f"http://127.0.0.1:{private}/metrics").text
        assert 'route="/hooks/tiktok",status="503"} 1.0' in metrics
        assert f"ops on http://127.0.0.1:{private}" in output.read_text()
    finally:
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=20) == 0, output.read_text()
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{private}/healthz")


# --- the OAuth callback page ------------------------------------------------------------------------------------


def test_the_callback_page_escapes_what_it_shows(tiktok_hub: Hub, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*_: object, **__: object) -> None:
        raise connect.SetupError("TikTok refused the authorization: <script>alert('x')</script> & more")

    monkeypatch.setattr(connect, "complete", refuse)
    with TestClient(create_app(tiktok_hub)) as client:
        page = client.get("/connect/tiktok/callback", params={"code": "c", "state": "s"})
    assert page.status_code == 400
    assert page.text == ("<h1>The shop was not connected</h1><p>TikTok refused the authorization: "
                         "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; more</p>")  # fmt: skip


def test_the_callback_page_lists_the_connected_shops(tiktok_hub: Hub, monkeypatch: pytest.MonkeyPatch) -> None:
    class Shop:
        def __init__(self, name: str, shop_id: str, region: str) -> None:
            self.name, self.shop_id, self.region = name, shop_id, region

    shops = [Shop("Tees & <Mugs>", "7001", "US"), Shop("Second", "7002", "US")]
    monkeypatch.setattr(connect, "complete", lambda *_, **__: shops)
    with TestClient(create_app(tiktok_hub)) as client:
        page = client.get("/connect/tiktok/callback", params={"code": "c", "state": "s"})
    assert page.status_code == 200
    assert page.text == (
        "<h1>Connected</h1><ul><li>Tees &amp; &lt;Mugs&gt; (7001, US)</li><li>Second (7002, US)</li></ul>"
    )
    assert page.headers["content-type"] == "text/html; charset=utf-8"


@pytest.mark.parametrize(
    "cursor",
    [json.dumps(["0001-01-01T00:00:00+14:00", 1]), json.dumps(["2026-01-01T00:00:00+00:00", 2**64]),
     "[" * 5000 + "]" * 5000, json.dumps([1, 2]), json.dumps(["2026-01-01T00:00:00+00:00", "x"])],
)  # fmt: skip
def test_a_cursor_the_api_did_not_give_out_is_400(client: TestClient, cursor: str) -> None:
    encoded = base64.urlsafe_b64encode(cursor.encode()).decode()
    response = client.get("/api/v1/orders", params={"cursor": encoded})
    assert response.status_code == 400, response.text
    assert response.json()["detail"].endswith("is not one this API gave out")


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [("GET", "/api/v1/stock/a%00b", None), ("GET", "/api/v1/orders?channel=a%00", None),
     ("POST", "/api/v1/stock/movements", {"sku": "a\x00", "location": "MAIN", "kind": "sale", "quantity": 1,
                                          "idempotency_key": "k"})],
)  # fmt: skip
def test_a_nul_character_is_refused_at_the_door(client: TestClient, method: str, path: str, body: Any) -> None:
    # PostgreSQL cannot store NUL in text: without this, these were 500s there (and looked up or stored in SQLite).
    response = client.request(method, path, json=body)
    assert response.status_code == 422, response.text
    assert "NUL character" in response.json()["detail"]
    escaped = json.dumps({"sku": "a\\u0000 is text", "location": "MAIN", "kind": "sale", "quantity": 1,
                          "idempotency_key": "k"})  # fmt: skip
    assert "NUL" not in client.post("/api/v1/stock/movements", content=escaped).json()["detail"]
