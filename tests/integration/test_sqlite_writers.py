"""Writers of several processes on one SQLite file (the web process, its worker process, a CLI command)."""

from __future__ import annotations

import fcntl
import os
import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import event, text
from sqlalchemy.engine import Connection

from shopbridge.store.db import create_database_engine, session_factory, transaction


def _writer_lock_free(path: Path) -> bool:
    """Whether another process could take the database's writer lock now (a second open file stands for one)."""
    descriptor = os.open(path, os.O_RDWR)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    finally:
        os.close(descriptor)
    return True


def test_a_write_transaction_holds_the_writer_lock_other_processes_wait_on(tmp_path: Path) -> None:
    database = tmp_path / "shopbridge.db"
    engine = create_database_engine(f"sqlite:///{database}")
    sessions = session_factory(engine)
    try:
        with transaction(sessions) as session:
            session.execute(text("CREATE TABLE marks (id INTEGER PRIMARY KEY)"))
            assert not _writer_lock_free(tmp_path / "shopbridge.db-writer")
        assert _writer_lock_free(tmp_path / "shopbridge.db-writer")

        with pytest.raises(RuntimeError), transaction(sessions) as session:
            session.execute(text("INSERT INTO marks VALUES (1)"))
            raise RuntimeError("the unit of work fails")
        assert _writer_lock_free(tmp_path / "shopbridge.db-writer"), "a rollback releases it too"

        abandoned = sessions()  # a unit of work left open: its connection goes back to the pool mid-transaction
        abandoned.begin()
        abandoned.execute(text("INSERT INTO marks VALUES (2)"))
        abandoned.close()
        assert _writer_lock_free(tmp_path / "shopbridge.db-writer"), "returning the connection releases it"
        with transaction(sessions) as session:
            assert session.scalar(text("SELECT count(*) FROM marks")) == 0, "and rolls its writes back"
    finally:
        engine.dispose()


def test_the_writer_lock_is_given_back_only_once_the_commit_has_finished(tmp_path: Path) -> None:
    # A writer of another process that takes the lock must find SQLite's own lock free, or it would fall into
    # SQLite's busy wait, whose sleeps grow to 100 ms.
    database = tmp_path / "shopbridge.db"
    engine = create_database_engine(f"sqlite:///{database}")
    sessions = session_factory(engine)
    held_while_committing: list[bool] = []

    @event.listens_for(engine, "commit")
    def committing(connection: Connection) -> None:  # fired just before COMMIT is sent
        held_while_committing.append(not _writer_lock_free(tmp_path / "shopbridge.db-writer"))

    try:
        with transaction(sessions) as session:
            session.execute(text("CREATE TABLE marks (id INTEGER PRIMARY KEY)"))
        assert held_while_committing == [True]
        assert _writer_lock_free(tmp_path / "shopbridge.db-writer")
        other = sqlite3.connect(database, timeout=0)  # no busy wait at all: the database must be free
        other.execute("BEGIN IMMEDIATE")
        other.execute("INSERT INTO marks VALUES (1)")
        other.commit()
        other.close()
    finally:
        engine.dispose()
