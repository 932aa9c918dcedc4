"""The finance benchmark: a million TikTok statement transactions imported and reconciled, with discrepancies of
every kind injected at known counts, on SQLite and on PostgreSQL.

How it runs, per database:

- Setup (not timed): a fresh hub (a temporary SQLite file, or a schema of its own on PostgreSQL) with one TikTok
  shop, inserted as a row (channel "tiktok", USD, UTC; no OAuth: nothing here calls TikTok), whose finance settings
  are the TikTok US terms (referral fee 6%, transaction fee 2.9%, settlement 7 days after delivery), and a POS
  returns desk for the hub's refunds. Its orders, each delivered (a status history row), and the refunds the hub
  made (``store_returns`` rows, refunded) are inserted in bulk with Core, day by day. Beside them TikTok's side is
  written to files, in the 202309 flat shape the importer reads and in its pages of 100: one statement per day with
  its transactions (a sale per settled order, a refund line per refund, adjustments, a RESERVE held and one
  released), and a payment per statement. Amounts are computed with the rules' own rounding (a fee is
  ``-round_half_even(rate * base)``), so the clean orders raise no exception.
- Injected, at known counts (``INJECTED``, scaled to the size): orders delivered and never settled
  (missing_settlement), revenue settled for another amount (amount_difference), lines for orders the hub does not
  have (unknown_order), sales settled days after they were due (late_release), refunds the hub made that TikTok never
  deducted (refund_not_deducted), referral fees at 8% instead of 6% (fee_outside_rate). Each on an order of its own,
  so each makes exactly one exception.
- Timed, in a child process of its own (its peak RSS is the figure): the import of every statement through the real
  pass (``channels.tiktok.finance.import_from``: the mapping, the store, a transaction per statement, the
  watermark), reading the pages from the files through ``RecordedPages``, which stands in for the shop's HTTP client
  (``Shop.pages``) and decodes each page from JSON as the client would; then ``reconcile`` over the shop in one
  transaction; then the same import again, which must find everything unchanged. HTTP (the network, signing, rate
  limits, retries) is not part of the measurement.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import random
import resource
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, TextIO

from rich.console import Console
from rich.progress import Progress
from rich.table import Table
from sqlalchemy import func, insert, select, text

from shopbridge.bootstrap import Hub, build_hub
from shopbridge.channels.tiktok.client import QueryValue
from shopbridge.channels.tiktok.finance import PAYMENTS_PATH, STATEMENTS_PATH, TRANSACTIONS_PATH, import_from
from shopbridge.config import Settings
from shopbridge.domain.finance import ExceptionKind
from shopbridge.logs import configure_logging
from shopbridge.services import reconciliation
from shopbridge.store.db import reset_schema, transaction, with_search_path
from shopbridge.store.secrets import SecretBox
from shopbridge.store.tables import Base, ChannelAccount, FinanceException

BENCH_SCHEMA = "shopbridge_bench_finance"
TRANSACTIONS = 1_000_000
QUICK_TRANSACTIONS = 50_000
SMALLEST = 2_000
TARGET_SECONDS = {"sqlite": 60.0, "postgresql": 30.0}
TARGET_RSS_MB = {"sqlite": 1024.0}
SEED = 20260302
CURRENCY = "USD"
START = datetime(2026, 3, 2, tzinfo=UTC)  # the first delivery day; the data never depends on today's date
DAY = timedelta(days=1)
REFERRAL_RATE = Decimal("0.06")
WRONG_REFERRAL_RATE = Decimal("0.08")
TRANSACTION_RATE = Decimal("0.029")
AFFILIATE_RATE = Decimal("0.10")
RESERVE_RATE = Decimal("0.05")
DELAY_DAYS = 7  # the shop's settlement delay: a sale settles on the statement closing the 7th day after delivery
LATE_DAYS = 5  # a late sale settles this many statements later: past the due date (delay + 1 day + 2 days' grace)
REFUND_AFTER_DAYS = 9  # the hub refunds the buyer this long after delivery; TikTok deducts it the next statement
RESERVE_DAYS = 7  # a reserve held is released on the statement this many days later
LABEL_MINOR = 499  # the shipping label the seller pays when the buyer paid less
SHARES = {"sales": 80, "refunds": 12}  # percent of the transactions; adjustments and reserves make up the rest
INJECTED = {  # per kind at 1,000,000 transactions; scaled to the size, at least MIN_INJECTED
    ExceptionKind.MISSING_SETTLEMENT: 300, ExceptionKind.AMOUNT_DIFFERENCE: 250, ExceptionKind.UNKNOWN_ORDER: 200,
    ExceptionKind.LATE_RELEASE: 350, ExceptionKind.REFUND_NOT_DEDUCTED: 150, ExceptionKind.FEE_OUTSIDE_RATE: 400,
}  # fmt: skip
MIN_INJECTED = 3
ADJUSTMENTS = ("PLATFORM_PENALTY", "LOGISTICS_REIMBURSEMENT", "SHIPPING_FEE_ADJUSTMENT", "PLATFORM_REIMBURSEMENT")
PAGE = 100  # TikTok's largest finance page
CHUNK = 5_000  # orders per bulk insert
TABLES = Base.metadata.tables


@dataclass(frozen=True)
class Shape:
    """The sizes of one run, all derived from the number of transactions."""

    transactions: int
    days: int
    orders: int
    refunds: int
    injected: Mapping[ExceptionKind, int]

    @classmethod
    def of(cls, transactions: int) -> Shape:
        if transactions < SMALLEST:
            raise ValueError(f"the finance benchmark needs at least {SMALLEST:,} transactions")
        days = min(90, max(12, transactions // 500))
        injected = {kind: max(MIN_INJECTED, round(count * transactions / TRANSACTIONS))
                    for kind, count in INJECTED.items()}  # fmt: skip
        sales = transactions * SHARES["sales"] // 100
        orders = sales + injected[ExceptionKind.MISSING_SETTLEMENT]
        return cls(transactions, days, orders, transactions * SHARES["refunds"] // 100, injected)

    @property
    def reserves(self) -> int:
        return self.days + (self.days - RESERVE_DAYS)

    @property
    def adjustments(self) -> int:
        sales = self.orders - self.injected[ExceptionKind.MISSING_SETTLEMENT]
        return self.transactions - sales - self.refunds - self.injected[ExceptionKind.UNKNOWN_ORDER] - self.reserves

    def day_of(self, order: int) -> int:
        """The day (from START) the order was delivered: orders are spread evenly, in id order."""
        return order * self.days // self.orders

    @property
    def now(self) -> datetime:
        """When reconciliation runs: past the due date of every order, refund and statement."""
        return START + (self.days + DELAY_DAYS + 4) * DAY + timedelta(hours=1)


def statement_time(index: int) -> datetime:
    """Statement ``index`` closes day ``index + DELAY_DAYS`` (at the next midnight): it settles the orders delivered
    on day ``index``."""
    return START + (index + DELAY_DAYS + 1) * DAY


def fee(rate: Decimal, base: int) -> int:
    """A fee as the rules compute it (domain/finance.py): negative, rounded half to even on the minor unit."""
    return -int((rate * base).quantize(Decimal(1), rounding=ROUND_HALF_EVEN))


def amount(minor: int) -> str:
    """Minor units as TikTok writes an amount in USD (``"-12.50"``; a zero is ``"0.00"``)."""
    sign = "-" if minor < 0 else ""
    return f"{sign}{abs(minor) // 100}.{abs(minor) % 100:02d}"


def _unix(moment: datetime) -> int:
    return int(moment.timestamp())


# --- setup: the hub's orders and TikTok's statements ------------------------------------------------------------


@dataclass
class World:
    """Where one run's data is: the hub's database (settings), TikTok's pages (files) and what was injected."""

    settings: Settings
    directory: Path
    account_id: int
    shape: Shape
    statements: int
    setup_seconds: float


class _Writer:
    """TikTok's side, written as it is generated: each statement's transactions as pages of PAGE (one JSON line
    each, with an index of where each statement's pages start), the statements and the payments."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.pages: TextIO = (directory / "transactions.jsonl").open("w")
        self.index: dict[str, list[int]] = {}  # statement id -> [offset, pages]
        self.statements: list[dict[str, Any]] = []
        self.payments: list[dict[str, Any]] = []

    def statement(self, found: dict[str, Any], lines: list[dict[str, Any]]) -> None:
        self.index[found["id"]] = [self.pages.tell(), 0]
        for start in range(0, len(lines), PAGE):
            self.pages.write(json.dumps(lines[start : start + PAGE], separators=(",", ":")) + "\n")
            self.index[found["id"]][1] += 1
        self.statements.append(found)

    def close(self) -> None:
        self.pages.close()
        for name, found in (("index", self.index), ("statements", self.statements), ("payments", self.payments)):
            (self.directory / f"{name}.json").write_text(json.dumps(found))


class _Ids:
    """TikTok-like 19-digit ids, in sequence."""

    def __init__(self, prefix: int) -> None:
        self.prefix, self.next = prefix, 0

    def __call__(self) -> str:
        self.next += 1
        return f"{self.prefix}{self.next:017d}"


def _order_ref(order: int) -> str:
    return f"577{order:015d}"


def _assign(shape: Shape, rng: random.Random) -> tuple[dict[int, ExceptionKind], set[int]]:
    """Which orders carry an injected discrepancy (each its own order) and which have a clean refund. Late sales
    and refunds need room after them for their statement, so they come from the earlier days."""
    refund_room = shape.days - 3  # a refund line settles two statements after its order's sale
    late_room = shape.days - LATE_DAYS
    early = [order for order in range(shape.orders) if shape.day_of(order) < min(refund_room, late_room)]
    picked = rng.sample(early, shape.refunds + sum(n for k, n in shape.injected.items()
                                                   if k is not ExceptionKind.UNKNOWN_ORDER))  # fmt: skip
    kinds: dict[int, ExceptionKind] = {}
    for kind, count in shape.injected.items():
        if kind is ExceptionKind.UNKNOWN_ORDER:
            continue
        for _ in range(count):
            kinds[picked.pop()] = kind
    return kinds, set(picked)


def build_world(settings: Settings, directory: Path, shape: Shape, progress: Progress, label: str) -> World:
    """Migrate the hub, insert the shop, its orders and refunds, and write TikTok's pages; day by day, so the
    memory held is a few days of lines."""
    started = time.perf_counter()
    rng = random.Random(SEED)
    hub = build_hub(settings)
    try:
        hub.migrate()
        with transaction(hub.sessions) as session:
            shop = ChannelAccount(channel="tiktok", label="TikTok US (bench)", external_id="7000000000000001",
                                  currency=CURRENCY, timezone="UTC")  # fmt: skip
            reconciliation.configure(shop, {"referral_fee_rate": str(REFERRAL_RATE),
                                            "transaction_fee_rate": str(TRANSACTION_RATE),
                                            "settlement_delay_days": DELAY_DAYS})  # fmt: skip
            desk = ChannelAccount(channel="pos", label="Returns desk (bench)", external_id="bench-pos",
                                  currency=CURRENCY, timezone="UTC")  # fmt: skip
            session.add_all([shop, desk])
            session.flush()
            shop_id, desk_id = shop.id, desk.id
        kinds, refunded = _assign(shape, rng)
        writer = _Writer(directory)
        generator = _Generator(shape, rng, kinds, refunded, writer)
        task = progress.add_task(f"{label}: setup, {shape.orders:,} orders, {shape.transactions:,} transactions",
                                 total=shape.days)  # fmt: skip
        for day in range(shape.days):
            orders, history, returns = generator.day(day, shop_id, desk_id)
            for start in range(0, len(orders), CHUNK):
                with transaction(hub.sessions) as session:
                    session.execute(insert(TABLES["orders"]), orders[start : start + CHUNK])
                    session.execute(insert(TABLES["order_status_history"]), history[start : start + CHUNK])
            if returns:
                with transaction(hub.sessions) as session:
                    session.execute(insert(TABLES["store_returns"]), returns)
            progress.advance(task)
        writer.close()
        if generator.lines != shape.transactions:
            raise AssertionError(f"generated {generator.lines:,} transactions, not {shape.transactions:,}")
        if hub.engine.dialect.name == "postgresql":
            # As a hub's orders would be: analysed by autovacuum. SQLite keeps no statistics unless asked, and the
            # hub never asks, so its planner works without them here too.
            with hub.engine.begin() as connection:
                connection.execute(text("SELECT setval(pg_get_serial_sequence('orders', 'id'), :top)"),
                                   {"top": shape.orders})  # fmt: skip
                connection.execute(text("ANALYZE"))
        progress.remove_task(task)
    finally:
        hub.close()
    return World(settings, directory, shop_id, shape, len(writer.statements), time.perf_counter() - started)


class _Generator:
    """One day at a time: the orders delivered that day (hub rows), and the statement that closes DELAY_DAYS later
    (TikTok's lines: that day's sales, the refunds and late sales of earlier days due on it, adjustments, unknown
    orders' lines and reserves)."""

    def __init__(self, shape: Shape, rng: random.Random, kinds: dict[int, ExceptionKind], refunded: set[int],
                 writer: _Writer) -> None:  # fmt: skip
        self.shape, self.rng, self.kinds, self.refunded, self.writer = shape, rng, kinds, refunded, writer
        self.later: dict[int, list[dict[str, Any]]] = {}  # statement index -> lines written by an earlier day
        self.held: dict[int, int] = {}  # statement index -> the reserve it held (minor units)
        self.line_id, self.statement_id, self.payment_id = _Ids(76), _Ids(73), _Ids(74)
        self.unknown = 0
        self.lines = 0

    def _line(self, kind: str, **amounts: int) -> dict[str, Any]:
        line: dict[str, Any] = {"id": self.line_id(), "type": kind, "currency": CURRENCY}
        for key in ("revenue", "platform_commission", "referral_fee", "transaction_fee", "affiliate_commission",
                    "fee", "shipping_cost", "customer_refund", "adjustment"):  # fmt: skip
            line[f"{key}_amount"] = amount(amounts.get(key, 0))
        if "reserve" in amounts:
            line["reserve_amount"] = amount(amounts["reserve"])
        line["settlement_amount"] = amount(amounts["settlement"])
        return line

    def day(self, day: int, shop_id: int, desk_id: int) -> tuple[list[dict[str, Any]], ...]:
        shape, rng = self.shape, self.rng
        first = next(order for order in range(day * shape.orders // shape.days, shape.orders)
                     if shape.day_of(order) == day)  # fmt: skip
        orders, history, returns, sales = [], [], [], []
        order = first
        while order < shape.orders and shape.day_of(order) == day:
            kind = self.kinds.get(order)
            delivered = START + day * DAY + timedelta(seconds=rng.randrange(8 * 3600, 20 * 3600))
            created = delivered - timedelta(days=3, seconds=rng.randrange(0, 86_400))
            subtotal = rng.randrange(500, 20_000)
            shipping = rng.choice((0, 0, 0, 399, 599))
            tax = -fee(Decimal("0.08"), subtotal)
            total = subtotal + shipping + tax
            ref = _order_ref(order)
            orders.append({
                "id": order + 1, "channel_account_id": shop_id, "external_id": ref, "channel_status": "COMPLETED",
                "status": "completed", "currency": CURRENCY, "total_minor": total, "subtotal_minor": subtotal,
                "shipping_minor": shipping, "tax_minor": tax, "buyer": {}, "recipient": {}, "deadlines": {},
                "packages": {}, "channel_created_at": created, "channel_updated_at": delivered,
                "created_at": created, "updated_at": delivered,
            })  # fmt: skip
            history.append({"order_id": order + 1, "channel_status": "DELIVERED", "status": "delivered",
                            "source": "poll", "occurred_at": delivered, "recorded_at": delivered})  # fmt: skip
            if order in self.refunded or kind is ExceptionKind.REFUND_NOT_DEDUCTED:
                refund_at = delivered + REFUND_AFTER_DAYS * DAY
                part = subtotal if rng.random() < 0.7 else rng.randrange(100, subtotal)
                refund = part + (-fee(Decimal("0.08"), part))
                returns.append({
                    "channel_account_id": desk_id, "external_id": f"R{order}", "order_ref": {"order_id": ref},
                    "order_id": order + 1, "lines": {}, "state": "refunded", "refund_minor": refund,
                    "currency": CURRENCY, "returned_at": refund_at - timedelta(hours=2), "created_at": refund_at,
                    "updated_at": refund_at,
                })  # fmt: skip
                if kind is not ExceptionKind.REFUND_NOT_DEDUCTED:
                    back = -fee(REFERRAL_RATE * Decimal("0.8"), part)
                    line = self._line("ORDER", revenue=-part, referral_fee=back, fee=back, customer_refund=-refund,
                                      settlement=-part + back)  # fmt: skip
                    line.update(order_id=ref, order_create_time=_unix(created))
                    self.later.setdefault(day + 2, []).append(line)
            if kind is not ExceptionKind.MISSING_SETTLEMENT:
                revenue = subtotal
                if kind is ExceptionKind.AMOUNT_DIFFERENCE:
                    revenue += rng.choice((-1, 1)) * rng.randrange(100, min(2_000, subtotal))
                # Fees are the order's own, as the rules check them: a revenue settled off is an amount difference.
                rate = WRONG_REFERRAL_RATE if kind is ExceptionKind.FEE_OUTSIDE_RATE else REFERRAL_RATE
                referral, paying = fee(rate, subtotal), fee(TRANSACTION_RATE, total)
                affiliate = fee(AFFILIATE_RATE, subtotal) if rng.random() < 0.1 else 0
                shipping_cost = shipping - max(shipping, LABEL_MINOR)
                fees = referral + paying + affiliate
                line = self._line("ORDER", revenue=revenue, referral_fee=referral, transaction_fee=paying,
                                  affiliate_commission=affiliate, fee=fees, shipping_cost=shipping_cost,
                                  settlement=revenue + fees + shipping_cost)  # fmt: skip
                line.update(order_id=ref, order_create_time=_unix(created))
                if kind is ExceptionKind.LATE_RELEASE:
                    self.later.setdefault(day + LATE_DAYS, []).append(line)
                else:
                    sales.append(line)
            order += 1
        self._statement(day, sales + self.later.pop(day, []))
        return orders, history, returns

    def _statement(self, index: int, lines: list[dict[str, Any]]) -> None:
        shape, rng = self.shape, self.rng
        adjustments = shape.adjustments // shape.days + (index < shape.adjustments % shape.days)
        for _ in range(adjustments):
            money = rng.choice((-1, 1)) * rng.randrange(100, 5_000)
            lines.append(self._line(rng.choice(ADJUSTMENTS), adjustment=money, settlement=money))
        unknown = shape.injected[ExceptionKind.UNKNOWN_ORDER]
        while self.unknown < unknown and self.unknown * shape.days // unknown <= index:
            money = rng.randrange(500, 20_000)
            line = self._line("ORDER", revenue=money, settlement=money)
            line.update(order_id=f"579{self.unknown:015d}", order_create_time=_unix(statement_time(index) - 9 * DAY))
            lines.append(line)
            self.unknown += 1
        totals = dict.fromkeys(("revenue", "fee", "adjustment", "shipping_cost", "settlement"), 0)
        for line in lines:
            for key in totals:
                totals[key] += _cents(line[f"{key}_amount"])
        held = -fee(RESERVE_RATE, totals["settlement"]) if totals["settlement"] > 0 else 0
        self.held[index] = held
        lines.append(self._line("RESERVE", reserve=-held, settlement=-held))
        reserve = -held
        if index >= RESERVE_DAYS:
            released = self.held.pop(index - RESERVE_DAYS)
            lines.append(self._line("RESERVE", reserve=released, settlement=released))
            reserve += released
        self.lines += len(lines)
        closed = statement_time(index)
        paid = index < shape.days - 2  # the last two payouts are still being processed
        payment_id = self.payment_id()
        self.writer.statement({
            "id": self.statement_id(), "statement_time": _unix(closed), "currency": CURRENCY,
            "revenue_amount": amount(totals["revenue"]), "fee_amount": amount(totals["fee"]),
            "adjustment_amount": amount(totals["adjustment"]), "shipping_cost_amount": amount(totals["shipping_cost"]),
            "net_sales_amount": amount(totals["revenue"]), "settlement_amount": amount(totals["settlement"]),
            "payment_id": payment_id, "payment_status": "PAID" if paid else "PROCESSING",
            "payment_time": _unix(closed + DAY) if paid else 0,
        }, lines)  # fmt: skip
        self.writer.payments.append({
            "id": payment_id, "create_time": _unix(closed), "status": "PAID" if paid else "PROCESSING",
            "amount": {"value": amount(totals["settlement"] + reserve), "currency": CURRENCY},
            "settlement_amount": {"value": amount(totals["settlement"]), "currency": CURRENCY},
            "reserve_amount": {"value": amount(reserve), "currency": CURRENCY}, "exchange_rate": "1.000000",
            "paid_time": _unix(closed + DAY) if paid else 0, "bank_account": "****1234",
        })  # fmt: skip


def _cents(text_amount: str) -> int:
    whole, _, cents = text_amount.lstrip("-").partition(".")
    value = int(whole) * 100 + int(cents)
    return -value if text_amount.startswith("-") else value


# --- the timed part ------------------------------------------------------------------------------------------


class RecordedPages:
    """TikTok's finance lists read back from the files setup wrote, one page at a time, each page decoded from
    JSON as the HTTP client decodes a response: the stand-in for ``Shop.pages``. The window's lower bound
    (``statement_time_ge``, ``create_time_ge``) is honoured; sorting is the files' order (ascending)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.index: dict[str, list[int]] = json.loads((directory / "index.json").read_text())
        self.calls = 0

    def pages(
        self, method: str, path: str, items_key: str, *, query: Mapping[str, QueryValue] | None = None,
        body: Mapping[str, Any] | None = None, page_size: int = 50,
    ) -> Iterator[dict[str, Any]]:  # fmt: skip
        query = query or {}
        if path == STATEMENTS_PATH:
            since = int(str(query.get("statement_time_ge", 0)))
            yield from self._listed("statements", "statement_time", since, page_size)
        elif path == PAYMENTS_PATH:
            since = int(str(query.get("create_time_ge", 0)))
            yield from self._listed("payments", "create_time", since, page_size)
        else:
            statement_id = path.removeprefix("/finance/202309/statements/").split("/", 1)[0]
            if TRANSACTIONS_PATH.format(statement_id=statement_id) != path:
                raise ValueError(f"no recorded pages for {method} {path}")
            offset, pages = self.index[statement_id]
            with (self.directory / "transactions.jsonl").open() as lines:
                lines.seek(offset)
                for _ in range(pages):
                    self.calls += 1
                    yield from json.loads(lines.readline())

    def _listed(self, name: str, time_key: str, since: int, page_size: int) -> Iterator[dict[str, Any]]:
        found = [item for item in json.loads((self.directory / f"{name}.json").read_text())
                 if int(item[time_key]) >= since]  # fmt: skip
        self.calls += max(1, -(-len(found) // page_size))
        yield from found


def _settings(data_dir: Path, database_url: str | None = None, secret_key: str | None = None) -> Settings:
    return Settings(data_dir=data_dir, database_url=database_url, secret_key=secret_key, log_level="warning",
                    worker_process=False)  # fmt: skip


def _peak_rss_mb() -> dict[str, float]:
    """The process's peak resident set: ``ru_maxrss`` (kilobytes on Linux), and the kernel's high-water mark of its
    own memory (``VmHWM``), which a process started by fork and exec does not inherit from its parent."""
    found = {"ru_maxrss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                found["vm_hwm_mb"] = round(int(line.split()[1]) / 1024, 1)
    return found


def _work(conn: Connection) -> None:
    """The child: it waits for its world, then runs the timed import, reconciliation and re-import, in a process
    whose peak RSS is theirs (it is started before any setup, so it inherits nothing of the parent's growth)."""
    try:
        told: dict[str, Any] = conn.recv()
    except EOFError:  # the parent gave up before this database's turn
        return
    try:
        configure_logging("warning")
        started = _peak_rss_mb()
        hub = build_hub(_settings(Path(told["data_dir"]), told["database_url"], told["secret_key"]))
        try:
            figures = _measure_work(hub, Path(told["pages"]), told["account_id"], datetime.fromisoformat(told["now"]))
        finally:
            hub.close()
        conn.send({**figures, "memory": {"at_start": started, "peak": _peak_rss_mb()}})
    except Exception as error:  # reported to the parent, which raises it
        conn.send({"error": f"{type(error).__name__}: {error}"})


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _measure_work(hub: Hub, directory: Path, account_id: int, now: datetime) -> dict[str, Any]:
    """Wall seconds of each part, and this process's CPU seconds (on a shared machine the wall time includes waiting
    for a core; PostgreSQL's own CPU is the server's, not counted here)."""
    since = START
    source = RecordedPages(directory)
    started, cpu = time.perf_counter(), _cpu_seconds()
    imported = import_from(source, hub.sessions, account_id, now=hub.clock.now, since=since)
    import_seconds, import_cpu = time.perf_counter() - started, _cpu_seconds() - cpu
    started, cpu = time.perf_counter(), _cpu_seconds()
    with transaction(hub.sessions) as session:
        shop = session.get(ChannelAccount, account_id)
        assert shop is not None
        run = reconciliation.reconcile(session, shop, now=now)
    reconcile_seconds, reconcile_cpu = time.perf_counter() - started, _cpu_seconds() - cpu
    with hub.sessions() as session:
        kept = dict(session.execute(
            select(FinanceException.kind, func.count()).where(FinanceException.channel_account_id == account_id,
                                                                FinanceException.cleared_at.is_(None))
            .group_by(FinanceException.kind)
        ).tuples().all())  # fmt: skip
    started, cpu = time.perf_counter(), _cpu_seconds()
    again = import_from(RecordedPages(directory), hub.sessions, account_id, now=hub.clock.now, since=since)
    reimport_seconds, reimport_cpu = time.perf_counter() - started, _cpu_seconds() - cpu
    return {
        "import_seconds": round(import_seconds, 2), "reconcile_seconds": round(reconcile_seconds, 2),
        "reimport_seconds": round(reimport_seconds, 2),
        "cpu_seconds": {"import": round(import_cpu, 2), "reconcile": round(reconcile_cpu, 2),
                        "reimport": round(reimport_cpu, 2)},
        "import": imported.as_dict(), "reimport": again.as_dict(),
        "calls": source.calls, "found": dict(run.found), "kept": kept,
        "reconcile_new": run.new,
    }  # fmt: skip


class Worker:
    """A spawned child process waiting to do one database's timed part."""

    def __init__(self) -> None:
        context = multiprocessing.get_context("spawn")
        self.conn, theirs = context.Pipe()
        self.process = context.Process(target=_work, args=(theirs,), name="shopbridge-bench-finance", daemon=True)
        self.process.start()

    def measure(self, world: World, progress: Progress, label: str) -> dict[str, Any]:
        """The timed part of ``world``; the figures reported, beside what was injected."""
        key = world.settings.secret_key
        self.conn.send({
            "data_dir": str(world.settings.data_dir), "database_url": world.settings.database_url,
            "secret_key": key.get_secret_value() if key is not None else None, "pages": str(world.directory),
            "account_id": world.account_id, "now": world.shape.now.isoformat(),
        })  # fmt: skip
        task = progress.add_task(f"{label}: import, reconcile, re-import (timed, in a child process)", total=None)
        try:
            work = self._receive()
        finally:
            progress.remove_task(task)
            self.stop()
        return _figures(world, work)

    def _receive(self) -> dict[str, Any]:
        while not self.conn.poll(1.0):
            if not self.process.is_alive():
                raise RuntimeError(f"the benchmark's child process ended (exit code {self.process.exitcode})")
        answer: dict[str, Any] = self.conn.recv()
        if "error" in answer:
            raise RuntimeError(f"the benchmark's child process failed: {answer['error']}")
        return answer

    def stop(self) -> None:
        if self.process.is_alive():
            self.conn.close()  # a child still waiting for its world ends on the closed pipe
            self.process.join(60)
        if self.process.is_alive():
            self.process.terminate()
            self.process.join(10)


def _figures(world: World, work: dict[str, Any]) -> dict[str, Any]:
    shape = world.shape
    injected = {kind.value: shape.injected[kind] for kind in ExceptionKind}
    found = {kind.value: int(work["found"].get(kind.value, 0)) for kind in ExceptionKind}
    tally = work["import"]["transactions"]
    unchanged = all(counts["new"] == counts["changed"] == 0 for counts in work["reimport"].values())
    peak = work["memory"]["peak"]
    return {
        "transactions": shape.transactions, "orders": shape.orders, "statements": world.statements,
        "seconds": round(work["import_seconds"] + work["reconcile_seconds"], 2),
        "import_seconds": work["import_seconds"], "reconcile_seconds": work["reconcile_seconds"],
        "reimport_seconds": work["reimport_seconds"], "cpu_seconds": work["cpu_seconds"],
        "transactions_per_s": round(shape.transactions / work["import_seconds"]),
        "peak_rss_mb": peak["ru_maxrss_mb"], "peak_rss_vm_hwm_mb": peak.get("vm_hwm_mb"),
        "rss_before_work_mb": work["memory"]["at_start"].get("vm_hwm_mb", work["memory"]["at_start"]["ru_maxrss_mb"]),
        "exceptions_found": {"total": sum(found.values()), "by_kind": found},
        "exceptions_injected": {"total": sum(injected.values()), "by_kind": injected},
        "found_equals_injected": found == injected,
        "exceptions_kept": {kind.value: int(work["kept"].get(kind.value, 0)) for kind in ExceptionKind},
        "import": work["import"], "reimport": work["reimport"],
        "reimport_changes_nothing": unchanged, "imported_all": tally["new"] == shape.transactions,
        "page_calls": work["calls"], "setup_seconds": round(world.setup_seconds, 1), "load_average": _load(),
    }  # fmt: skip


def _load() -> list[float] | None:
    """The machine's load average (1, 5, 15 min) when the part ended: the benchmark shares its cores with
    whatever else runs."""
    try:
        return [round(figure, 2) for figure in os.getloadavg()]
    except OSError:
        return None


def _bench(settings: Settings, shape: Shape, worker: Worker, progress: Progress, label: str) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="shopbridge-bench-finance-pages-") as pages:
        world = build_world(settings, Path(pages), shape, progress, label)
        return worker.measure(world, progress, label)


def run_finance_benchmark(*, quick: bool, database_url: str | None, console: Console,
                          transactions: int | None = None) -> dict[str, Any]:  # fmt: skip
    """Both databases (PostgreSQL when ``database_url`` is given), each in a fresh hub; results by database."""
    configure_logging("warning")
    shape = Shape.of(transactions or (QUICK_TRANSACTIONS if quick else TRANSACTIONS))
    results: dict[str, Any] = {
        "quick": quick, "transactions": shape.transactions, "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "targets": {"sqlite": {"seconds": TARGET_SECONDS["sqlite"], "peak_rss_mb": TARGET_RSS_MB["sqlite"]},
                    "postgresql": {"seconds": TARGET_SECONDS["postgresql"]}},
    }  # fmt: skip
    workers = [Worker() for _ in range(2 if database_url else 1)]  # before setup grows this process: see _work
    with Progress(console=console, transient=True) as progress, \
            tempfile.TemporaryDirectory(prefix="shopbridge-bench-") as directory:  # fmt: skip
        try:
            results["sqlite"] = _bench(_settings(Path(directory)), shape, workers[0], progress, "SQLite")
            if database_url:
                results["postgresql"] = _bench_postgresql(database_url, Path(directory), shape, workers[1], progress)
        finally:
            for worker in workers:
                worker.stop()
    for database in ("sqlite", "postgresql"):
        if database in results:
            results[database]["meets_target"] = _meets(database, results[database])
    console.print(_table(results))
    return results


def _bench_postgresql(database_url: str, directory: Path, shape: Shape, worker: Worker,
                      progress: Progress) -> dict[str, Any]:  # fmt: skip
    reset_schema(database_url, BENCH_SCHEMA)
    try:
        key = SecretBox.generate_key()
        settings = _settings(directory / "pg", with_search_path(database_url, BENCH_SCHEMA), key)
        return _bench(settings, shape, worker, progress, "PostgreSQL")
    finally:
        reset_schema(database_url, BENCH_SCHEMA)


def _meets(database: str, figures: dict[str, Any]) -> dict[str, bool]:
    met = {"seconds": figures["seconds"] <= TARGET_SECONDS[database],
           "found_equals_injected": figures["found_equals_injected"],
           "reimport_changes_nothing": figures["reimport_changes_nothing"]}  # fmt: skip
    if database in TARGET_RSS_MB:
        met["peak_rss_mb"] = figures["peak_rss_mb"] <= TARGET_RSS_MB[database]
    return met


def _table(results: dict[str, Any]) -> Table:
    table = Table("database", "import s", "reconcile s", "total s", "target s", "peak RSS MB", "re-import s",
                  "found / injected", title=f"finance: {results['transactions']:,} statement transactions imported "
                                            "and reconciled (HTTP not included)")  # fmt: skip
    for database in ("sqlite", "postgresql"):
        if database not in results:
            continue
        figures = results[database]
        found, injected = figures["exceptions_found"]["total"], figures["exceptions_injected"]["total"]
        tally = f"{found} / {injected}" + ("" if figures["found_equals_injected"] else " (differ by kind)")
        table.add_row(database, str(figures["import_seconds"]), str(figures["reconcile_seconds"]),
                      str(figures["seconds"]), str(TARGET_SECONDS[database]), str(figures["peak_rss_mb"]),
                      str(figures["reimport_seconds"]), tally)  # fmt: skip
    kinds = results["sqlite"]["exceptions_injected"]["by_kind"]
    table.caption = "injected per kind: " + ", ".join(f"{kind} {count}" for kind, count in kinds.items())
    return table
