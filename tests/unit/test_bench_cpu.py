"""The benchmarks' hub CPU accounting: which processes count, and the arithmetic over a window."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from shopbridge.bench.cpu import Snapshot, hub_cpu, hub_processes, table_cell

LINUX = Path("/proc/self/stat").exists()
BUSY = "import time\nend = time.process_time() + 0.3\nwhile time.process_time() < end: pass\ntime.sleep(30)"


@pytest.mark.skipif(not LINUX, reason="reads /proc")
def test_the_web_process_and_its_worker_process_count_and_the_sandbox_does_not() -> None:
    # Stand-ins named as `serve` starts them: the worker process by its module, the sandbox by its own.
    worker = subprocess.Popen([sys.executable, "-c", BUSY, "shopbridge.worker_process"])
    sandbox = subprocess.Popen([sys.executable, "-c", BUSY, "shopbridge.sandbox.cli"])
    try:
        before = hub_processes(os.getpid())
        assert before is not None
        time.sleep(1.0)  # each child burns 0.3 s of CPU
        after = hub_processes(os.getpid())
        assert after is not None
    finally:
        for child in (worker, sandbox):
            child.kill()
            child.wait()
    roles = {pid: role for (pid, _started), (role, _ticks) in after.counted.items()}
    assert roles[os.getpid()] == "web" and roles[worker.pid] == "worker"
    assert sandbox.pid not in roles
    assert {"pid": sandbox.pid, "process": "shopbridge.sandbox.cli"} in after.left_out
    figures = hub_cpu(before, after, 10, "test events")
    web, busy = f"web (pid {os.getpid()})", f"worker (pid {worker.pid})"
    assert set(figures["processes"]) == {web, busy}
    # The worker's busy time (what of it came after the first read) counts; the sandbox's does not.
    assert 0 < figures["by_process"][busy] <= 0.3 + 2 / os.sysconf("SC_CLK_TCK")
    assert figures["seconds"] == pytest.approx(figures["by_process"][web] + figures["by_process"][busy])


def test_the_figures_over_a_window() -> None:
    tick = os.sysconf("SC_CLK_TCK")
    before = Snapshot(10.0, {(1, 5): ("web", 100), (2, 6): ("worker", 50), (3, 7): ("worker", 10)}, [])
    # pid 2 was restarted (same pid, a new start time): the new one counts from zero; pid 3 ended.
    after = Snapshot(30.0, {(1, 5): ("web", 100 + 2 * tick), (2, 9): ("worker", tick)},
                     [{"pid": 4, "process": "shopbridge.sandbox.cli"}])  # fmt: skip
    figures = hub_cpu(before, after, 1500, "orders")
    assert figures["seconds"] == 3.0 and figures["events"] == 1500
    assert figures["per_1000_events"] == pytest.approx(figures["seconds"] * 1000 / figures["events"])
    assert figures["window_seconds"] == 20.0 and figures["cores"] == 0.15
    assert figures["by_process"] == {"web (pid 1)": 2.0, "worker (pid 2)": 1.0}
    assert figures["ended_during_window"] == ["worker (pid 2)", "worker (pid 3)"]
    assert figures["not_counted"] == [{"pid": 4, "process": "shopbridge.sandbox.cli"}]
    assert table_cell(figures) == "2.00 s (0.15 cores)"


def test_no_reading_means_null_figures_with_a_reason() -> None:
    figures = hub_cpu(None, None, 100, "orders")
    assert figures["seconds"] is None and figures["per_1000_events"] is None and figures["events"] == 100
    assert figures["reason"].startswith("not measured")
    assert table_cell(figures) == "-"
