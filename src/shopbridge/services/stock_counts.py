"""Stock from outside in bulk: counts that set on-hand absolutely, and files of movements. A batch is checked whole
before anything is written, and as it is written (``OutsideCheck``), so one bad row refuses all of it. SKUs and
levels are read, and the ledger written, a chunk of rows per statement, so a batch of 100,000 rows costs a few
hundred statements rather than one per row."""

from __future__ import annotations

import csv
import hashlib
import json
import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal, TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session

from shopbridge.services import audit
from shopbridge.services.stock import (
    MAX_QUANTITY,
    LedgerLine,
    LinesRefused,
    OutsideCheck,
    StockError,
    StockSourceConflict,
    UnknownSku,
    describe,
    key_reused,
    outside_change,
    record_movements,
)
from shopbridge.store.tables import Location, StockLevel, Variant

Mode = Literal["movements", "counts"]
Outcome = Literal["applied", "already_applied", "unchanged"]
RowName = Callable[[int], str]
Progress = Callable[[int, int], None]
Row = TypeVar("Row")

CHUNK = 500  # rows per lookup (IN ...) and per ledger write, well under SQLite's limit on bound parameters
KEY_LENGTH = 200  # stock_movements.idempotency_key and .reference
PROBLEMS_IN_MESSAGE = 20
LONGEST_NUMBER = 100  # characters; int() of thousands of digits is refused, and no number in range is this long

# Columns of an import file per mode: those required, then those that may be added.
COLUMNS: dict[Mode, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "movements": (("sku", "location", "kind", "quantity", "idempotency_key"), ("reference",)),
    "counts": (("sku", "location", "on_hand"), ("idempotency_key",)),
}
WHOLE_NUMBER = re.compile(r"[+-]?[0-9]+")


@dataclass(frozen=True)
class Count:
    """The units counted of a SKU at a location. Without a key, one is derived from the batch (see ``count_key``)."""

    sku: str
    location: str
    on_hand: int
    idempotency_key: str | None = None


@dataclass(frozen=True)
class Movement:
    """A movement as ``apply_external_movement`` takes it: units for restock, return and sale, signed for adjustment."""

    sku: str
    location: str
    kind: str
    quantity: int
    idempotency_key: str
    reference: str | None = None


@dataclass(frozen=True)
class CountResult:
    sku: str
    location: str
    idempotency_key: str
    previous_on_hand: int
    on_hand: int
    outcome: Outcome

    @property
    def applied(self) -> bool:
        return self.outcome == "applied"


@dataclass(frozen=True)
class RowProblem:
    """What is wrong with one row, named as its sender knows it (``counts[2]``, ``line 3``)."""

    position: int
    row: str
    sku: str
    error: StockError

    def __str__(self) -> str:
        return f"{self.row}: {self.error}"


class RowsRefused(StockError):
    """Rows that cannot be applied; nothing of their batch was."""

    def __init__(self, problems: Sequence[RowProblem]) -> None:
        self.problems = list(problems)
        shown = "; ".join(str(problem) for problem in self.problems[:PROBLEMS_IN_MESSAGE])
        more = len(self.problems) - PROBLEMS_IN_MESSAGE
        super().__init__(shown + (f"; and {more} more bad rows" if more > 0 else ""))


@dataclass(frozen=True)
class Summary:
    applied: int
    already_applied: int
    unchanged: int

    @classmethod
    def of(cls, outcomes: Iterable[Outcome]) -> Summary:
        counted = Counter(outcomes)
        return cls(counted["applied"], counted["already_applied"], counted["unchanged"])


def check_origin(origin: str) -> None:
    if origin not in ("hub", "external"):
        raise StockError(f"origin must be 'hub' or 'external', got {origin!r}")


def _chunks(values: Sequence[Row]) -> Iterator[Sequence[Row]]:
    for start in range(0, len(values), CHUNK):
        yield values[start : start + CHUNK]


class Catalog:
    """The SKUs of a batch and every location, read once in chunks."""

    def __init__(self, session: Session, skus: Iterable[str]) -> None:
        self.locations: dict[str, int] = dict(session.execute(select(Location.code, Location.id)).all())
        self.variants: dict[str, tuple[int, str]] = {}
        for chunk in _chunks(sorted(set(skus))):
            query = select(Variant.sku, Variant.id, Variant.stock_source).where(Variant.sku.in_(chunk))
            for sku, variant_id, source in session.execute(query):
                self.variants[sku] = (variant_id, source)

    def resolve(self, sku: str, location: str, origin: str) -> tuple[int, int]:
        """The variant and location a write from ``origin`` goes to, refused as ``apply_external_movement`` would."""
        found = self.variants.get(sku)
        if found is None:
            raise UnknownSku(f"unknown SKU {sku!r}")
        location_id = self.locations.get(location)
        if location_id is None:
            raise StockError(f"unknown location {location!r}")
        variant_id, source = found
        if source != origin:
            raise StockSourceConflict(
                f"{sku}'s stock is kept by the {source} side; a write from the {origin} side is refused"
            )
        return variant_id, location_id


def _check_text(name: str, value: str | None) -> None:
    if value is not None and len(value) > KEY_LENGTH:
        raise StockError(f"{name} is longer than {KEY_LENGTH} characters")


def _index_name(index: int) -> str:
    return f"row {index}"


# --- the ledger, written in chunks ---------------------------------------------------------------------


# --- counts ----------------------------------------------------------------------------------------------


def count_key(sku: str, location: str, suffix: str) -> str:
    """A count's default idempotency key: the batch's reference, else a digest of the batch, so the same request
    sent again is a replay. An identical count taken later needs its own reference (or key) to be applied."""
    key = f"count:{sku}:{location}:{suffix}"
    if len(key) <= KEY_LENGTH:
        return key
    return "count:" + hashlib.sha256(key.encode()).hexdigest()


def batch_digest(counts: Sequence[Count], origin: str) -> str:
    rows = [[count.sku, count.location, count.on_hand] for count in counts]
    return hashlib.sha256(json.dumps([origin, rows]).encode()).hexdigest()[:16]


def _check_counts(
    catalog: Catalog, counts: Sequence[Count], origin: str, row_name: RowName, positions: Sequence[int]
) -> tuple[list[tuple[int, int]], list[RowProblem]]:
    targets: list[tuple[int, int]] = []
    problems: list[RowProblem] = []
    counted: dict[tuple[int, int], int] = {}
    keys: dict[str, int] = {}
    for index, count in enumerate(counts):
        try:
            if count.on_hand < 0:
                raise StockError(f"on_hand must be 0 or more units, got {count.on_hand}")
            if count.on_hand > MAX_QUANTITY:
                raise StockError(f"on_hand {count.on_hand} is out of range: at most {MAX_QUANTITY:,} units")
            _check_text("idempotency_key", count.idempotency_key)
            target = catalog.resolve(count.sku, count.location, origin)
            if target in counted:
                raise StockError(f"{count.sku} at {count.location} is counted twice (also {row_name(counted[target])})")
            key = count.idempotency_key
            if key is not None and key in keys:
                raise StockError(f"idempotency_key {key!r} is used twice (also {row_name(keys[key])})")
        except StockError as error:
            problems.append(RowProblem(positions[index], row_name(index), count.sku, error))
            continue
        counted[target] = index
        if count.idempotency_key is not None:
            keys[count.idempotency_key] = index
        targets.append(target)
    return targets, problems


def _levels(session: Session, targets: Sequence[tuple[int, int]]) -> dict[tuple[int, int], int]:
    """On-hand of each (variant, location). No lock is taken: a count writes a relative adjustment, so a movement
    committed between this read and the write is kept, exactly as if it had happened after the count."""
    wanted = set(targets)
    found: dict[tuple[int, int], int] = {}
    for chunk in _chunks(sorted({variant_id for variant_id, _ in wanted})):
        query = select(StockLevel.variant_id, StockLevel.location_id, StockLevel.on_hand).where(
            StockLevel.variant_id.in_(chunk)
        )
        for variant_id, location_id, on_hand in session.execute(query):
            if (variant_id, location_id) in wanted:
                found[variant_id, location_id] = on_hand
    return found


def _write_counts(
    session: Session,
    counts: Sequence[Count],
    targets: Sequence[tuple[int, int]],
    *,
    origin: str,
    now: datetime,
    reference: str | None,
    progress: Progress | None,
    row_name: RowName,
    positions: Sequence[int],
) -> list[CountResult]:
    levels = _levels(session, targets)
    suffix = reference or batch_digest(counts, origin)
    keys = [count.idempotency_key or count_key(count.sku, count.location, suffix) for count in counts]
    lines: list[LedgerLine | None] = []
    for count, key, (variant_id, location_id) in zip(counts, keys, targets, strict=True):
        delta = count.on_hand - levels.get((variant_id, location_id), 0)
        lines.append(LedgerLine(key, variant_id, location_id, "adjustment", delta, reference) if delta else None)
    places = [(count.sku, count.location) for count in counts]
    written = _write_checked(session, lines, places, counts=True, source=origin, now=now, progress=progress,
                             row_name=row_name, positions=positions)  # fmt: skip
    results: list[CountResult] = []
    for count, key, target, applied in zip(counts, keys, targets, written, strict=True):
        previous = levels.get(target, 0)
        outcome: Outcome = "unchanged" if applied is None else "applied" if applied else "already_applied"
        new = count.on_hand if applied else previous
        results.append(CountResult(count.sku, count.location, key, previous, new, outcome))
    return results


def apply_counts(
    session: Session,
    counts: Sequence[Count],
    *,
    origin: str,
    now: datetime,
    reference: str | None = None,
    row_name: RowName = _index_name,
    progress: Progress | None = None,
) -> list[CountResult]:
    """Set on-hand to what was counted: each row whose count differs becomes an ``adjustment`` movement of the
    difference. Raises ``RowsRefused`` naming every bad row (unknown SKU or location, a count below zero or above
    ``MAX_QUANTITY``, a SKU whose stock the other side keeps, a SKU and location counted twice) before anything is
    written, or naming the rows ``OutsideCheck`` refuses as they are written (the caller's transaction must then be
    rolled back)."""
    check_origin(origin)
    _check_text("reference", reference)
    targets, problems = _check_counts(
        Catalog(session, (count.sku for count in counts)), counts, origin, row_name, range(len(counts))
    )
    if problems:
        raise RowsRefused(problems)
    return _write_counts(session, counts, targets, origin=origin, now=now, reference=reference, progress=progress,
                         row_name=row_name, positions=range(len(counts)))  # fmt: skip


# --- movements -------------------------------------------------------------------------------------------


def _check_movements(
    catalog: Catalog, movements: Sequence[Movement], origin: str, row_name: RowName, positions: Sequence[int]
) -> tuple[list[tuple[int, int]], list[RowProblem]]:
    targets: list[tuple[int, int]] = []
    problems: list[RowProblem] = []
    keys: dict[str, tuple[int, tuple[str, str, str, int]]] = {}  # each key's first good row, and what it moves
    for index, movement in enumerate(movements):
        try:
            change = outside_change(movement.kind, movement.quantity)
            if not movement.idempotency_key:
                raise StockError("idempotency_key is empty")
            _check_text("idempotency_key", movement.idempotency_key)
            _check_text("reference", movement.reference)
            target = catalog.resolve(movement.sku, movement.location, origin)
            content = (movement.kind, movement.sku, movement.location, change)
            first, first_content = keys.setdefault(movement.idempotency_key, (index, content))
            if first_content != content:  # the same content again is a replay, as it would be in another batch
                kind, sku, location, first_change = first_content
                raise key_reused(
                    movement.idempotency_key, describe(kind, first_change, 0, sku, location),
                    describe(movement.kind, change, 0, movement.sku, movement.location), also_on=row_name(first),
                )  # fmt: skip
        except StockError as error:
            problems.append(RowProblem(positions[index], row_name(index), movement.sku, error))
            continue
        targets.append(target)
    return targets, problems


def _write_movements(
    session: Session,
    movements: Sequence[Movement],
    targets: Sequence[tuple[int, int]],
    *,
    origin: str,
    now: datetime,
    progress: Progress | None,
    row_name: RowName,
    positions: Sequence[int],
    reference: str | None = None,
) -> list[Outcome]:
    lines: list[LedgerLine | None] = [
        LedgerLine(movement.idempotency_key, variant_id, location_id, movement.kind,
                   outside_change(movement.kind, movement.quantity), movement.reference or reference)
        for movement, (variant_id, location_id) in zip(movements, targets, strict=True)
    ]  # fmt: skip
    places = [(movement.sku, movement.location) for movement in movements]
    written = _write_checked(session, lines, places, counts=False, source=origin, now=now, progress=progress,
                             row_name=row_name, positions=positions)  # fmt: skip
    return ["applied" if applied else "already_applied" for applied in written]


def _write_checked(
    session: Session,
    lines: Sequence[LedgerLine | None],
    places: Sequence[tuple[str, str]],
    *,
    counts: bool,
    source: str,
    now: datetime,
    progress: Progress | None,
    row_name: RowName,
    positions: Sequence[int],
) -> list[bool | None]:
    """Write a batch's lines under ``OutsideCheck``; the rows it refuses are raised as ``RowsRefused``."""
    check = OutsideCheck(session, lines, places, now=now, counts=counts)
    try:
        written = record_movements(session, lines, source=source, now=now, progress=progress, after_chunk=check)
        check.finish()
    except LinesRefused as refused:
        raise RowsRefused(
            [RowProblem(positions[index], row_name(index), places[index][0], error) for index, error in refused.refused]
        ) from None
    return written


def apply_movements(
    session: Session,
    movements: Sequence[Movement],
    *,
    origin: str,
    now: datetime,
    row_name: RowName = _index_name,
    progress: Progress | None = None,
) -> list[Outcome]:
    """Apply many movements at once, each as ``apply_external_movement`` would, or none: raises ``RowsRefused``
    naming every bad row before anything is written, or naming the rows ``OutsideCheck`` refuses as they are
    written (the caller's transaction must then be rolled back). A key already recorded for the same movement (in
    the ledger or earlier in the same batch) is ``already_applied``, as a replay is; for another movement, refused."""
    check_origin(origin)
    targets, problems = _check_movements(
        Catalog(session, (movement.sku for movement in movements)), movements, origin, row_name, range(len(movements))
    )
    if problems:
        raise RowsRefused(problems)
    return _write_movements(session, movements, targets, origin=origin, now=now, progress=progress,
                            row_name=row_name, positions=range(len(movements)))  # fmt: skip


# --- import files ----------------------------------------------------------------------------------------


@dataclass
class CsvFile:
    """An import file read and parsed, before any lookup: its rows, the line each starts on, and what was wrong."""

    mode: Mode
    counts: list[Count] = field(default_factory=list)
    movements: list[Movement] = field(default_factory=list)
    lines: list[int] = field(default_factory=list)
    problems: list[RowProblem] = field(default_factory=list)

    @property
    def rows(self) -> int:
        return len(self.counts) + len(self.movements)


def _line(number: int) -> str:
    return f"line {number}"


def _whole_number(fields: dict[str, str], name: str) -> int:
    """Digits with an optional sign, nothing else (no decimals, exponents, words or digit separators)."""
    text = fields[name]
    if not WHOLE_NUMBER.fullmatch(text):
        raise StockError(f"{name} must be a whole number, got {text!r}")
    if len(text) > LONGEST_NUMBER:
        raise StockError(f"{name} is out of range: {len(text)} digits, at most {MAX_QUANTITY:,} units")
    return int(text)


def _required(fields: dict[str, str], name: str) -> str:
    if not fields[name]:
        raise StockError(f"{name} is empty")
    return fields[name]


def _count_row(fields: dict[str, str]) -> Count:
    return Count(
        sku=_required(fields, "sku"),
        location=_required(fields, "location"),
        on_hand=_whole_number(fields, "on_hand"),
        idempotency_key=fields.get("idempotency_key") or None,
    )


def _movement_row(fields: dict[str, str]) -> Movement:
    return Movement(
        sku=_required(fields, "sku"),
        location=_required(fields, "location"),
        kind=_required(fields, "kind"),
        quantity=_whole_number(fields, "quantity"),
        idempotency_key=_required(fields, "idempotency_key"),
        reference=fields.get("reference") or None,
    )


def _header_problem(header: list[str], mode: Mode) -> str | None:
    required, optional = COLUMNS[mode]
    expected = ", ".join(required) + "".join(f"[, {name}]" for name in optional)
    if not header:
        return f"the file is empty; a header row is required: {expected}"
    missing = [name for name in required if name not in header]
    if missing:
        return f"missing column(s) {', '.join(missing)}; the header row must name {expected}"
    unknown = [name for name in header if name not in required + optional]
    if unknown:
        return f"unknown column(s) {', '.join(unknown)}; expected {expected}"
    repeated = sorted({name for name in header if header.count(name) > 1})
    if repeated:
        return f"column(s) {', '.join(repeated)} named twice"
    return None


def read_csv(lines: Iterable[str], mode: Mode) -> CsvFile:
    """Parse an import file (header row first). Every malformed row is kept as a problem named by the line it
    starts on, counted as in the file (the header is line 1), so a file is reported whole rather than line by line."""
    parsed = CsvFile(mode)
    reader = csv.reader(lines)
    start = 1
    try:
        header = [name.strip().lower() for name in next(reader, [])]
        problem = _header_problem(header, mode)
        if problem is not None:
            parsed.problems.append(RowProblem(1, _line(1), "", StockError(problem)))
            return parsed
        start = reader.line_num + 1
        for values in reader:
            line, start = start, reader.line_num + 1
            if not any(value.strip() for value in values):
                continue
            try:
                if len(values) != len(header):
                    raise StockError(f"expected {len(header)} fields ({', '.join(header)}), got {len(values)}")
                fields = dict(zip(header, (value.strip() for value in values), strict=True))
                if mode == "counts":
                    parsed.counts.append(_count_row(fields))
                else:
                    parsed.movements.append(_movement_row(fields))
            except StockError as error:
                parsed.problems.append(RowProblem(line, _line(line), values[0] if values else "", error))
                continue
            parsed.lines.append(line)
    except csv.Error as error:
        parsed.problems.append(RowProblem(start, _line(start), "", StockError(f"unreadable CSV: {error}")))
    return parsed


def import_csv(
    session: Session,
    parsed: CsvFile,
    *,
    origin: str,
    now: datetime,
    reference: str | None = None,
    progress: Progress | None = None,
    actor: str,
    name: str,
) -> Summary:
    """Apply a parsed import file in the caller's transaction, or nothing: raises ``RowsRefused`` with every bad
    line (malformed, or refused as ``apply_counts`` and ``apply_movements`` refuse a row) before writing.
    ``reference`` is kept on every movement without one of its own and keys the counts (see ``count_key``). The
    import is one audit entry of ``actor``'s, naming the file (``name``)."""
    check_origin(origin)
    _check_text("reference", reference)

    def row_name(index: int) -> str:
        return _line(parsed.lines[index])

    if parsed.mode == "counts":
        catalog = Catalog(session, (count.sku for count in parsed.counts))
        targets, problems = _check_counts(catalog, parsed.counts, origin, row_name, parsed.lines)
        if problems or parsed.problems:
            raise RowsRefused(sorted(parsed.problems + problems, key=lambda problem: problem.position))
        results = _write_counts(
            session, parsed.counts, targets, origin=origin, now=now, reference=reference, progress=progress,
            row_name=row_name, positions=parsed.lines,
        )  # fmt: skip
        summary = Summary.of(result.outcome for result in results)
    else:
        catalog = Catalog(session, (movement.sku for movement in parsed.movements))
        targets, problems = _check_movements(catalog, parsed.movements, origin, row_name, parsed.lines)
        if problems or parsed.problems:
            raise RowsRefused(sorted(parsed.problems + problems, key=lambda problem: problem.position))
        summary = Summary.of(_write_movements(
            session, parsed.movements, targets, origin=origin, now=now, progress=progress, row_name=row_name,
            positions=parsed.lines, reference=reference,
        ))  # fmt: skip
    audit.record(session, actor, f"stock.import_{parsed.mode}", "file", name[:100], now=now,
                 after={"rows": parsed.rows, "applied": summary.applied, "origin": origin})  # fmt: skip
    return summary
