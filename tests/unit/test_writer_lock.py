"""SQLite's writer lock within one process: lanes decide who goes next, and every waiter gets its turn."""

from __future__ import annotations

import threading
import time

from shopbridge.store.db import WriteLane, _WriterLock


def _waiting(lock: _WriterLock, count: int) -> None:
    deadline = time.monotonic() + 5
    while sum(lock._waiting) < count:
        assert time.monotonic() < deadline, f"{count} writers never queued"
        time.sleep(0.001)


def test_waiting_writers_go_lane_by_lane_and_none_is_left_waiting() -> None:
    lock = _WriterLock(None)
    assert lock.acquire(WriteLane.ORDINARY, timeout=1)
    order: list[str] = []

    def write(lane: WriteLane) -> None:
        if not lock.acquire(lane, timeout=5):
            order.append(f"{lane.name} gave up")
            return
        order.append(lane.name)
        lock.release()

    # Queued in the worst order: API clients first, then the engine, then a webhook's acknowledgement.
    threads = []
    for lane, how_many in ((WriteLane.ORDINARY, 6), (WriteLane.ENGINE, 3), (WriteLane.ACKNOWLEDGEMENT, 1)):
        for _ in range(how_many):
            threads.append(threading.Thread(target=write, args=(lane,)))
            threads[-1].start()
        _waiting(lock, len(threads))
    lock.release()
    for thread in threads:
        thread.join(timeout=10)

    assert order == ["ACKNOWLEDGEMENT"] + ["ENGINE"] * 3 + ["ORDINARY"] * 6


def test_a_writer_that_gives_up_keeps_no_place_in_the_queue() -> None:
    lock = _WriterLock(None)
    assert lock.acquire(WriteLane.ORDINARY, timeout=1)
    assert not lock.acquire(WriteLane.ENGINE, timeout=0.05), "the lock is held"
    # Had it stayed counted in its lane, the writer below it would wait for a turn that never comes.
    got: list[bool] = []
    waiter = threading.Thread(target=lambda: got.append(lock.acquire(WriteLane.ORDINARY, timeout=5)))
    waiter.start()
    _waiting(lock, 1)
    lock.release()
    waiter.join(timeout=10)
    assert got == [True]
