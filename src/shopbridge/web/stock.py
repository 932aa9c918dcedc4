"""Stock from outside the hub (until the store and POS connectors arrive): report movements, read a SKU."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, HTTPException
from pydantic import BaseModel, Field

from shopbridge.bootstrap import Hub
from shopbridge.services import stock
from shopbridge.services.access import Caller
from shopbridge.store.db import reading, transaction
from shopbridge.web.auth import OPERATORS, READERS, require


class MovementIn(BaseModel):
    sku: str = Field(min_length=1)
    location: str = Field(min_length=1, description="A location code, e.g. MAIN.")
    kind: str = Field(description="restock, return, sale (units, positive) or adjustment (signed).")
    quantity: int
    idempotency_key: str = Field(min_length=1, max_length=200, description="The same key is applied once.")
    origin: str = Field(default="hub", description="hub, or external for a master system the hub mirrors.")
    reference: str | None = None


def router(hub: Hub) -> APIRouter:
    routes = APIRouter(prefix="/api/v1/stock", tags=["stock"])
    reader = Depends(require(hub, READERS))
    operator = Depends(require(hub, OPERATORS))

    @routes.post("/movements", summary="Report a stock movement; replaying its idempotency key changes nothing.")
    def post_movement(movement: MovementIn, caller: Caller = operator) -> dict[str, Any]:
        try:
            with transaction(hub.sessions) as session:
                applied = stock.apply_external_movement(
                    session, sku=movement.sku, location_code=movement.location, kind=movement.kind,
                    quantity=movement.quantity, idempotency_key=movement.idempotency_key, origin=movement.origin,
                    now=hub.clock.now(), reference=movement.reference,
                )  # fmt: skip
        except stock.UnknownSku as error:
            raise HTTPException(404, str(error)) from None
        except stock.StockSourceConflict as error:
            with transaction(hub.sessions) as session:  # the refusal is kept as a sync issue
                stock.record_refusal(session, movement.sku, movement.origin, str(error), now=hub.clock.now())
            raise HTTPException(409, str(error)) from None
        except stock.StockError as error:
            raise HTTPException(422, str(error)) from None
        with reading(hub.sessions) as session:
            return {"applied": applied, "stock": stock.stock_of(session, movement.sku)}

    @routes.get("/{sku}", summary="A SKU's stock per location.")
    def get_stock(sku: str, caller: Caller = reader) -> dict[str, Any]:
        with reading(hub.sessions) as session:
            try:
                return stock.stock_of(session, sku)
            except stock.UnknownSku as error:
                raise HTTPException(404, str(error)) from None

    return routes
