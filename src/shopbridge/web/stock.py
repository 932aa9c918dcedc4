"""Stock from outside the hub (until the store and POS connectors arrive): report movements and counts, read a SKU."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Depends, HTTPException
from pydantic import BaseModel, Field

from shopbridge.bootstrap import Hub
from shopbridge.services import audit, stock, stock_counts
from shopbridge.services.access import Caller
from shopbridge.store.db import reading, transaction
from shopbridge.web.auth import OPERATORS, READERS, require
from shopbridge.web.errors import refusals


# Numbers are JSON integers, never coerced from a bool, a string or a float (a 422 names the field). Their range is
# checked by the stock service, so the API, a CSV and the command line refuse alike, with the same message; the
# schema only shows it.
def units_field(description: str, minimum: int) -> Any:
    return Field(
        strict=True,
        description=description,
        json_schema_extra={"minimum": minimum, "maximum": stock.MAX_QUANTITY},
    )


class MovementIn(BaseModel):
    sku: str = Field(min_length=1)
    location: str = Field(min_length=1, description="A location code, e.g. MAIN.")
    kind: Literal["restock", "return", "sale", "adjustment"] = Field(
        description="restock, return, sale (units, positive) or adjustment (signed)."
    )
    quantity: int = units_field(
        f"Units, at most {stock.MAX_QUANTITY:,} either way. An adjustment may not take on-hand below zero (a sale "
        f"may: it is raised as oversold), and nothing may take it past {stock.MAX_ON_HAND:,}.",
        -stock.MAX_QUANTITY,
    )
    idempotency_key: str = Field(
        min_length=1, max_length=200, description="The same key is applied once; reused for another movement, 409."
    )
    origin: Literal["hub", "external"] = Field(
        default="hub", description="hub, or external for a master system the hub mirrors."
    )
    reference: str | None = Field(default=None, max_length=200, description="A note kept on the movement.")


class CountIn(BaseModel):
    sku: str = Field(min_length=1)
    location: str = Field(min_length=1, description="A location code, e.g. MAIN.")
    on_hand: int = units_field(f"The units counted there, 0 to {stock.MAX_QUANTITY:,}.", 0)
    idempotency_key: str | None = Field(
        default=None, min_length=1, max_length=200, description="Default: count:SKU:LOCATION:(reference or digest)."
    )


class LevelsIn(BaseModel):
    counts: list[CountIn] = Field(min_length=1, max_length=10_000)
    origin: Literal["hub", "external"] = Field(
        default="hub", description="hub, or external for a master system the hub mirrors."
    )
    reference: str | None = Field(
        default=None, max_length=200, description="Names the count (e.g. cycle-2024-06-01); part of default keys."
    )


def refusal_status(error: stock.StockError) -> int:
    if isinstance(error, stock.UnknownSku):
        return 404
    if isinstance(error, (stock.StockSourceConflict, stock.IdempotencyKeyReused)):
        return 409
    return 422


def router(hub: Hub) -> APIRouter:
    routes = APIRouter(prefix="/api/v1/stock", tags=["stock"])
    reader = Depends(require(hub, READERS))
    operator = Depends(require(hub, OPERATORS))

    @routes.post(
        "/movements", summary="Report a stock movement; replaying its idempotency key changes nothing.",
        responses=refusals(400, 401, 403, 404, 409, 413, 422),
    )  # fmt: skip
    def post_movement(movement: MovementIn, caller: Caller = operator) -> dict[str, Any]:
        try:
            with transaction(hub.sessions) as session:
                applied = stock.apply_external_movement(
                    session, sku=movement.sku, location_code=movement.location, kind=movement.kind,
                    quantity=movement.quantity, idempotency_key=movement.idempotency_key, origin=movement.origin,
                    now=hub.clock.now(), reference=movement.reference,
                )  # fmt: skip
                if applied:
                    audit.record(session, caller.email, "stock.movement", "sku", movement.sku, now=hub.clock.now(),
                                 after={"location": movement.location, "kind": movement.kind,
                                        "quantity": movement.quantity, "idempotency_key": movement.idempotency_key,
                                        "origin": movement.origin})  # fmt: skip
        except stock.UnknownSku as error:
            raise HTTPException(404, str(error)) from None
        except stock.StockSourceConflict as error:
            with transaction(hub.sessions) as session:  # the refusal is kept as a sync issue
                stock.record_refusal(session, movement.sku, movement.origin, str(error), now=hub.clock.now())
            raise HTTPException(409, str(error)) from None
        except stock.StockError as error:
            raise HTTPException(refusal_status(error), str(error)) from None
        with reading(hub.sessions) as session:
            return {"applied": applied, "stock": stock.stock_of(session, movement.sku, now=hub.clock.now())}

    @routes.put(
        "/levels", summary="Set on-hand from a stock count: each difference becomes an adjustment.",
        responses=refusals(400, 401, 403, 404, 409, 413, 422),
    )  # fmt: skip
    def put_levels(levels: LevelsIn, caller: Caller = operator) -> dict[str, Any]:
        counts = [stock_counts.Count(row.sku, row.location, row.on_hand, row.idempotency_key) for row in levels.counts]
        try:
            with transaction(hub.sessions) as session:
                results = stock_counts.apply_counts(
                    session, counts, origin=levels.origin, now=hub.clock.now(), reference=levels.reference,
                    row_name=lambda index: f"counts[{index}]",
                )  # fmt: skip
                changed = [result for result in results if result.applied]
                if changed:
                    audit.record(
                        session, caller.email, "stock.count", "stock_levels", levels.reference or "count",
                        now=hub.clock.now(),
                        before={f"{r.sku}@{r.location}": r.previous_on_hand for r in changed},
                        after={f"{r.sku}@{r.location}": r.on_hand for r in changed},
                    )  # fmt: skip
        except stock_counts.RowsRefused as refused:
            conflicts = [problem for problem in refused.problems
                         if isinstance(problem.error, stock.StockSourceConflict)]  # fmt: skip
            if conflicts:
                with transaction(hub.sessions) as session:  # the refusals are kept as sync issues
                    for problem in conflicts:
                        stock.record_refusal(session, problem.sku, levels.origin, str(problem.error),
                                             now=hub.clock.now())  # fmt: skip
            raise HTTPException(refusal_status(refused.problems[0].error), str(refused)) from None
        except stock.StockError as error:
            raise HTTPException(422, str(error)) from None
        return {
            "origin": levels.origin,
            "reference": levels.reference,
            "counts": [
                {"sku": result.sku, "location": result.location, "idempotency_key": result.idempotency_key,
                 "previous_on_hand": result.previous_on_hand, "on_hand": result.on_hand, "applied": result.applied,
                 "outcome": result.outcome}
                for result in results
            ],
        }  # fmt: skip

    @routes.get("/{sku}", summary="A SKU's stock per location.", responses=refusals(401, 403, 404, 422))
    def get_stock(sku: str, caller: Caller = reader) -> dict[str, Any]:
        with reading(hub.sessions) as session:
            try:
                return stock.stock_of(session, sku, now=hub.clock.now())
            except stock.UnknownSku as error:
                raise HTTPException(404, str(error)) from None

    return routes
