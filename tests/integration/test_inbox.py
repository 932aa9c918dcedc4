"""The inbox: committed before the acknowledgement, once per (source, event id), surviving a killed process."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import textwrap
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import create_engine, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.schema import CreateTable

from shopbridge.bootstrap import Hub
from shopbridge.runtime import inbox
from shopbridge.store.db import transaction
from shopbridge.store.inbox_db import INBOX_TABLE, ensure_inbox_schema
from shopbridge.store.tables import InboundEvent


def test_thirty_percent_duplicates_among_a_thousand_events(hub: Hub) -> None:
    rng = random.Random(2)
    deliveries = [f"e{n}" for n in range(700)]
    deliveries += rng.choices(deliveries, k=300)
    rng.shuffle(deliveries)
    assert len(deliveries) == 1000
    created = 0
    for event_id in deliveries:
        with transaction(hub.inbox_sessions) as session:
            created += inbox.record(
                session, source="tiktok", event_id=event_id, payload="{}", now=hub.clock.now()
            ).created
    assert created == 700
    with hub.inbox_sessions() as session:
        assert session.scalar(select(func.count()).select_from(InboundEvent)) == 700
        assert set(session.scalars(select(InboundEvent.event_id))) == set(deliveries)


def test_the_same_event_id_from_another_source_is_another_event(hub: Hub) -> None:
    with transaction(hub.inbox_sessions) as session:
        first = inbox.record(session, source="tiktok", event_id="42", payload="{}", now=hub.clock.now())
        second = inbox.record(session, source="shopify", event_id="42", payload="{}", now=hub.clock.now())
        again = inbox.record(session, source="tiktok", event_id="42", payload="{}", now=hub.clock.now())
    assert first.created and second.created and not again.created
    assert again.id == first.id


def test_a_committed_event_survives_killing_the_process(hub: Hub, database_url: str) -> None:
    """The receiver commits, then acknowledges; a kill -9 right after the acknowledgement loses nothing."""
    script = textwrap.dedent(
        f"""
        import sys, time
        from shopbridge.domain.clock import SystemClock
        from shopbridge.runtime import inbox
        from shopbridge.store.db import create_database_engine, session_factory, transaction
        from shopbridge.store.inbox_db import inbox_database_url
        url = inbox_database_url({database_url!r}) or {database_url!r}
        sessions = session_factory(create_database_engine(url))
        with transaction(sessions) as session:
            inbox.record(session, source="tiktok", event_id="order-update-1", payload='{{"order_id": "576"}}',
                         now=SystemClock().now())
        print("acknowledged", flush=True)
        time.sleep(60)
        """
    )
    child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None
    assert child.stdout.readline().strip() == "acknowledged"
    os.kill(child.pid, signal.SIGKILL)
    assert child.wait(10) == -signal.SIGKILL
    with hub.inbox_sessions() as session:
        event = session.scalar(select(InboundEvent).where(InboundEvent.event_id == "order-update-1"))
    assert event is not None
    assert event.payload == '{"order_id": "576"}'
    assert event.status == "received"


def test_events_are_marked_with_their_outcome(hub: Hub) -> None:
    with transaction(hub.inbox_sessions) as session:
        recorded = inbox.record(session, source="tiktok", event_id="x", payload="not json", now=hub.clock.now())
        inbox.mark(session, recorded.id, status="rejected", now=hub.clock.now(), error="body is not JSON")
    with hub.inbox_sessions() as session:
        event = session.get(InboundEvent, recorded.id)
        assert event is not None
        assert (event.status, event.error, event.payload) == ("rejected", "body is not JSON", "not json")


def test_an_inbox_file_of_schema_version_1_is_rebuilt_keeping_its_events(tmp_path: Path) -> None:
    """Version 2 admits the status 'ignored'; SQLite cannot alter a CHECK constraint, so the table is rebuilt."""
    engine = create_engine(f"sqlite:///{tmp_path / 'old-inbox.db'}")
    version_1 = str(CreateTable(INBOX_TABLE).compile(engine)).replace(", 'ignored'", "")
    assert "'ignored'" not in version_1
    now = datetime(2026, 12, 1, tzinfo=UTC)
    with engine.begin() as connection:
        connection.exec_driver_sql(version_1)
        connection.exec_driver_sql("PRAGMA user_version = 1")
        connection.execute(INBOX_TABLE.insert(), {"source": "tiktok", "event_id": "kept", "payload": "{}",
                                                  "status": "processed", "received_at": now})  # fmt: skip
        with pytest.raises(IntegrityError):
            connection.execute(INBOX_TABLE.insert(), {"source": "tiktok", "event_id": "odd", "payload": "{}",
                                                      "status": "ignored", "received_at": now})  # fmt: skip
    ensure_inbox_schema(engine)
    ensure_inbox_schema(engine)  # idempotent
    with engine.begin() as connection:
        connection.execute(INBOX_TABLE.insert(), {"source": "tiktok", "event_id": "odd", "payload": "{}",
                                                  "status": "ignored", "received_at": now})  # fmt: skip
        rows = connection.execute(select(INBOX_TABLE.c.event_id, INBOX_TABLE.c.status).order_by(INBOX_TABLE.c.id))
        assert [tuple(row) for row in rows] == [("kept", "processed"), ("odd", "ignored")]
        assert connection.exec_driver_sql("PRAGMA user_version").scalar() == 2
        indexes = connection.exec_driver_sql("SELECT count(*) FROM sqlite_master WHERE type = 'index'").scalar()
        assert indexes and indexes >= 3
    engine.dispose()
