"""Returns and refunds on TikTok (reference §7.1, §7.3).

- A store return (services/returns.py: goods a POS took back for a TikTok order) becomes one seller-initiated
  refund on TikTok for exactly its units (``tiktok.refund_return``). The goods are with the seller already, so it is
  a refund only (``REFUND``: nothing for the buyer to ship): TikTok's reason names come from Get Aftersale
  Eligibility, its amount from Calculate Refund, and Create Return carries an idempotency key of the return, so a
  retry after a lost answer gets the first answer. Before creating, the order's returns are searched for a refund
  of this return an earlier attempt opened (a crash between TikTok's answer and the hub's commit).
- Buyers' return and refund requests are read into ``return_requests`` (``tiktok.sync_returns``: per shop on a
  schedule, and soon after a return webhook) and answered (``tiktok.answer_return``) with the decision for the step
  TikTok waits for (``seller_next_action_response``).

Handlers call TikTok before they touch ctx.session.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from shopbridge.channels.tiktok.cancellations import REJECT_REASONS_PATH, pick_reject_reason, respond_by
from shopbridge.channels.tiktok.errors import TikTokPermanent, about_the_request
from shopbridge.channels.tiktok.shop import Shop, TikTokContext
from shopbridge.domain.money import InvalidAmount, Money
from shopbridge.logs import get_logger
from shopbridge.runtime.errors import PermanentError, RetryableError
from shopbridge.runtime.jobs import enqueue
from shopbridge.runtime.registry import JobContext, JobRegistry
from shopbridge.runtime.scheduler import Periodic, ensure_schedule
from shopbridge.services import returns
from shopbridge.services.return_requests import answer_return_kind
from shopbridge.store.db import dialect_insert, reading
from shopbridge.store.sync_issues import raise_issue, resolve_issue
from shopbridge.store.tables import ChannelAccount, Order, OrderLine, ReturnRequest, StoreReturn, SyncWatermark

REFUND_RETURN = returns.refund_kind("tiktok")
SYNC_RETURNS = "tiktok.sync_returns"
ANSWER_RETURN = answer_return_kind("tiktok")
SEARCH_PATH = "/return_refund/202309/returns/search"
CREATE_PATH = "/return_refund/202309/returns"
CALCULATE_PATH = "/return_refund/202309/refunds/calculate"
ELIGIBILITY_PATH = "/return_refund/202309/orders/{order_id}/aftersale_eligibility"
APPROVE_PATH = "/return_refund/202309/returns/{return_id}/approve"
REJECT_PATH = "/return_refund/202309/returns/{return_id}/reject"

REFUND = "REFUND"  # the goods are back with the seller: a refund only, nothing for the buyer to ship
SYNC_SECONDS = 300.0  # a request waits up to 48 h for the seller; five minutes leave people the rest
SYNC_OVERLAP = timedelta(minutes=10)  # each read starts this far before the newest update_time seen
INITIAL_LOOKBACK = timedelta(days=30)  # a shop's first read: requests still open are younger than this
WATERMARK = "returns"
OPENED_SLACK = timedelta(minutes=5)  # TikTok's clock against the hub's, when a refund opened earlier is looked for
UPSERT_BATCH = 500
DEFAULT_REFUND_REASON = "ecom_order_delivered_refund_and_return_reason_wrong_product_seller"
DEFAULT_REJECT_REASON = "seller_reject_apply_product_is_not_defective"
ANSWER_FAILED = "return_answer_failed"

# The step TikTok waits for -> the seller's decision (§7.3, "Seller decisions").
APPROVALS = {"SELLER_RESPOND_REFUND": "APPROVE_REFUND", "SELLER_RESPOND_RETURN": "APPROVE_RETURN",
             "SELLER_RESPOND_RECEIVE_PACKAGE": "APPROVE_RECEIVED_PACKAGE"}  # fmt: skip
REJECTIONS = {"SELLER_RESPOND_REFUND": "REJECT_REFUND", "SELLER_RESPOND_RETURN": "REJECT_RETURN",
              "SELLER_RESPOND_RECEIVE_PACKAGE": "REJECT_RECEIVED_PACKAGE"}  # fmt: skip
PENDING = frozenset({"RETURN_OR_REFUND_REQUEST_PENDING", "REPLACEMENT_REQUEST_PENDING", "EXCHANGE_REQUEST_PENDING"})
REJECTED = frozenset({"REFUND_OR_RETURN_REQUEST_REJECT", "REJECT_RECEIVE_PACKAGE", "REPLACEMENT_REQUEST_REJECT"})
CLOSED = frozenset({"RETURN_OR_REFUND_REQUEST_CANCEL", "REPLACEMENT_REQUEST_CANCEL", "EXCHANGE_REQUEST_CANCEL"})

log = get_logger("shopbridge.tiktok.returns")


# --- TikTok's return object ---------------------------------------------------------------------------------


def next_action(found: Mapping[str, Any]) -> str | None:
    """The step TikTok waits for from the seller: the first of ``seller_next_action_response``, or, for a request
    pending review that names none, the review its type asks for (a refund, or a return and refund)."""
    for action in found.get("seller_next_action_response") or []:
        if action.get("action"):
            return str(action["action"])
    if found.get("return_status") == "RETURN_OR_REFUND_REQUEST_PENDING":
        return "SELLER_RESPOND_REFUND" if found.get("return_type") == REFUND else "SELLER_RESPOND_RETURN"
    return None


def request_state(found: Mapping[str, Any]) -> str:
    """The hub's state of a buyer's request as TikTok shows it: pending while the seller must act, else rejected,
    closed (withdrawn by the buyer or cancelled by TikTok) or approved (refunded, or on its way: the buyer ships,
    the buyer weighs the seller's partial offer)."""
    status = str(found.get("return_status") or "")
    if next_action(found) is not None or status in PENDING:
        return "pending"
    if status in REJECTED:
        return "rejected"
    if status in CLOSED:
        return "closed"
    return "approved"


def refund_amount(found: Mapping[str, Any] | None) -> Money | None:
    """``refund_total`` of a ``refund_amount`` / ``order_refund_amount`` object, None when TikTok gives none."""
    if not found or found.get("refund_total") in (None, "") or not found.get("currency"):
        return None
    try:
        return Money.parse(str(found["refund_total"]), str(found["currency"]))
    except InvalidAmount as error:
        log.warning("tiktok.refund_amount_unreadable", amount=dict(found), error=str(error))
        return None


def returned_units(found: Mapping[str, Any]) -> dict[str, int]:
    """Units per TikTok sku_id of a return (one return line item per unit)."""
    return dict(Counter(str(item.get("sku_id") or "") for item in found.get("return_line_items") or []))


def _lines(found: Mapping[str, Any]) -> list[dict[str, Any]]:
    units: dict[tuple[str, str], int] = {}
    for item in found.get("return_line_items") or []:
        key = (str(item.get("seller_sku") or item.get("sku_id") or ""), str(item.get("sku_id") or ""))
        units[key] = units.get(key, 0) + 1
    return [{"sku": sku, "sku_id": sku_id, "quantity": quantity} for (sku, sku_id), quantity in units.items()]


def _instant(value: Any) -> datetime | None:
    return datetime.fromtimestamp(int(value), UTC) if str(value or "").isdigit() else None


def _word(value: Any, size: int) -> str | None:
    """A code of TikTok's as a column of ``size`` holds it."""
    return str(value)[:size] if value not in (None, "") else None


def _search(shop: Shop, body: Mapping[str, Any], **query: str) -> Iterator[dict[str, Any]]:
    return shop.pages("POST", SEARCH_PATH, "return_orders", body=body, query=query or None)


# --- store returns refunded on TikTok -------------------------------------------------------------------------


@dataclass(frozen=True)
class _Asked:
    """A store return as its refund needs it, read before any call."""

    return_id: int
    account_id: int
    order_external_id: str
    units: dict[str, int]  # TikTok sku_id -> units to refund
    problem: str | None  # what makes the refund impossible before asking TikTok
    since: datetime  # a refund of this return was opened after this
    claimed: frozenset[str]  # TikTok returns other store returns of the order hold
    twin_waiting: bool  # another return of the order waits for a refund of the same units
    settings: Mapping[str, Any]


@dataclass(frozen=True)
class _Refunded:
    external_id: str
    status: str | None
    amount: Money | None


@dataclass(frozen=True)
class _Refused:
    problem: str


def idempotency_key(return_id: int) -> str:
    return f"shopbridge-return-{return_id}"


def tiktok_units(lines: Mapping[str, Any], order_lines: Sequence[OrderLine],
                 order_external_id: str) -> tuple[dict[str, int], str | None]:  # fmt: skip
    """A return's units per TikTok sku_id, by the order's lines (the hub's SKU or TikTok's sku_id); or the SKU that
    is not on the order."""
    sku_ids: dict[str, str] = {}
    for line in order_lines:
        if line.external_sku_id:
            for key in (line.sku, line.external_sku_id):
                if key:
                    sku_ids.setdefault(key, line.external_sku_id)
    units: Counter[str] = Counter()
    for line in lines.get("lines") or []:
        sku_id = sku_ids.get(str(line.get("sku")))
        if sku_id is None:
            return {}, f"{line.get('sku')} is not on TikTok order {order_external_id}"
        units[sku_id] += int(line.get("quantity") or 0)
    return dict(units), None


def _read_asked(session: Session, return_id: int) -> _Asked | None:
    row = session.get(StoreReturn, return_id)
    if row is None:
        raise PermanentError(f"store return {return_id} does not exist")
    if row.state != "refunding" or row.order_id is None:
        return None  # refunded, refused or unmatched meanwhile: nothing to ask TikTok
    order = session.get(Order, row.order_id)
    assert order is not None
    account = session.get(ChannelAccount, order.channel_account_id)
    assert account is not None
    if account.channel != "tiktok":
        raise PermanentError(f"order {order.id} of store return {return_id} is not a TikTok order")
    order_lines = list(session.scalars(select(OrderLine).where(OrderLine.order_id == order.id)))
    units, problem = tiktok_units(row.lines or {}, order_lines, order.external_id)
    siblings = list(session.scalars(select(StoreReturn).where(StoreReturn.order_id == order.id,
                                                              StoreReturn.id != row.id)))  # fmt: skip
    twin_waiting = any(
        sibling.state == "refunding" and tiktok_units(sibling.lines or {}, order_lines, order.external_id)[0] == units
        for sibling in siblings
    )
    return _Asked(
        return_id=row.id, account_id=account.id, order_external_id=order.external_id, units=units, problem=problem,
        since=row.created_at - OPENED_SLACK, twin_waiting=twin_waiting,
        claimed=frozenset(s.refund_external_id for s in siblings if s.refund_external_id),
        settings=dict(account.settings or {}),
    )  # fmt: skip


def refund_return(context: TikTokContext, ctx: JobContext) -> None:
    """Refund a store return on TikTok (payload ``{"return_id"}``): exactly its units of the order, once, for
    TikTok's own amount, reported with ``returns.refunded``. TikTok's refusal (the order not eligible, more units
    than it can still refund, a parameter it rejects) is reported with ``returns.refund_refused``, quoting TikTok;
    throttling and server trouble are retried, the token's failure parks the shop."""
    return_id = int(ctx.payload.get("return_id") or 0)
    with reading(context.sessions) as session:
        asked = _read_asked(session, return_id)
    if asked is None:
        return
    outcome: _Refunded | _Refused
    if asked.problem is not None:
        outcome = _Refused(asked.problem)
    else:
        try:
            outcome = _refund(Shop(context, asked.account_id), asked)
        except TikTokPermanent as refused:
            if not about_the_request(refused):
                raise
            outcome = _Refused(str(refused))
    session, now = ctx.session, ctx.write_time()
    if isinstance(outcome, _Refused):
        log.info("tiktok.refund_refused", store_return=return_id, order=asked.order_external_id,
                 problem=outcome.problem)  # fmt: skip
        returns.refund_refused(session, return_id, outcome.problem, now=now)
        return
    log.info("tiktok.refund_opened", store_return=return_id, order=asked.order_external_id,
             refund=outcome.external_id, status=outcome.status)  # fmt: skip
    returns.refunded(session, return_id, external_id=outcome.external_id, status=outcome.status,
                     amount=outcome.amount, now=now)  # fmt: skip


def _refund(shop: Shop, asked: _Asked) -> _Refunded | _Refused:
    found = _opened_before(shop, asked)
    if found is not None:
        return found
    reason = _refund_reason(shop, asked)
    if isinstance(reason, _Refused):
        return reason
    skus = [{"sku_id": sku_id, "quantity": units} for sku_id, units in sorted(asked.units.items())]
    calculated = shop.call("POST", CALCULATE_PATH, body={"order_id": asked.order_external_id, "request_type": REFUND,
                                                        "reason_name": reason, "skus": skus})  # fmt: skip
    amount = refund_amount(calculated.get("order_refund_amount"))
    try:
        created = shop.call("POST", CREATE_PATH, query={"idempotency_key": idempotency_key(asked.return_id)},
                            body={"order_id": asked.order_external_id, "return_reason": reason,
                                  "return_type": REFUND, "skus": skus})  # fmt: skip
    except TikTokPermanent as error:
        if not about_the_request(error):
            raise
        # A create that landed before its answer was lost, whose key TikTok no longer knows: the units are taken.
        again = _opened_before(shop, asked)
        if again is not None:
            return again
        raise
    external_id = str(created.get("return_id") or "")
    if not external_id:
        raise RetryableError(f"TikTok answered the refund of store return {asked.return_id} without a return_id")
    return _Refunded(external_id, _word(created.get("return_status"), 50), amount)


def _opened_before(shop: Shop, asked: _Asked) -> _Refunded | None:
    """A refund of this return that an earlier attempt opened: a seller's return of the order, not refused or
    cancelled, for exactly these units, created after the store return, that no other store return holds. When
    another return of the order waits for the same units, either could own it: then the idempotency key decides."""
    if asked.twin_waiting:
        return None
    candidates = [
        found for found in _search(shop, {"order_ids": [asked.order_external_id]})
        if found.get("role") == "SELLER" and str(found.get("return_id") or "")
        and str(found["return_id"]) not in asked.claimed
        and str(found.get("return_status") or "") not in REJECTED | CLOSED
        and (_instant(found.get("create_time")) or asked.since) >= asked.since
        and returned_units(found) == asked.units
    ]  # fmt: skip
    if not candidates:
        return None
    first = min(candidates, key=lambda found: (int(found.get("create_time") or 0), str(found["return_id"])))
    log.info("tiktok.refund_found", store_return=asked.return_id, refund=first["return_id"])
    return _Refunded(str(first["return_id"]), _word(first.get("return_status"), 50),
                     refund_amount(first.get("refund_amount")))  # fmt: skip


def _refund_reason(shop: Shop, asked: _Asked) -> str | _Refused:
    """The return reason to give: among the names TikTok offers the seller for refunding these SKUs (Get Aftersale
    Eligibility), the account's ``refund_reason`` if offered, else TikTok's first. When none of the SKUs' units can
    be refunded, TikTok's own code and reason for that."""
    data = shop.call("GET", ELIGIBILITY_PATH.format(order_id=asked.order_external_id),
                     query={"initiate_aftersale_user": "SELLER", "request_types": [REFUND]})  # fmt: skip
    offered: list[str] = []
    eligible = False
    refusal: str | None = None
    for sku in data.get("sku_eligibility") or []:
        if str(sku.get("sku_id")) not in asked.units:
            continue
        for line in sku.get("line_item_eligibility") or []:
            if line.get("request_type") not in (None, REFUND):
                continue
            if line.get("eligible"):
                eligible = True
                offered += [str(name) for name in line.get("available_reason_names") or [] if name not in offered]
            elif refusal is None:
                refusal = (f"TikTok {line.get('ineligible_code') or 'INELIGIBLE'}: "
                           f"{line.get('ineligible_reason') or 'no refund can be opened for these items'}")  # fmt: skip
    preferred = str(asked.settings.get("refund_reason") or "") or None
    if not eligible:
        return _Refused(refusal or f"TikTok lists none of the returned SKUs on order {asked.order_external_id}")
    if preferred in offered or (preferred and not offered):
        return str(preferred)
    return offered[0] if offered else DEFAULT_REFUND_REASON


# --- buyers' return and refund requests ---------------------------------------------------------------------------


def ensure_return_schedule(session: Session, account_id: int, now: datetime, every: float = SYNC_SECONDS) -> None:
    """The shop's periodic read of buyers' return and refund requests (the first at once)."""
    ensure_schedule(session, Periodic(f"{SYNC_RETURNS}:{account_id}", SYNC_RETURNS, every,
                                      channel_account_id=account_id), now=now)  # fmt: skip


def queue_return_sync(session: Session, account_id: int, *, now: datetime) -> None:
    """Read the shop's return requests soon (a return webhook arrived): one waiting read per shop."""
    enqueue(session, SYNC_RETURNS, {}, now=now, channel_account_id=account_id,
            identity_key=f"{SYNC_RETURNS}:{account_id}", priority=20)  # fmt: skip


def sync_returns(context: TikTokContext, ctx: JobContext) -> None:
    """Read the shop's returns updated since the watermark (less an overlap), and keep the buyers' requests in
    ``return_requests``: a request is added once the seller must act on it, and every request the hub has follows
    TikTok's status (a request being answered stays so while TikTok still waits for that answer). Refunds the
    seller opened (the hub's own, for store returns) are not requests."""
    account_id = _account_id(ctx)
    with reading(context.sessions) as session:
        mark = session.get(SyncWatermark, (account_id, WATERMARK))
        watermark = mark.value if mark is not None else None
    since = watermark - SYNC_OVERLAP if watermark is not None else ctx.now - INITIAL_LOOKBACK
    shop = Shop(context, account_id)
    listed = list(_search(shop, {"update_time_ge": int(since.timestamp())}, sort_field="update_time",
                          sort_order="ASC"))  # fmt: skip
    requests = {str(found["return_id"]): found for found in listed
                if found.get("return_id") and found.get("role") != "SELLER"}  # fmt: skip
    external_orders = sorted({str(found.get("order_id") or "") for found in requests.values()})
    with reading(context.sessions) as session:
        orders = dict(session.execute(
            select(Order.external_id, Order.id).where(
                Order.channel_account_id == account_id, Order.external_id.in_(external_orders)
            )
        ).all()) if external_orders else {}  # fmt: skip
    session, now = ctx.session, ctx.write_time()
    for external_id, found in requests.items():
        if request_state(found) == "pending":
            session.execute(
                dialect_insert(session)(ReturnRequest)
                .values(channel_account_id=account_id, external_id=external_id, state="pending",
                        external_order_id=str(found.get("order_id") or ""),
                        requested_at=_instant(found.get("create_time")) or now, updated_at=now)
                .on_conflict_do_nothing(index_elements=["channel_account_id", "external_id"])
            )  # fmt: skip
    ids = sorted(requests)
    for start in range(0, len(ids), UPSERT_BATCH):
        for row in session.scalars(
            select(ReturnRequest).where(ReturnRequest.channel_account_id == account_id,
                                        ReturnRequest.external_id.in_(ids[start : start + UPSERT_BATCH]))
            .with_for_update()
        ):  # fmt: skip
            _follow(row, requests[row.external_id], orders, now)
    _advance_watermark(session, account_id, watermark, listed, now)


def _follow(row: ReturnRequest, found: Mapping[str, Any], orders: Mapping[str, int], now: datetime) -> None:
    """Bring a request up to TikTok's view of it."""
    state, action = request_state(found), _word(next_action(found), 50)
    answering = row.state in ("approving", "rejecting") and state == "pending" and action == row.next_action
    if not answering:
        if state == "pending" and row.state != "pending":
            row.error = None  # a new step waits for the seller (the buyer shipped the goods back)
        row.state = state
    amount = refund_amount(found.get("refund_amount"))
    row.external_order_id = str(found.get("order_id") or row.external_order_id)
    row.order_id = orders.get(row.external_order_id, row.order_id)
    row.request_type, row.channel_status = _word(found.get("return_type"), 30), _word(found.get("return_status"), 50)
    row.next_action, row.respond_by = action, respond_by(found)
    row.reason = str(found.get("return_reason_text") or found.get("return_reason") or "") or None
    row.refund_minor = amount.to_minor() if amount is not None else None
    row.currency = amount.currency if amount is not None else None
    row.lines = {"lines": _lines(found)}
    row.updated_at = now


def _advance_watermark(session: Session, account_id: int, watermark: datetime | None,
                       listed: Sequence[Mapping[str, Any]], now: datetime) -> None:  # fmt: skip
    """The watermark becomes the newest update_time read, never "now", so a late write is not skipped."""
    seen = [moment for found in listed if (moment := _instant(found.get("update_time"))) is not None]
    if not seen or (watermark is not None and max(seen) <= watermark):
        return
    newest = max(seen)
    session.execute(
        dialect_insert(session)(SyncWatermark)
        .values(channel_account_id=account_id, stream=WATERMARK, value=newest, updated_at=now)
        .on_conflict_do_update(index_elements=["channel_account_id", "stream"],
                               set_={"value": newest, "updated_at": now})
    )  # fmt: skip


def answer_return(context: TikTokContext, ctx: JobContext) -> None:
    """Approve or reject a buyer's request on TikTok (payload ``{"request_id", "approve", "reason"?}``), with the
    decision for the step the person answered: a refund (APPROVE_REFUND / REJECT_REFUND), a return
    (APPROVE_RETURN / REJECT_RETURN) or the goods the buyer sent back (APPROVE_RECEIVED_PACKAGE /
    REJECT_RECEIVED_PACKAGE). A rejection gives the reject reason TikTok offers that ``reason`` names, else the
    account's ``return_reject_reason``, else TikTok's first; other words go as the comment. A step TikTok no longer
    waits for is not answered again: the request follows TikTok. A refusal keeps the request pending with TikTok's
    message in ``error`` and a ``return_answer_failed`` issue, for a person to answer again."""
    request_id = int(ctx.payload.get("request_id") or 0)
    approve = bool(ctx.payload.get("approve"))
    given = str(ctx.payload.get("reason") or "").strip() or None
    with reading(context.sessions) as session:
        request = session.get(ReturnRequest, request_id)
        account = session.get(ChannelAccount, request.channel_account_id) if request is not None else None
    if request is None or account is None:
        raise PermanentError(f"return request {request_id} does not exist")
    if request.state not in ("approving", "rejecting"):
        return
    shop = Shop(context, account.id)
    found = _return_now(shop, request.external_id)
    wanted = "approved" if approve else "rejected"
    answered = request.next_action or next_action(found)  # the step the person saw
    refusal: str | None = None
    sent = False
    if answered is not None and next_action(found) == answered:
        decision = (APPROVALS if approve else REJECTIONS).get(answered)
        if decision is None:
            refusal = f"TikTok waits for {answered}, which the hub does not answer: answer it in Seller Center"
        else:
            try:
                _send(shop, request, decision, given, account.settings or {})
                sent = True
            except TikTokPermanent as refused:
                if not about_the_request(refused):
                    raise
                refusal = str(refused)
            found = _return_now(shop, request.external_id)
    state = request_state(found)
    moved_on = state == "pending" and next_action(found) != answered  # a further step waits (the goods came back)
    error: str | None = None
    if sent or (moved_on and approve):
        state = "pending" if moved_on else wanted  # TikTok took it (or had: an answer whose reply was lost)
    elif state != wanted:
        shown = f"TikTok shows the return as {found.get('return_status')}"
        error = refusal or f"{shown}: the {'approval' if approve else 'rejection'} was not sent"
    session, now = ctx.session, ctx.write_time()
    row = session.get(ReturnRequest, request_id, with_for_update=True)
    assert row is not None
    _follow(row, found, {}, now)
    row.state, row.error = state, error
    if sent:
        row.answered_at = now
    fingerprint = f"{ANSWER_FAILED}:{request_id}"
    if error is None:
        resolve_issue(session, fingerprint, now)
        return
    raise_issue(
        session, kind=ANSWER_FAILED, severity="error", fingerprint=fingerprint,
        message=f"TikTok refused to {'approve' if approve else 'reject'} the return request of order "
        f"{row.external_order_id}: {error}",
        now=now, channel_account_id=account.id, subject_type="return_request", subject_id=str(request_id),
        details={"external_id": row.external_id, "external_order_id": row.external_order_id, "approve": approve,
                 "channel_status": row.channel_status, "act": "ops"},
    )  # fmt: skip


def _send(shop: Shop, request: ReturnRequest, decision: str, given: str | None, settings: Mapping[str, Any]) -> None:
    query = {"idempotency_key": f"shopbridge-answer-return-{request.id}-{decision}"}
    if decision.startswith("APPROVE"):
        shop.call("POST", APPROVE_PATH.format(return_id=request.external_id), query=query, body={"decision": decision})
        return
    offered = shop.call("GET", REJECT_REASONS_PATH, query={"return_or_cancel_id": request.external_id})
    reasons = offered.get("reasons") or []
    preferred = str(settings.get("return_reject_reason") or "") or None
    reason = pick_reject_reason(reasons, given, preferred) if reasons else preferred or DEFAULT_REJECT_REASON
    body: dict[str, Any] = {"decision": decision, "reject_reason": reason}
    if given and given != reason:
        body["comment"] = given[:500]
    shop.call("POST", REJECT_PATH.format(return_id=request.external_id), query=query, body=body)


def _return_now(shop: Shop, external_id: str) -> dict[str, Any]:
    for found in _search(shop, {"return_ids": [external_id]}):
        if str(found.get("return_id")) == external_id:
            return found
    raise PermanentError(f"TikTok does not list return {external_id}")


def _account_id(ctx: JobContext) -> int:
    if ctx.channel_account_id is None:
        raise PermanentError(f"{ctx.kind} job {ctx.job_id} names no channel account")
    return ctx.channel_account_id


def register(registry: JobRegistry, context: TikTokContext) -> None:
    registry.register(REFUND_RETURN, partial(refund_return, context), priority=10)
    registry.register(SYNC_RETURNS, partial(sync_returns, context), priority=20)
    registry.register(ANSWER_RETURN, partial(answer_return, context), priority=10)
