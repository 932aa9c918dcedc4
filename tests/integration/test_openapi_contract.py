"""The API keeps the contract its OpenAPI document states: schemathesis generates requests for every operation of
/api/openapi.json, valid ones and invalid ones, and sends them in-process to the hub app (an owner's token on each,
so the authenticated routes are reached). Bounded and derandomized: a fixed seed, the same few hundred requests each
run, no shrinking. Checked: no 5xx, every status documented, the content type and the body as documented."""

from __future__ import annotations

from collections import Counter

import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import Failure, FailureGroup
from schemathesis.generation import GenerationMode
from schemathesis.generation.case import Case
from schemathesis.python import asgi
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from shopbridge.bootstrap import Hub
from shopbridge.web.app import create_app
from tests.integration.conftest import owner_token

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
EXAMPLES = {GenerationMode.POSITIVE: 30, GenerationMode.NEGATIVE: 20}  # per operation: about 450 requests


def test_the_api_keeps_its_openapi_contract(tiktok_hub: Hub) -> None:
    token = owner_token(tiktok_hub)
    app = create_app(tiktok_hub, workers=1)  # so /readyz is ready
    schema = schemathesis.openapi.from_asgi("/api/openapi.json", app)
    figures: Counter[str] = Counter({"requests": 0, "server errors": 0, "violations": 0})
    statuses: Counter[str] = Counter()
    problems: list[str] = []

    def check(case: Case) -> None:
        response = case.call(headers={"authorization": f"Bearer {token}"})
        figures["requests"] += 1
        statuses[f"{case.operation.label} {response.status_code}"] += 1
        figures["server errors"] += response.status_code >= 500
        try:
            case.validate_response(response, checks=CHECKS)
        except (Failure, FailureGroup) as failure:
            figures["violations"] += 1
            problems.append(f"{case.operation.label} -> {response.status_code}: {failure}\n{case.as_curl_command()}")

    operations = [result.ok() for result in schema.get_all_operations()]
    try:
        for operation in operations:
            for mode, examples in EXAMPLES.items():

                @given(case=operation.as_strategy(generation_mode=mode))
                @settings(max_examples=examples, derandomize=True, database=None, deadline=None,
                          phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))  # fmt: skip
                def run(case: Case) -> None:
                    check(case)

                try:
                    run()
                except Unsatisfiable:  # nothing invalid to send (no parameter nor body, e.g. /healthz)
                    figures["operations without invalid requests"] += 1
    finally:
        asgi.shutdown_lifespans()  # schemathesis started the app's lifespan (its threads) once for all requests
    print(f"\nschemathesis: {len(operations)} operations, {dict(figures)}\n{dict(sorted(statuses.items()))}")
    assert {operation.label for operation in operations} == {
        "POST /hooks/tiktok", "GET /connect/tiktok/callback", "GET /api/v1/orders", "GET /api/v1/orders/{order_id}",
        "POST /hooks/shopify",
        "POST /hooks/pos",
        "POST /api/v1/orders", "POST /api/v1/orders/{order_id}/retry", "POST /api/v1/orders/{order_id}/cancel",
        "POST /api/v1/stock/movements",
        "PUT /api/v1/stock/levels",
        "GET /api/v1/stock/{sku}", "GET /healthz", "GET /readyz", "GET /metrics",
        "GET /api/v1/links", "POST /api/v1/links", "GET /api/v1/links/problems",
        "DELETE /api/v1/links/{account_id}/{external_sku_id}", "GET /api/v1/cancellations",
        "POST /api/v1/cancellations/{request_id}/approve", "POST /api/v1/cancellations/{request_id}/reject",
        "GET /api/v1/returns", "POST /api/v1/returns/{return_id}/retry", "GET /api/v1/return-requests",
        "POST /api/v1/return-requests/{request_id}/approve", "POST /api/v1/return-requests/{request_id}/reject",
        "POST /api/v1/connections/shopify", "POST /api/v1/connections/shopify/install", "GET /connect/shopify/start",
        "GET /connect/shopify/callback", "GET /api/v1/drift", "POST /api/v1/drift/check",
    }  # fmt: skip
    assert figures["server errors"] == 0 and not problems, "\n\n".join(problems[:10])
    assert figures["requests"] >= 300
