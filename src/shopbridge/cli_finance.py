"""`shopbridge finance`: TikTok statements, their transactions and payouts imported now, in this process; payouts
broken down; reconciliation and its exceptions; a shop's finance settings; the daily check. Added to the main
command by cli.py (``app.add_typer(finance_app, name="finance")``); cash on delivery (cli_cod.py) and journals
(cli_journal.py) are its ``cod`` and ``journal`` groups."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID
    from sqlalchemy.orm import Session

    from shopbridge.services.finance import FinanceCounts

from shopbridge.cli_cod import cod_app
from shopbridge.cli_journal import journal_app
from shopbridge.domain.finance import BREAKDOWN_LINES

finance_app = typer.Typer(
    help="Finance: TikTok statements and payouts broken down and reconciled, cash on delivery, journals.",
    no_args_is_help=True,
)
finance_app.add_typer(cod_app, name="cod")
finance_app.add_typer(journal_app, name="journal")

IMPORTERS = ("owner", "ops", "finance")


class _Bars:
    """The import's progress as two Rich bars: statements (of those listed) and transactions read."""

    def __init__(self, progress: Progress, label: str) -> None:
        self.progress = progress
        self.statements: TaskID = progress.add_task(f"{label}: statements", total=None)
        self.transactions: TaskID = progress.add_task(f"{label}: transactions", total=None)

    def listed(self, statements: int) -> None:
        self.progress.update(self.statements, total=statements)

    def statement_read(self, transactions: int) -> None:
        self.progress.advance(self.statements)
        self.progress.advance(self.transactions, transactions)


@finance_app.command("import")
def finance_import(
    shop: Annotated[
        int | None, typer.Option("--shop", metavar="ACCOUNT_ID", help="Only this TikTok shop (its channel account id).")
    ] = None,
    since: Annotated[
        datetime | None,
        typer.Option(
            formats=["%Y-%m-%d"],
            help="Read statements and payments from this day (UTC), every transaction again. Default: from the last "
            "import, less two days, and from the oldest payout not yet paid.",
        ),
    ] = None,
    queue: Annotated[bool, typer.Option("--queue", help="Queue the import for the workers instead.")] = False,
) -> None:
    """Import TikTok statements, statement transactions and payments now, and print what was new."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
    from sqlalchemy import select

    from shopbridge.channels.tiktok import finance
    from shopbridge.channels.tiktok.channel import context_of
    from shopbridge.channels.tiktok.errors import TikTokError
    from shopbridge.cli import acting, console, fail, ready_hub
    from shopbridge.runtime.errors import JobError
    from shopbridge.services import audit
    from shopbridge.store.db import transaction
    from shopbridge.store.tables import ChannelAccount

    start = since.replace(tzinfo=UTC) if since is not None else None
    built = ready_hub()
    actor = acting(built, IMPORTERS)
    context = context_of(built.channels)
    if context is None:
        fail("no TikTok app configured: set SHOPBRIDGE_TIKTOK_APP_KEY and SHOPBRIDGE_TIKTOK_APP_SECRET")
    with built.sessions() as session:
        query = select(ChannelAccount.id, ChannelAccount.label).where(
            ChannelAccount.channel == "tiktok", ChannelAccount.status == "active"
        )
        if shop is not None:
            query = query.where(ChannelAccount.id == shop)
        shops = [(account_id, label) for account_id, label in session.execute(query.order_by(ChannelAccount.id))]
    if not shops:
        fail(f"channel account {shop} is not a connected TikTok shop" if shop else "no TikTok shop is connected")
    asked = {"since": start.date().isoformat() if start else None}
    if queue:
        with transaction(built.sessions) as session:
            for account_id, label in shops:
                job_id = finance.queue_finance_import(session, account_id, now=built.clock.now(), since=start)
                audit.record(session, actor, "finance.import_queued", "channel_account", account_id,
                             now=built.clock.now(), after={**asked, "job_id": job_id})  # fmt: skip
                console.print(f"{label}: finance import queued as job {job_id}")
        return
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
    for account_id, label in shops:

        def audited(session: Session, counts: FinanceCounts, account_id: int = account_id) -> None:
            audit.record(session, actor, "finance.import", "channel_account", account_id, now=built.clock.now(),
                         after={**asked, **counts.as_dict()})  # fmt: skip

        with Progress(*columns, console=console, transient=True) as progress:
            try:
                counts = finance.import_now(context, account_id, now=built.clock.now, since=start,
                                            progress=_Bars(progress, label), stored=audited)  # fmt: skip
            except (TikTokError, JobError) as error:
                fail(f"{label}: {error}")
        console.print(f"{label}: statements {counts.statements}; transactions {counts.transactions}; "
                      f"payments {counts.payments}")  # fmt: skip


# --- payouts, reconciliation, exceptions ------------------------------------------------------------------------

RECONCILERS = ("owner", "ops", "finance")
ACKNOWLEDGERS = ("owner", "finance")
BREAKDOWN_ROWS = tuple((label.lower(), key) for label, key in BREAKDOWN_LINES)


def _money(minor: int, currency: str) -> str:
    from shopbridge.domain.money import Money

    return str(Money.from_minor(minor, currency))


def _day(value: datetime | None) -> datetime | None:
    return value.replace(tzinfo=UTC) if value is not None else None


@finance_app.command("payouts")
def finance_payouts(
    shop: Annotated[int | None, typer.Option("--shop", metavar="ACCOUNT_ID", help="Only this shop.")] = None,
    since: Annotated[datetime | None, typer.Option(formats=["%Y-%m-%d"], help="Created on or after (UTC).")] = None,
    until: Annotated[datetime | None, typer.Option(formats=["%Y-%m-%d"], help="Created before (UTC).")] = None,
    limit: Annotated[int, typer.Option(min=1, help="At most this many, newest first.")] = 30,
) -> None:
    """Payouts, newest first, each broken down: sales, fees, refunds, adjustments, reserve, net and paid."""
    from rich.table import Table

    from shopbridge.cli import console, ready_hub
    from shopbridge.services import payouts

    built = ready_hub()
    table = Table("id", "shop", "created", "status", "sales", "fees", "refunds", "adjustments", "reserve", "paid",
                  "adds up", title="payouts")  # fmt: skip
    with built.sessions() as session:
        for found in payouts.payouts(session, account_id=shop, since=_day(since), until=_day(until), limit=limit):
            b, cur = found.breakdown, found.breakdown.currency
            table.add_row(str(found.id), found.shop, f"{found.created_at:%Y-%m-%d}", found.status or "",
                          _money(b.sales, cur), _money(b.fees, cur), _money(b.refunds, cur),
                          _money(b.adjustments + b.shipping + b.unexplained, cur), _money(b.reserve, cur),
                          _money(found.amount, found.currency),
                          "yes" if found.adds_up else f"no ({_money(found.difference, cur)})")  # fmt: skip
    console.print(table)


@finance_app.command("payout")
def finance_payout(
    payout_id: Annotated[int, typer.Argument(help="The payout's id in the hub (see `finance payouts`).")],
    orders: Annotated[bool, typer.Option("--orders", help="Also each order's part.")] = False,
) -> None:
    """One payout down to its statements (and orders): the numbers finance posts."""
    from rich.table import Table

    from shopbridge.cli import console, fail, ready_hub
    from shopbridge.services import payouts

    built = ready_hub()
    with built.sessions() as session:
        try:
            found = payouts.payout(session, payout_id)
            parts = payouts.order_breakdowns(session, payout_id) if orders else []
        except payouts.PayoutNotFound as error:
            fail(str(error))
    b, cur = found.breakdown, found.breakdown.currency
    paid = f"paid {found.paid_at:%Y-%m-%d}" if found.paid_at else "not paid yet"
    console.print(f"payout {found.external_id} of {found.shop}: {found.status or 'status unknown'}, created "
                  f"{found.created_at:%Y-%m-%d}, {paid} ({_money(found.amount, found.currency)} to "
                  f"{found.bank_account or 'the bank'}; {b.orders} orders, {b.transactions} transactions)")  # fmt: skip
    table = Table("", *[f"{s.statement_time:%Y-%m-%d}" for s in found.statements], "payout", title="breakdown")
    for label, key in BREAKDOWN_ROWS:
        table.add_row(label, *[_money(int(s.breakdown.as_dict()[key]), cur) for s in found.statements],
                      _money(int(b.as_dict()[key]), cur))  # fmt: skip
    console.print(table)
    if not found.adds_up:
        console.print(f"[red]the channel's totals differ from its transactions by {_money(found.difference, cur)}")
    if parts:
        lines = Table("order", "sales", "refunds", "fees", "shipping", "adjustments", "net", title="orders")
        for part in parts:
            p = part.breakdown
            lines.add_row(part.external_order_id or "(adjustments, reserve)", _money(p.sales, cur),
                          _money(p.refunds, cur), _money(p.fees, cur), _money(p.shipping, cur),
                          _money(p.adjustments + p.unexplained + p.reserve, cur), _money(p.paid, cur))  # fmt: skip
        console.print(lines)


@finance_app.command("reconcile")
def finance_reconcile(
    shop: Annotated[int | None, typer.Option("--shop", metavar="ACCOUNT_ID", help="Only this shop.")] = None,
) -> None:
    """Check every settled and delivered order against its settlements now, and print what is wrong."""
    from shopbridge.cli import acting, console, fail, ready_hub
    from shopbridge.services import audit, reconciliation
    from shopbridge.store.db import transaction

    built = ready_hub()
    actor = acting(built, RECONCILERS)
    with transaction(built.sessions) as session:
        accounts = reconciliation.accounts_with_finance(session, shop)
        if not accounts:
            fail("no shop has settlement data yet: `shopbridge finance import` first")
        for account in accounts:
            try:
                counts = reconciliation.reconcile(session, account, now=built.clock.now())
            except reconciliation.FinanceSettingsError as error:
                fail(str(error))
            audit.record(session, actor, "finance.reconcile", "channel_account", account.id, now=built.clock.now(),
                         after=counts.as_dict())  # fmt: skip
            found = ", ".join(f"{kind} {n}" for kind, n in sorted(counts.found.items())) or "no exception"
            stake = ", ".join(_money(v, c) for c, v in sorted(counts.at_stake.items()))
            console.print(f"{account.label}: {found}" + (f"; at stake {stake}" if stake else "") +
                          f" ({counts.new} new, {counts.cleared} cleared)")  # fmt: skip


@finance_app.command("exceptions")
def finance_exceptions(
    shop: Annotated[int | None, typer.Option("--shop", metavar="ACCOUNT_ID", help="Only this shop.")] = None,
    kind: Annotated[str | None, typer.Option(help="Only this kind, e.g. missing_settlement.")] = None,
    acknowledged: Annotated[bool, typer.Option("--acknowledged", help="Include acknowledged ones.")] = False,
    limit: Annotated[int, typer.Option(min=1)] = 100,
) -> None:
    """Open reconciliation exceptions, the most money first, and their totals per kind."""
    from rich.table import Table

    from shopbridge.cli import console, fail, ready_hub
    from shopbridge.services import reconciliation

    built = ready_hub()
    with built.sessions() as session:
        try:
            found = reconciliation.open_exceptions(session, account_id=shop, kind=kind,
                                                   include_acknowledged=acknowledged, limit=limit)  # fmt: skip
        except ValueError as error:
            fail(str(error))
        totals = reconciliation.summary(session, account_id=shop)
    table = Table("id", "kind", "order", "at stake", "found", "detail", "acknowledged", title="open exceptions")
    for e in found:
        table.add_row(str(e.id), e.kind, e.external_order_id or "", _money(e.amount_minor, e.currency),
                      f"{e.found_at:%Y-%m-%d}", e.detail,
                      f"{e.acknowledged_by}: {e.note}" if e.acknowledged_at else "")  # fmt: skip
    console.print(table)
    for name, cur, count, stake, acked in totals:
        console.print(f"{name}: {count} ({acked} acknowledged), {_money(stake, cur)} at stake")


@finance_app.command("acknowledge")
def finance_acknowledge(
    exception_id: Annotated[int, typer.Argument(help="The exception's id (see `finance exceptions`).")],
    note: Annotated[str, typer.Option(help="Why it is fine, or what was done about it.")],
) -> None:
    """Acknowledge an exception with a note (owner or finance; audited). It stays listed with --acknowledged."""
    from shopbridge.cli import acting, console, fail, ready_hub
    from shopbridge.services import audit, reconciliation
    from shopbridge.store.db import transaction

    built = ready_hub()
    actor = acting(built, ACKNOWLEDGERS)
    with transaction(built.sessions) as session:
        try:
            found = reconciliation.acknowledge(session, exception_id, note, actor=actor, now=built.clock.now())
        except (ValueError, reconciliation.ExceptionNotFound) as error:
            fail(str(error))
        audit.record(session, actor, "finance.exception_acknowledged", "finance_exception", exception_id,
                     now=built.clock.now(), after={"kind": found.kind, "subject": found.subject, "note": found.note,
                                                   "amount_minor": found.amount_minor})  # fmt: skip
    console.print(f"exception {exception_id} ({found.kind}, {found.subject}) acknowledged")


@finance_app.command("settings")
def finance_settings(
    shop: Annotated[int, typer.Option("--shop", metavar="ACCOUNT_ID", help="The shop.")],
    values: Annotated[
        list[str] | None,
        typer.Argument(
            metavar="[NAME=VALUE]...", help="e.g. referral_fee_rate=0.06 settlement_delay_days=8; NAME= removes it."
        ),
    ] = None,
) -> None:
    """Show or change a shop's finance settings: fee rates reconciliation checks, settlement delay and grace."""
    from shopbridge.cli import acting, console, fail, ready_hub
    from shopbridge.services import audit, reconciliation
    from shopbridge.store.db import transaction
    from shopbridge.store.tables import ChannelAccount

    built = ready_hub()
    changes: dict[str, str | int | None] = {}
    for pair in values or []:
        name, sep, value = pair.partition("=")
        if not sep:
            fail(f"{pair!r} is not NAME=VALUE")
        changes[name.strip()] = value.strip() or None
    actor = acting(built, ACKNOWLEDGERS) if changes else ""
    with transaction(built.sessions) as session:
        account = session.get(ChannelAccount, shop, with_for_update=bool(changes))
        if account is None:
            fail(f"channel account {shop} does not exist")
        if changes:
            try:
                before = reconciliation.configure(account, changes)
            except reconciliation.FinanceSettingsError as error:
                fail(str(error))
            audit.record(session, actor, "finance.settings", "channel_account", shop, now=built.clock.now(),
                         before=before, after=dict(account.settings[reconciliation.SETTINGS_KEY]))  # fmt: skip
        shown = dict((account.settings or {}).get(reconciliation.SETTINGS_KEY) or {})
    console.print(f"{account.label}: " + (", ".join(f"{k}={v}" for k, v in sorted(shown.items())) or "no finance "
                  "settings (fees not checked; settled on delivery, 2 days' grace)"))  # fmt: skip


# --- the daily check ------------------------------------------------------------------------------------------------


@finance_app.command("daily")
def finance_daily(
    day: Annotated[
        datetime | None,
        typer.Option(
            formats=["%Y-%m-%d"], help="The day, in each shop's own timezone. Default: yesterday in the hub's timezone."
        ),
    ] = None,
    shop: Annotated[int | None, typer.Option("--shop", metavar="ACCOUNT_ID", help="Only this shop.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """The daily finance check of each shop, in its timezone: orders paid, shipped and still to ship; cash on
    delivery expected and settled; refund and cancel ratios; payouts received; open exceptions."""
    import json
    from collections.abc import Mapping
    from datetime import timedelta
    from zoneinfo import ZoneInfo

    from rich.table import Table

    from shopbridge.cli import console, fail, ready_hub
    from shopbridge.domain.money import Money
    from shopbridge.services import finance_daily

    built = ready_hub()
    local_today = built.clock.now().astimezone(ZoneInfo(built.settings.timezone)).date()
    wanted = day.date() if day is not None else local_today - timedelta(days=1)
    with built.sessions() as session:
        try:
            checks = finance_daily.daily_check(session, wanted, account_id=shop)
        except finance_daily.DailyCheckError as error:
            fail(str(error))
    if not checks:
        fail(f"channel account {shop} has no orders or finance data" if shop is not None
             else "no shop has orders or finance data yet")  # fmt: skip
    if as_json:
        console.print_json(json.dumps([check.as_dict() for check in checks]))
        return

    def amounts(found: Mapping[str, Money]) -> str:
        return "\n".join(str(money) for _currency, money in sorted(found.items())) or "0"

    def figures(c: finance_daily.DailyCheck) -> list[tuple[str, str]]:
        ratio = finance_daily.percent
        return [
            ("the day in UTC", f"{c.start:%Y-%m-%d %H:%M}\nto {c.end:%Y-%m-%d %H:%M}"),
            ("orders placed", str(c.placed)),
            ("paid", str(c.paid)),
            ("shipped", str(c.shipped)),
            ("paid, not shipped at the end", str(c.backlog)),
            ("delivered", str(c.delivered)),
            ("cancelled (of placed)", f"{c.cancelled} ({ratio(c.cancel_ratio)})"),
            ("refunded (of delivered)", f"{c.refunded} ({ratio(c.refund_ratio)})"),
            ("refunds", amounts(c.refunds)),
            ("COD delivered", str(sum(one.delivered for one in c.cod))),
            ("COD expected", amounts({one.currency: one.expected for one in c.cod})),
            ("COD settled", amounts({one.currency: one.settled for one in c.cod})),
            ("payouts received", f"{c.payouts}\n{amounts(c.received)}" if c.payouts else "0"),
            ("open exceptions", str(c.open_exceptions)),
            ("at stake", amounts(c.at_stake)),
        ]

    shown = [figures(check) for check in checks]
    table = Table("", *[f"{check.shop}\n{check.timezone}" for check in checks], title=f"daily check, {wanted}")
    for row, (label, _value) in enumerate(shown[0]):
        table.add_row(label, *[one[row][1] for one in shown])
    console.print(table)
