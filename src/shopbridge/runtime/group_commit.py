"""Group commit: many small writes that each must be durable before their caller answers (webhook deliveries)
share one transaction. Callers wait on a future; the writer thread commits every waiting item at once, so under
a burst the write lock is taken once per batch instead of once per delivery.

If a batch fails, each of its items is written again in a transaction of its own, so one bad item fails only
its own caller."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Generic, TypeVar

from sqlalchemy.orm import Session, sessionmaker

from shopbridge.logs import get_logger
from shopbridge.store.db import WriteLane, transaction

Item = TypeVar("Item")
Result = TypeVar("Result")
log = get_logger("shopbridge.group_commit")


@dataclass
class _Pending(Generic[Item, Result]):
    item: Item
    future: Future[Result]


class GroupCommitter(Generic[Item, Result]):
    def __init__(
        self,
        sessions: sessionmaker[Session],
        write: Callable[[Session, Item], Result],
        *,
        max_batch: int = 128,
        name: str = "group-commit",
    ) -> None:
        self.sessions = sessions
        self.write = write
        self.max_batch = max_batch
        self.name = name
        self._queue: queue.Queue[_Pending[Item, Result] | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.batches = 0
        self.items = 0

    def submit(self, item: Item) -> Future[Result]:
        """Queue ``item``; the future resolves once it is committed (or fails with its own error)."""
        self._ensure_running()
        future: Future[Result] = Future()
        self._queue.put(_Pending(item, future))
        return future

    def _ensure_running(self) -> None:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
                self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Write what is queued, then stop the writer thread."""
        with self._lock:
            thread = self._thread
            self._thread = None
        if thread is not None:
            self._queue.put(None)
            thread.join(timeout)

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            batch = [first]
            stop = False
            while len(batch) < self.max_batch:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    stop = True
                    break
                batch.append(more)
            self._write(batch)
            if stop:
                return

    def _write(self, batch: list[_Pending[Item, Result]]) -> None:
        try:
            with transaction(self.sessions, lane=WriteLane.ACKNOWLEDGEMENT) as session:
                results = [self.write(session, pending.item) for pending in batch]
        except Exception:
            if len(batch) == 1:
                self._write_one(batch[0])
            else:
                log.warning("group_commit.batch_failed", writer=self.name, items=len(batch))
                for pending in batch:
                    self._write_one(pending)
            return
        self.batches += 1
        self.items += len(batch)
        for pending, result in zip(batch, results, strict=True):
            pending.future.set_result(result)

    def _write_one(self, pending: _Pending[Item, Result]) -> None:
        try:
            with transaction(self.sessions, lane=WriteLane.ACKNOWLEDGEMENT) as session:
                result = self.write(session, pending.item)
        except Exception as error:
            pending.future.set_exception(error)
            return
        self.batches += 1
        self.items += 1
        pending.future.set_result(result)
