"""Buyers' cancellation requests on TikTok (reference §7.2): read the ones waiting for the seller into
``cancellation_requests``, and send the seller's answer (approve, or reject with one of TikTok's reject reasons).

A request TikTok no longer lists as pending was settled there (the buyer withdrew it, or TikTok approved it at its
deadline): its row is closed with TikTok's final status. Handlers call TikTok before they touch ctx.session.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from functools import partial
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from shopbridge.channels.tiktok.errors import TikTokPermanent, about_the_request
from shopbridge.channels.tiktok.shop import Shop, TikTokContext
from shopbridge.runtime.errors import PermanentError
from shopbridge.runtime.jobs import enqueue
from shopbridge.runtime.registry import JobContext, JobRegistry
from shopbridge.runtime.scheduler import Periodic, ensure_schedule
from shopbridge.services.fulfilment import answer_cancellation_kind
from shopbridge.store.db import dialect_insert, reading
from shopbridge.store.sync_issues import raise_issue, resolve_issue
from shopbridge.store.tables import CancellationRequest, ChannelAccount, Order

SYNC_CANCELLATIONS = "tiktok.sync_cancellations"
ANSWER_CANCELLATION = answer_cancellation_kind("tiktok")
SEARCH_PATH = "/return_refund/202309/cancellations/search"
APPROVE_PATH = "/return_refund/202309/cancellations/{cancel_id}/approve"
REJECT_PATH = "/return_refund/202309/cancellations/{cancel_id}/reject"
REJECT_REASONS_PATH = "/return_refund/202309/reject_reasons"
SYNC_SECONDS = 300.0  # a request waits up to 24 h for the seller; five minutes leave people the rest

PENDING = "CANCELLATION_REQUEST_PENDING"
APPROVED = frozenset({"CANCELLATION_REQUEST_SUCCESS", "CANCELLATION_REQUEST_COMPLETE"})
WITHDRAWN = frozenset({"CANCELLATION_REQUEST_CANCEL", "CANCELLATION_REQUEST_CANCELLED"})  # both spellings (§7.2)
BUYER_TYPES = frozenset({"BUYER_CANCEL", "REQUEST_CANCEL_REFUND"})
DEFAULT_REJECT_REASON = "seller_reject_apply_product_has_been_packed"
ANSWER_FAILED = "cancellation_answer_failed"
SEARCH_BATCH = 50  # cancel_ids per search


def ensure_cancellation_schedule(session: Session, account_id: int, now: datetime,
                                 every: float = SYNC_SECONDS) -> None:  # fmt: skip
    """The shop's periodic read of buyers' cancellation requests (the first at once)."""
    ensure_schedule(session, Periodic(f"{SYNC_CANCELLATIONS}:{account_id}", SYNC_CANCELLATIONS, every,
                                      channel_account_id=account_id), now=now)  # fmt: skip


def queue_cancellation_sync(session: Session, account_id: int, *, now: datetime) -> None:
    """Read the shop's cancellation requests soon (an order sync saw one): one waiting read per shop."""
    enqueue(session, SYNC_CANCELLATIONS, {}, now=now, channel_account_id=account_id,
            identity_key=f"{SYNC_CANCELLATIONS}:{account_id}", priority=20)  # fmt: skip


def from_buyer(cancellation: Mapping[str, Any]) -> bool:
    return cancellation.get("role") == "BUYER" or cancellation.get("cancel_type") in BUYER_TYPES


def respond_by(cancellation: Mapping[str, Any]) -> datetime | None:
    """The seller's deadline to answer (``seller_next_action_response``), or None if TikTok gives none."""
    deadlines = [int(action["deadline"]) for action in cancellation.get("seller_next_action_response") or []
                 if str(action.get("deadline") or "").isdigit()]  # fmt: skip
    return datetime.fromtimestamp(min(deadlines), UTC) if deadlines else None


def sync_cancellations(context: TikTokContext, ctx: JobContext) -> None:
    """Upsert the shop's buyer cancellation requests pending the seller's review; close the rows of pending
    requests TikTok no longer lists as pending, with the status it gives them now."""
    account_id = _account_id(ctx)
    shop = Shop(context, account_id)
    listed = [c for c in shop.pages("POST", SEARCH_PATH, "cancellations", body={"cancel_status": [PENDING]})
              if from_buyer(c) and c.get("cancel_status") == PENDING]  # fmt: skip
    pending_ids = {str(c["cancel_id"]) for c in listed}
    with reading(context.sessions) as session:
        waiting = set(session.scalars(
            select(CancellationRequest.external_id).where(
                CancellationRequest.channel_account_id == account_id, CancellationRequest.state == "pending"
            )
        ))  # fmt: skip
        external_orders = {str(c["order_id"]) for c in listed}
        orders = dict(session.execute(
            select(Order.external_id, Order.id).where(
                Order.channel_account_id == account_id, Order.external_id.in_(sorted(external_orders))
            )
        ).all()) if external_orders else {}  # fmt: skip
    settled = sorted(waiting - pending_ids)
    final: dict[str, str] = {}
    for start in range(0, len(settled), SEARCH_BATCH):
        batch = settled[start : start + SEARCH_BATCH]
        for cancellation in shop.pages("POST", SEARCH_PATH, "cancellations", body={"cancel_ids": batch}):
            final[str(cancellation["cancel_id"])] = str(cancellation.get("cancel_status") or "")
    session, now = ctx.session, ctx.write_time()
    for cancellation in listed:
        changing = {
            "external_order_id": str(cancellation["order_id"]), "order_id": orders.get(str(cancellation["order_id"])),
            "channel_status": PENDING, "reason": _reason(cancellation), "respond_by": respond_by(cancellation),
            "updated_at": now,
        }  # fmt: skip
        session.execute(
            dialect_insert(session)(CancellationRequest)
            .values(channel_account_id=account_id, external_id=str(cancellation["cancel_id"]), state="pending",
                    requested_at=_instant(cancellation.get("create_time")) or now, **changing)
            .on_conflict_do_update(index_elements=["channel_account_id", "external_id"], set_=changing)
        )  # fmt: skip
    if settled:
        for row in session.scalars(
            select(CancellationRequest).where(
                CancellationRequest.channel_account_id == account_id, CancellationRequest.external_id.in_(settled),
                CancellationRequest.state == "pending",
            )
        ):  # fmt: skip
            row.state, row.updated_at = "closed", now
            row.channel_status = final.get(row.external_id) or row.channel_status


def answer_cancellation(context: TikTokContext, ctx: JobContext) -> None:
    """Approve or reject a buyer's request on TikTok (payload ``{"request_id", "approve", "reason"?}``). A
    rejection takes the reject reason TikTok offers for the request that matches ``reason`` (a reason's name or
    text), else the account's ``cancel_reject_reason``, else TikTok's first; other words in ``reason`` go as the
    comment. A refusal keeps the request pending with TikTok's message in ``error``, for a person to answer again."""
    request_id = int(ctx.payload.get("request_id") or 0)
    approve = bool(ctx.payload.get("approve"))
    given = str(ctx.payload.get("reason") or "").strip() or None
    with reading(context.sessions) as session:
        request = session.get(CancellationRequest, request_id)
        account = session.get(ChannelAccount, request.channel_account_id) if request is not None else None
    if request is None or account is None:
        raise PermanentError(f"cancellation request {request_id} does not exist")
    if request.state in ("approved", "rejected", "closed"):
        return
    shop = Shop(context, account.id)
    key = f"answer-cancellation-{request.id}"
    state, channel_status, error = ("approved", "CANCELLATION_REQUEST_SUCCESS", None) if approve else (
        "rejected", "CANCELLATION_REQUEST_CANCEL", None)  # fmt: skip
    try:
        if approve:
            shop.call("POST", APPROVE_PATH.format(cancel_id=request.external_id), query={"idempotency_key": key})
        else:
            offered = shop.call("GET", REJECT_REASONS_PATH, query={"return_or_cancel_id": request.external_id})
            reason = pick_reject_reason(offered.get("reasons") or [], given,
                                        (account.settings or {}).get("cancel_reject_reason"))  # fmt: skip
            body: dict[str, Any] = {"reject_reason": reason}
            if given and given != reason:
                body["comment"] = given[:500]
            shop.call("POST", REJECT_PATH.format(cancel_id=request.external_id), query={"idempotency_key": key},
                      body=body)  # fmt: skip
    except TikTokPermanent as refused:
        if not about_the_request(refused):
            raise
        now_status = _status_now(shop, request.external_id)
        channel_status = now_status or request.channel_status or PENDING
        if now_status in APPROVED:
            state = "approved" if approve else "closed"
        elif now_status in WITHDRAWN:
            state = "rejected" if not approve else "closed"
        else:
            state = "pending"
        if state != ("approved" if approve else "rejected"):
            error = str(refused)
    session, now = ctx.session, ctx.write_time()
    row = session.get(CancellationRequest, request_id)
    assert row is not None
    row.state, row.channel_status, row.error, row.updated_at = state, channel_status, error, now
    if state in ("approved", "rejected"):
        row.answered_at = now
    fingerprint = f"{ANSWER_FAILED}:{request_id}"
    if error is None:
        resolve_issue(session, fingerprint, now)
        return
    raise_issue(
        session, kind=ANSWER_FAILED, severity="error", fingerprint=fingerprint,
        message=f"TikTok refused to {'approve' if approve else 'reject'} the cancellation request of order "
        f"{row.external_order_id}: {error}",
        now=now, channel_account_id=account.id, subject_type="cancellation_request", subject_id=str(request_id),
        details={"external_id": row.external_id, "external_order_id": row.external_order_id, "approve": approve,
                 "channel_status": channel_status, "act": "ops"},
    )  # fmt: skip


def pick_reject_reason(offered: Sequence[Mapping[str, Any]], given: str | None, preferred: str | None) -> str:
    """The reject reason name to send: the one of TikTok's offered reasons that ``given`` names (by name or text,
    ignoring case), else the account's ``preferred`` one if offered, else TikTok's first offer."""
    names = {str(reason.get("name")): str(reason.get("text") or "") for reason in offered if reason.get("name")}
    for candidate in (given, preferred):
        if not candidate:
            continue
        wanted = candidate.strip().casefold()
        for name, text in names.items():
            if wanted in (name.casefold(), text.casefold()):
                return name
    return next(iter(names), preferred or DEFAULT_REJECT_REASON)


def _status_now(shop: Shop, cancel_id: str) -> str | None:
    for cancellation in shop.pages("POST", SEARCH_PATH, "cancellations", body={"cancel_ids": [cancel_id]}):
        if str(cancellation.get("cancel_id")) == cancel_id:
            return str(cancellation.get("cancel_status") or "") or None
    return None


def _reason(cancellation: Mapping[str, Any]) -> str | None:
    text, key = cancellation.get("cancel_reason_text"), cancellation.get("cancel_reason")
    return str(text or key) if text or key else None


def _instant(value: Any) -> datetime | None:
    return datetime.fromtimestamp(int(value), UTC) if str(value or "").isdigit() else None


def _account_id(ctx: JobContext) -> int:
    if ctx.channel_account_id is None:
        raise PermanentError(f"{ctx.kind} job {ctx.job_id} names no channel account")
    return ctx.channel_account_id


def register(registry: JobRegistry, context: TikTokContext) -> None:
    registry.register(SYNC_CANCELLATIONS, partial(sync_cancellations, context), priority=20)
    registry.register(ANSWER_CANCELLATION, partial(answer_cancellation, context), priority=10)
