"""`shopbridge finance`: TikTok statements, their transactions and payouts imported now, in this process.
Added to the main command by cli.py (``app.add_typer(finance_app, name="finance")``)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID
    from sqlalchemy.orm import Session

    from shopbridge.services.finance import FinanceCounts

finance_app = typer.Typer(help="Finance: TikTok statements, their transactions and payouts.", no_args_is_help=True)

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
