"""Job kinds and their handlers. A handler is a plain function ``handler(ctx: JobContext) -> None``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from shopbridge.domain.clock import Clock


@dataclass(frozen=True)
class JobContext:
    """What a handler is given. Its writes through ``session`` commit atomically with the job's success, so a
    crash mid-handler leaves no half-done work and the retried job starts clean.

    On SQLite ``session`` holds the write lock from its first statement until the job ends: read through
    ``store.db.reading(sessions)`` and make network calls (and any transaction of their own) before using it.
    Never open another connection after ``session`` has started: other threads may hold every pooled connection
    while they wait for that lock."""

    job_id: int
    kind: str
    payload: dict[str, Any]
    attempt: int
    channel_account_id: int | None
    session: Session
    now: datetime
    sessions: sessionmaker[Session] | None = None  # for reads outside the unit of work (store.db.reading)
    clock: Clock | None = None  # for stamping writes made after slow calls; ``now`` is when the job started

    def write_time(self) -> datetime:
        """The time to stamp on rows written now (``now`` may be seconds old after network calls)."""
        return self.clock.now() if self.clock is not None else self.now


Handler = Callable[[JobContext], None]


@dataclass(frozen=True)
class JobKind:
    """``batch=True`` declares a handler that only touches the database (no network calls): a worker may then
    run a whole claimed batch of it in one transaction, which is several times faster. Handlers that call out
    run one job per transaction so no lock is held across a network round trip.

    ``serial=True`` runs at most one job per identity key at a time: a job queued while its predecessor with the
    same key is still running waits until that one ends (a stock push per product, so the channel never gets two
    requests for one product in flight, which could land in either order)."""

    name: str
    handler: Handler
    max_attempts: int | None = None
    priority: int = 100
    batch: bool = False
    serial: bool = False


class UnknownJobKind(KeyError):
    pass


class JobRegistry:
    def __init__(self) -> None:
        self._kinds: dict[str, JobKind] = {}

    def register(
        self,
        name: str,
        handler: Handler,
        *,
        max_attempts: int | None = None,
        priority: int = 100,
        batch: bool = False,
        serial: bool = False,
    ) -> None:
        if name in self._kinds:
            raise ValueError(f"job kind {name!r} is registered twice")
        self._kinds[name] = JobKind(name, handler, max_attempts, priority, batch, serial)

    def batch_kinds(self) -> frozenset[str]:
        return frozenset(name for name, kind in self._kinds.items() if kind.batch)

    def serial_kinds(self) -> frozenset[str]:
        return frozenset(name for name, kind in self._kinds.items() if kind.serial)

    def handler(
        self, name: str, *, max_attempts: int | None = None, priority: int = 100, batch: bool = False
    ) -> Callable[[Handler], Handler]:
        def decorate(handler: Handler) -> Handler:
            self.register(name, handler, max_attempts=max_attempts, priority=priority, batch=batch)
            return handler

        return decorate

    def find(self, name: str) -> JobKind | None:
        return self._kinds.get(name)

    def get(self, name: str) -> JobKind:
        try:
            return self._kinds[name]
        except KeyError:
            raise UnknownJobKind(name) from None

    def __contains__(self, name: object) -> bool:
        return name in self._kinds

    def names(self) -> list[str]:
        return sorted(self._kinds)
