"""Workers: claim due jobs, run their handlers, record every attempt, recover jobs of dead workers.

The embedded mode runs a ``WorkerPool`` of threads inside ``shopbridge serve``; ``shopbridge worker`` runs the
same loop in its own process. Both share the job table, so any number of them can drain one PostgreSQL queue.
"""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from dataclasses import dataclass, field

from sqlalchemy import delete
from sqlalchemy.orm import Session, sessionmaker

from shopbridge.domain.clock import Clock
from shopbridge.logs import get_logger
from shopbridge.runtime import jobs
from shopbridge.runtime.backoff import RetryPolicy
from shopbridge.runtime.doorbell import Doorbell
from shopbridge.runtime.errors import PermanentError, classify
from shopbridge.runtime.registry import JobContext, JobRegistry, UnknownJobKind
from shopbridge.runtime.scheduler import Scheduler
from shopbridge.store.db import dialect_insert, engine_sessions, reading, transaction
from shopbridge.store.tables import WorkerHeartbeat

log = get_logger("shopbridge.worker")


class LeaseLost(Exception):
    """The job's lease expired and another worker took it; this worker's results must not count."""


@dataclass
class WorkerOptions:
    lease_seconds: float = 60.0
    batch_size: int = 50
    poll_seconds: float = 0.2  # how often the idle worker keeping watch looks for due jobs (runtime/doorbell.py)
    idle_seconds: float = 1.0  # how long the other idle workers sleep unless the doorbell rings
    heartbeat_seconds: float = 5.0
    sweep_seconds: float = 5.0
    scheduler_seconds: float = 1.0
    policy: RetryPolicy = field(default_factory=RetryPolicy)


def worker_name(prefix: str = "worker") -> str:
    return f"{prefix}-{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


class Worker:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        registry: JobRegistry,
        clock: Clock,
        options: WorkerOptions | None = None,
        *,
        name: str | None = None,
        scheduler: Scheduler | None = None,
    ) -> None:
        # On SQLite the engine's writes go before API clients' (which can wait a little), as the webhook intake's.
        self.sessions = engine_sessions(sessions)
        self.registry = registry
        self.clock = clock
        self.options = options or WorkerOptions()
        self.name = name or worker_name()
        self.scheduler = scheduler
        self.stop_event = threading.Event()
        self.doorbell = Doorbell.of(self.sessions.kw["bind"])
        self.last_beat = 0.0
        self.processed = 0
        self._started_at = clock.now()
        self._next_sweep = 0.0
        self._next_tick = 0.0
        # A job claimed in the transaction that completed the previous one: a busy worker then takes the write
        # lock once per job instead of twice (one claim, one completion), which on SQLite is the scarce resource.
        self._ahead: list[jobs.ClaimedJob] = []

    # --- one pass ---------------------------------------------------------------------------------------

    def run_once(self) -> int:
        """Claim one batch and run it; returns how many jobs were run."""
        # One job first; only if it is of a batchable kind does the worker take more (of batchable kinds). A job
        # that calls out over the network is claimed alone, so none waits in one worker's hands while another
        # worker is idle.
        serial_kinds = self.registry.serial_kinds()
        claimed, self._ahead = self._ahead, []
        if not claimed:
            with reading(self.sessions) as session:  # an idle worker does not queue for SQLite's write lock
                if not jobs.any_due(session, now=self.clock.now(), serial_kinds=serial_kinds):
                    return 0
            claimed = self._claim(serial_kinds)
        batchable = [job for job in claimed if (kind := self.registry.find(job.kind)) is not None and kind.batch]
        single = claimed
        if len(batchable) > 1 and self.run_batch(batchable):
            single = [job for job in claimed if job not in batchable]
            self.processed += len(batchable)
        for index, job in enumerate(single):
            if self.stop_event.is_set():
                break  # the rest go back to the queue when their lease expires
            self.run_job(job, claim_ahead=index == len(single) - 1)
            self.processed += 1
        return len(claimed)

    def _claim(self, serial_kinds: frozenset[str]) -> list[jobs.ClaimedJob]:
        with transaction(self.sessions) as session:
            now = self.clock.now()
            lease = self.options.lease_seconds
            claimed = jobs.claim(session, self.name, now=now, lease_seconds=lease, limit=1, serial_kinds=serial_kinds)
            first = self.registry.find(claimed[0].kind) if claimed else None
            if first is not None and first.batch and self.options.batch_size > 1:
                claimed += jobs.claim(session, self.name, now=now, lease_seconds=lease,
                                      limit=self.options.batch_size - 1, kinds=self.registry.batch_kinds())  # fmt: skip
            return claimed

    def _context(self, job: jobs.ClaimedJob, session: Session) -> JobContext:
        return JobContext(job.id, job.kind, job.payload, job.attempt, job.channel_account_id, session,
                          self.clock.now(), self.sessions, self.clock)  # fmt: skip

    def run_batch(self, batch: list[jobs.ClaimedJob]) -> bool:
        """Run database-only jobs in one transaction with their completion. Any failure rolls the whole batch
        back and returns False; the caller then runs each job on its own, so one bad job affects only itself."""
        session = self.sessions()
        try:
            with session.begin():
                for job in batch:
                    self.registry.get(job.kind).handler(self._context(job, session))
                if not jobs.complete_batch(session, batch, self.name, now=self.clock.now()):
                    raise LeaseLost(f"a job of the batch {batch[0].id}..{batch[-1].id}")
            return True
        except Exception:
            return False
        finally:
            session.close()

    def run_job(self, job: jobs.ClaimedJob, *, claim_ahead: bool = False) -> str:
        """Run one claimed job to an outcome: succeeded, retry, reauth, dead, or lease_lost. With ``claim_ahead``
        a successful job's transaction also claims the next due job, which the next pass runs."""
        session = self.sessions()
        try:
            with session.begin():
                try:
                    kind = self.registry.get(job.kind)
                except UnknownJobKind:
                    raise PermanentError(f"no handler is registered for job kind {job.kind!r}") from None
                kind.handler(self._context(job, session))
                now = self.clock.now()
                if not jobs.complete(session, job, self.name, now=now):
                    raise LeaseLost(f"job {job.id}")
                ahead = []
                if claim_ahead and not self.stop_event.is_set():
                    ahead = jobs.claim(session, self.name, now=now, lease_seconds=self.options.lease_seconds, limit=1,
                                       serial_kinds=self.registry.serial_kinds())  # fmt: skip
            self._ahead = ahead  # committed with the completion; a rollback took the claim back too
            return "succeeded"
        except LeaseLost:
            log.warning("job.lease_lost", job_id=job.id, kind=job.kind, worker=self.name)
            return "lease_lost"
        except Exception as error:
            error_class = classify(error)
            with transaction(self.sessions) as failure:
                outcome = jobs.fail(
                    failure,
                    job,
                    self.name,
                    error,
                    error_class,
                    now=self.clock.now(),
                    policy=self.options.policy,
                )
            report = log.info if error_class == "deferred" else log.warning  # deferred: waiting its turn, no failure
            report(
                "job.failed", job_id=job.id, kind=job.kind, attempt=job.attempt, outcome=outcome,
                error_class=error_class, error=f"{type(error).__name__}: {error}",
            )  # fmt: skip
            return outcome
        finally:
            session.close()

    # --- housekeeping -----------------------------------------------------------------------------------

    def housekeeping(self) -> None:
        """Heartbeat, lease recovery and scheduler ticks, each at its own period."""
        moment = time.monotonic()
        if moment - self.last_beat >= self.options.heartbeat_seconds:
            self.heartbeat()
        if moment >= self._next_sweep:
            self._next_sweep = moment + self.options.sweep_seconds
            with transaction(self.sessions) as session:
                recovered = jobs.recover_expired_leases(session, now=self.clock.now(), policy=self.options.policy)
            if recovered:
                log.warning("jobs.leases_recovered", count=recovered, worker=self.name)
        if self.scheduler is not None and moment >= self._next_tick:
            self._next_tick = moment + self.options.scheduler_seconds
            with transaction(self.sessions) as session:
                self.scheduler.tick(session, self.clock.now())

    def heartbeat(self) -> None:
        now = self.clock.now()
        row = {"worker": self.name, "hostname": socket.gethostname(), "pid": os.getpid(),
               "started_at": self._started_at, "last_seen_at": now}  # fmt: skip
        with transaction(self.sessions) as session:
            statement = dialect_insert(session)(WorkerHeartbeat).values(**row)
            session.execute(statement.on_conflict_do_update(index_elements=["worker"], set_={"last_seen_at": now}))
        self.last_beat = time.monotonic()

    # --- the loop ---------------------------------------------------------------------------------------

    def run(self) -> None:
        """Work until ``stop()``; an error in one pass is logged and the loop goes on."""
        log.info("worker.started", worker=self.name)
        if self.scheduler is not None:
            with transaction(self.sessions) as session:
                self.scheduler.sync(session, self.clock.now())
        while not self.stop_event.is_set():
            try:
                self.housekeeping()
                rings = self.doorbell.rings
                if self.run_once() == 0 and not self.stop_event.is_set():
                    idle = min(self.options.idle_seconds, self._until_housekeeping())
                    self.doorbell.wait(rings, poll_seconds=self.options.poll_seconds, idle_seconds=idle)
            except Exception as error:  # a database hiccup must not kill the worker
                log.error("worker.pass_failed", worker=self.name, error=f"{type(error).__name__}: {error}")
                self.stop_event.wait(min(5.0, self.options.poll_seconds * 10))
        with transaction(self.sessions) as session:
            jobs.unclaim(session, self._ahead, self.name)
            session.execute(delete(WorkerHeartbeat).where(WorkerHeartbeat.worker == self.name))
        self._ahead = []
        log.info("worker.stopped", worker=self.name, processed=self.processed)

    def _until_housekeeping(self) -> float:
        """Seconds until the next heartbeat, sweep or scheduler tick is due (never negative)."""
        moments = [self.last_beat + self.options.heartbeat_seconds, self._next_sweep]
        if self.scheduler is not None:
            moments.append(self._next_tick)
        return max(0.0, min(moments) - time.monotonic())

    def stop(self) -> None:
        self.stop_event.set()
        self.doorbell.wake_all()

    def is_alive(self, within_seconds: float) -> bool:
        return time.monotonic() - self.last_beat <= within_seconds


class WorkerPool:
    """N workers as threads of this process: the embedded mode."""

    def __init__(self, workers: list[Worker]) -> None:
        self.workers = workers
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        if self.workers:
            self.workers[0].doorbell.listen()  # rings from the other processes on this database (if it can)
        for worker in self.workers:
            worker.heartbeat()  # alive from the moment start() returns, not from the thread's first pass
            thread = threading.Thread(target=worker.run, name=worker.name, daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self, timeout: float = 10.0) -> None:
        if self.workers:
            self.workers[0].doorbell.stop_listening()
        for worker in self.workers:
            worker.stop()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        self._threads = []

    def alive(self) -> bool:
        """Every worker thread runs and has beaten its heart recently."""
        if not self._threads:
            return False
        return all(
            thread.is_alive() and worker.is_alive(worker.options.heartbeat_seconds * 3)
            for thread, worker in zip(self._threads, self.workers, strict=True)
        )
