"""docs/pos-openapi.json documents what the sandbox serves: every /v1 route with its method (and nothing it does
not serve), the same request and answer shapes, the security headers, and the hub's POST /hooks/pos."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from fastapi.routing import APIRoute

from shopbridge.sandbox.pos import PosSandboxConfig, create_app
from shopbridge.sandbox.pos.api import is_api_path

DOC = Path(__file__).resolve().parents[3] / "docs" / "pos-openapi.json"


@pytest.fixture(scope="module")
def doc() -> dict[str, Any]:
    document: dict[str, Any] = json.loads(DOC.read_text())
    return document


def api_routes(routes: list[Any]) -> list[APIRoute]:
    """Every APIRoute, looking into included routers (FastAPI >= 0.16x keeps them as a router of their own; the
    sandbox includes its routers without a prefix, so their paths are the served ones)."""
    out: list[APIRoute] = []
    for route in routes:
        if isinstance(route, APIRoute):
            out.append(route)
        elif hasattr(route, "original_router"):
            out.extend(api_routes(route.original_router.routes))
    return out


def served() -> set[tuple[str, str]]:
    app = create_app(PosSandboxConfig())
    return {
        (route.path, method.lower())
        for route in api_routes(app.routes)
        if is_api_path(route.path)
        for method in route.methods
        if method != "HEAD"
    }


def test_every_v1_route_is_documented_with_its_method(doc: dict[str, Any]) -> None:
    routes = served()
    assert len(routes) == 7
    documented = {(path, method) for path, item in doc["paths"].items() if is_api_path(path)
                  for method in item if method in ("get", "post", "put", "patch", "delete")}  # fmt: skip
    assert documented == routes


def test_the_shapes_are_the_sandbox_s(doc: dict[str, Any]) -> None:
    current = create_app(PosSandboxConfig()).openapi()
    for path, method in served():
        ours, theirs = current["paths"][path][method], doc["paths"][path][method]
        assert theirs["operationId"] == ours["operationId"]
        assert {k for k in theirs["responses"]} == {k for k in ours["responses"] if k != "422"}, (path, method)
        for status, answer in ours["responses"].items():
            if status != "422":
                assert theirs["responses"][status]["content"]["application/json"]["schema"] == answer["content"][
                    "application/json"]["schema"]  # fmt: skip
        if "requestBody" in ours:
            assert theirs["requestBody"]["content"]["application/json"]["schema"] == ours["requestBody"]["content"][
                "application/json"]["schema"]  # fmt: skip
        assert [p["name"] for p in theirs.get("parameters", [])] == [p["name"] for p in ours.get("parameters", [])]
    for name, schema in doc["components"]["schemas"].items():
        if name in current["components"]["schemas"]:
            model = current["components"]["schemas"][name]
            assert set(schema.get("properties", {})) == set(model.get("properties", {})), name
            assert set(schema.get("required", [])) == set(model.get("required", [])), name


def test_security_errors_and_the_event_endpoint_are_documented(doc: dict[str, Any]) -> None:
    schemes = doc["components"]["securitySchemes"]
    assert {s["name"] for s in schemes.values()} == {"X-POS-Account", "X-POS-Timestamp", "X-POS-Signature"}
    assert doc["security"] == [{name: [] for name in schemes}]
    for path, item in doc["paths"].items():
        for method, operation in item.items():
            if method in ("get", "post"):
                assert "401" in operation["responses"], (path, method)
                assert operation["responses"]["401"]["content"]["application/json"]["schema"] == {
                    "$ref": "#/components/schemas/ErrorBody"}  # fmt: skip
    hook = doc["paths"]["/hooks/pos"]
    assert hook["servers"][0]["description"].startswith("the hub")
    body = hook["post"]["requestBody"]["content"]["application/json"]
    assert body["schema"] == {"$ref": "#/components/schemas/EventEnvelope"}
    data = doc["components"]["schemas"]["EventEnvelope"]["properties"]["data"]
    assert [ref["$ref"].rsplit("/", 1)[-1] for ref in data["oneOf"]] == [
        "StockLevelsData", "SaleCompletedData", "ReturnCompletedData", "TaskUpdatedData"]  # fmt: skip
    assert set(body["examples"]) == {"stock.levels", "sale.completed", "return.completed", "task.updated"}
    assert doc["webhooks"]["posEvent"] == {"$ref": "#/paths/~1hooks~1pos"}


def test_the_document_is_valid_openapi_3_1(doc: dict[str, Any]) -> None:
    jsonschema_rs = pytest.importorskip("jsonschema_rs")
    definitions = pytest.importorskip("schemathesis.specs.openapi.definitions")
    assert doc["openapi"] == "3.1.0"
    errors = list(jsonschema_rs.validator_for(definitions.OPENAPI_31).iter_errors(doc))
    assert errors == []
