"""Writers of several processes on one SQLite file (the web process, its worker process, a CLI command)."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

import pytest
from sqlalchemy import text

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
    finally:
        engine.dispose()
