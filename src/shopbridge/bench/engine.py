"""The work-engine benchmark: no-op jobs claimed and completed per second, and inbox records per second.

Jobs are enqueued before the workers start, and the rate is measured from the first attempt's start to the last
attempt's end as recorded in the job_attempts table, so process start-up and enqueueing are not counted.
"""

from __future__ import annotations

import multiprocessing
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import Progress
from rich.table import Table
from sqlalchemy import func, select

from shopbridge.bootstrap import Hub, build_hub
from shopbridge.config import Settings
from shopbridge.logs import configure_logging
from shopbridge.runtime import inbox
from shopbridge.runtime.jobs import enqueue_many
from shopbridge.runtime.registry import JobContext, JobRegistry
from shopbridge.store.db import reset_schema, transaction, with_search_path
from shopbridge.store.secrets import SecretBox
from shopbridge.store.tables import Job, JobAttempt

BENCH_SCHEMA = "shopbridge_bench"
NOOP_BATCH = "bench.noop"  # database-only: a claimed batch commits in one transaction
NOOP_SINGLE = "bench.noop_single"  # like a handler that calls out: one transaction per job


def _noop(ctx: JobContext) -> None:
    """Does nothing, successfully."""


def bench_registry() -> JobRegistry:
    registry = JobRegistry()
    registry.register(NOOP_BATCH, _noop, batch=True)
    registry.register(NOOP_SINGLE, _noop)
    return registry


def _settings(data_dir: Path, database_url: str | None = None, workers: int = 2) -> Settings:
    key = SecretBox.generate_key() if database_url else None
    return Settings(data_dir=data_dir, database_url=database_url, secret_key=key, workers=workers,
                    worker_poll_seconds=0.05, worker_batch_size=100, log_level="warning")  # fmt: skip


def _enqueue(hub: Hub, kind: str, count: int, *, delay_seconds: float = 0.0) -> None:
    now = hub.clock.now() + timedelta(seconds=delay_seconds)
    with transaction(hub.sessions) as session:
        for start in range(0, count, 5000):
            enqueue_many(session, kind, ({"n": n} for n in range(start, min(count, start + 5000))), now=now)


def _wait_drained(hub: Hub, count: int, progress: Progress, label: str, timeout: float) -> None:
    task = progress.add_task(label, total=count)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with hub.sessions() as session:
            done = session.scalar(select(func.count()).where(Job.state == "succeeded")) or 0
        progress.update(task, completed=done)
        if done >= count:
            return
        time.sleep(0.1)
    raise TimeoutError(f"{label}: only part of {count} jobs finished within {timeout:.0f} s")


def _drain_rate(hub: Hub) -> tuple[float, float]:
    with hub.sessions() as session:
        first, last, done = session.execute(
            select(func.min(JobAttempt.started_at), func.max(JobAttempt.finished_at), func.count())
        ).one()
    elapsed = max((last - first).total_seconds(), 1e-6)
    return done / elapsed, elapsed


def bench_sqlite_jobs(kind: str, count: int, workers: int, progress: Progress) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="shopbridge-bench-") as directory:
        hub = build_hub(_settings(Path(directory), workers=workers), registry=bench_registry())
        hub.migrate()
        _enqueue(hub, kind, count)
        hub.start_workers(workers)
        try:
            _wait_drained(hub, count, progress, f"SQLite: {count} {kind} jobs, {workers} embedded workers", 600)
        finally:
            hub.close()
        rate, elapsed = _drain_rate(hub)
    return {"jobs": count, "workers": workers, "seconds": round(elapsed, 3), "jobs_per_s": round(rate, 1)}


def bench_sqlite_inbox(count: int, progress: Progress) -> dict[str, Any]:
    """One committed transaction per event, as the webhook receiver does before acknowledging."""
    with tempfile.TemporaryDirectory(prefix="shopbridge-bench-") as directory:
        hub = build_hub(_settings(Path(directory)))
        hub.migrate()
        task = progress.add_task(f"SQLite: {count} inbox records", total=count)
        body = (
            '{"type": 1, "shop_id": "7000000000", "data": {"order_id": "5760000000000000", "order_status": "ON_HOLD"}}'
        )
        started = time.perf_counter()
        for n in range(count):
            with transaction(hub.inbox_sessions) as session:
                inbox.record(session, source="tiktok", event_id=f"bench-{n}", payload=body, now=hub.clock.now())
            if n % 500 == 0:
                progress.update(task, completed=n)
        elapsed = time.perf_counter() - started
        progress.update(task, completed=count)
        hub.close()
    return {"events": count, "seconds": round(elapsed, 3), "inbox_per_s": round(count / elapsed, 1)}


def _worker_process(database_url: str, secret_key: str, ready: Any) -> None:
    settings = Settings(database_url=database_url, secret_key=secret_key, worker_poll_seconds=0.05,
                        worker_batch_size=100, log_level="warning")  # fmt: skip
    configure_logging("warning")
    hub = build_hub(settings, registry=bench_registry())
    worker = hub.new_worker()
    ready.set()
    try:
        worker.run()
    finally:
        hub.engine.dispose()


def bench_postgresql_jobs(
    database_url: str, kind: str, count: int, processes: int, progress: Progress
) -> dict[str, Any]:
    reset_schema(database_url, BENCH_SCHEMA)
    url = with_search_path(database_url, BENCH_SCHEMA)
    with tempfile.TemporaryDirectory(prefix="shopbridge-bench-") as directory:
        settings = _settings(Path(directory), database_url=url)
        hub = build_hub(settings, registry=bench_registry())
        hub.migrate()
        _enqueue(hub, kind, count, delay_seconds=3.0)  # due once every process is up
        context = multiprocessing.get_context("spawn")
        key = settings.secret_key.get_secret_value() if settings.secret_key else ""
        events = [context.Event() for _ in range(processes)]
        children = [context.Process(target=_worker_process, args=(url, key, event)) for event in events]
        for child in children:
            child.start()
        try:
            _wait_drained(hub, count, progress, f"PostgreSQL: {count} {kind} jobs, {processes} processes", 600)
        finally:
            for child in children:
                child.terminate()
            for child in children:
                child.join(10)
        rate, elapsed = _drain_rate(hub)
        hub.close()
    reset_schema(database_url, BENCH_SCHEMA)
    return {"jobs": count, "workers": processes, "seconds": round(elapsed, 3), "jobs_per_s": round(rate, 1)}


def run_engine_benchmark(*, quick: bool, database_url: str | None, console: Console) -> dict[str, Any]:
    jobs = 5_000 if quick else 20_000
    events = 2_000 if quick else 10_000
    configure_logging("warning")
    results: dict[str, Any] = {"quick": quick}
    with Progress(console=console, transient=True) as progress:
        batched = bench_sqlite_jobs(NOOP_BATCH, jobs, workers=2, progress=progress)
        single = bench_sqlite_jobs(NOOP_SINGLE, jobs // 4, workers=2, progress=progress)
        sqlite_inbox = bench_sqlite_inbox(events, progress)
        results["sqlite"] = {
            **batched,
            "jobs_per_s_single": single["jobs_per_s"],
            "inbox_per_s": sqlite_inbox["inbox_per_s"],
            "single": single,
            "inbox": sqlite_inbox,
        }
        if database_url:
            pg_jobs = 10_000 if quick else 40_000
            pg_batched = bench_postgresql_jobs(database_url, NOOP_BATCH, pg_jobs, processes=4, progress=progress)
            pg_single = bench_postgresql_jobs(database_url, NOOP_SINGLE, pg_jobs // 4, processes=4, progress=progress)
            results["postgresql"] = {**pg_batched, "jobs_per_s_single": pg_single["jobs_per_s"], "single": pg_single}
    console.print(_table(results))
    return results


def _table(results: dict[str, Any]) -> Table:
    table = Table("database", "workers", "path", "jobs", "seconds", "jobs/s", title="work engine (no-op jobs)")
    for database, workers in (("sqlite", "threads"), ("postgresql", "processes")):
        if database not in results:
            continue
        for path, figures in (("batched", results[database]), ("one per transaction", results[database]["single"])):
            table.add_row(database, f"{figures['workers']} {workers}", path, str(figures["jobs"]),
                          str(figures["seconds"]), str(figures["jobs_per_s"]))  # fmt: skip
    inbox = results["sqlite"]["inbox"]
    table.caption = f"inbox (SQLite, one commit per event): {inbox['inbox_per_s']} records/s over {inbox['events']}"
    return table
