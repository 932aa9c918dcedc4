"""``POST /admin/api/{version}/graphql.json``: the GraphQL Admin API endpoint (reference §1.1, §2.1, §11.1).

Checks in order:

1. the version (``YYYY-MM`` release or ``unstable``; older ones fall forward, anything else 404);
2. ``X-Shopify-Access-Token`` → 401 ``{"errors":"[API] Invalid API key or access token (unrecognized login or wrong
   password)"}`` when missing, unknown, expired or revoked;
3. the body: JSON ``{"query", "variables", "operationName"}`` or ``application/graphql``; unparseable → 400;
4. GraphQL syntax and validation against the version's schema → HTTP 200 with top-level ``errors``;
5. injected faults for the operation's root field (latency, 5xx, forced THROTTLED);
6. the requested cost: > ``max_query_cost`` (1000) → MAX_COST_EXCEEDED; more than the bucket holds → THROTTLED
   (HTTP 200 by default, or 429 + ``Retry-After`` when ``throttle_status`` is 429);
7. execution by graphql-core, then the actual cost, refunded to the bucket.

Every answer echoes ``X-Shopify-API-Version`` and carries ``X-Request-Id``; every GraphQL answer carries
``extensions.cost`` (``requestedQueryCost``, ``actualQueryCost`` — null when throttled —, ``throttleStatus``).
"""

from __future__ import annotations

import asyncio
import inspect
import json
import math
from typing import TYPE_CHECKING, Any

from fastapi import Request
from graphql import (
    DocumentNode,
    ExecutionResult,
    FieldNode,
    GraphQLError,
    OperationDefinitionNode,
    OperationType,
    execute,
    get_operation_ast,
    parse,
    validate,
)
from starlette.responses import JSONResponse

from . import faults
from .cost import CostCalculator
from .models import ApiFault
from .resolvers import Mutation, QueryRoot
from .schema import schema_for
from .versions import Version
from .views import Ctx

if TYPE_CHECKING:
    from .runtime import ShopifySandbox

INVALID_TOKEN = "[API] Invalid API key or access token (unrecognized login or wrong password)"  # noqa: S105
RATE_LIMITS_DOC = "https://shopify.dev/api/usage/rate-limits"


class Answer:
    """What the endpoint answers, before it becomes an HTTP response."""

    def __init__(self, body: Any, status: int = 200, headers: dict[str, str] | None = None) -> None:
        self.body = body
        self.status = status
        self.headers = headers or {}


def _errors(*messages: str, code: str | None = None) -> list[dict[str, Any]]:
    out = []
    for message in messages:
        error: dict[str, Any] = {"message": message}
        if code:
            error["extensions"] = {"code": code}
        out.append(error)
    return out


def _formatted(error: GraphQLError) -> dict[str, Any]:
    out: dict[str, Any] = {"message": error.message}
    if error.locations:
        out["locations"] = [{"line": loc.line, "column": loc.column} for loc in error.locations]
    if error.path:
        out["path"] = list(error.path)
    if error.extensions:
        out["extensions"] = error.extensions
    return out


class Gateway:
    def __init__(self, sandbox: ShopifySandbox) -> None:
        self.sb = sandbox

    def _cost(self, requested: int, actual: int | None, key: tuple[str, str]) -> dict[str, Any]:
        settings = self.sb.world.settings
        available = self.sb.buckets.available(key, settings.bucket_size, settings.restore_rate)
        return {
            "requestedQueryCost": requested,
            "actualQueryCost": actual,
            "throttleStatus": {
                "maximumAvailable": float(settings.bucket_size),
                "currentlyAvailable": int(available),
                "restoreRate": float(settings.restore_rate),
            },
        }

    def _throttled(self, requested: int, key: tuple[str, str]) -> Answer:
        sb = self.sb
        settings = sb.world.settings
        sb.stats.throttled += 1
        body = {
            "errors": [
                {
                    "message": "Throttled",
                    "extensions": {"code": "THROTTLED", "documentation": RATE_LIMITS_DOC},
                }
            ],
            "extensions": {"cost": self._cost(requested, None, key)},
        }
        if settings.throttle_status == 429:
            available = sb.buckets.available(key, settings.bucket_size, settings.restore_rate)
            wait = max(1.0, math.ceil((requested - available) / max(settings.restore_rate, 0.001)))
            return Answer(body, 429, {"Retry-After": f"{wait:.1f}"})
        return Answer(body)

    async def __call__(self, request: Request, version_text: str) -> JSONResponse:
        sb = self.sb
        version = Version.parse(version_text)
        headers = {"X-Request-Id": sb.ids.uuid()}
        if version is None:
            sb.stats.api_status[404] += 1
            return JSONResponse({"errors": "Not Found"}, status_code=404, headers=headers)
        headers["X-Shopify-API-Version"] = version.name
        sb.tick()
        answer = await self._answer(request, version)
        sb.stats.api_status[answer.status] += 1
        sb.world.commit()
        return JSONResponse(answer.body, status_code=answer.status, headers={**headers, **answer.headers})

    async def _answer(self, request: Request, version: Version) -> Answer:
        sb = self.sb
        token = sb.authenticate(request.headers.get("x-shopify-access-token"))
        if token is None:
            return Answer({"errors": INVALID_TOKEN}, 401)
        key = sb.bucket_key(token)
        query, variables, operation_name, problem = await self._body(request)
        if problem is not None:
            return Answer({"errors": {"query": problem}}, 400)
        assert query is not None
        schema = schema_for(version)
        try:
            document = parse(query)
        except GraphQLError as exc:
            return Answer({"errors": [_formatted(exc)], "extensions": {"cost": self._cost(0, 0, key)}})
        problems = validate(schema, document)
        if problems:
            return Answer({"errors": [_formatted(e) for e in problems], "extensions": {"cost": self._cost(0, 0, key)}})
        operation = get_operation_ast(document, operation_name)
        if operation is None:
            message = f"No operation named {operation_name!r}" if operation_name else "An operation name is required"
            return Answer({"errors": _errors(message), "extensions": {"cost": self._cost(0, 0, key)}})
        roots = [s.name.value for s in operation.selection_set.selections if isinstance(s, FieldNode)]
        for root in roots:
            sb.stats.api_calls[root] += 1
        fault = self._fault(roots)
        if fault is not None:
            decision = faults.decide(fault, sb.rng)
            if decision.latency_seconds > 0:
                await asyncio.sleep(decision.latency_seconds)
            if decision.action == "error":
                sb.stats.faults[f"{fault.id}:{decision.status}"] += 1
                reason = "Service Unavailable" if decision.status == 503 else "Internal Server Error"
                return Answer({"errors": reason}, decision.status)
            if decision.action == "throttle":
                sb.stats.faults[f"{fault.id}:throttle"] += 1
                calc = CostCalculator(schema, document, variables)
                return self._throttled(calc.requested(operation), key)
        return self._execute(schema, document, operation, variables, operation_name, version, token.scope, key)

    def _fault(self, roots: list[str]) -> ApiFault | None:
        world = self.sb.world
        for root in roots:
            fault = world.get(ApiFault, root)
            if fault is not None:
                return fault
        return world.get(ApiFault, "*")

    async def _body(self, request: Request) -> tuple[str | None, dict[str, Any] | None, str | None, str | None]:
        raw = await request.body()
        if "application/graphql" in request.headers.get("content-type", ""):
            text = raw.decode(errors="replace")
            return (text, None, None, None) if text.strip() else (None, None, None, "Required parameter missing")
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            return None, None, None, "Required parameter missing or invalid: the body is not valid JSON"
        if not isinstance(body, dict) or not isinstance(body.get("query"), str) or not body["query"].strip():
            return None, None, None, "Required parameter missing or invalid"
        variables = body.get("variables")
        if variables is not None and not isinstance(variables, dict):
            return None, None, None, "Required parameter missing or invalid: variables must be an object"
        name = body.get("operationName")
        return body["query"], variables, name if isinstance(name, str) else None, None

    def _execute(
        self,
        schema: Any,
        document: DocumentNode,
        operation: OperationDefinitionNode,
        variables: dict[str, Any] | None,
        operation_name: str | None,
        version: Version,
        scope: str,
        key: tuple[str, str],
    ) -> Answer:
        sb = self.sb
        settings = sb.world.settings
        calc = CostCalculator(schema, document, variables)
        requested = calc.requested(operation)
        if requested > settings.max_query_cost:
            sb.stats.max_cost_exceeded += 1
            limit = settings.max_query_cost
            return Answer(
                {
                    "errors": [
                        {
                            "message": f"Query cost is {requested}, which exceeds the single query max cost limit "
                            f"({limit}).",
                            "extensions": {"code": "MAX_COST_EXCEEDED", "cost": requested, "maxCost": limit},
                        }
                    ],
                    "extensions": {"cost": self._cost(requested, None, key)},
                }
            )
        if not sb.buckets.take(key, requested, settings.bucket_size, settings.restore_rate):
            return self._throttled(requested, key)
        ctx = Ctx(sb=sb, version=version, scope=scope)
        root: Any = Mutation(ctx) if operation.operation == OperationType.MUTATION else QueryRoot(ctx)
        result = execute(schema, document, root, ctx, variables, operation_name)
        assert not inspect.isawaitable(result)
        assert isinstance(result, ExecutionResult)
        actual = calc.actual(operation, result.data) if result.data is not None else 0
        sb.buckets.give_back(key, requested - actual, settings.bucket_size, settings.restore_rate)
        body: dict[str, Any] = {}
        if result.errors:
            body["errors"] = [_formatted(e) for e in result.errors]
        body["data"] = result.data
        extensions: dict[str, Any] = {"cost": self._cost(requested, actual, key)}
        if ctx.search:
            extensions["search"] = ctx.search
        body["extensions"] = extensions
        return Answer(body)
