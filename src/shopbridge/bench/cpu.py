"""The hub's own CPU time over a benchmark's window, from the operating system's accounting of its processes.

The hub runs as `serve` runs it: a web process (in the benchmarks, the child process that runs
`shopbridge.demo.world.running_world`) and its worker process (`python -m shopbridge.worker_process`, a child of
the web process). Both are found by pid: the web process is the pid the world's child reports, the worker
process(es) are its children running that module, with any descendants of theirs. Everything else is left out and
listed as such: the TikTok sandbox (another child of the web process) and its webhook sender, and the benchmark's
own processes (load generators, watchers, samplers).

Each counted process's user + system time is read from ``/proc/<pid>/stat`` (``utime`` + ``stime``, in clock ticks
of ``os.sysconf("SC_CLK_TCK")``; its own threads included, its children's not) at the window's start and end. A
process is known by its pid and its start time, so a reused pid is not taken for the same process; one that started
during the window (a restarted worker process) counts from zero, and one that ended during it is named in
``ended_during_window``, its time after the start reading being lost (the figure is then a lower bound). On a
machine without ``/proc`` the figures are null, with the reason.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

WORKER_MODULE = "shopbridge.worker_process"
PROC = Path("/proc")


@dataclass(frozen=True)
class Process:
    pid: int
    parent: int
    started: int  # clock ticks after boot: with the pid, tells a process from a later one given the same pid
    ticks: int  # utime + stime
    arguments: tuple[str, ...]


def _read(pid: int) -> Process | None:
    try:
        stat = (PROC / str(pid) / "stat").read_text()
        arguments = (PROC / str(pid) / "cmdline").read_bytes().split(b"\0")
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()  # after the command name, which may hold anything
    # fields[0] is field 3 of proc(5): state, ppid, ... utime (14), stime (15), ... starttime (22)
    if fields[0] in ("Z", "X"):
        return None
    return Process(pid, int(fields[1]), int(fields[19]), int(fields[11]) + int(fields[12]),
                   tuple(argument.decode(errors="replace") for argument in arguments if argument))  # fmt: skip


def _all_processes() -> list[Process]:
    found = []
    for entry in PROC.iterdir():
        if entry.name.isdigit() and (process := _read(int(entry.name))) is not None:
            found.append(process)
    return found


def _name(process: Process) -> str:
    return next((argument for argument in process.arguments if argument.startswith("shopbridge.")),
                " ".join(process.arguments)[:80] or str(process.pid))  # fmt: skip


@dataclass(frozen=True)
class Snapshot:
    at: float  # time.monotonic()
    counted: dict[tuple[int, int], tuple[str, int]]  # (pid, start) -> (role, ticks)
    left_out: list[dict[str, Any]]


def hub_processes(hub_pid: int) -> Snapshot | None:
    """The hub's processes and their CPU ticks now; None when this machine has no /proc (or the hub has ended)."""
    if not (PROC / "self" / "stat").exists():
        return None
    processes = _all_processes()
    web = next((process for process in processes if process.pid == hub_pid), None)
    if web is None:
        return None
    children: dict[int, list[Process]] = {}
    for process in processes:
        children.setdefault(process.parent, []).append(process)
    counted = {(web.pid, web.started): ("web", web.ticks)}
    left_out = []
    for child in children.get(web.pid, []):
        if WORKER_MODULE not in child.arguments:
            left_out.append({"pid": child.pid, "process": _name(child)})
            continue
        stack = [(child, "worker")]
        while stack:
            process, role = stack.pop()
            counted[(process.pid, process.started)] = (role, process.ticks)
            stack += [(grandchild, "worker's child") for grandchild in children.get(process.pid, [])]
    return Snapshot(time.monotonic(), counted, left_out)


class HubCpu:
    """Reads the hub's processes at the window's start (`start`) and end (`stop`); `result` gives the figures."""

    def __init__(self, hub_pid: int | None) -> None:
        self.hub_pid = hub_pid
        self.before: Snapshot | None = None
        self.after: Snapshot | None = None

    def start(self) -> None:
        self.before = hub_processes(self.hub_pid) if self.hub_pid is not None else None

    def stop(self) -> None:
        self.after = hub_processes(self.hub_pid) if self.hub_pid is not None else None

    def result(self, events: int, events_are: str) -> dict[str, Any]:
        """``events``: the count the figure is per 1,000 of; ``events_are``: what they are, for the JSON."""
        return hub_cpu(self.before, self.after, events, events_are)


def hub_cpu(before: Snapshot | None, after: Snapshot | None, events: int, events_are: str) -> dict[str, Any]:
    out: dict[str, Any] = {"seconds": None, "events": events, "events_are": events_are, "per_1000_events": None,
                           "window_seconds": None, "cores": None, "processes": [], "by_process": {},
                           "ended_during_window": [], "not_counted": []}  # fmt: skip
    if before is None or after is None:
        where = "this machine has no /proc" if not (PROC / "self" / "stat").exists() else "the hub's process ended"
        out["reason"] = f"not measured: {where}"
        return out
    tick = os.sysconf("SC_CLK_TCK")
    by_process: dict[str, float] = {}
    total = 0
    for key, (role, ticks) in after.counted.items():
        used = ticks - before.counted[key][1] if key in before.counted else ticks
        total += used
        name = f"{role} (pid {key[0]})"
        by_process[name] = round(used / tick, 2)
    window = after.at - before.at
    seconds = round(total / tick, 2)
    out.update({
        "seconds": seconds,
        "per_1000_events": round(seconds * 1000 / events, 3) if events else None,
        "window_seconds": round(window, 2),
        "cores": round(seconds / window, 2) if window > 0 else None,
        "processes": list(by_process),
        "by_process": by_process,
        "ended_during_window": [f"{role} (pid {key[0]})" for key, (role, _) in before.counted.items()
                                if key not in after.counted],
        "not_counted": [*{(item["pid"], item["process"]): item for item in before.left_out + after.left_out}.values()],
    })  # fmt: skip
    return out


def table_cell(figures: dict[str, Any]) -> str:
    """CPU seconds per 1,000 events, and the cores used on average over the window, for a table ("-" if null)."""
    if figures["per_1000_events"] is None:
        return "-"
    cores = "" if figures["cores"] is None else f" ({figures['cores']:.2f} cores)"
    return f"{figures['per_1000_events']:,.2f} s{cores}"
