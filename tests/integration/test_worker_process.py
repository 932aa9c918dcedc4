"""`serve`'s workers in a process of their own beside the web process (the default), and how idle workers wake
for work as it is queued rather than at their next look at the job table."""

from __future__ import annotations

import os
import pickle
import signal
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from shopbridge.bootstrap import Hub, build_hub
from shopbridge.config import Settings
from shopbridge.demo.world import wait_until
from shopbridge.runtime import jobs
from shopbridge.services.orders import RELEASE_DUE
from shopbridge.store.db import reading, transaction
from shopbridge.store.tables import Job, JobAttempt
from shopbridge.web.app import create_app
from shopbridge.worker_process import READY


@pytest.fixture
def process_hub(settings: Settings) -> Iterator[Hub]:
    """A hub as `serve` builds it: the system clock, every job kind, workers in a worker process."""
    built = build_hub(settings.model_copy(update={"worker_process": True, "worker_poll_seconds": 30.0}))
    built.migrate()
    yield built
    built.close()


def _queue_release_check(hub: Hub) -> int:
    with transaction(hub.sessions) as session:
        return jobs.enqueue(session, RELEASE_DUE, {"order_id": 404}, now=hub.clock.now())


def _ran_in(hub: Hub, job_id: int) -> str | None:
    with reading(hub.sessions) as session:
        if session.scalar(select(Job.state).where(Job.id == job_id)) != "succeeded":
            return None
        return session.scalar(select(JobAttempt.worker).where(JobAttempt.job_id == job_id))


def test_a_job_queued_by_the_web_process_runs_in_the_worker_process_at_once(process_hub: Hub) -> None:
    with TestClient(create_app(process_hub, workers=2)) as client:
        process = process_hub.worker_process
        assert process is not None and process.alive() and process.pid != os.getpid()
        ready = client.get("/readyz").json()["checks"]["workers"]
        assert ready == {"ok": True, "process": process.pid, "alive": 2}

        job_id = _queue_release_check(process_hub)
        # The worker keeping watch looks every 30 s here: only the doorbell's ring from this process can wake it.
        worker = wait_until(lambda: _ran_in(process_hub, job_id), timeout=10, message="the job ran")
        assert f"-{process.pid}-" in worker
    assert not process.alive(), "the worker process stops with the app"
    assert process_hub.worker_process is None


def test_a_worker_process_that_dies_is_restarted(process_hub: Hub) -> None:
    with TestClient(create_app(process_hub, workers=1)) as client:
        process = process_hub.worker_process
        assert process is not None and process.pid is not None
        first = process.pid
        os.kill(first, signal.SIGKILL)
        wait_until(lambda: process.alive() and process.pid != first, timeout=20, message="a new worker process")
        assert process.restarts == 1

        job_id = _queue_release_check(process_hub)
        worker = wait_until(lambda: _ran_in(process_hub, job_id), timeout=10, message="the job ran")
        assert f"-{process.pid}-" in worker
        wait_until(lambda: client.get("/readyz").status_code == 200, timeout=20, message="ready again")


@pytest.fixture
def watching_hub(settings: Settings) -> Iterator[Hub]:
    """Worker threads on the system clock whose watch looks at the job table only every 30 s."""
    built = build_hub(settings.model_copy(update={"worker_poll_seconds": 30.0, "worker_idle_seconds": 30.0}))
    built.start_workers(2)
    yield built
    built.close()


def test_a_job_queued_to_be_due_soon_runs_when_due(watching_hub: Hub) -> None:
    now = watching_hub.clock.now()
    with transaction(watching_hub.sessions) as session:
        job_id = jobs.enqueue(session, RELEASE_DUE, {"order_id": 404}, now=now, due_at=now + timedelta(seconds=0.5))
    wait_until(lambda: _ran_in(watching_hub, job_id), timeout=10, message="the job ran once due")


def test_a_worker_process_stopped_by_sigterm_exits_cleanly(settings: Settings) -> None:
    """SIGTERM while the thread watching the parent's pipe is blocked reading it: the process stops its workers and
    exits 0, never with the interpreter's fatal error about the stdin reader's lock."""
    process = subprocess.Popen([sys.executable, "-m", "shopbridge.worker_process"], stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    assert process.stdin is not None and process.stdout is not None
    try:
        pickle.dump((settings.model_copy(update={"worker_process": True}), 1), process.stdin)
        process.stdin.flush()
        assert process.stdout.read(len(READY)) == READY
        process.send_signal(signal.SIGTERM)
        _, errors = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert b"Fatal Python error" not in errors, errors.decode(errors="replace")
    assert process.returncode == 0, errors.decode(errors="replace")
