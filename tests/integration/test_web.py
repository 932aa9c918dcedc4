"""Health, readiness, metrics and the OpenAPI document."""

from __future__ import annotations

from fastapi.testclient import TestClient

from shopbridge.bootstrap import Hub
from shopbridge.runtime import inbox, jobs
from shopbridge.runtime.registry import JobRegistry
from shopbridge.store.db import transaction
from shopbridge.web.app import create_app


def test_health_and_openapi(hub: Hub) -> None:
    with TestClient(create_app(hub)) as client:
        assert client.get("/healthz").json() == {"status": "ok"}
        document = client.get("/api/openapi.json").json()
        assert document["info"]["title"] == "shopbridge"
        assert {"/healthz", "/readyz", "/metrics"} <= set(document["paths"])


def test_every_response_carries_a_request_id(hub: Hub) -> None:
    with TestClient(create_app(hub)) as client:
        assert client.get("/healthz", headers={"x-request-id": "abc123"}).headers["x-request-id"] == "abc123"
        assert len(client.get("/healthz").headers["x-request-id"]) == 32


def test_not_ready_without_workers(hub: Hub) -> None:
    with TestClient(create_app(hub, workers=0)) as client:
        response = client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["checks"]["database"]["ok"] and body["checks"]["migrations"]["ok"]
    assert body["checks"]["workers"] == {"ok": False, "alive": 0}


def test_ready_with_embedded_workers(hub: Hub) -> None:
    with TestClient(create_app(hub, workers=2)) as client:
        response = client.get("/readyz")
        assert response.status_code == 200, response.json()
        assert response.json()["checks"]["workers"] == {"ok": True, "embedded": 2}
    assert hub.pool is not None and not hub.pool.alive(), "workers stop with the app"


def test_metrics_report_jobs_attempts_inbox_and_dead_letters(hub: Hub, registry: JobRegistry) -> None:
    now = hub.clock.now()
    with transaction(hub.sessions) as session:
        jobs.enqueue(session, "tiktok.sync_order", now=now)
    with transaction(hub.inbox_sessions) as session:
        inbox.record(session, source="tiktok", event_id="n1", payload="{}", now=now)
    hub.clock.advance(42)  # type: ignore[attr-defined]
    with TestClient(create_app(hub)) as client:
        client.get("/healthz")
        text = client.get("/metrics").text
    assert 'shopbridge_jobs{kind="tiktok.sync_order",state="pending"} 1.0' in text
    assert 'shopbridge_inbox_events{status="received"} 1.0' in text
    assert "shopbridge_inbox_lag_seconds 42.0" in text
    assert "shopbridge_dead_letters 0.0" in text
    assert 'shopbridge_http_requests_total{method="GET",route="/healthz",status="200"} 1.0' in text
