"""Engines and sessions for SQLite (embedded, WAL) and PostgreSQL (distributed)."""

from __future__ import annotations

import fcntl
import os
import sqlite3
import threading
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from enum import IntEnum
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.orm import Session, sessionmaker

from shopbridge.store.files import create_private_file, make_private_dirs


def is_sqlite(engine: Engine | Connection) -> bool:
    return engine.dialect.name == "sqlite"


def create_database_engine(url: str, *, pool_size: int = 10) -> Engine:
    """An engine for ``url``; SQLite files get WAL and the single-writer discipline described below."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_engine(url, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True)

    on_disk = bool(parsed.database) and parsed.database != ":memory:"
    if on_disk:
        _create_database_file(Path(str(parsed.database)))
    # Connections to a file are cheap, and a thread waiting for the write lock holds one: keep plenty.
    engine = create_engine(
        url, connect_args={"check_same_thread": False, "timeout": 30, "factory": _WriterConnection},
        pool_size=pool_size + 10, max_overflow=30,
    )  # fmt: skip
    _use_single_writer_sqlite(engine, Path(f"{parsed.database}-writer") if on_disk else None)
    return engine


def _create_database_file(path: Path) -> None:
    """A new database file is created owner-only (0600), in directories created owner-only (0700), before SQLite
    opens it: SQLite would create it with the umask's permissions (usually world-readable), and it gives the -wal
    and -shm files it creates later the database file's permissions. SQLite takes an empty file for a new database.
    An existing file is not opened here (closing a descriptor of a file drops every POSIX lock this process holds on
    it, SQLite's included), and keeps its mode."""
    if path.exists():
        return
    make_private_dirs(path.parent)
    create_private_file(path)


WRITER_WAIT_SECONDS = 30.0


class WriterLockTimeout(RuntimeError):
    pass


class WriteLane(IntEnum):
    """Who goes first for SQLite's write lock within this process (lower first)."""

    ACKNOWLEDGEMENT = 0  # someone outside waits for this commit: the webhook intake's group commit
    ENGINE = 1  # the work engine (claims, completions, handlers' units of work) and order upserts
    ORDINARY = 2  # API clients and everything else


class _WriterLock:
    """The write lock with lanes: a waiting writer goes when the lock is free and nobody waits in a lane before its
    own. An acknowledgement therefore waits for at most the one transaction holding the lock, and under a flash sale
    the engine's writes (orders TikTok sold, stock pushes) go before API clients' writes.

    Lanes order the writers of this process. Between processes on one file (the web process and its worker
    process, a CLI command) the holder also holds an exclusive ``flock`` on ``<database>-writer``: a writer of
    another process blocks in the kernel and is woken the moment the lock is released, where SQLite's own
    busy_timeout would poll with sleeps of up to 100 ms."""

    def __init__(self, lock_file: Path | None) -> None:
        self._mutex = threading.Lock()
        self._turns = [threading.Condition(self._mutex) for _ in WriteLane]  # one per lane: wake one waiter
        self._held = False
        self._waiting = [0] * len(WriteLane)
        self._lock_file = lock_file
        self._fd: int | None = None

    def acquire(self, lane: WriteLane, *, timeout: float) -> bool:
        free = False
        with self._mutex:
            self._waiting[lane] += 1
            try:
                free = self._turns[lane].wait_for(lambda: not self._held and not any(self._waiting[:lane]),
                                                  timeout=timeout)  # fmt: skip
                self._held = self._held or free
            finally:
                self._waiting[lane] -= 1
                if not free:  # gave up (timed out or interrupted): a wake-up it took passes on
                    self._wake_next()
        if free and self._lock_file is not None:
            try:
                fcntl.flock(self._descriptor(), fcntl.LOCK_EX)  # waits without the interpreter lock
            except BaseException:
                self.release(file_locked=False)
                raise
        return free

    def release(self, *, file_locked: bool = True) -> None:
        if file_locked and self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
        with self._mutex:
            self._held = False
            self._wake_next()

    def _wake_next(self) -> None:
        # One waiter, of the first lane that has one (waking them all to race cost a wake-up per waiting thread at
        # every hand-over). A running writer may still take the lock first; the woken one then waits again and is
        # woken by that writer's release. Called with the mutex held.
        if self._held:
            return
        lane = next((lane for lane, waiting in enumerate(self._waiting) if waiting), None)
        if lane is not None:
            self._turns[lane].notify()

    def _descriptor(self) -> int:
        # Opened on first use, by the thread holding the in-process lock (so once), and kept for the engine's life:
        # a flock belongs to the open file, shared by this process's threads, which the lanes already serialize.
        if self._fd is None:
            assert self._lock_file is not None
            self._fd = os.open(self._lock_file, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            weakref.finalize(self, os.close, self._fd)
        return self._fd


class _WriterConnection(sqlite3.Connection):
    """A SQLite connection that gives the writer lock back once its COMMIT or ROLLBACK has finished, not before: a
    writer of another process that took the lock at once would otherwise find SQLite's own lock still held and
    fall into its busy wait, whose sleeps grow to 100 ms."""

    writer: _WriterLock | None = None  # set while this connection's transaction holds the writer lock

    def commit(self) -> None:
        try:
            super().commit()
        finally:
            self.give_back_writer()

    def rollback(self) -> None:
        try:
            super().rollback()
        finally:
            self.give_back_writer()

    # A connection returned to the pool mid-transaction is rolled back there, and one dropped (invalidated) is
    # closed: either way the lock comes back through rollback() or close().
    def close(self) -> None:
        try:
            super().close()
        finally:
            self.give_back_writer()

    def give_back_writer(self) -> None:
        writer, self.writer = self.writer, None
        if writer is not None:
            writer.release()


def _use_single_writer_sqlite(engine: Engine, lock_file: Path | None) -> None:
    """SQLite allows one writer at a time. Every transaction starts with BEGIN IMMEDIATE, so it takes the write
    lock up front instead of failing half-way when a read turns into a write; claims, completions and inbox
    inserts from any thread or process are thereby serialized safely.

    Writers also queue on a lock of ours (``_WriterLock``: lanes within this process, a file lock between
    processes). SQLite's own wait (busy_timeout) polls with sleeps that grow to 100 ms, so under contention a writer
    slept long after the lock was free; our lock wakes the next writer as soon as the previous one commits.
    """
    writer = _WriterLock(lock_file)

    @event.listens_for(engine, "connect")
    def _configure(dbapi_connection: sqlite3.Connection, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # let SQLAlchemy, not pysqlite, emit BEGIN
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin_immediate(connection: Connection) -> None:
        if connection.get_execution_options().get(READ_ONLY, False):
            connection.exec_driver_sql("BEGIN")
            return
        lane = WriteLane(connection.get_execution_options().get(LANE, WriteLane.ORDINARY))
        if not writer.acquire(lane, timeout=WRITER_WAIT_SECONDS):
            raise WriterLockTimeout(f"no write access to the SQLite database within {WRITER_WAIT_SECONDS:.0f} s")
        raw = connection.connection.dbapi_connection
        assert isinstance(raw, _WriterConnection)
        raw.writer = writer  # given back when the transaction's COMMIT or ROLLBACK has finished
        try:
            connection.exec_driver_sql("BEGIN IMMEDIATE")
        except Exception:
            raw.give_back_writer()
            raise


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


READ_ONLY = "shopbridge_read_only"
LANE = "shopbridge_write_lane"


@contextmanager
def reading(sessions: sessionmaker[Session]) -> Iterator[Session]:
    """A session for reads only. On SQLite it does not queue for the write lock, so a handler can read what it
    needs, call out over the network, and only then write in its unit of work."""
    bind = sessions.kw["bind"]
    with Session(bind=bind.execution_options(**{READ_ONLY: True}), expire_on_commit=False) as session:
        yield session


def engine_sessions(sessions: sessionmaker[Session]) -> sessionmaker[Session]:
    """Sessions whose writes take the engine's lane to SQLite's write lock (see WriteLane)."""
    return sessionmaker(sessions.kw["bind"].execution_options(**{LANE: WriteLane.ENGINE}), expire_on_commit=False)


@contextmanager
def transaction(sessions: sessionmaker[Session], *, lane: WriteLane = WriteLane.ORDINARY) -> Iterator[Session]:
    """One unit of work: commit on success, roll back on any exception. ``lane`` orders waiting writers on
    SQLite (see WriteLane); it changes nothing on PostgreSQL."""
    if lane is WriteLane.ORDINARY:
        with sessions() as session, session.begin():
            yield session
        return
    bind = sessions.kw["bind"].execution_options(**{LANE: lane})
    with Session(bind=bind, expire_on_commit=False) as session, session.begin():
        yield session


def dialect_insert(bind: Engine | Connection | Session) -> Callable[[Any], Any]:
    """The dialect's INSERT, which knows ON CONFLICT: idempotent writes are one statement on both databases. Given
    a mapped class it inserts into the class's table as plain Core (RETURNING table columns), which skips the ORM's
    bulk-insert machinery: these statements run on every webhook and every order."""
    name = bind.get_bind().dialect.name if isinstance(bind, Session) else bind.dialect.name
    insert = insert_of(name)

    def into(target: Any) -> Any:
        return insert(getattr(target, "__table__", target))

    return into


def insert_of(dialect: str) -> Callable[[Any], Any]:
    """The INSERT construct of the dialect named (for statements built once per dialect and cached)."""
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert  # type: ignore[assignment]
    return insert


def with_search_path(url: str, schema: str) -> str:
    """A PostgreSQL URL whose connections use ``schema``: benchmarks and tests keep to a schema of their own."""
    parsed = make_url(url)
    return parsed.update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(hide_password=False)


def reset_schema(url: str, schema: str) -> None:
    """Drop and recreate a PostgreSQL schema (only ever one the caller owns, such as a benchmark's)."""
    engine = create_engine(url)
    with engine.begin() as connection:
        connection.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        connection.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    engine.dispose()
