"""`shopbridge finance cod`: couriers and their column mappings, remittance files imported, and the COD report.
Mounted under the finance command (``finance_app.add_typer(cod_app, name="cod")``). Changes need a role of
``services.cod.IMPORTERS`` (checked and audited under ``--as``, as every command's); reading needs any role."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from rich.table import Table

    from shopbridge.domain.cod import CodFigures, ColumnMapping
    from shopbridge.domain.money import Money
    from shopbridge.services.cod import CourierView

cod_app = typer.Typer(help="Cash on delivery: couriers, their remittance files, what they owe.", no_args_is_help=True)
courier_app = typer.Typer(help="Couriers and how their remittance files read.", no_args_is_help=True)
cod_app.add_typer(courier_app, name="courier")

DEFAULT_DAYS = 30

Columns = Annotated[
    list[str] | None,
    typer.Option(
        "--column",
        metavar="FIELD=HEADER",
        help="The file's column for a field, once per field: reference, order, collected (required, with "
        "remitted_on), fee, remitted, collected_on, currency.",
    ),
]
DateFormat = Annotated[
    str | None, typer.Option("--date-format", help="How the courier writes dates, as strftime codes (%d/%m/%Y).")
]


def _mapping(
    columns: list[str] | None, date_format: str | None, kept: CourierView | None = None
) -> ColumnMapping | None:
    """The mapping the options describe: none to keep the courier's; its columns kept when only the date format is
    given, its date format kept when only columns are."""
    from shopbridge.cli import fail
    from shopbridge.domain.cod import DEFAULT_DATE_FORMAT, ColumnMapping, MappingRefused

    try:
        if columns:
            return ColumnMapping.from_pairs(columns, date_format or (kept.mapping.date_format if kept else
                                                                     DEFAULT_DATE_FORMAT))  # fmt: skip
        if kept is not None and date_format is not None:
            return ColumnMapping(kept.mapping.columns, date_format)
    except MappingRefused as error:
        fail(f"column mapping: {error}")
    if kept is None:
        fail("--column: name the file's columns, e.g. --column reference=Waybill --column order='Order No'")
    return None


def _print_courier(courier: CourierView) -> None:
    from shopbridge.cli import console

    columns = ", ".join(f"{name}={header}" for name, header in courier.mapping.columns.items())
    console.print(f"courier {courier.code} ({courier.name}), remits in {courier.currency}: {columns}; dates "
                  f"{courier.mapping.date_format}", markup=False, highlight=False)  # fmt: skip


@courier_app.command("add")
def courier_add(
    code: Annotated[str, typer.Argument(help="How files, commands and carriers name the courier, e.g. JNE.")],
    name: Annotated[str, typer.Option("--name", help="The courier's name; an order's carrier may match it too.")],
    columns: Columns = None,
    currency: Annotated[
        str | None, typer.Option("--currency", help="What it remits in (ISO 4217). Default: the hub's currency.")
    ] = None,
    date_format: DateFormat = None,
) -> None:
    """Add a courier with its remittance file's columns."""
    from shopbridge.cli import acting, fail, ready_hub
    from shopbridge.services import cod
    from shopbridge.store.db import transaction

    mapping = _mapping(columns, date_format)
    assert mapping is not None
    built = ready_hub()
    actor = acting(built, cod.IMPORTERS)
    try:
        with transaction(built.sessions) as session:
            courier = cod.add_courier(session, code, name=name, currency=currency or built.settings.currency,
                                      mapping=mapping, actor=actor, now=built.clock.now())  # fmt: skip
    except cod.CodError as error:
        fail(str(error))
    _print_courier(courier)


@courier_app.command("update")
def courier_update(
    code: Annotated[str, typer.Argument(help="The courier's code.")],
    name: Annotated[str | None, typer.Option("--name", help="A new name.")] = None,
    columns: Columns = None,
    currency: Annotated[
        str | None, typer.Option("--currency", help="A new currency (only before any remittance).")
    ] = None,
    date_format: DateFormat = None,
) -> None:
    """Change a courier: --column options replace its whole mapping; --date-format alone keeps its columns."""
    from shopbridge.cli import acting, fail, ready_hub
    from shopbridge.services import cod
    from shopbridge.store.db import transaction

    built = ready_hub()
    actor = acting(built, cod.IMPORTERS)
    try:
        with transaction(built.sessions) as session:
            mapping = _mapping(columns, date_format, cod.get_courier(session, code))
            courier = cod.update_courier(session, code, name=name, currency=currency, mapping=mapping, actor=actor,
                                         now=built.clock.now())  # fmt: skip
    except cod.CodError as error:
        fail(str(error))
    _print_courier(courier)


@courier_app.command("list")
def courier_list() -> None:
    """The couriers, their currency, their file's columns and what the hub holds of them."""
    from rich.markup import escape
    from rich.table import Table

    from shopbridge.cli import acting, console, ready_hub
    from shopbridge.services import access, cod

    built = ready_hub()
    acting(built, access.READERS)
    with built.sessions() as session:
        couriers = cod.list_couriers(session)
    table = Table("code", "name", "currency", "columns", "date format", "files", "lines", title="couriers")
    for courier in couriers:
        columns = ", ".join(f"{name}={header}" for name, header in courier.mapping.columns.items())
        table.add_row(courier.code, escape(courier.name), courier.currency, escape(columns),
                      escape(courier.mapping.date_format), str(courier.files), str(courier.lines))  # fmt: skip
    console.print(table)


@cod_app.command("import")
def cod_import(
    file: Annotated[Path, typer.Argument(help="The courier's remittance file (CSV, UTF-8).")],
    courier: Annotated[str, typer.Option("--courier", help="The courier that sent it (its code).")],
) -> None:
    """Import a courier's remittance file: every row is read first, and a malformed row refuses the whole file. Rows
    the hub cannot take (unknown or non-COD order, other currency) are listed; the others are imported. Exits 1
    when rows were refused."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from shopbridge.cli import acting, console, errors, fail, ready_hub
    from shopbridge.services import cod
    from shopbridge.store.db import transaction

    try:
        content = file.read_bytes()
    except OSError as error:
        fail(f"cannot read {file}: {error.strerror or error}")
    built = ready_hub()
    actor = acting(built, cod.IMPORTERS)
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    try:
        with Progress(*columns, console=console, transient=True) as progress:
            task = progress.add_task(f"importing {file.name}", total=None)
            with transaction(built.sessions) as session:
                result = cod.import_remittance(
                    session, courier, file.name, content, actor=actor, now=built.clock.now(),
                    progress=lambda done, total: progress.update(task, completed=done, total=total),
                )  # fmt: skip
    except cod.RemittanceRefused as refused:
        for problem in refused.errors:
            errors.print(str(problem), markup=False, highlight=False)
        fail(f"{file.name}: {len(refused.errors)} problem(s); nothing was imported")
    except cod.CodError as error:
        fail(str(error))
    known = " (this file was imported before)" if result.file_known else ""
    console.print(f"{file.name}{known}: {result.rows} row(s) from {result.courier}: {result.new} new (remitted "
                  f"{result.remitted}), {result.already_imported} already imported, {len(result.refused)} refused",
                  markup=False, highlight=False)  # fmt: skip
    for problem in result.refused:
        errors.print(f"refused: {problem}", markup=False, highlight=False)
    if result.refused:
        raise typer.Exit(1)


def _amount(money: Money) -> str:
    from decimal import Decimal

    from shopbridge.domain.money import minor_digits

    return str(money.amount.quantize(Decimal(1).scaleb(-minor_digits(money.currency))))


def _row(figures: CodFigures, first: str) -> list[str]:
    from rich.markup import escape

    oldest = figures.oldest_outstanding_days
    amounts = (figures.expected, figures.collected, figures.fees, figures.remitted, figures.outstanding)
    return [escape(first), figures.courier or "", figures.currency, str(figures.orders), *map(_amount, amounts),
            str(figures.outstanding_orders), "" if oldest is None else str(oldest)]  # fmt: skip


def _table(first: str, title: str) -> Table:
    """A report table: amounts and counts right-aligned, so their decimals line up."""
    from rich.table import Column, Table

    figures = ("orders", "expected", "collected", "fees", "remitted", "outstanding", "outstanding orders",
               "oldest (days)")  # fmt: skip
    return Table(first, "courier", "currency", *(Column(name, justify="right") for name in figures), title=title)


@cod_app.command("report")
def cod_report(
    since: Annotated[
        datetime | None,
        typer.Option(formats=["%Y-%m-%d"], help=f"First day (the hub's timezone). Default: {DEFAULT_DAYS} days back."),
    ] = None,
    until: Annotated[
        datetime | None, typer.Option(formats=["%Y-%m-%d"], help="Last day, and the day ages count to. Default: today.")
    ] = None,
) -> None:
    """COD per day shipped and courier: expected, collected, courier fees, remitted, outstanding and its age."""
    from shopbridge.cli import acting, console, fail, ready_hub
    from shopbridge.services import access, cod

    built = ready_hub()
    acting(built, access.READERS)
    timezone = built.settings.timezone
    last = until.date() if until else cod.today(built.clock.now(), timezone)
    first = since.date() if since else last - timedelta(days=DEFAULT_DAYS - 1)
    try:
        with built.sessions() as session:
            summary = cod.cod_report(session, since=first, until=last, timezone=timezone)
    except cod.CodError as error:
        fail(str(error))
    report = summary.report
    days = _table("day shipped", f"cash on delivery {first} to {last} ({timezone}), as of {last}")
    for figures in report.days:
        days.add_row(*_row(figures, str(figures.day)))
    console.print(days)
    totals = _table("name", f"per courier, {first} to {last}")
    for figures in (*report.couriers, *report.totals):
        name = summary.courier_names.get(figures.courier, "") if figures.courier else "total"
        totals.add_row(*_row(figures, name))
    console.print(totals)
    unexpected = sum(figures.unexpected_lines for figures in report.totals)
    if unexpected:
        console.print(f"{unexpected} remittance line(s) are for orders the hub does not expect (not shipped, or "
                      "cancelled): counted on the day they were remitted, they lower the outstanding.")  # fmt: skip
