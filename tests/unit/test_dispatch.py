"""The dispatcher: everything notified is acted on, a failed round keeps its items, the sweep adds what was missed."""

from __future__ import annotations

import threading
import time

import pytest

from shopbridge.runtime import dispatch
from shopbridge.runtime.dispatch import Dispatcher


def test_notified_items_are_acted_on_once_each_round_and_a_failed_round_is_retried(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(dispatch, "RETRY_SECONDS", 0.01)
    acted: list[list[str]] = []
    failures = iter([True, False, False, False])
    lock = threading.Lock()

    def act(items: list[str]) -> None:
        with lock:
            if next(failures, False):
                raise ConnectionError("database is locked")
            acted.append(sorted(items))

    dispatcher: Dispatcher[str] = Dispatcher(act, sweep=lambda: ["swept"], sweep_seconds=3600, name="test")
    dispatcher.notify(["a", "b", "a"])
    assert dispatcher.flush(10)
    dispatcher.notify(["c"])
    assert dispatcher.flush(10)
    dispatcher.stop()
    everything = [item for items in acted for item in items]
    assert sorted(everything) == ["a", "b", "c", "swept"], "each item once, after the failed round was retried"


def test_the_first_sweep_runs_on_start_without_any_notification() -> None:
    acted: list[str] = []
    dispatcher: Dispatcher[str] = Dispatcher(acted.extend, sweep=lambda: ["left over"], name="test")
    dispatcher.start()
    deadline = time.monotonic() + 10
    while not acted and time.monotonic() < deadline:
        time.sleep(0.01)
    dispatcher.stop()
    assert acted == ["left over"]
