"""TikTok's Finance API read into the hub (reference §8): statements, each statement's transactions and payments.

``tiktok.import_finance`` runs per shop on a schedule (``SHOPBRIDGE_TIKTOK_FINANCE_IMPORT_SECONDS``) and on demand;
``shopbridge finance import`` runs the same pass in its own process. A pass reads statements from the account's
``finance`` watermark less an overlap (and from the oldest statement or payment still PROCESSING, so a payout is
seen paid), the transactions of every statement the hub does not hold in full, and the payments of the same window.
It writes statement by statement: a statement's transactions, then the statement marked as read in full
(services/finance.py), so memory holds one statement's transactions at a time, never the pass's; the payments and
the watermark are written last, so the watermark moves only when a pass is complete. Rows are upserted on (shop,
TikTok id), so passes that overlap, repeat, race or were cut short change nothing twice. Amounts keep TikTok's signs
(income positive, charges negative) in minor units beside their currency.

The flat 202309 shape is read: it names every per-order component the hub keeps. A reserve is a transaction of
type ``RESERVE`` (§8.5); its settlement is the reserve.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any, Protocol

from sqlalchemy.orm import Session, sessionmaker

from shopbridge.channels.tiktok.client import QueryValue
from shopbridge.channels.tiktok.shop import Shop, TikTokContext
from shopbridge.domain.money import InvalidAmount, Money, minor_digits
from shopbridge.logs import get_logger
from shopbridge.runtime.errors import PermanentError
from shopbridge.runtime.jobs import enqueue
from shopbridge.runtime.registry import JobContext, JobRegistry
from shopbridge.runtime.scheduler import Periodic, ensure_schedule
from shopbridge.services import finance, reconciliation
from shopbridge.store.db import reading, transaction
from shopbridge.store.tables import FinancePayment, FinanceStatement

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
READ_AHEAD = 50_000  # transactions the job reads before its first write (import_finance)
ANALYZE_FROM = 20_000  # a pass that has written this many transactions refreshes the planner's statistics

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
    if type(value) is int:  # what TikTok sends; the text form below is the general case
        return datetime.fromtimestamp(value, UTC) if value > 0 else None
    text = str(value or "").strip()
    return datetime.fromtimestamp(int(text), UTC) if text.isdigit() and int(text) > 0 else None


def _currency(found: Mapping[str, Any], what: str) -> str:
    currency = str(found.get("currency") or "")
    if not currency:
        raise PermanentError(f"TikTok's {what} {found.get('id')} has no currency")
    return currency


_PLAIN = re.compile(r"(-?)([0-9]+)(?:\.([0-9]*))?")  # "12", "-12.50", "12.": how TikTok writes an amount
_ZEROS = frozenset({"0", "0.0", "0.00", "0.000", "-0", "-0.00"})
_DIGITS: dict[str, int | None] = {}  # currency -> its minor digits; None: not an ISO 4217 code


def _digits_of(currency: str) -> int | None:
    if currency not in _DIGITS:
        try:
            _DIGITS[currency] = minor_digits(currency)
        except InvalidAmount:
            _DIGITS[currency] = None
    return _DIGITS[currency]


def parse_minor(text: str, digits: int) -> int | None:
    """A plain decimal string (``"-12.50"``) in minor units of a currency with ``digits`` decimals, with integer
    arithmetic only; None for anything else (an exponent, spaces, a sign +, too many decimals that are not zeros),
    which the caller hands to ``Money.parse`` for its verdict and its message. It is the import's inner loop: a
    million transactions carry a dozen amounts each."""
    plain = _PLAIN.fullmatch(text)
    if plain is None:
        return None
    sign, whole, fraction = plain.groups()
    fraction = fraction or ""
    if len(fraction) > digits:
        if fraction[digits:].strip("0"):
            return None  # more decimals than the currency has: Money.parse refuses it
        fraction = fraction[:digits]
    value = int(whole + fraction.ljust(digits, "0"))
    return -value if sign else value


def _minor(found: Mapping[str, Any], key: str, currency: str, what: str, digits: int | None = None) -> int:
    """``found[key]``, a decimal string such as ``"-12.50"``, in minor units of ``currency`` (``digits`` its minor
    digits, when the caller looked them up); absent or empty is 0. Plain strings take ``parse_minor``; every other
    value, and every refusal, goes through ``Money.parse``, for its verdict and its message."""
    value = found.get(key)
    if value is None or value == "":
        return 0
    if digits is None:
        digits = _digits_of(currency)
    if digits is not None and type(value) is str:
        if value in _ZEROS:
            return 0
        minor = parse_minor(value, digits)
        if minor is not None:
            return minor
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


_TRANSACTION = "statement transaction"
_TRANSACTION_AMOUNTS = (
    ("revenue_minor", "revenue_amount"), ("platform_commission_minor", "platform_commission_amount"),
    ("referral_fee_minor", "referral_fee_amount"), ("transaction_fee_minor", "transaction_fee_amount"),
    ("affiliate_commission_minor", "affiliate_commission_amount"), ("fee_minor", "fee_amount"),
    ("shipping_cost_minor", "shipping_cost_amount"), ("refund_minor", "customer_refund_amount"),
    ("adjustment_minor", "adjustment_amount"),
)  # fmt: skip


def transaction_row(found: Mapping[str, Any], settled_at: datetime) -> dict[str, Any]:
    """A transaction of Get Statement Transactions (202309, flat) as a ``finance_transactions`` row, without the
    statement and order ids the store adds. Written for speed (a pass may map a million): the currency's digits
    are looked up once, the amounts read in one loop."""
    currency = _currency(found, _TRANSACTION)
    digits = _digits_of(currency)
    kind = str(found.get("type") or "")[:60]
    settlement = _minor(found, "settlement_amount", currency, _TRANSACTION, digits)
    reserve = _minor(found, "reserve_amount", currency, _TRANSACTION, digits)
    reserve = reserve or (settlement if kind == "RESERVE" else 0)
    row: dict[str, Any] = {
        "external_id": _required_id(found, _TRANSACTION),
        "type": kind,
        "external_order_id": str(found.get("order_id") or "") or None,
        "currency": currency,
    }
    for column, key in _TRANSACTION_AMOUNTS:
        row[column] = _minor(found, key, currency, _TRANSACTION, digits)
    row["reserve_minor"] = reserve
    row["settlement_minor"] = settlement
    row["order_created_at"] = _instant(found.get("order_create_time"))
    row["settled_at"] = settled_at
    return row


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


class Pages(Protocol):
    """Where a pass reads TikTok's lists, page after page: a shop's signed client (``Shop.pages``), or anything
    that answers the same calls (the finance benchmark's recorded pages)."""

    def pages(
        self, method: str, path: str, items_key: str, *, query: Mapping[str, QueryValue] | None = None,
        body: Mapping[str, Any] | None = None, page_size: int = 50,
    ) -> Iterator[dict[str, Any]]: ...  # fmt: skip


Unit = Callable[[], AbstractContextManager[Session]]  # a unit of work for the pass to write in
Read = tuple[dict[str, Any], list[dict[str, Any]] | None]  # a statement row, and its transactions when read


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


def run_pass(
    source: Pages, account_id: int, planned: Plan, unit: Unit, *, now: Callable[[], datetime],
    progress: Progress | None = None, read_ahead: int = 0,
    stored: Callable[[Session, finance.FinanceCounts], None] | None = None,
) -> finance.FinanceCounts:  # fmt: skip
    """One pass from ``source``. Each statement's transactions are read in full, then written with the statement
    in a unit of work (``unit()``), so no unit is open during a call. The payments and the watermark are written
    last, in a unit of their own, with ``stored`` (the caller's record of the pass).

    ``read_ahead`` transactions are read before the first write, and written together: for a caller whose units
    are one transaction (the job), an ordinary pass then makes every call before it takes SQLite's write lock.

    A pass that writes many transactions (a first import, a ``--since`` months back) refreshes PostgreSQL's
    statistics of them after ANALYZE_FROM and at each doubling (``finance.refresh_statistics``): an ordinary pass
    writes far fewer and never does."""
    progress = progress or _Quiet()
    counts = finance.FinanceCounts()
    window = {"sort_order": "ASC"}
    statements = [statement_row(found) for found in source.pages(
        "GET", STATEMENTS_PATH, "statements", page_size=PAGE_SIZE,
        query={**window, "sort_field": "statement_time", "statement_time_ge": int(planned.since.timestamp())},
    )]  # fmt: skip
    progress.listed(len(statements))
    waiting: list[Read] = []
    waiting_lines = 0
    analyze_at = ANALYZE_FROM
    for row in statements:
        lines = None
        if _needs_transactions(row, planned):
            path = TRANSACTIONS_PATH.format(statement_id=row["external_id"])
            lines = [transaction_row(found, row["statement_time"]) for found in source.pages(
                "GET", path, "statement_transactions", page_size=PAGE_SIZE,
                query={**window, "sort_field": "order_create_time"},
            )]  # fmt: skip
        progress.statement_read(len(lines) if lines is not None else 0)
        waiting.append((row, lines))
        waiting_lines += len(lines) if lines is not None else 0
        if waiting_lines >= read_ahead:
            _write(waiting, account_id, unit, now, counts)
            waiting.clear()
            waiting_lines = 0
            if counts.transactions.new >= analyze_at:
                with unit() as session:
                    finance.refresh_statistics(session)
                analyze_at *= 2
    _write(waiting, account_id, unit, now, counts)
    payments = [payment_row(found) for found in source.pages(
        "GET", PAYMENTS_PATH, "payments", page_size=PAGE_SIZE,
        query={**window, "sort_field": "create_time", "create_time_ge": int(planned.since.timestamp())},
    )]  # fmt: skip
    with unit() as session:
        counts.payments = finance.upsert(session, FinancePayment, account_id, payments, now())
        if statements:
            newest = max(row["statement_time"] for row in statements)
            finance.advance_watermark(session, account_id, WATERMARK, newest, now())
        if stored is not None:
            stored(session, counts)
    return counts


def _write(read: Sequence[Read], account_id: int, unit: Unit, now: Callable[[], datetime],
           counts: finance.FinanceCounts) -> None:  # fmt: skip
    """Statements read, each in a unit of work: a statement held in full alone, or with its transactions."""
    for row, lines in read:
        with unit() as session:
            if lines is None:
                counts.statements.add(finance.upsert(session, FinanceStatement, account_id, [row], now()))
                continue
            stored = finance.store_statement(session, account_id, row, lines, now=now())
        counts.statements.add(stored.statement)
        counts.transactions.add(stored.transactions)


def import_from(
    source: Pages, sessions: sessionmaker[Session], account_id: int, *, now: Callable[[], datetime],
    since: datetime | None = None, progress: Progress | None = None,
    stored: Callable[[Session, finance.FinanceCounts], None] | None = None,
) -> finance.FinanceCounts:  # fmt: skip
    """One pass from ``source``, each statement committed in a transaction of its own as soon as it is read; the
    payments, the watermark and ``stored`` (the audit entry of who asked) in a last one."""
    with reading(sessions) as session:
        planned = plan(session, account_id, now=now(), since=since)
    return run_pass(source, account_id, planned, lambda: transaction(sessions), now=now, progress=progress,
                    stored=stored)  # fmt: skip


def import_now(
    context: TikTokContext, account_id: int, *, now: Callable[[], datetime], since: datetime | None = None,
    progress: Progress | None = None, stored: Callable[[Session, finance.FinanceCounts], None] | None = None,
) -> finance.FinanceCounts:  # fmt: skip
    """One pass over the shop's Finance API in the caller's process (the command line's import)."""
    return import_from(Shop(context, account_id), context.sessions, account_id, now=now, since=since,
                       progress=progress, stored=stored)  # fmt: skip


def import_finance(context: TikTokContext, ctx: JobContext) -> None:
    """The job: one pass whose writes commit with the job's success (payload ``{"since": unix time}``, optional).
    It reads up to READ_AHEAD transactions before its first write: on SQLite the job's session holds the write lock
    from its first statement on, so an ordinary pass (a few days of statements) makes all its calls first; a longer
    one (``--since`` months back) writes as it reads, its memory bounded, its later calls made under the lock."""
    if ctx.channel_account_id is None:
        raise PermanentError(f"{ctx.kind} job {ctx.job_id} names no channel account")
    account_id = ctx.channel_account_id
    since = _instant(ctx.payload.get("since"))
    with reading(context.sessions) as session:
        planned = plan(session, account_id, now=ctx.now, since=since)
    counts = run_pass(Shop(context, account_id), account_id, planned, lambda: nullcontext(ctx.session),
                      now=ctx.write_time, read_ahead=READ_AHEAD)  # fmt: skip
    reconciliation.queue_reconcile(ctx.session, account_id, now=ctx.now)
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
