"""The doorbell: how a commit that queued work wakes this process's idle workers at once, so that idle workers need
not ask the job table many times a second whether anything is due.

``jobs.enqueue`` marks its session when the job it queues is due now; when that session commits, the doorbell of
its database (one per connection pool, so every sessionmaker on one engine shares it) rings once per such job and
wakes that many sleeping workers. A rolled-back transaction rings nothing.

Work the bell does not announce still runs on time: a job due later (a retry's backoff, an order's hold), a job
queued by another process (a CLI command, a web replica, a worker elsewhere). For those, one idle worker at a
time keeps watch and looks at the table every ``poll_seconds``; the others sleep until the bell rings or
``idle_seconds`` pass. A worker that has just run a job looks again at once, which also finds a serial job that
its own job's completion unblocked.
"""

from __future__ import annotations

import threading
import weakref
from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import Session
from sqlalchemy.pool import Pool

_DUE = "shopbridge.jobs_due"  # session.info key: jobs due now queued in the session's open transaction


class Doorbell:
    def __init__(self) -> None:
        self._state = threading.Condition()
        self._rings = 0  # a generation count: a worker sleeps only if no ring came since it last looked
        self._watched = False
        self._sleeping = 0

    @property
    def sleeping(self) -> int:
        """Workers asleep at the door now."""
        with self._state:
            return self._sleeping

    @property
    def rings(self) -> int:
        """Read before looking at the job table; pass to ``wait`` so a ring in between is not slept through."""
        with self._state:
            return self._rings

    def ring(self, count: int = 1) -> None:
        """Wake up to ``count`` sleeping workers."""
        with self._state:
            self._rings += 1
            self._state.notify(count)

    def wake_all(self) -> None:
        with self._state:
            self._rings += 1
            self._state.notify_all()

    def wait(self, seen: int, *, poll_seconds: float, idle_seconds: float) -> None:
        """Sleep until the bell rings, unless it rang since ``seen``. The first sleeper keeps watch and wakes after
        ``poll_seconds``; the others after ``idle_seconds``."""
        with self._state:
            if self._rings != seen:
                return
            watching = not self._watched
            self._watched = self._watched or watching
            self._sleeping += 1
            try:
                self._state.wait(poll_seconds if watching else max(idle_seconds, poll_seconds))
            finally:
                self._sleeping -= 1
                if watching:
                    self._watched = False

    @staticmethod
    def of(bind: Any) -> Doorbell:
        """The doorbell of the database behind ``bind`` (an Engine, an engine with options, or a Connection)."""
        pool: Pool = bind.engine.pool
        with _REGISTRY_LOCK:
            bell = _BELLS.get(pool)
            if bell is None:
                bell = _BELLS[pool] = Doorbell()
            return bell


_BELLS: weakref.WeakKeyDictionary[Pool, Doorbell] = weakref.WeakKeyDictionary()
_REGISTRY_LOCK = threading.Lock()


def job_due(session: Session, count: int = 1) -> None:
    """Note that the session's transaction made ``count`` jobs due now (rung when it commits)."""
    session.info[_DUE] = session.info.get(_DUE, 0) + count


@event.listens_for(Session, "after_commit")
def _ring_on_commit(session: Session) -> None:
    due = session.info.pop(_DUE, 0)
    if due:
        Doorbell.of(session.get_bind()).ring(due)


@event.listens_for(Session, "after_rollback")
def _forget_on_rollback(session: Session) -> None:
    session.info.pop(_DUE, None)
