"""Group commit: items written together, each caller told only after its item is durable, a bad item failing
only itself."""

from __future__ import annotations

from concurrent.futures import wait

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from shopbridge.bootstrap import Hub
from shopbridge.runtime import inbox
from shopbridge.runtime.group_commit import GroupCommitter
from shopbridge.store.tables import InboundEvent


def test_items_are_committed_before_their_callers_are_answered(hub: Hub) -> None:
    def write(session: Session, event_id: str) -> int:
        if event_id == "bad":
            raise ValueError("the body is not JSON")
        return inbox.record(session, source="test", event_id=event_id, payload="{}", now=hub.clock.now()).id

    committer: GroupCommitter[str, int] = GroupCommitter(hub.inbox_sessions, write, max_batch=8)
    futures = {event_id: committer.submit(event_id) for event_id in [f"e{n}" for n in range(40)] + ["bad"]}
    repeat = committer.submit("e1")  # a duplicate delivery: the same inbox row
    wait([*futures.values(), repeat], timeout=30)
    committer.stop()
    with pytest.raises(ValueError, match="not JSON"):
        futures["bad"].result()
    ids = {event_id: future.result() for event_id, future in futures.items() if event_id != "bad"}
    assert repeat.result() == ids["e1"]
    with hub.inbox_sessions() as session:
        assert session.scalar(select(func.count()).select_from(InboundEvent)) == 40
    assert committer.items == 41 and committer.batches < 41, "items shared transactions"


def test_a_batch_writer_writes_each_batch_in_one_call(hub: Hub) -> None:
    calls: list[list[str]] = []

    def write_many(session: Session, event_ids: list[str]) -> list[int]:
        calls.append(event_ids)
        return [inbox.record(session, source="test", event_id=event_id, payload="{}", now=hub.clock.now()).id
                for event_id in event_ids]  # fmt: skip

    committer: GroupCommitter[str, int] = GroupCommitter(hub.inbox_sessions, write_many=write_many, max_batch=8)
    futures = [committer.submit(f"e{n}") for n in range(20)]
    wait(futures, timeout=30)
    committer.stop()
    assert sorted(event_id for call in calls for event_id in call) == sorted(f"e{n}" for n in range(20))
    assert all(len(call) <= 8 for call in calls) and committer.batches == len(calls)
    assert len({future.result() for future in futures}) == 20


def test_a_committer_takes_one_writer() -> None:
    with pytest.raises(ValueError, match="either write or write_many"):
        GroupCommitter(None, write=lambda session, item: item, write_many=lambda session, items: items)  # type: ignore[arg-type]
