"""Which channel listing sells which SKU: the listings with their link, the problems to settle, and the manual link
and unlink (services/links.py)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Path, Query
from pydantic import BaseModel, Field

from shopbridge.bootstrap import Hub
from shopbridge.services import links
from shopbridge.services.access import Caller
from shopbridge.store.db import reading, transaction
from shopbridge.web.auth import OPERATORS, READERS, require
from shopbridge.web.errors import refusals
from shopbridge.web.orders import BIGGEST_ID

AccountId = Annotated[int, Path(ge=1, le=BIGGEST_ID, description="The channel account's id.")]


class LinkIn(BaseModel):
    account_id: int = Field(strict=True, ge=1, le=BIGGEST_ID, description="The channel account the listing belongs to.")
    external_sku_id: str = Field(min_length=1, max_length=100, description="The channel's id of the listing.")
    sku: str = Field(min_length=1, max_length=100, description="The hub SKU to sell through it.")


def _status(error: links.LinkError) -> int:
    if isinstance(error, (links.UnknownListing, links.UnknownSku)):
        return 404
    if isinstance(error, links.VariantTaken):
        return 409
    return 422


def router(hub: Hub) -> APIRouter:
    routes = APIRouter(prefix="/api/v1/links", tags=["links"])
    reader = Depends(require(hub, READERS))
    operator = Depends(require(hub, OPERATORS))

    @routes.get("", summary="Channel listings with their link to hub SKUs.", responses=refusals(401, 403, 422))
    def get_links(
        account_id: Annotated[int | None, Query(ge=1, le=BIGGEST_ID)] = None,
        state: Literal["auto", "manual", "unlinked", "not_linked"] | None = None,
        caller: Caller = reader,
    ) -> list[dict[str, Any]]:
        with reading(hub.sessions) as session:
            return links.listings(session, account_id, state)

    @routes.get(
        "/problems", summary="SKUs a person has to settle (missing, duplicate, not in the hub, on some accounts only).",
        responses=refusals(401, 403),
    )  # fmt: skip
    def get_problems(caller: Caller = reader) -> list[dict[str, Any]]:
        with reading(hub.sessions) as session:
            return links.problems(session)

    @routes.post(
        "", summary="Link a listing by hand to a hub SKU; later imports keep it.",
        responses=refusals(400, 401, 403, 404, 409, 413, 422),
    )  # fmt: skip
    def post_link(body: LinkIn, caller: Caller = operator) -> dict[str, Any]:
        try:
            with transaction(hub.sessions) as session:
                return links.link(session, body.account_id, body.external_sku_id, body.sku, now=hub.clock.now(),
                                  actor=caller.email)  # fmt: skip
        except links.LinkError as error:
            raise HTTPException(_status(error), str(error)) from None

    @routes.delete(
        "/{account_id}/{external_sku_id:path}", summary="Keep a listing apart from every hub SKU (imports keep it).",
        responses=refusals(401, 403, 404, 422),
    )  # fmt: skip
    def delete_link(account_id: AccountId, external_sku_id: str, caller: Caller = operator) -> dict[str, Any]:
        try:
            with transaction(hub.sessions) as session:
                return links.unlink(session, account_id, external_sku_id, now=hub.clock.now(), actor=caller.email)
        except links.LinkError as error:
            raise HTTPException(_status(error), str(error)) from None

    return routes
