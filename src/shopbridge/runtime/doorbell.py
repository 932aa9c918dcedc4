"""The doorbell: how a commit that queued work wakes this process's idle workers at once, so that idle workers need
not ask the job table many times a second whether anything is due.

``jobs.enqueue`` marks its session when the job it queues is due now; when that session commits, the doorbell of
its database (one per connection pool, so every sessionmaker on one engine shares it) rings once per such job and
wakes that many sleeping workers. A rolled-back transaction rings nothing.

The bell also rings between the processes of one machine: the process running the workers (``serve``'s worker
process, ``serve`` itself when its workers are threads, or the first ``shopbridge worker``) listens on a Unix
datagram socket named after the database (its file for SQLite, its URL otherwise), and every other process on that
database (the web process, a CLI command) sends it each ring. The socket is in Linux's abstract namespace, so
nothing is left on disk; where that is missing, rings stay local and the watch below finds the work.

Work the bell does not announce still runs on time: a job due in more than a minute (a retry's backoff, an order's
hold), a job queued where the bell cannot reach (another machine, or a second worker process, which finds the
socket's name taken and listens to nobody). For those, one idle worker at a time keeps watch and looks at the table
every ``poll_seconds``; the others sleep until the bell rings or ``idle_seconds`` pass. A job queued in this process
to be due within the minute tells the bell when, and the watcher looks then. A worker that has just run a job looks
again at once, which also finds a serial job that its own job's completion unblocked.
"""

from __future__ import annotations

import hashlib
import math
import os
import socket
import sys
import threading
import time
import weakref
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import URL
from sqlalchemy.orm import Session
from sqlalchemy.pool import Pool

_DUE = "shopbridge.jobs_due"  # session.info key: jobs due now queued in the session's open transaction
_DUE_IN = "shopbridge.job_due_in"  # session.info key: seconds until the soonest job it queued for later is due


class Doorbell:
    def __init__(self, address: bytes | None = None) -> None:
        lock = threading.Lock()
        self._state = threading.Condition(lock)  # the idle workers sleep on this one
        self._watch = threading.Condition(lock)  # the worker keeping watch sleeps on this one
        self._rings = 0  # a generation count: a worker sleeps only if no ring came since it last looked
        self._watched = False
        self._sleeping = 0
        self._next_due = math.inf  # monotonic time of the soonest job queued here to be due later (see due_in)
        self.address = address  # where the process running this database's workers listens, if anywhere
        self._sender: socket.socket | None = None
        self._listener: socket.socket | None = None

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
        """Wake up to ``count`` sleeping workers, here and in the process listening for this database's rings."""
        self._ring_here(count)
        if self.address is not None and self._listener is None:
            self._send(self.address, count)

    def due_in(self, seconds: float) -> None:
        """A job was queued here to be due in ``seconds``: the worker keeping watch looks for it then, if that is
        sooner than its next look (only within this process; elsewhere the watch finds it)."""
        with self._state:
            due = time.monotonic() + max(0.0, seconds)
            if due < self._next_due:
                self._next_due = due
                self._watch.notify()  # a sleeping watcher wakes, looks, and sleeps again until then

    def _ring_here(self, count: int) -> None:
        with self._state:
            self._rings += 1
            self._watch.notify()
            self._state.notify(count)

    def _send(self, address: bytes, count: int) -> None:
        try:
            if self._sender is None:
                self._sender = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
                self._sender.setblocking(False)
            self._sender.sendto(str(count).encode(), address)
        except OSError:
            pass  # nobody listens, or its queue is full: the watch finds the work

    def listen(self) -> bool:
        """Take this database's rings from other processes (the process running its workers calls this). False if
        the bell cannot ring between processes here, or another process already listens."""
        if self.address is None or self._listener is not None:
            return self._listener is not None
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            listener.bind(self.address)
        except OSError:
            listener.close()
            return False
        listener.settimeout(0.5)
        self._listener = listener
        threading.Thread(target=self._receive, args=(listener,), name="doorbell", daemon=True).start()
        return True

    def stop_listening(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            listener.close()  # the receiving thread notices within its timeout

    def _receive(self, listener: socket.socket) -> None:
        while self._listener is listener:
            try:
                message = listener.recv(32)
            except TimeoutError:
                continue
            except OSError:
                return
            if message.isdigit():
                self._ring_here(min(int(message), 1024))

    def wake_all(self) -> None:
        with self._state:
            self._rings += 1
            self._watch.notify_all()
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
                if watching:
                    now = time.monotonic()
                    if self._next_due <= now:
                        self._next_due = math.inf  # the look just made has found it (or it ran elsewhere)
                    self._watch.wait(min(poll_seconds, self._next_due - now + 0.001))
                else:
                    self._state.wait(max(idle_seconds, poll_seconds))
            finally:
                self._sleeping -= 1
                if watching:
                    self._watched = False

    @staticmethod
    def of(bind: Any) -> Doorbell:
        """The doorbell of the database behind ``bind`` (an Engine, an engine with options, or a Connection)."""
        engine = bind.engine
        pool: Pool = engine.pool
        with _REGISTRY_LOCK:
            bell = _BELLS.get(pool)
            if bell is None:
                bell = _BELLS[pool] = Doorbell(address_of(engine.url))
            return bell


def address_of(url: URL) -> bytes | None:
    """The abstract socket name of a database's doorbell: by the file for SQLite, by the URL otherwise (None for an
    in-memory database and where Linux's abstract namespace is missing)."""
    if not sys.platform.startswith("linux"):
        return None
    if url.get_backend_name() == "sqlite":
        if not url.database or url.database == ":memory:":
            return None
        name = os.path.realpath(url.database)
    else:
        name = url.render_as_string(hide_password=True)
    return f"\0shopbridge-doorbell-{hashlib.sha256(name.encode()).hexdigest()[:32]}".encode()


_SOON_SECONDS = 60.0  # jobs due later than this are left to the watch (retries' backoff, orders' holds)

_BELLS: weakref.WeakKeyDictionary[Pool, Doorbell] = weakref.WeakKeyDictionary()
_REGISTRY_LOCK = threading.Lock()


def job_due(session: Session, count: int = 1) -> None:
    """Note that the session's transaction made ``count`` jobs due now (rung when it commits)."""
    session.info[_DUE] = session.info.get(_DUE, 0) + count


def job_due_in(session: Session, seconds: float) -> None:
    """Note that the session's transaction queued a job due in ``seconds`` (told to the bell when it commits)."""
    session.info[_DUE_IN] = min(session.info.get(_DUE_IN, math.inf), seconds)


@event.listens_for(Session, "after_commit")
def _ring_on_commit(session: Session) -> None:
    due = session.info.pop(_DUE, 0)
    if due:
        Doorbell.of(session.get_bind()).ring(due)
    later = session.info.pop(_DUE_IN, None)
    if later is not None and later < _SOON_SECONDS:
        Doorbell.of(session.get_bind()).due_in(later)


@event.listens_for(Session, "after_rollback")
def _forget_on_rollback(session: Session) -> None:
    session.info.pop(_DUE, None)
    session.info.pop(_DUE_IN, None)
