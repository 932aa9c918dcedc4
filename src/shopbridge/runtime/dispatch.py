"""The step after the inbox: turning committed inbound events into jobs, off the acknowledgement's path.

The webhook receiver commits an event to the inbox and answers at once; it does not also queue the job that acts
on it. On SQLite the inbox is a database file of its own (store/inbox_db.py), and queuing the job in the hub's
file would make every acknowledgement wait for that file's writer again. The receiver hands the event to a
Dispatcher instead, which queues jobs for everything handed to it since its last round, in one transaction.

Nothing is lost if the process stops between the two: the event is committed and still `received`, and the
dispatcher's sweep (on start, then every ``sweep_seconds``) hands such events over again. Queuing is idempotent
(jobs coalesce on their identity keys), so an event handed over twice queues its work once."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable, Iterable
from typing import Generic, TypeVar

from shopbridge.logs import get_logger

Item = TypeVar("Item", bound=Hashable)
log = get_logger("shopbridge.dispatch")

RETRY_SECONDS = 1.0


class Dispatcher(Generic[Item]):
    """A thread that calls ``act`` with every item notified since its last call, and ``sweep`` (which returns
    the items that should have been notified but may not have been) on start and every ``sweep_seconds``. A
    failed ``act`` keeps its items for the next round."""

    def __init__(
        self,
        act: Callable[[list[Item]], None],
        *,
        sweep: Callable[[], Iterable[Item]],
        sweep_seconds: float = 30.0,
        name: str = "dispatch",
    ) -> None:
        self.act = act
        self.sweep = sweep
        self.sweep_seconds = sweep_seconds
        self.name = name
        self._pending: dict[Item, None] = {}  # insertion-ordered set
        self._busy = False
        self._sweep_due = True  # the first sweep runs when the thread starts
        self._state = threading.Condition()
        self._thread: threading.Thread | None = None
        self._stopping = False
        self.rounds = 0

    def notify(self, items: Iterable[Item]) -> None:
        with self._state:
            self._pending.update(dict.fromkeys(items))
            self._state.notify_all()
        self._ensure_running()

    def _ensure_running(self) -> None:
        with self._state:
            if self._thread is None or not self._thread.is_alive():
                self._stopping = False
                self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
                self._thread.start()

    def start(self) -> None:
        """Start now (the first sweep runs at once) rather than on the first notification."""
        self._ensure_running()

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until everything notified so far, and the first sweep, have been acted on; False if ``timeout``
        passed first."""
        self._ensure_running()
        with self._state:
            return self._state.wait_for(
                lambda: not self._pending and not self._busy and not self._sweep_due, timeout=timeout
            )

    def stop(self, timeout: float = 10.0) -> None:
        """Act on what is pending, then stop the thread."""
        with self._state:
            thread, self._stopping = self._thread, True
            self._state.notify_all()
        if thread is not None:
            thread.join(timeout)
        with self._state:
            self._thread = None

    def _run(self) -> None:
        next_sweep = 0.0
        while True:
            with self._state:
                now = time.monotonic()
                self._state.wait_for(lambda: bool(self._pending) or self._stopping, timeout=max(0.0, next_sweep - now))
                if self._stopping and not self._pending:
                    return
                batch = list(self._pending)
                self._pending.clear()
                self._busy = True
            try:
                if time.monotonic() >= next_sweep:
                    batch += [item for item in self._swept() if item not in batch]
                    next_sweep = time.monotonic() + self.sweep_seconds
                    self._sweep_due = False
                if batch:
                    self.act(batch)
                    self.rounds += 1
            except Exception as error:  # keep the items and the thread: a database may be briefly unavailable
                log.warning("dispatch.failed", dispatcher=self.name, items=len(batch), error=str(error))
                with self._state:
                    self._pending.update(dict.fromkeys(batch))
                    self._busy = False
                    self._state.notify_all()
                    if self._stopping:
                        return
                time.sleep(RETRY_SECONDS)
                continue
            with self._state:
                self._busy = False
                self._state.notify_all()

    def _swept(self) -> list[Item]:
        try:
            return list(self.sweep())
        except Exception as error:
            log.warning("dispatch.sweep_failed", dispatcher=self.name, error=str(error))
            return []
