"""Engines and sessions for SQLite (embedded, WAL) and PostgreSQL (distributed)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.orm import Session, sessionmaker


def is_sqlite(engine: Engine | Connection) -> bool:
    return engine.dialect.name == "sqlite"


def create_database_engine(url: str, *, pool_size: int = 10) -> Engine:
    """An engine for ``url``; SQLite files get WAL and the single-writer discipline described below."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_engine(url, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True)

    if parsed.database and parsed.database != ":memory:":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(
        url, connect_args={"check_same_thread": False, "timeout": 30}, pool_size=pool_size, max_overflow=0
    )
    _use_single_writer_sqlite(engine)
    return engine


def _use_single_writer_sqlite(engine: Engine) -> None:
    """SQLite allows one writer at a time. Every transaction starts with BEGIN IMMEDIATE, so it takes the write
    lock up front and waits for it (busy_timeout) instead of failing half-way when a read turns into a write;
    claims, completions and inbox inserts from any thread or process are thereby serialized safely."""

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
        read_only = connection.get_execution_options().get(READ_ONLY, False)
        connection.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


READ_ONLY = "shopbridge_read_only"


@contextmanager
def reading(sessions: sessionmaker[Session]) -> Iterator[Session]:
    """A session for reads only. On SQLite it does not queue for the write lock, so a handler can read what it
    needs, call out over the network, and only then write in its unit of work."""
    bind = sessions.kw["bind"]
    with Session(bind=bind.execution_options(**{READ_ONLY: True}), expire_on_commit=False) as session:
        yield session


@contextmanager
def transaction(sessions: sessionmaker[Session]) -> Iterator[Session]:
    """One unit of work: commit on success, roll back on any exception."""
    with sessions() as session, session.begin():
        yield session


def dialect_insert(bind: Engine | Connection | Session) -> Any:
    """The dialect's INSERT, which knows ON CONFLICT: idempotent writes are one statement on both databases."""
    name = bind.get_bind().dialect.name if isinstance(bind, Session) else bind.dialect.name
    if name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert


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
