"""TikTok's Finance API read into the hub (reference §8): statements, each statement's transactions and payments.

``tiktok.import_finance`` runs per shop on a schedule (``SHOPBRIDGE_TIKTOK_FINANCE_IMPORT_SECONDS``) and on demand;
``shopbridge finance import`` runs the same pass in its own process. A pass reads statements from the account's
``finance`` watermark less an overlap (and from the oldest statement or payment still PROCESSING, so a payout is
seen paid), the transactions of every statement the hub does not hold in full, and the payments of the same window;
then it writes everything and moves the watermark in one transaction. Rows are upserted on (shop, TikTok id), so
passes that overlap, repeat or race change nothing twice. Amounts keep TikTok's signs (income positive, charges
negative) in minor units beside their currency.

The flat 202309 shape is read: it names every per-order component the hub keeps. A reserve is a transaction of
type ``RESERVE`` (§8.5); its settlement is the reserve.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any, Protocol

from sqlalchemy.orm import Session

from shopbridge.channels.tiktok.shop import Shop, TikTokContext
from shopbridge.domain.money import InvalidAmount, Money
from shopbridge.logs import get_logger
from shopbridge.runtime.errors import PermanentError
from shopbridge.runtime.jobs import enqueue
from shopbridge.runtime.registry import JobContext, JobRegistry
from shopbridge.runtime.scheduler import Periodic, ensure_schedule
from shopbridge.services import finance
from shopbridge.store.db import reading, transaction

IMPORT_FINANCE = "tiktok.import_finance"
STATEMENTS_PATH = "/finance/202309/statements"
TRANSACTIONS_PATH = "/finance/202309/statements/{statement_id}/statement_transactions"
PAYMENTS_PATH = "/finance/202309/payments"
WATERMARK = "finance"
IMPORT_SECONDS = 3600.0  # statements close once a day; an hour shows a payout's status soon enough
OVERLAP = timedelta(days=2)  # a statement TikTok writes late, stamped with its day, is still read
INITIAL_LOOKBACK = timedelta(days=30)  # a shop's first pass; `shopbridge finance import --since` reads further back
PENDING = "PROCESSING"  # a statement or payment not paid yet, read again until it is
PAGE_SIZE = 100  # the largest page the finance endpoints take

log = get_logger("shopbridge.tiktok.finance")


class Progress(Protocol):
    """What a pass reports as it reads; the command line draws it, the job ignores it."""

    def listed(self, statements: int) -> None:
        """The statements of the window are known."""

    def statement_read(self, transactions: int) -> None:
        """One statement is done, with this many transactions read (0 when the hub already held them all)."""


class _Quiet:
    def listed(self, statements: int) -> None:
        pass

    def statement_read(self, transactions: int) -> None:
        pass


# --- TikTok's objects -> rows -----------------------------------------------------------------------------


def _instant(value: Any) -> datetime | None:
    """A Unix time of TikTok's; 0, empty or absent is no time."""
    text = str(value or "").strip()
    return datetime.fromtimestamp(int(text), UTC) if text.isdigit() and int(text) > 0 else None


def _currency(found: Mapping[str, Any], what: str) -> str:
    currency = str(found.get("currency") or "")
    if not currency:
        raise PermanentError(f"TikTok's {what} {found.get('id')} has no currency")
    return currency


def _minor(found: Mapping[str, Any], key: str, currency: str, what: str) -> int:
    """``found[key]``, a decimal string such as ``"-12.50"``, in minor units of ``currency``; absent or empty is 0."""
    value = found.get(key)
    if value in (None, ""):
        return 0
    try:
        return Money.parse(str(value), currency).to_minor()
    except InvalidAmount as error:
        raise PermanentError(f"TikTok's {what} {found.get('id')}: {key} {value!r}: {error}") from None


def _required_id(found: Mapping[str, Any], what: str) -> str:
    external_id = str(found.get("id") or "")
    if not external_id:
        raise PermanentError(f"TikTok sent a {what} without an id: {dict(found)}")
    return external_id


def statement_row(found: Mapping[str, Any]) -> dict[str, Any]:
    """A statement of Get Statements (§8.2) as a ``finance_statements`` row."""
    currency = _currency(found, "statement")
    when = _instant(found.get("statement_time"))
    if when is None:
        raise PermanentError(f"TikTok's statement {found.get('id')} has no statement_time")

    def minor(key: str) -> int:
        return _minor(found, key, currency, "statement")

    return {
        "external_id": _required_id(found, "statement"),
        "statement_time": when,
        "payment_status": str(found.get("payment_status") or "")[:20] or None,
        "currency": currency,
        "settlement_minor": minor("settlement_amount"),
        "revenue_minor": minor("revenue_amount"),
        "fee_minor": minor("fee_amount"),
        "adjustment_minor": minor("adjustment_amount"),
        "shipping_cost_minor": minor("shipping_cost_amount"),
        "net_sales_minor": minor("net_sales_amount"),
        "payment_external_id": str(found.get("payment_id") or "") or None,
        "paid_at": _instant(found.get("payment_time")),
    }


def transaction_row(found: Mapping[str, Any], settled_at: datetime) -> dict[str, Any]:
    """A transaction of Get Statement Transactions (202309, flat) as a ``finance_transactions`` row, without the
    statement and order ids the store adds."""
    currency = _currency(found, "statement transaction")
    kind = str(found.get("type") or "")[:60]

    def minor(key: str) -> int:
        return _minor(found, key, currency, "statement transaction")

    settlement = minor("settlement_amount")
    reserve = minor("reserve_amount") or (settlement if kind == "RESERVE" else 0)
    return {
        "external_id": _required_id(found, "statement transaction"),
        "type": kind,
        "external_order_id": str(found.get("order_id") or "") or None,
        "currency": currency,
        "revenue_minor": minor("revenue_amount"),
        "platform_commission_minor": minor("platform_commission_amount"),
        "referral_fee_minor": minor("referral_fee_amount"),
        "transaction_fee_minor": minor("transaction_fee_amount"),
        "affiliate_commission_minor": minor("affiliate_commission_amount"),
        "fee_minor": minor("fee_amount"),
        "shipping_cost_minor": minor("shipping_cost_amount"),
        "refund_minor": minor("customer_refund_amount"),
        "adjustment_minor": minor("adjustment_amount"),
        "reserve_minor": reserve,
        "settlement_minor": settlement,
        "order_created_at": _instant(found.get("order_create_time")),
        "settled_at": settled_at,
    }


def _money(found: Any, what: str, payment_id: str) -> Money | None:
    """A ``{value, currency}`` object of a payment; None when TikTok leaves it out."""
    if not isinstance(found, Mapping) or found.get("value") in (None, "") or not found.get("currency"):
        return None
    try:
        return Money.parse(str(found["value"]), str(found["currency"]))
    except InvalidAmount as error:
        raise PermanentError(f"TikTok's payment {payment_id}: {what} {dict(found)}: {error}") from None


def payment_row(found: Mapping[str, Any]) -> dict[str, Any]:
    """A payout of Get Payments (§8.3) as a ``finance_payments`` row. The amount paid may be in another currency
    than the settlement (after exchange); the reserve must be in the settlement's."""
    external_id = _required_id(found, "payment")
    amount = _money(found.get("amount"), "amount", external_id)
    if amount is None:
        raise PermanentError(f"TikTok's payment {external_id} has no amount")
    settlement = _money(found.get("settlement_amount"), "settlement_amount", external_id)
    reserve = _money(found.get("reserve_amount"), "reserve_amount", external_id)
    settled_in = settlement.currency if settlement is not None else amount.currency
    if reserve is not None and reserve.currency != settled_in:
        raise PermanentError(f"TikTok's payment {external_id}: reserve in {reserve.currency}, settlement in "
                             f"{settled_in}: currencies are never mixed")  # fmt: skip
    created = _instant(found.get("create_time"))
    if created is None:
        raise PermanentError(f"TikTok's payment {external_id} has no create_time")
    return {
        "external_id": external_id,
        "status": str(found.get("status") or "")[:20] or None,
        "amount_minor": amount.to_minor(),
        "currency": amount.currency,
        "settlement_minor": settlement.to_minor() if settlement is not None else None,
        "settlement_currency": settlement.currency if settlement is not None else None,
        "reserve_minor": reserve.to_minor() if reserve is not None else None,
        "created_at": created,
        "paid_at": _instant(found.get("paid_time")),
        "bank_account": str(found.get("bank_account") or "")[:40] or None,
    }


# --- one pass ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    """Where a pass starts, and what the hub already holds from there (statement id -> settlement, transactions
    read). ``full`` reads every statement's transactions again."""

    since: datetime
    known: Mapping[str, tuple[int, int | None]]
    full: bool


def plan(session: Session, account_id: int, *, now: datetime, since: datetime | None = None) -> Plan:
    """From ``since`` when given (every transaction read again), else from the watermark less the overlap (the
    initial lookback on a first pass), or earlier to reach the oldest statement or payment still unpaid."""
    if since is not None:
        return Plan(since, {}, full=True)
    mark = finance.watermark_of(session, account_id, WATERMARK)
    start = mark - OVERLAP if mark is not None else now - INITIAL_LOOKBACK
    unpaid = finance.oldest_unpaid(session, account_id, PENDING)
    if unpaid is not None:
        start = min(start, unpaid)
    return Plan(start, finance.known_statements(session, account_id, start), full=False)


def _needs_transactions(row: Mapping[str, Any], plan: Plan) -> bool:
    if plan.full:
        return True
    held = plan.known.get(str(row["external_id"]))
    return held is None or held[1] is None or held[0] != row["settlement_minor"]


def read(shop: Shop, plan: Plan, progress: Progress | None = None) -> finance.FinanceRead:
    """Every call of the pass, before any write."""
    progress = progress or _Quiet()
    window = {"sort_order": "ASC"}
    statements = [statement_row(found) for found in shop.pages(
        "GET", STATEMENTS_PATH, "statements", page_size=PAGE_SIZE,
        query={**window, "sort_field": "statement_time", "statement_time_ge": int(plan.since.timestamp())},
    )]  # fmt: skip
    progress.listed(len(statements))
    transactions: dict[str, list[dict[str, Any]]] = {}
    for row in statements:
        if not _needs_transactions(row, plan):
            progress.statement_read(0)
            continue
        path = TRANSACTIONS_PATH.format(statement_id=row["external_id"])
        lines = [transaction_row(found, row["statement_time"]) for found in shop.pages(
            "GET", path, "statement_transactions", page_size=PAGE_SIZE,
            query={**window, "sort_field": "order_create_time"},
        )]  # fmt: skip
        transactions[str(row["external_id"])] = lines
        row["transaction_count"] = len(lines)
        progress.statement_read(len(lines))
    payments = [payment_row(found) for found in shop.pages(
        "GET", PAYMENTS_PATH, "payments", page_size=PAGE_SIZE,
        query={**window, "sort_field": "create_time", "create_time_ge": int(plan.since.timestamp())},
    )]  # fmt: skip
    return finance.FinanceRead(statements, transactions, payments)


def import_now(
    context: TikTokContext, account_id: int, *, now: Callable[[], datetime], since: datetime | None = None,
    progress: Progress | None = None, stored: Callable[[Session, finance.FinanceCounts], None] | None = None,
) -> finance.FinanceCounts:  # fmt: skip
    """One pass in the caller's process (the command line's import), committed in a transaction of its own;
    ``stored`` runs in that transaction (the audit entry of who asked)."""
    with reading(context.sessions) as session:
        planned = plan(session, account_id, now=now(), since=since)
    found = read(Shop(context, account_id), planned, progress)
    with transaction(context.sessions) as session:
        counts = finance.store(session, account_id, found, now=now(), watermark=WATERMARK)
        if stored is not None:
            stored(session, counts)
    return counts


def import_finance(context: TikTokContext, ctx: JobContext) -> None:
    """The job: one pass whose writes commit with the job's success (payload ``{"since": unix time}``, optional)."""
    if ctx.channel_account_id is None:
        raise PermanentError(f"{ctx.kind} job {ctx.job_id} names no channel account")
    account_id = ctx.channel_account_id
    since = _instant(ctx.payload.get("since"))
    with reading(context.sessions) as session:
        planned = plan(session, account_id, now=ctx.now, since=since)
    found = read(Shop(context, account_id), planned)
    counts = finance.store(ctx.session, account_id, found, now=ctx.write_time(), watermark=WATERMARK)
    log.info("tiktok.finance_imported", channel_account_id=account_id, since=planned.since.isoformat(),
             **{name: str(tally) for name, tally in vars(counts).items()})  # fmt: skip


def ensure_finance_schedule(session: Session, account_id: int, now: datetime, every: float = IMPORT_SECONDS) -> None:
    """The shop's periodic finance import (the first at once)."""
    ensure_schedule(session, Periodic(f"{IMPORT_FINANCE}:{account_id}", IMPORT_FINANCE, every,
                                      channel_account_id=account_id), now=now)  # fmt: skip


def queue_finance_import(session: Session, account_id: int, *, now: datetime, since: datetime | None = None) -> int:
    """Ask the workers for a pass soon: one waiting pass per shop and start (a waiting one absorbs this)."""
    payload = {"since": int(since.timestamp())} if since is not None else {}
    key = f"{IMPORT_FINANCE}:{account_id}" + (f":{payload['since']}" if payload else "")
    return enqueue(session, IMPORT_FINANCE, payload, now=now, channel_account_id=account_id, identity_key=key,
                   priority=50)  # fmt: skip


def register(registry: JobRegistry, context: TikTokContext) -> None:
    registry.register(IMPORT_FINANCE, partial(import_finance, context), priority=50)
