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
