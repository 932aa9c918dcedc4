"""Returns over REST: the returns stores took back and their refunds (list them by state, ask again for a refund the
order's channel refused), and buyers' return and refund requests (list them by state, approve or reject one before its
deadline)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Depends, HTTPException, Path
from pydantic import BaseModel, Field
from sqlalchemy import select

from shopbridge.bootstrap import Hub
from shopbridge.services import return_requests, returns
from shopbridge.services.access import Caller
from shopbridge.store.db import reading, transaction
from shopbridge.store.tables import Job, StoreReturn
from shopbridge.web.auth import OPERATORS, READERS, require
from shopbridge.web.errors import refusals

RequestId = Annotated[int, Path(ge=1, le=2**63 - 1, description="The hub's id of the return request.")]
ReturnId = Annotated[int, Path(ge=1, le=2**63 - 1, description="The hub's id of the store return.")]
State = Literal["pending", "approving", "rejecting", "approved", "rejected", "closed"]
ReturnState = Literal["unmatched", "refunding", "refunded", "refused"]


class RejectIn(BaseModel):
    reason: str | None = Field(
        default=None, min_length=1, max_length=return_requests.MAX_REASON,
        description="One of the channel's reject reasons (its name or text), or words sent as the comment.",
    )  # fmt: skip


class QueuedJob(BaseModel):
    id: int = Field(description="The job's id (`shopbridge jobs show ID`).")
    kind: str = Field(description="What it does, e.g. tiktok.refund_return.")
    state: str = Field(description="pending until a worker runs it.")


class RetryOut(BaseModel):
    return_id: int
    state: ReturnState = Field(description="refunding: the order's channel is asked again.")
    job: QueuedJob


def router(hub: Hub) -> APIRouter:
    routes = APIRouter(prefix="/api/v1", tags=["returns"])
    reader = Depends(require(hub, READERS))
    operator = Depends(require(hub, OPERATORS))

    @routes.get("/returns", summary="Returns stores took back and their refunds, the newest first.",
                responses=refusals(401, 403, 422))  # fmt: skip
    def list_returns(caller: Caller = reader, state: ReturnState | None = None) -> dict[str, Any]:
        with reading(hub.sessions) as session:
            return {"returns": return_requests.list_returns(session, state)}

    @routes.post("/returns/{return_id}/retry", status_code=202,
                 summary="Ask the order's channel again for a refused refund (its cause fixed); the job that asks.",
                 responses=refusals(401, 403, 404, 409, 422))  # fmt: skip
    def retry_refund(return_id: ReturnId, caller: Caller = operator) -> RetryOut:
        try:
            with transaction(hub.sessions) as session:
                if session.scalar(select(StoreReturn.id).where(StoreReturn.id == return_id)) is None:
                    raise HTTPException(404, f"store return {return_id} does not exist")
                job_id = returns.retry_refund(session, return_id, now=hub.clock.now(), actor=caller.email)
                job = session.get(Job, job_id)
                assert job is not None
                queued = QueuedJob(id=job.id, kind=job.kind, state=job.state)
        except returns.NotRetryable as error:
            raise HTTPException(409, str(error)) from None
        return RetryOut(return_id=return_id, state="refunding", job=queued)

    @routes.get("/return-requests", summary="Buyers' return and refund requests, those due soonest first.",
                responses=refusals(401, 403, 422))  # fmt: skip
    def list_requests(caller: Caller = reader, state: State | None = None) -> dict[str, Any]:
        with reading(hub.sessions) as session:
            return {"return_requests": return_requests.list_requests(session, state)}

    def answer(request_id: int, approve: bool, caller: Caller, reason: str | None) -> dict[str, Any]:
        try:
            with transaction(hub.sessions) as session:
                return return_requests.answer(session, request_id, approve, actor=caller.email, now=hub.clock.now(),
                                              reason=reason)  # fmt: skip
        except return_requests.UnknownRequest as error:
            raise HTTPException(404, str(error)) from None
        except (return_requests.AlreadyAnswered, return_requests.PastDeadline) as error:
            raise HTTPException(409, str(error)) from None
        except return_requests.ReturnRequestError as error:
            raise HTTPException(422, str(error)) from None

    @routes.post("/return-requests/{request_id}/approve", status_code=202,
                 summary="Approve the request; the channel is told next.",
                 responses=refusals(401, 403, 404, 409, 422))  # fmt: skip
    def approve(request_id: RequestId, caller: Caller = operator) -> dict[str, Any]:
        return answer(request_id, True, caller, None)

    @routes.post("/return-requests/{request_id}/reject", status_code=202,
                 summary="Reject the request; the channel is told next.",
                 responses=refusals(400, 401, 403, 404, 409, 413, 422))  # fmt: skip
    def reject(
        request_id: RequestId, caller: Caller = operator, body: Annotated[RejectIn | None, Body()] = None
    ) -> dict[str, Any]:
        return answer(request_id, False, caller, body.reason if body is not None else None)

    return routes
