"""Cash on delivery: how a courier's remittance file is read, and what couriers owe.

A courier collects the buyer's cash for a COD order and later remits it, less its fee, with a file (CSV) listing
one line per parcel. Every courier names its columns differently, so each courier has a ``ColumnMapping`` from our
fields to its headers, and its own date format. ``read_remittance`` reads a file whole and gives every bad row at
once (row and column named), so a person fixes the file in one go rather than one error per attempt.

``cod_report`` turns the COD orders the couriers took and the lines they remitted into figures per day (the day the
parcel shipped) and courier: expected, collected, the courier's fees, remitted, and what is still outstanding with
the age of the oldest outstanding order. Amounts are ``Money``; figures of different currencies are never added.

Pure: no database, no clock; services/cod.py reads the facts and stores the lines.
"""

from __future__ import annotations

import csv
import io
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime

from shopbridge.domain.money import CurrencyMismatch, InvalidAmount, Money, minor_digits

# Our fields, in the order a file is described, and those a file must have.
FIELDS = ("reference", "order", "collected", "fee", "remitted", "collected_on", "remitted_on", "currency")
REQUIRED = ("reference", "order", "collected", "remitted_on")
DEFAULT_DATE_FORMAT = "%Y-%m-%d"
UNASSIGNED = "unassigned"  # the courier of an order no courier could be found for
LONGEST_TEXT = 100  # characters: cod_remittances.reference and .external_order_id
LONGEST_HEADER = 200
DELIMITERS = (",", ";", "\t", "|")  # a file's delimiter is the one its header line uses most
_AMOUNT = re.compile(r"[+-]?[0-9]+(\.[0-9]+)?")
_LONGEST_AMOUNT = 30  # characters; no amount a courier remits is longer


class MappingRefused(ValueError):
    """A column mapping that cannot read a file: a field named twice, a required one missing, an unknown field."""


@dataclass(frozen=True)
class ColumnMapping:
    """Which header of a courier's file gives each of our fields, and how the courier writes dates.

    Required: reference (the courier's line id or the waybill), order (the order's number or its tracking number),
    collected (cash taken from the buyer) and remitted_on. Optional: fee (else 0), remitted (else collected less
    fee; given without fee, the fee is what collected and remitted differ by), collected_on, and currency (else the
    courier's). One header may serve two fields (a waybill that is both the reference and the tracking number)."""

    columns: Mapping[str, str]
    date_format: str = DEFAULT_DATE_FORMAT

    def __post_init__(self) -> None:
        problems = [f"unknown field {name!r} (fields: {', '.join(FIELDS)})" for name in self.columns
                    if name not in FIELDS]  # fmt: skip
        if not all(isinstance(header, str) for header in self.columns.values()):
            raise MappingRefused("every field's column is a column name (text)")
        problems += [f"field {name!r} has no column" for name, header in self.columns.items()
                     if name in FIELDS and not _header_key(header)]  # fmt: skip
        problems += [f"field {name!r}: a column name of at most {LONGEST_HEADER} characters"
                     for name, header in self.columns.items() if len(header) > LONGEST_HEADER]  # fmt: skip
        missing = [name for name in REQUIRED if name not in self.columns]
        if missing:
            problems.append(f"required field(s) missing: {', '.join(missing)}")
        if not _date_format_works(self.date_format):
            problems.append(f"date format {self.date_format!r} does not read back the dates it writes "
                            "(use strftime codes, e.g. %d/%m/%Y)")  # fmt: skip
        if problems:
            raise MappingRefused("; ".join(problems))
        object.__setattr__(self, "columns", {name: self.columns[name].strip() for name in FIELDS
                                             if name in self.columns})  # fmt: skip

    @classmethod
    def from_pairs(cls, pairs: Iterable[str], date_format: str = DEFAULT_DATE_FORMAT) -> ColumnMapping:
        """A mapping from ``field=Header`` texts (as the command line takes them); a field given twice is refused,
        since which of the two was meant cannot be known."""
        columns: dict[str, str] = {}
        problems = []
        for pair in pairs:
            name, equals, header = pair.partition("=")
            name = name.strip().lower()
            if not equals:
                problems.append(f"{pair!r} is not field=Column")
            elif name in columns:
                problems.append(f"field {name!r} is named twice ({columns[name]!r} and {header.strip()!r})")
            else:
                columns[name] = header
        if problems:
            raise MappingRefused("; ".join(problems))
        return cls(columns, date_format)

    def header(self, name: str) -> str | None:
        return self.columns.get(name)

    def as_document(self) -> dict[str, str]:
        """The mapping as ``couriers.columns`` stores it."""
        return dict(self.columns)


def _date_format_works(date_format: str) -> bool:
    if "%" not in date_format or len(date_format) > 40:
        return False
    sample = date(2026, 12, 31)
    try:
        return datetime.strptime(sample.strftime(date_format), date_format).date() == sample  # noqa: DTZ007 - a date
    except ValueError:
        return False


def _header_key(header: str) -> str:
    """A header as compared: spreadsheets add stray spaces, BOMs and change case, none of which names another
    column."""
    return " ".join(header.replace("\ufeff", "").split()).casefold()


# --- reading a file -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RowError:
    """What is wrong with one row of a file (row 1 is the header, as a spreadsheet numbers it), in which column."""

    row: int
    column: str | None
    problem: str

    def __str__(self) -> str:
        where = f"row {self.row}" + (f", column {self.column!r}" if self.column else "")
        return f"{where}: {self.problem}"


@dataclass(frozen=True)
class RemittanceLine:
    """One row of a remittance file, read: the courier collected ``collected`` for ``order`` and paid the seller
    ``remitted`` on ``remitted_on``, keeping ``fee``. All three are in the file's one currency."""

    row: int
    reference: str
    order: str
    collected: Money
    fee: Money
    remitted: Money
    collected_on: date | None
    remitted_on: date

    @property
    def currency(self) -> str:
        return self.collected.currency


@dataclass(frozen=True)
class RemittanceRead:
    """A file read whole: its lines and every problem found. Lines of a file with problems must not be used."""

    rows: int
    lines: tuple[RemittanceLine, ...]
    errors: tuple[RowError, ...]

    def total(self, currency: str) -> Money:
        """What the file says was paid to the seller."""
        return sum((line.remitted for line in self.lines), Money.from_minor(0, currency))


class Unreadable(ValueError):
    """A file that is not text at all; ``error`` names the row where it stops being text."""

    def __init__(self, error: RowError) -> None:
        super().__init__(str(error))
        self.error = error


def decode(content: bytes) -> str:
    """A file's bytes as text: UTF-8, with or without a byte order mark (spreadsheets write one)."""
    try:
        return content.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        row = content[: error.start].count(b"\n") + 1
        raise Unreadable(RowError(row, None, f"not UTF-8 text (byte {content[error.start]:#04x}); save the file "
                                             "as CSV UTF-8")) from None  # fmt: skip


def _delimiter(text: str) -> str:
    first = text.lstrip("\r\n").split("\n", 1)[0]
    return max(DELIMITERS, key=lambda candidate: (first.count(candidate), candidate == ","))


def read_remittance(text: str, mapping: ColumnMapping, currency: str) -> RemittanceRead:
    """Read a remittance file's text with a courier's mapping. ``currency`` is the courier's: every amount is in it,
    and a row whose currency column says otherwise is an error (a file never mixes currencies). Blank rows are
    skipped; columns the mapping does not name are ignored."""
    minor_digits(currency)
    rows = csv.reader(io.StringIO(text.removeprefix("\ufeff"), newline=""), delimiter=_delimiter(text), strict=True)
    errors: list[RowError] = []
    lines: list[RemittanceLine] = []
    seen: dict[str, int] = {}
    count = 0
    positions: dict[str, int] | None = None
    number = 0
    try:
        for number, cells in enumerate(rows, start=1):
            if not any(cell.strip() for cell in cells):
                continue
            if positions is None:
                positions, header_errors = _positions(cells, mapping, number)
                if header_errors:
                    return RemittanceRead(0, (), tuple(header_errors))
                continue
            count += 1
            line, row_errors = _line(number, cells, positions, mapping, currency)
            if line is not None and line.reference in seen:
                again = f"reference {line.reference!r} is also on row {seen[line.reference]}"
                row_errors.append(RowError(number, mapping.header("reference"), again))
            errors.extend(row_errors)
            if line is not None and not row_errors:
                seen[line.reference] = number
                lines.append(line)
    except csv.Error as error:
        errors.append(RowError(number + 1, None, f"not readable as CSV: {error}"))
    if positions is None:
        errors.append(RowError(1, None, "the file is empty: expected a header row naming the columns"))
    elif count == 0 and not errors:
        errors.append(RowError(2, None, "the file has a header but no rows"))
    return RemittanceRead(count, tuple(lines), tuple(errors))


def _positions(header: Sequence[str], mapping: ColumnMapping, row: int) -> tuple[dict[str, int], list[RowError]]:
    """Where each mapped field is in the file; errors name a column the file lacks, or has twice."""
    found: dict[str, list[int]] = defaultdict(list)
    for position, cell in enumerate(header):
        found[_header_key(cell)].append(position)
    positions: dict[str, int] = {}
    errors = []
    for name, column in mapping.columns.items():
        places = found.get(_header_key(column), [])
        if not places:
            shown = ", ".join(repr(cell.strip()) for cell in header if cell.strip())
            errors.append(RowError(row, column, f"no such column (for {name}); the file's columns are: {shown}"))
        elif len(places) > 1:
            errors.append(RowError(row, column, f"the header has this column {len(places)} times; which one is "
                                                f"{name} cannot be known"))  # fmt: skip
        else:
            positions[name] = places[0]
    return positions, errors


class _Row:
    """The cells of one data row by field, collecting what is wrong with them."""

    def __init__(self, number: int, cells: Sequence[str], positions: Mapping[str, int], mapping: ColumnMapping) -> None:
        self.number, self.cells, self.positions, self.mapping = number, cells, positions, mapping
        self.errors: list[RowError] = []

    def text(self, name: str) -> str | None:
        """The field's trimmed value; None where the file has no such column or the cell is empty."""
        position = self.positions.get(name)
        if position is None or position >= len(self.cells):
            return None
        return self.cells[position].strip() or None

    def error(self, name: str, problem: str) -> None:
        self.errors.append(RowError(self.number, self.mapping.header(name), problem))

    def required(self, name: str) -> str | None:
        value = self.text(name)
        if value is None:
            self.error(name, f"is empty: every row needs its {name}")
        elif len(value) > LONGEST_TEXT:
            self.error(name, f"at most {LONGEST_TEXT} characters, got {len(value)}")
            return None
        return value

    def amount(self, name: str, currency: str) -> Money | None:
        value = self.text(name)
        if value is None:
            return None
        if len(value) > _LONGEST_AMOUNT or not _AMOUNT.fullmatch(value):
            self.error(name, f"{value[:_LONGEST_AMOUNT]!r} is not an amount (write it like 1234.50, without "
                             "thousands separators or currency signs)")  # fmt: skip
            return None
        try:
            money = Money.parse(value, currency)
        except InvalidAmount as error:
            self.error(name, str(error))
            return None
        if money.amount < 0:
            self.error(name, f"{value} is negative; remittance amounts are never below zero")
            return None
        return Money.from_minor(money.to_minor(), currency)  # 4 is 4.00, as stored

    def day(self, name: str) -> date | None:
        value = self.text(name)
        if value is None:
            return None
        try:
            return datetime.strptime(value, self.mapping.date_format).date()  # noqa: DTZ007 - a calendar date
        except ValueError:
            self.error(name, f"{value[:40]!r} is not a date written {self.mapping.date_format}")
            return None


def _line(number: int, cells: Sequence[str], positions: Mapping[str, int], mapping: ColumnMapping,
          currency: str) -> tuple[RemittanceLine | None, list[RowError]]:  # fmt: skip
    row = _Row(number, cells, positions, mapping)
    reference, order = row.required("reference"), row.required("order")
    stated = row.text("currency")
    if stated is not None and stated.upper() != currency:
        row.error("currency", f"{stated[:10]!r}, but the courier remits in {currency}; a file is in one currency")
    collected = row.amount("collected", currency)
    if collected is None and row.text("collected") is None:
        row.error("collected", "is empty: every row needs the amount collected")
    fee, remitted = row.amount("fee", currency), row.amount("remitted", currency)
    if collected is not None:
        fee, remitted = _settle(row, collected, fee, remitted)
    collected_on, remitted_on = row.day("collected_on"), row.day("remitted_on")
    if remitted_on is None and row.text("remitted_on") is None:
        row.error("remitted_on", "is empty: every row needs the day it was remitted")
    if row.errors:
        return None, row.errors
    assert reference and order and collected and fee and remitted and remitted_on
    return RemittanceLine(number, reference, order, collected, fee, remitted, collected_on, remitted_on), []


_FeeAndRemitted = tuple[Money | None, Money | None]


def _settle(row: _Row, collected: Money, fee: Money | None, remitted: Money | None) -> _FeeAndRemitted:
    """Fee and remitted from what the row gives: collected less fee is remitted, always."""
    zero = Money.from_minor(0, collected.currency)
    if remitted is None and row.text("remitted") is None:
        fee = fee or zero
        if fee.amount > collected.amount:
            row.error("fee", f"fee {fee} is more than the {collected} collected")
            return None, None
        return fee, collected - fee
    if remitted is None:
        return None, None
    if fee is None and row.text("fee") is None:
        if remitted.amount > collected.amount:
            row.error("remitted", f"remitted {remitted} is more than the {collected} collected")
            return None, None
        return collected - remitted, remitted
    if fee is not None and collected - fee != remitted:
        row.error("remitted", f"remitted {remitted} is not the {collected} collected less the fee {fee}")
        return None, None
    return fee, remitted


# --- which courier ------------------------------------------------------------------------------------------------


def courier_index(couriers: Iterable[tuple[str, str]]) -> dict[str, str]:
    """Couriers' (code, name) as a lookup from a carrier's name, ignoring case and spacing, to the courier's code.
    A code wins over another courier's name that reads the same."""
    listed = list(couriers)
    index = {_header_key(name): code for code, name in listed}
    index.update({_header_key(code): code for code, _name in listed})
    return index


def courier_of(carriers: Iterable[str | None], index: Mapping[str, str]) -> str | None:
    """The code of the first carrier name (a shipment's carrier, a channel's shipping provider) that is a courier's
    code or name; None when none is."""
    for carrier in carriers:
        if carrier and (code := index.get(_header_key(carrier))):
            return code
    return None


# --- what couriers owe ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ExpectedCod:
    """A COD order a courier took: its total is the cash the courier should collect and remit. ``courier`` is None
    when the order's carrier is no known courier (a remittance line naming the order then tells)."""

    order_id: int
    external_id: str
    courier: str | None
    amount: Money
    shipped_on: date
    delivered_on: date | None = None


@dataclass(frozen=True)
class RemittedCod:
    """A stored remittance line: what a courier collected for an order, its fee, and what it paid the seller."""

    order_id: int | None
    courier: str
    collected: Money
    fee: Money
    remitted: Money
    remitted_on: date


@dataclass(frozen=True)
class CodFigures:
    """The COD figures of one day and courier (``day`` None: the whole period; ``courier`` None: every courier),
    in one currency.

    expected: the totals of the COD orders shipped that day. collected: what remittance lines say the courier
    collected for them, or, for a delivered order no line names yet, its total (the courier has the cash).
    fees: the courier's fees on those lines. remitted: what the courier paid. outstanding: expected less remitted
    and fees, i.e. what the courier has neither paid nor accounted for; negative when it remitted more (or for
    orders the hub did not expect, counted on the day they were remitted: ``unexpected_lines``)."""

    day: date | None
    courier: str | None
    currency: str
    orders: int
    expected: Money
    collected: Money
    fees: Money
    remitted: Money
    outstanding: Money
    outstanding_orders: int
    oldest_outstanding_days: int | None
    unexpected_lines: int = 0


@dataclass(frozen=True)
class CodReport:
    """Figures per day and courier, per courier over the period, and per currency, as of a day."""

    as_of: date
    days: tuple[CodFigures, ...]
    couriers: tuple[CodFigures, ...]
    totals: tuple[CodFigures, ...]


@dataclass
class _Sum:
    currency: str
    orders: int = 0
    expected: Money = field(init=False)
    collected: Money = field(init=False)
    fees: Money = field(init=False)
    remitted: Money = field(init=False)
    outstanding: Money = field(init=False)
    outstanding_orders: int = 0
    oldest: int | None = None
    unexpected_lines: int = 0

    def __post_init__(self) -> None:
        zero = Money.from_minor(0, self.currency)
        self.expected = self.collected = self.fees = self.remitted = self.outstanding = zero

    def add(self, other: _Sum) -> None:
        self.orders += other.orders
        self.expected += other.expected
        self.collected += other.collected
        self.fees += other.fees
        self.remitted += other.remitted
        self.outstanding += other.outstanding
        self.outstanding_orders += other.outstanding_orders
        self.unexpected_lines += other.unexpected_lines
        if other.oldest is not None:
            self.oldest = max(self.oldest or 0, other.oldest)

    def figures(self, day: date | None, courier: str | None) -> CodFigures:
        return CodFigures(day, courier, self.currency, self.orders, self.expected, self.collected, self.fees,
                          self.remitted, self.outstanding, self.outstanding_orders, self.oldest,
                          self.unexpected_lines)  # fmt: skip


def _order_sum(order: ExpectedCod, lines: Sequence[RemittedCod], as_of: date) -> _Sum:
    """One order's figures; a line in another currency than its order stops the report (CurrencyMismatch)."""
    figures = _Sum(order.amount.currency, orders=1)
    try:
        for line in lines:
            figures.collected += line.collected
            figures.fees += line.fee
            figures.remitted += line.remitted
    except CurrencyMismatch as error:
        raise CurrencyMismatch(f"order {order.external_id}: a remittance line {error}") from None
    if not lines and order.delivered_on is not None and order.delivered_on <= as_of:
        figures.collected = order.amount
    figures.expected = order.amount
    figures.outstanding = order.amount - figures.remitted - figures.fees
    if figures.outstanding.amount > 0:
        figures.outstanding_orders = 1
        figures.oldest = (as_of - order.shipped_on).days
    return figures


def cod_report(expected: Iterable[ExpectedCod], remitted: Iterable[RemittedCod], *, as_of: date) -> CodReport:
    """The COD figures as of ``as_of``: orders shipped by then, lines remitted by then, deliveries made by then.

    An order is counted on the day it shipped, under its courier (else the courier of a line that names it, else
    ``UNASSIGNED``); a line for an order not among ``expected`` is counted on the day it was remitted. Outstanding
    age is in whole days from the day the order shipped to ``as_of``."""
    lines: dict[int | None, list[RemittedCod]] = defaultdict(list)
    for line in remitted:
        if line.remitted_on <= as_of:
            lines[line.order_id].append(line)
    sums: dict[tuple[date, str, str], _Sum] = {}

    def add(day: date, courier: str, figures: _Sum) -> None:
        key = (day, courier, figures.currency)
        sums.setdefault(key, _Sum(figures.currency)).add(figures)

    for order in {order.order_id: order for order in expected if order.shipped_on <= as_of}.values():
        named = lines.pop(order.order_id, [])
        courier = order.courier or (named[0].courier if named else UNASSIGNED)
        add(order.shipped_on, courier, _order_sum(order, named, as_of))
    for line in (line for unexpected in lines.values() for line in unexpected):
        figures = _Sum(line.collected.currency, unexpected_lines=1)
        figures.collected, figures.fees, figures.remitted = line.collected, line.fee, line.remitted
        figures.outstanding = figures.outstanding - line.remitted - line.fee
        add(line.remitted_on, line.courier, figures)

    per_courier: dict[tuple[str, str], _Sum] = {}
    per_currency: dict[str, _Sum] = {}
    for (_day, courier, currency), figures in sorted(sums.items()):
        per_courier.setdefault((courier, currency), _Sum(currency)).add(figures)
        per_currency.setdefault(currency, _Sum(currency)).add(figures)
    return CodReport(
        as_of=as_of,
        days=tuple(figures.figures(day, courier) for (day, courier, _c), figures in sorted(sums.items())),
        couriers=tuple(figures.figures(None, courier) for (courier, _c), figures in sorted(per_courier.items(),
                                                                                         key=_courier_order)),
        totals=tuple(figures.figures(None, None) for _c, figures in sorted(per_currency.items())),
    )  # fmt: skip


def _courier_order(item: tuple[tuple[str, str], _Sum]) -> tuple[bool, str, str]:
    (courier, currency), _figures = item
    return courier == UNASSIGNED, courier, currency
