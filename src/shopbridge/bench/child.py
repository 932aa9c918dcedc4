"""The sandbox-and-hub world of a benchmark in a child process of its own, so the load generators and samplers in
the parent do not compete with the hub for an interpreter lock. The child answers commands over a pipe until
told to stop."""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from multiprocessing.connection import Connection
from typing import Any


class ChildFailed(RuntimeError):
    """The child could not start its world; the message is the child's own error."""


def serve_commands(conn: Connection, started: dict[str, Any], answer: Callable[[Any], Any]) -> None:
    """In the child: report what was started, then answer each command until "stop"."""
    conn.send(started)
    while True:
        command = conn.recv()
        if command == "stop":
            return
        conn.send(answer(command))


def report_failure(conn: Connection, error: Exception) -> None:
    """In the child: tell the parent why the world did not start (or stopped)."""
    conn.send({"error": f"{type(error).__name__}: {error}"})


@contextmanager
def child_world(
    target: Callable[..., None], args: tuple[Any, ...], *, name: str, start_seconds: float
) -> Iterator[tuple[dict[str, Any], Connection]]:
    """Start ``target(conn, *args)`` in a spawned process; yield what it reported on start and the pipe to it.
    On leaving, the child is told to stop, then terminated if it does not."""
    context = multiprocessing.get_context("spawn")
    ours, theirs = context.Pipe()
    process = context.Process(target=target, args=(theirs, *args), daemon=True, name=name)
    process.start()
    try:
        if not ours.poll(start_seconds):
            raise RuntimeError(f"the sandbox and hub did not start within {start_seconds:.0f} s")
        info: dict[str, Any] = ours.recv()
        if "error" in info:
            raise ChildFailed(str(info["error"]))
        yield info, ours
    finally:
        with suppress(OSError):
            ours.send("stop")
        process.join(30)
        if process.is_alive():
            process.terminate()
            process.join(10)
