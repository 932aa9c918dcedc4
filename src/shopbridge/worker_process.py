"""`serve`'s workers in a process of their own, beside the web process.

One Python process has one interpreter lock. With the workers as threads of the web process, a webhook's answer
and an API client's write wait for that lock behind order syncs and stock pushes, and the hub uses one core however
many the machine has. By default (`worker_process = true`) `serve` therefore starts its workers in a child process:
the web process receives webhooks and serves the API, the child claims and runs jobs, and both share the database
(on SQLite through the cross-process writer lock of `store.db`; a commit in the web process that queues a job
rings the child's doorbell, see `runtime.doorbell`).

The child is `python -m shopbridge.worker_process`. It reads its settings from its stdin (pickled by the parent),
says ``ready`` on its stdout once its workers run, and stops when its stdin closes: when the parent stops it, and
when the parent dies however it dies. It ignores Ctrl-C, which a terminal sends to the whole process group: the
web process stops it once its own requests are done. The parent restarts a child that exits on its own, with a
growing delay; jobs the child held come back after their lease (docs/architecture.md, *Running*).
"""

from __future__ import annotations

import contextlib
import os
import pickle
import select
import signal
import subprocess
import sys
import threading
import time
from typing import IO

from shopbridge.config import Settings
from shopbridge.logs import configure_logging, get_logger

log = get_logger("shopbridge.worker_process")

READY = b"ready\n"


class WorkerProcessFailed(RuntimeError):
    """The worker process did not start; the message says how it ended."""


class WorkerProcess:
    """The web process's handle on its worker process: start, watch (restarting it if it dies), stop."""

    def __init__(self, settings: Settings, workers: int, *, start_seconds: float = 60.0) -> None:
        self.settings = settings
        self.workers = workers
        self.start_seconds = start_seconds
        self.restarts = 0
        self._process: subprocess.Popen[bytes] | None = None
        self._stopping = threading.Event()
        self._watcher: threading.Thread | None = None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def start(self) -> None:
        """Start the child and return once its workers run (raises WorkerProcessFailed otherwise)."""
        self._process = self._spawn()
        self._watcher = threading.Thread(target=self._watch, name="worker-process-watch", daemon=True)
        self._watcher.start()

    def alive(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def stop(self, timeout: float = 15.0) -> None:
        """Close the child's stdin (it finishes the jobs in hand and exits); terminate it if it does not."""
        self._stopping.set()
        process, self._process = self._process, None
        if process is not None:
            _finish(process, timeout)
        if self._watcher is not None:
            self._watcher.join(timeout)

    def _spawn(self) -> subprocess.Popen[bytes]:
        process = subprocess.Popen(  # our own module, run by the interpreter running us
            [sys.executable, "-m", "shopbridge.worker_process"], stdin=subprocess.PIPE, stdout=subprocess.PIPE
        )
        assert process.stdin is not None and process.stdout is not None
        try:
            pickle.dump((self.settings, self.workers), process.stdin)
            process.stdin.flush()
        except OSError:
            pass  # it died at once: reported below with its exit code
        said = _read_line(process.stdout, self.start_seconds)
        process.stdout.close()
        if said != READY:
            _finish(process, 5.0)
            raise WorkerProcessFailed(
                f"the worker process did not start within {self.start_seconds:.0f} s "
                f"(exit code {process.returncode}; its error is above, on stderr)"
            )
        return process

    def _watch(self) -> None:
        delay = 1.0
        while not self._stopping.wait(1.0):
            process = self._process
            if process is None or process.poll() is None:
                continue
            log.error("worker_process.exited", pid=process.pid, exit_code=process.returncode, restart_in_s=delay)
            if self._stopping.wait(delay):
                return
            delay = min(delay * 2, 30.0)
            try:
                self._process = self._spawn()
            except (WorkerProcessFailed, OSError) as error:
                log.error("worker_process.restart_failed", error=str(error))
                continue
            self.restarts += 1
            log.warning("worker_process.restarted", pid=self._process.pid, restarts=self.restarts)


def _read_line(stream: IO[bytes], timeout: float) -> bytes:
    ready, _, _ = select.select([stream], [], [], timeout)
    return stream.readline() if ready else b""


def _finish(process: subprocess.Popen[bytes], timeout: float) -> None:
    if process.stdin is not None:
        with contextlib.suppress(OSError):
            process.stdin.close()
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.terminate()
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def main() -> None:
    """The child: build the hub from the parent's settings, run its workers until stdin closes or SIGTERM."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    settings, workers = pickle.load(sys.stdin.buffer)  # noqa: S301 - written by our parent, through a pipe
    configure_logging(settings.log_level, settings.log_format)

    from shopbridge.bootstrap import build_hub

    hub = build_hub(settings)
    try:
        hub.start_workers(workers)
        sys.stdout.buffer.write(READY)
        sys.stdout.flush()
        os.dup2(sys.stderr.fileno(), sys.stdout.fileno())  # the parent reads no more; anything printed goes to stderr

        def until_stdin_closes() -> None:
            # The descriptor, not sys.stdin: a daemon thread blocked in sys.stdin's buffered reader holds its lock,
            # which the interpreter cannot take at exit after a SIGTERM (a fatal error instead of a clean stop).
            with contextlib.suppress(OSError):
                while os.read(sys.stdin.fileno(), 4096):
                    pass
            stopping.set()

        threading.Thread(target=until_stdin_closes, name="parent-watch", daemon=True).start()
        started = time.monotonic()
        stopping.wait()
        log.info("worker_process.stopping", ran_s=round(time.monotonic() - started, 1))
    finally:
        hub.close()


if __name__ == "__main__":
    main()
