"""`shopbridge demo` after a demo was SIGKILLed: the sandbox it ran as a child process does not outlive it and keep
its port, and a sandbox a killed demo did leave behind (recorded in the data directory) is stopped by the next one,
while a process that is not such a sandbox is never touched (docs/operations.md, *Files and permissions*)."""

from __future__ import annotations

import contextlib
import os
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from shopbridge.demo.run import SANDBOX_PID_FILE, stop_leftover_sandbox
from shopbridge.demo.world import free_port, wait_until

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")


def _environment(data_dir: Path) -> dict[str, str]:
    environment = {key: value for key, value in os.environ.items() if not key.startswith("SHOPBRIDGE_")}
    environment.update(SHOPBRIDGE_DATA_DIR=str(data_dir), SHOPBRIDGE_CONFIG_FILE="/nonexistent/shopbridge.toml",
                       COLUMNS="120")  # fmt: skip
    return environment


def _start_demo(
    data_dir: Path, hub_port: int, sandbox_port: int, output: Path, *options: str
) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-c", "from shopbridge.cli import main; main()", "demo", "--port", str(hub_port),
               "--sandbox-port", str(sandbox_port), "--store-port", str(free_port()), "--rate", "0.1",
               *options]  # fmt: skip
    with output.open("wb") as log:
        return subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=_environment(data_dir))


def _answers(process: subprocess.Popen[bytes], url: str, output: Path | None = None) -> bool:
    """Whether ``url`` answers 200 yet; fails at once, with what the process printed, if the process exited."""
    if process.poll() is not None:
        printed = f":\n{output.read_text()}" if output is not None else ""
        raise AssertionError(f"{process.args!r} exited with code {process.returncode}{printed}")
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def _alive(pid: int) -> bool:
    """Running (a zombie, dead but not yet reaped by whoever adopted it, holds no port and counts as gone)."""
    try:
        stat_line = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat_line.rsplit(")", 1)[1].split()[0] != "Z"


def _descendants(pid: int) -> dict[int, str]:
    """The processes below ``pid``, with their command lines."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                parents[int(entry.name)] = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
    found: dict[int, str] = {}
    level = {pid}
    while level:
        level = {child for child, parent in parents.items() if parent in level}
        for child in level:
            with contextlib.suppress(OSError):
                found[child] = (Path(f"/proc/{child}/cmdline").read_bytes().replace(b"\0", b" ")).decode()
    return found


@contextlib.contextmanager
def _cleaning_up(processes: list[subprocess.Popen[bytes]], strays: dict[int, str]) -> Iterator[None]:
    """Whatever happens in the test, leave no demo and no process of a demo running."""
    try:
        yield
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()
        for pid, command in strays.items():
            if _alive(pid) and "shopbridge" in command:
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGKILL)


@pytest.mark.slow
def test_the_demo_starts_again_on_the_same_ports_after_it_was_sigkilled(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    hub_port, sandbox_port = free_port(), free_port()
    processes: list[subprocess.Popen[bytes]] = []
    strays: dict[int, str] = {}
    with _cleaning_up(processes, strays):
        first = _start_demo(data_dir, hub_port, sandbox_port, tmp_path / "first.txt")
        processes.append(first)
        wait_until(
            lambda: _answers(first, f"http://127.0.0.1:{hub_port}/healthz", tmp_path / "first.txt"),
            timeout=120,
            message="the hub",
        )
        strays.update(_descendants(first.pid))
        sandboxes = [pid for pid, command in strays.items() if "shopbridge.sandbox.cli" in command]
        assert len(sandboxes) == 1, strays
        first.send_signal(signal.SIGKILL)
        first.wait()

        second = _start_demo(data_dir, hub_port, sandbox_port, tmp_path / "second.txt", "--duration", "1")
        processes.append(second)
        wait_until(
            lambda: _answers(second, f"http://127.0.0.1:{hub_port}/healthz", tmp_path / "second.txt"),
            timeout=120,
            message="the hub",
        )
        assert second.wait(120) == 0, (tmp_path / "second.txt").read_text()
        assert "demo stopped cleanly" in (tmp_path / "second.txt").read_text()

        assert not _alive(sandboxes[0]), "the first demo's sandbox still runs"
        for pid, command in strays.items():  # the hub's worker process stops as its stdin closes, too
            wait_until(lambda pid=pid: not _alive(pid), timeout=30, message=f"process {pid} ({command}) to end")
        assert not (data_dir / SANDBOX_PID_FILE).exists()
        assert stat.S_IMODE(data_dir.stat().st_mode) == 0o700
        for path in data_dir.iterdir():
            assert stat.S_IMODE(path.stat().st_mode) == 0o600, path.name


def _sandbox_command(port: int) -> list[str]:
    return [sys.executable, "-m", "shopbridge.sandbox.cli", "tiktok", "--port", str(port), "--quiet",
            "--no-webhook-sender-process"]  # fmt: skip


def _start_sandbox(port: int) -> subprocess.Popen[bytes]:
    return subprocess.Popen(_sandbox_command(port), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)


def _dead_pid() -> int:
    ended = subprocess.Popen([sys.executable, "-c", "pass"])
    ended.wait()
    return ended.pid


def _record(data_dir: Path, pid: int, port: int, parent: int) -> None:
    """As the demo records its sandbox: the sandbox's pid, its port, the demo's pid."""
    (data_dir / SANDBOX_PID_FILE).write_text(f"{pid} {port} {parent}\n")


def test_a_recorded_sandbox_whose_demo_died_is_stopped(tmp_path: Path) -> None:
    port = free_port()
    sandbox = _start_sandbox(port)
    with _cleaning_up([sandbox], {}):
        wait_until(
            lambda: _answers(sandbox, f"http://127.0.0.1:{port}/_sandbox/clock"), timeout=60, message="the sandbox"
        )
        _record(tmp_path, sandbox.pid, port, _dead_pid())
        assert stop_leftover_sandbox(tmp_path) == sandbox.pid
        assert sandbox.wait(5) is not None
        assert not (tmp_path / SANDBOX_PID_FILE).exists()


def test_a_process_that_is_not_a_leftover_sandbox_is_left_alone(tmp_path: Path) -> None:
    port, dead = free_port(), _dead_pid()
    sandbox = _start_sandbox(port)
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    with _cleaning_up([sandbox, other], {}):
        wait_until(
            lambda: _answers(sandbox, f"http://127.0.0.1:{port}/_sandbox/clock"), timeout=60, message="the sandbox"
        )
        # a reused pid, running something else; a sandbox, but on another port than the one recorded
        for pid, recorded_port in ((other.pid, port), (sandbox.pid, free_port())):
            _record(tmp_path, pid, recorded_port, dead)
            assert stop_leftover_sandbox(tmp_path) is None
            assert not (tmp_path / SANDBOX_PID_FILE).exists()
        # the sandbox of a demo that still runs (here: this test), whose record stays
        _record(tmp_path, sandbox.pid, port, os.getpid())
        assert stop_leftover_sandbox(tmp_path) is None
        assert (tmp_path / SANDBOX_PID_FILE).exists()
        time.sleep(0.2)
        assert other.poll() is None and sandbox.poll() is None


def test_a_stale_or_unreadable_record_is_dropped(tmp_path: Path) -> None:
    for content in (f"{_dead_pid()} {free_port()} {_dead_pid()}\n", "not a pid\n", "12\n", ""):
        (tmp_path / SANDBOX_PID_FILE).write_text(content)
        assert stop_leftover_sandbox(tmp_path) is None
        assert not (tmp_path / SANDBOX_PID_FILE).exists()
    assert stop_leftover_sandbox(tmp_path) is None  # no record at all
