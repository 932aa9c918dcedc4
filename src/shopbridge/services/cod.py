"""Cash on delivery: couriers and how their remittance files read, remittance files imported, and what couriers owe.

COD orders come from TikTok markets that offer it and from the manual channels (WhatsApp, phone, Facebook); a courier
collects the cash and remits it, less its fee, listing the parcels in a CSV file. Importing a file stores each line
against the hub's order it names (by the order's number, or by the tracking number of its shipment or package),
once: a file imported again (same SHA-256) adds nothing, and a line is kept once per (courier, reference). A file
with a malformed row is refused whole; a well-formed line the hub cannot take (an unknown order, one that is not
COD, one in another currency, a reference already imported with other figures) is refused and reported alone, and
is taken when the same file is imported again once the hub knows its order.

``cod_report`` gives expected, collected, fees, remitted and outstanding per day and courier (domain/cod.py).
Functions return dataclasses so the command line, the dashboard and the journal can each show or post them; those
that change something record an audit entry in the caller's unit of work. Who may call them is the caller's check
(``IMPORTERS`` change, any role reads).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from shopbridge.domain.cod import (
    UNASSIGNED,
    CodReport,
    ColumnMapping,
    ExpectedCod,
    MappingRefused,
    RemittanceLine,
    RemittedCod,
    RowError,
    Unreadable,
    courier_index,
    courier_of,
    decode,
    read_remittance,
)
from shopbridge.domain.cod import cod_report as figures_of
from shopbridge.domain.money import InvalidAmount, Money, minor_digits
from shopbridge.domain.orders import OrderStatus
from shopbridge.services import audit
from shopbridge.store.tables import (
    ChannelAccount,
    CodRemittance,
    CodRemittanceFile,
    Courier,
    Order,
    OrderStatusChange,
    Shipment,
)

IMPORTERS = ("owner", "ops", "finance")  # who adds couriers and imports their files; every role reads
SHIPPED = (OrderStatus.IN_TRANSIT.value, OrderStatus.DELIVERED.value, OrderStatus.COMPLETED.value)
DELIVERED = (OrderStatus.DELIVERED.value, OrderStatus.COMPLETED.value)
COURIER_CODE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,49}")
CHUNK = 500  # values per IN (...) and rows per insert, well under SQLite's limit on bound parameters
LONGEST_FILENAME = 300  # cod_remittance_files.filename
ERRORS_IN_MESSAGE = 20

Progress = Callable[[int, int], None]
Item = TypeVar("Item")


class CodError(ValueError):
    """A COD command that cannot be done; the message says what to fix."""


class CourierNotFound(CodError, LookupError):
    pass


class RemittanceRefused(CodError):
    """A remittance file that cannot be imported; nothing of it was."""

    def __init__(self, filename: str, errors: Sequence[RowError]) -> None:
        self.filename = filename
        self.errors = tuple(errors)
        shown = "; ".join(str(error) for error in self.errors[:ERRORS_IN_MESSAGE])
        more = len(self.errors) - ERRORS_IN_MESSAGE
        super().__init__(f"{filename}: {shown}" + (f"; and {more} more" if more > 0 else ""))


# --- couriers -------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CourierView:
    """A courier with how its files read, and what the hub holds of it."""

    id: int
    code: str
    name: str
    currency: str
    mapping: ColumnMapping
    files: int
    lines: int


def _courier(session: Session, code: str, *, lock: bool = False) -> Courier:
    """A courier by its code, in any case (``jne`` is ``JNE``)."""
    query = select(Courier).where(func.lower(Courier.code) == code.strip().lower())
    courier = session.scalar(query.with_for_update() if lock else query)
    if courier is None:
        known = ", ".join(session.scalars(select(Courier.code).order_by(Courier.code))) or "none yet"
        raise CourierNotFound(f"no courier {code.strip()!r} (couriers: {known})")
    return courier


def _mapping(courier: Courier) -> ColumnMapping:
    try:
        return ColumnMapping(dict(courier.columns), courier.date_format)
    except MappingRefused as error:
        raise CodError(f"courier {courier.code}'s column mapping: {error}") from None


def _view(session: Session, courier: Courier) -> CourierView:
    files = session.scalar(select(func.count()).where(CodRemittanceFile.courier_id == courier.id)) or 0
    lines = session.scalar(select(func.count()).where(CodRemittance.courier_id == courier.id)) or 0
    return CourierView(courier.id, courier.code, courier.name, courier.currency, _mapping(courier), files, lines)


def _document(courier: Courier) -> dict[str, Any]:
    return {"name": courier.name, "currency": courier.currency, "columns": dict(courier.columns),
            "date_format": courier.date_format}  # fmt: skip


def _checked_name(name: str) -> str:
    name = " ".join(name.split())
    if not 1 <= len(name) <= 200:
        raise CodError("courier name: 1 to 200 characters")
    return name


def _checked_currency(currency: str) -> str:
    currency = currency.strip().upper()
    try:
        minor_digits(currency)
    except InvalidAmount as error:
        raise CodError(f"courier currency: {error}") from None
    return currency


def add_courier(session: Session, code: str, *, name: str, currency: str, mapping: ColumnMapping, actor: str,
                now: datetime) -> CourierView:  # fmt: skip
    """A new courier: its code (how files and the command line name it; also matched, as its name is, against an
    order's carrier), the currency it remits in, and its file's columns."""
    code = code.strip()
    if not COURIER_CODE.fullmatch(code) or code.casefold() == UNASSIGNED:
        raise CodError(f"courier code {code!r}: 1 to 50 letters, digits, '.', '_' or '-', starting with a letter or "
                       f"digit, and not {UNASSIGNED!r}")  # fmt: skip
    taken = session.scalar(select(Courier.code).where(func.lower(Courier.code) == code.lower()))
    if taken is not None:
        raise CodError(f"courier {taken} exists already; change it with update")
    courier = Courier(code=code, name=_checked_name(name), currency=_checked_currency(currency),
                      columns=mapping.as_document(), date_format=mapping.date_format, created_at=now)  # fmt: skip
    session.add(courier)
    session.flush()
    audit.record(session, actor, "cod.courier_add", "courier", code, now=now, after=_document(courier))
    return _view(session, courier)


def update_courier(session: Session, code: str, *, name: str | None = None, currency: str | None = None,
                   mapping: ColumnMapping | None = None, actor: str, now: datetime) -> CourierView:  # fmt: skip
    """Change a courier's name, currency or mapping. Its currency stays once it has remitted lines: changing it would
    put amounts of one currency under another."""
    courier = _courier(session, code, lock=True)
    before = _document(courier)
    if name is not None:
        courier.name = _checked_name(name)
    if currency is not None and (currency := _checked_currency(currency)) != courier.currency:
        if session.scalar(select(CodRemittance.id).where(CodRemittance.courier_id == courier.id).limit(1)):
            raise CodError(f"courier {courier.code} has remittances in {courier.currency}; its currency stays")
        courier.currency = currency
    if mapping is not None:
        courier.columns, courier.date_format = mapping.as_document(), mapping.date_format
    after = _document(courier)
    if after != before:
        audit.record(session, actor, "cod.courier_update", "courier", courier.code, now=now, before=before,
                     after=after)  # fmt: skip
    session.flush()
    return _view(session, courier)


def get_courier(session: Session, code: str) -> CourierView:
    """A courier by its code, in any case; CourierNotFound lists the couriers there are."""
    return _view(session, _courier(session, code))


def list_couriers(session: Session) -> list[CourierView]:
    return [_view(session, courier) for courier in session.scalars(select(Courier).order_by(Courier.code))]


# --- importing a remittance file ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ImportResult:
    """What importing a file did. ``file_known``: the same file was imported before (its new lines, if any, are
    those refused then whose order the hub has since). ``line_ids`` are the lines stored now, for whoever posts
    them to the journal."""

    courier: str
    filename: str
    sha256: str
    file_id: int
    file_known: bool
    rows: int
    new: int
    already_imported: int
    refused: tuple[RowError, ...]
    remitted: Money
    line_ids: tuple[int, ...]

    def as_dict(self) -> dict[str, Any]:
        return {"courier": self.courier, "filename": self.filename, "sha256": self.sha256, "file_id": self.file_id,
                "file_known": self.file_known, "rows": self.rows, "new": self.new,
                "already_imported": self.already_imported, "refused": len(self.refused),
                "remitted": str(self.remitted.amount), "currency": self.remitted.currency}  # fmt: skip


@dataclass(frozen=True)
class _OrderFacts:
    id: int
    external_id: str
    is_cod: bool
    currency: str
    account: str


def _chunks(values: Sequence[Item]) -> Iterator[Sequence[Item]]:
    for start in range(0, len(values), CHUNK):
        yield values[start : start + CHUNK]


def _orders_query() -> Any:
    return select(Order.id, Order.external_id, Order.is_cod, Order.currency, ChannelAccount.label).join(
        ChannelAccount, ChannelAccount.id == Order.channel_account_id
    )


class _Orders:
    """The hub's orders a batch of lines names, read a chunk at a time: by number, then by the tracking number of
    a shipment, then by the tracking number of a COD order's channel package."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.by_number: dict[str, list[_OrderFacts]] = {}
        self.by_tracking: dict[str, list[_OrderFacts]] = {}
        self._packages: dict[str, list[int]] | None = None

    def read(self, lines: Sequence[RemittanceLine]) -> None:
        numbers = sorted({line.order for line in lines} - self.by_number.keys())
        for facts in self._facts(Order.external_id.in_(numbers)) if numbers else ():
            self.by_number.setdefault(facts.external_id, []).append(facts)
        for number in numbers:
            self.by_number.setdefault(number, [])
        wanted = sorted({value for line in lines if not self.by_number[line.order]
                         for value in (line.order, line.reference)} - self.by_tracking.keys())  # fmt: skip
        if not wanted:
            return
        shipped = self.session.execute(
            select(Shipment.tracking_number, Shipment.order_id).where(Shipment.tracking_number.in_(wanted))
        ).all()
        tracked: dict[str, set[int]] = {}
        for tracking, order_id in shipped:
            tracked.setdefault(str(tracking), set()).add(order_id)
        if any(value not in tracked for value in wanted):
            packages = self._package_tracking()
            for value in wanted:
                tracked.setdefault(value, set()).update(packages.get(value, ()))
        ids = sorted({order_id for found in tracked.values() for order_id in found})
        by_id = {facts.id: facts for facts in self._facts(Order.id.in_(ids))} if ids else {}
        for value in wanted:
            self.by_tracking[value] = [by_id[order_id] for order_id in sorted(tracked.get(value, ()))]

    def _facts(self, where: Any) -> list[_OrderFacts]:
        return [_OrderFacts(*row) for row in self.session.execute(_orders_query().where(where))]

    def _package_tracking(self) -> dict[str, list[int]]:
        """Tracking numbers of COD orders' packages as their channel gave them (TikTok), read once per import."""
        if self._packages is None:
            self._packages = {}
            rows = self.session.execute(select(Order.id, Order.packages).where(Order.is_cod.is_(True)))
            for order_id, document in rows:
                for package in (document or {}).get("packages") or ():
                    tracking = package.get("tracking_number") if isinstance(package, dict) else None
                    if tracking:
                        self._packages.setdefault(str(tracking), []).append(order_id)
        return self._packages

    def named(self, line: RemittanceLine) -> list[_OrderFacts]:
        return (self.by_number.get(line.order) or self.by_tracking.get(line.order)
                or self.by_tracking.get(line.reference) or [])  # fmt: skip


def _order_of(line: RemittanceLine, orders: _Orders, mapping: ColumnMapping) -> _OrderFacts | RowError:
    """The COD order a line is for, or why the line cannot be taken."""
    column = mapping.header("order")
    named = orders.named(line)
    if not named:
        return RowError(line.row, column, f"no hub order is numbered {line.order!r}, and no shipment has that "
                                          "tracking number")  # fmt: skip
    cod = [facts for facts in named if facts.is_cod]
    if not cod:
        facts = named[0]
        return RowError(line.row, column, f"order {facts.external_id} ({facts.account}) is not cash on delivery")
    if len(cod) > 1:
        accounts = ", ".join(f"{facts.external_id} ({facts.account})" for facts in cod)
        return RowError(line.row, column, f"{line.order!r} names {len(cod)} COD orders: {accounts}")
    order = cod[0]
    if order.currency != line.currency:
        other = f"order {order.external_id} is in {order.currency}; the line is in {line.currency}"
        return RowError(line.row, mapping.header("currency") or column, other)
    return order


def _same(stored: CodRemittance, line: RemittanceLine) -> bool:
    kept = (stored.external_order_id, stored.collected_minor, stored.fee_minor, stored.remitted_minor)
    read = (line.order, line.collected.to_minor(), line.fee.to_minor(), line.remitted.to_minor())
    return kept == read and (stored.remitted_on, stored.collected_on) == (line.remitted_on, line.collected_on)


def _conflict(stored: CodRemittance, filename: str, line: RemittanceLine, mapping: ColumnMapping) -> RowError:
    def money(minor: int) -> str:
        return str(Money.from_minor(minor, stored.currency))

    return RowError(line.row, mapping.header("reference"),
                    f"reference {line.reference!r} was imported from {filename} for order {stored.external_order_id} "
                    f"with collected {money(stored.collected_minor)}, fee {money(stored.fee_minor)}, remitted "
                    f"{money(stored.remitted_minor)} on {stored.remitted_on}; this row says otherwise")  # fmt: skip


def _stored(session: Session, courier_id: int, references: Sequence[str]) -> dict[str, CodRemittance]:
    """The courier's lines already imported under these references."""
    query = select(CodRemittance).where(CodRemittance.courier_id == courier_id, CodRemittance.reference.in_(references))
    return {row.reference: row for row in session.scalars(query)}


def _filenames(session: Session, file_ids: set[int]) -> dict[int, str]:
    if not file_ids:
        return {}
    query = select(CodRemittanceFile.id, CodRemittanceFile.filename).where(CodRemittanceFile.id.in_(file_ids))
    return {file_id: filename for file_id, filename in session.execute(query)}


def import_remittance(session: Session, courier_code: str, filename: str, content: bytes, *, actor: str,
                      now: datetime, progress: Progress | None = None) -> ImportResult:  # fmt: skip
    """Import a courier's remittance file in the caller's unit of work: every line of it, or nothing if any row is
    malformed (RemittanceRefused names each bad row and column). Lines the hub cannot take are refused one by one
    and reported; a line already imported (same courier and reference, same figures) is counted, not stored again.
    ``progress(done, total)`` follows the lines."""
    courier = _courier(session, courier_code, lock=True)  # one import per courier at a time
    mapping = _mapping(courier)
    name = filename.strip()[-LONGEST_FILENAME:] or "remittance.csv"
    digest = hashlib.sha256(content).hexdigest()
    try:
        read = read_remittance(decode(content), mapping, courier.currency)
    except Unreadable as unreadable:
        raise RemittanceRefused(name, [unreadable.error]) from None
    if read.errors:
        raise RemittanceRefused(name, read.errors)
    known = session.scalar(
        select(CodRemittanceFile).where(CodRemittanceFile.courier_id == courier.id, CodRemittanceFile.sha256 == digest)
    )
    file = known or CodRemittanceFile(
        courier_id=courier.id, filename=name, sha256=digest, rows=read.rows, currency=courier.currency,
        total_minor=read.total(courier.currency).to_minor(), imported_at=now, imported_by=actor,
    )  # fmt: skip
    if known is None:
        session.add(file)
        session.flush()
    orders = _Orders(session)
    fresh: list[dict[str, Any]] = []
    refused: list[RowError] = []
    already = 0
    done = 0
    for chunk in _chunks(read.lines):
        stored = _stored(session, courier.id, [line.reference for line in chunk])
        sources = _filenames(session, {row.file_id for row in stored.values()})
        unseen = [line for line in chunk if line.reference not in stored]
        orders.read(unseen)
        for line in chunk:
            if (earlier := stored.get(line.reference)) is not None:
                if _same(earlier, line):
                    already += 1
                else:
                    refused.append(_conflict(earlier, sources.get(earlier.file_id, "an earlier file"), line, mapping))
                continue
            order = _order_of(line, orders, mapping)
            if isinstance(order, RowError):
                refused.append(order)
                continue
            fresh.append({
                "courier_id": courier.id, "file_id": file.id, "reference": line.reference,
                "external_order_id": line.order, "order_id": order.id, "currency": line.currency,
                "collected_minor": line.collected.to_minor(), "fee_minor": line.fee.to_minor(),
                "remitted_minor": line.remitted.to_minor(), "collected_on": line.collected_on,
                "remitted_on": line.remitted_on,
            })  # fmt: skip
        done += len(chunk)
        if progress is not None:
            progress(done, len(read.lines))
    line_ids: list[int] = []
    for rows in _chunks(fresh):
        line_ids += session.scalars(insert(CodRemittance).returning(CodRemittance.id), list(rows)).all()
    remitted = Money.from_minor(sum(int(row["remitted_minor"]) for row in fresh), courier.currency)
    result = ImportResult(courier.code, name, digest, file.id, known is not None, read.rows, len(fresh),
                          already, tuple(refused), remitted, tuple(line_ids))  # fmt: skip
    if known is None or fresh:
        audit.record(session, actor, "cod.import", "cod_remittance_file", file.id, now=now, after=result.as_dict())
    return result


# --- what couriers owe ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CodSummary:
    """The COD report of a period (days in ``timezone``), as of its last day, with the couriers' names."""

    since: date
    until: date
    timezone: str
    courier_names: dict[str, str]
    report: CodReport


def _zone(timezone: str) -> ZoneInfo:
    try:
        return ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise CodError(f"timezone {timezone!r} is not an IANA timezone name (e.g. Asia/Jakarta)") from None


def today(now: datetime, timezone: str) -> date:
    """The day it is in ``timezone``: the report's default last day."""
    return now.astimezone(_zone(timezone)).date()


def _first(statuses: Sequence[str]) -> Any:
    """Each shipped COD order's first time in one of ``statuses``, from its status history (only COD orders' rows
    are read: the history of every other order is most of the table)."""
    cod_orders = select(Order.id).where(Order.is_cod.is_(True), Order.status.in_(SHIPPED))
    return (
        select(OrderStatusChange.order_id, func.min(OrderStatusChange.occurred_at).label("at"))
        .where(OrderStatusChange.status.in_(statuses), OrderStatusChange.order_id.in_(cod_orders))
        .group_by(OrderStatusChange.order_id)
        .subquery()
    )


def _carriers(session: Session, order_ids: Sequence[int]) -> dict[int, list[str | None]]:
    """Each order's shipments' carriers, first shipped first."""
    carriers: dict[int, list[str | None]] = {}
    for chunk in _chunks(order_ids):
        rows = session.execute(select(Shipment.order_id, Shipment.carrier).where(Shipment.order_id.in_(chunk))
                               .order_by(Shipment.shipped_at, Shipment.id))  # fmt: skip
        for order_id, carrier in rows:
            carriers.setdefault(order_id, []).append(carrier)
    return carriers


def _providers(packages: dict[str, Any] | None) -> list[str | None]:
    """The shipping providers the order's channel names on its packages (TikTok's ``shipping_provider``)."""
    return [package.get("shipping_provider") for package in (packages or {}).get("packages") or ()
            if isinstance(package, dict)]  # fmt: skip


def _remitted(rows: Sequence[Any]) -> list[RemittedCod]:
    return [RemittedCod(order_id, code, Money.from_minor(collected, currency), Money.from_minor(fee, currency),
                        Money.from_minor(remitted, currency), remitted_on)
            for order_id, code, currency, collected, fee, remitted, remitted_on in rows]  # fmt: skip


def _line_query() -> Any:
    return select(CodRemittance.order_id, Courier.code, CodRemittance.currency, CodRemittance.collected_minor,
                  CodRemittance.fee_minor, CodRemittance.remitted_minor, CodRemittance.remitted_on).join(
        Courier, Courier.id == CodRemittance.courier_id)  # fmt: skip


def cod_report(session: Session, *, since: date, until: date, timezone: str) -> CodSummary:
    """Expected, collected, fees, remitted and outstanding per day and courier for the COD orders that shipped from
    ``since`` to ``until`` (days in ``timezone``), as of ``until``; with, on the day they were remitted, lines of
    that period for orders the hub does not expect (not shipped, cancelled).

    Expected: every COD order of any channel that has shipped (in transit, delivered, completed) and is not
    cancelled, at its total, on the day it first shipped. Its courier: a shipment's carrier or the channel's
    shipping provider that is a courier's code or name (ignoring case), else the courier that remitted it, else
    ``unassigned``."""
    if since > until:
        raise CodError(f"since {since} is after until {until}")
    zone = _zone(timezone)
    start = datetime.combine(since, time(), zone).astimezone(UTC)
    end = datetime.combine(until + timedelta(days=1), time(), zone).astimezone(UTC)
    shipped, delivered = _first(SHIPPED), _first(DELIVERED)
    shipped_at = func.coalesce(shipped.c.at, Order.channel_updated_at)
    rows = session.execute(
        select(Order.id, Order.external_id, Order.currency, Order.total_minor, Order.packages, shipped_at,
               delivered.c.at)
        .outerjoin(shipped, shipped.c.order_id == Order.id)
        .outerjoin(delivered, delivered.c.order_id == Order.id)
        .where(Order.is_cod.is_(True), Order.status.in_(SHIPPED), shipped_at >= start, shipped_at < end)
        .order_by(Order.id)
    ).all()  # fmt: skip
    couriers = {code: name for code, name in session.execute(select(Courier.code, Courier.name))}
    index = courier_index(couriers.items())
    ids = [row[0] for row in rows]
    carriers = _carriers(session, ids)

    def day(moment: datetime) -> date:
        return moment.astimezone(zone).date()

    expected = [
        ExpectedCod(order_id, external_id, courier_of([*carriers.get(order_id, []), *_providers(packages)], index),
                    Money.from_minor(total, currency), day(at), day(delivered_at) if delivered_at else None)
        for order_id, external_id, currency, total, packages, at, delivered_at in rows
    ]  # fmt: skip
    lines: list[Any] = []
    for chunk in _chunks(ids):
        lines += session.execute(_line_query().where(CodRemittance.order_id.in_(chunk),
                                                     CodRemittance.remitted_on <= until)).all()  # fmt: skip
    window = set(ids)
    others = [row for row in session.execute(_line_query().where(CodRemittance.remitted_on >= since,
                                                                 CodRemittance.remitted_on <= until)).all()
              if row[0] not in window]  # fmt: skip
    lines += _not_shipped_before(session, others, shipped, start)
    return CodSummary(since, until, timezone, couriers, figures_of(expected, _remitted(lines), as_of=until))


def _not_shipped_before(session: Session, rows: Sequence[Any], shipped: Any, start: datetime) -> list[Any]:
    """Lines remitted in the period for orders outside its expected orders, less those whose order is an expected
    COD order that shipped before the period (they count on that earlier day)."""
    earlier: set[int] = set()
    ids = sorted({row[0] for row in rows if row[0] is not None})
    for chunk in _chunks(ids):
        earlier.update(session.scalars(
            select(Order.id).outerjoin(shipped, shipped.c.order_id == Order.id)
            .where(Order.id.in_(chunk), Order.is_cod.is_(True), Order.status.in_(SHIPPED),
                   func.coalesce(shipped.c.at, Order.channel_updated_at) < start)
        ))  # fmt: skip
    return [row for row in rows if row[0] not in earlier]
