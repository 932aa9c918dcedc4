"""Buyers' cancellation requests over REST: list them (by state), approve or reject one before its deadline."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Depends, HTTPException, Path
from pydantic import BaseModel, Field

from shopbridge.bootstrap import Hub
from shopbridge.services import cancellations
from shopbridge.services.access import Caller
from shopbridge.store.db import reading, transaction
from shopbridge.web.auth import OPERATORS, READERS, require
from shopbridge.web.errors import refusals

RequestId = Annotated[int, Path(ge=1, le=2**63 - 1, description="The hub's id of the cancellation request.")]
State = Literal["pending", "approving", "rejecting", "approved", "rejected", "closed"]


class RejectIn(BaseModel):
    reason: str | None = Field(
        default=None, min_length=1, max_length=cancellations.MAX_REASON,
        description="One of the channel's reject reasons (its name or text), or words sent as the comment.",
    )  # fmt: skip


def router(hub: Hub) -> APIRouter:
    routes = APIRouter(prefix="/api/v1/cancellations", tags=["cancellations"])
    reader = Depends(require(hub, READERS))
    operator = Depends(require(hub, OPERATORS))

    @routes.get("", summary="Buyers' cancellation requests, those due soonest first.",
                responses=refusals(401, 403, 422))  # fmt: skip
    def list_requests(caller: Caller = reader, state: State | None = None) -> dict[str, Any]:
        with reading(hub.sessions) as session:
            return {"cancellations": cancellations.list_requests(session, state)}

    def answer(request_id: int, approve: bool, caller: Caller, reason: str | None) -> dict[str, Any]:
        try:
            with transaction(hub.sessions) as session:
                return cancellations.answer(session, request_id, approve, actor=caller.email, now=hub.clock.now(),
                                            reason=reason)  # fmt: skip
        except cancellations.UnknownRequest as error:
            raise HTTPException(404, str(error)) from None
        except (cancellations.AlreadyAnswered, cancellations.PastDeadline) as error:
            raise HTTPException(409, str(error)) from None
        except cancellations.CancellationError as error:
            raise HTTPException(422, str(error)) from None

    @routes.post("/{request_id}/approve", status_code=202, summary="Approve the request; the channel is told next.",
                 responses=refusals(401, 403, 404, 409, 422))  # fmt: skip
    def approve(request_id: RequestId, caller: Caller = operator) -> dict[str, Any]:
        return answer(request_id, True, caller, None)

    @routes.post("/{request_id}/reject", status_code=202, summary="Reject the request; the channel is told next.",
                 responses=refusals(400, 401, 403, 404, 409, 413, 422))  # fmt: skip
    def reject(
        request_id: RequestId, caller: Caller = operator, body: Annotated[RejectIn | None, Body()] = None
    ) -> dict[str, Any]:
        return answer(request_id, False, caller, body.reason if body is not None else None)

    return routes
