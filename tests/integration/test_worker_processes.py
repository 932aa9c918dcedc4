"""Many worker processes sharing one PostgreSQL queue run each handler exactly once, even when one of them is
killed in the middle of its work (its transaction dies with it, its jobs come back after the lease)."""

from __future__ import annotations

import multiprocessing
import os
import signal
import time
from typing import Any

import pytest
from sqlalchemy import func, select, text

from shopbridge.bootstrap import Hub, build_hub
from shopbridge.config import Settings
from shopbridge.runtime.jobs import enqueue_many
from shopbridge.runtime.registry import JobContext, JobRegistry
from shopbridge.store.db import transaction
from shopbridge.store.tables import Job, JobAttempt
from tests.conftest import postgres_only

JOBS = 10_000


def counting_registry(handler_seconds: float = 0.0) -> JobRegistry:
    def count_run(ctx: JobContext) -> None:
        ctx.session.execute(text("INSERT INTO handler_runs (job_id) VALUES (:id)"), {"id": ctx.job_id})
        time.sleep(handler_seconds)  # the victim works slowly, so the kill finds it holding claimed jobs

    registry = JobRegistry()
    registry.register("count.single", count_run)
    registry.register("count.batch", count_run, batch=True)
    return registry


def run_worker(database_url: str, secret_key: str, ready: Any, handler_seconds: float) -> None:
    settings = Settings(database_url=database_url, secret_key=secret_key, job_lease_seconds=3,
                        worker_poll_seconds=0.05, worker_batch_size=50, log_level="error")  # fmt: skip
    hub = build_hub(settings, registry=counting_registry(handler_seconds))
    worker = hub.new_worker()
    worker.options.sweep_seconds = 0.5
    ready.set()
    worker.run()


@postgres_only()
@pytest.mark.slow
def test_four_processes_run_each_handler_exactly_once_despite_a_kill(hub: Hub, settings: Settings) -> None:
    with transaction(hub.sessions) as session:
        session.execute(text("DROP TABLE IF EXISTS handler_runs"))
        session.execute(text("CREATE TABLE handler_runs (job_id BIGINT NOT NULL)"))
        now = hub.clock.now()
        enqueue_many(session, "count.single", ({"n": n} for n in range(JOBS // 2)), now=now)
        enqueue_many(session, "count.batch", ({"n": n} for n in range(JOBS // 2)), now=now)
    # Jobs were enqueued with the test's manual clock (2026-01-01): already due for the workers' real clock.
    context = multiprocessing.get_context("spawn")
    assert settings.secret_key is not None
    readies = [context.Event() for _ in range(4)]
    workers = [
        context.Process(
            target=run_worker,
            args=(settings.effective_database_url, settings.secret_key.get_secret_value(), r, 0.05 if n == 0 else 0.0),
        )
        for n, r in enumerate(readies)
    ]
    for process in workers:
        process.start()
    try:
        for ready in readies:
            assert ready.wait(60)

        def succeeded() -> int:
            with hub.sessions() as session:
                return session.scalar(select(func.count()).where(Job.state == "succeeded")) or 0

        deadline = time.monotonic() + 120
        while succeeded() < JOBS // 5 and time.monotonic() < deadline:
            time.sleep(0.02)
        victim = workers[0]
        assert victim.pid is not None
        holding = Job.state == "running", Job.lease_owner.like(f"%-{victim.pid}-%")
        while time.monotonic() < deadline:
            with hub.sessions() as session:
                if session.scalar(select(func.count()).where(*holding)):
                    break
        os.kill(victim.pid, signal.SIGKILL)  # mid-run: it holds claimed jobs and an open transaction
        victim.join(10)
        with hub.sessions() as session:
            orphaned = session.scalar(select(func.count()).where(*holding)) or 0
        assert orphaned, "the kill found the victim holding claimed jobs"
        while succeeded() < JOBS and time.monotonic() < deadline:
            time.sleep(0.1)
        assert succeeded() == JOBS
    finally:
        for process in workers[1:]:
            process.terminate()
        for process in workers:
            process.join(10)

    with hub.sessions() as session:
        runs = session.scalar(text("SELECT count(*) FROM handler_runs"))
        distinct = session.scalar(text("SELECT count(DISTINCT job_id) FROM handler_runs"))
        workers_seen = session.scalar(select(func.count(func.distinct(JobAttempt.worker))))
        recovered = session.scalar(select(func.count()).where(JobAttempt.outcome == "lease_expired"))
        session.execute(text("DROP TABLE handler_runs"))
        session.commit()
    assert runs == distinct == JOBS
    assert workers_seen == 4
    assert recovered and recovered >= orphaned, "the killed worker's claimed jobs were recovered after their lease"
