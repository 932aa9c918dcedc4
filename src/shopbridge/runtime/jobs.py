"""The job table as a queue: enqueue inside the caller's transaction (transactional outbox), claim safely from
many processes, record every attempt, and keep dead letters for people to inspect, retry or replay.

Claiming uses ``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so workers never wait on each other's rows; on SQLite
every transaction begins IMMEDIATE (see store.db), which makes the claim's UPDATE … RETURNING atomic.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Select, Table, bindparam, case, func, insert, or_, select, text, update
from sqlalchemy.orm import Session

from shopbridge.runtime.backoff import RetryPolicy
from shopbridge.runtime.doorbell import job_due, job_due_in
from shopbridge.store.db import dialect_insert, insert_of, is_sqlite
from shopbridge.store.sync_issues import raise_issue, resolve_issue
from shopbridge.store.tables import ChannelAccount, Job, JobAttempt

WAITING = text("state IN ('pending', 'parked')")
JOB_TABLE = cast(Table, Job.__table__)
JOBS = JOB_TABLE.c


@dataclass(frozen=True)
class ClaimedJob:
    id: int
    kind: str
    payload: dict[str, Any]
    attempt: int
    max_attempts: int
    channel_account_id: int | None
    started_at: datetime
    identity_key: str | None = None


class JobStateError(Exception):
    """An operation that does not fit the job's current state (e.g. retrying a job that is not dead)."""


def enqueue(
    session: Session,
    kind: str,
    payload: dict[str, Any] | None = None,
    *,
    now: datetime,
    due_at: datetime | None = None,
    priority: int = 100,
    channel_account_id: int | None = None,
    identity_key: str | None = None,
    max_attempts: int = 8,
    replay_of: int | None = None,
    order_id: int | None = None,
) -> int:
    """Add a job in the caller's transaction; returns its id. ``order_id`` names the one hub order the work is about
    (the order page lists its jobs and their attempts). With an identity key already pending (or parked),
    nothing is added and the waiting job's id is returned: the same work is never queued twice. The waiting job
    takes the more urgent of the two priorities.

    Joining a waiting job writes its row, which locks it until the caller commits: on PostgreSQL a worker's
    claim (``FOR UPDATE SKIP LOCKED``) then passes it by until the change that joined it is committed, so the
    job never runs on a state older than the work it absorbed. A job claimed before the join no longer waits, and
    the insert makes a new one."""
    values = {
        "kind": kind,
        "payload": payload or {},
        "state": "pending",
        "priority": priority,
        "due_at": due_at or now,
        "channel_account_id": channel_account_id,
        "identity_key": identity_key,
        "attempts": 0,
        "max_attempts": max_attempts,
        "replay_of": replay_of,
        "order_id": order_id,
        "created_at": now,
    }
    statement = _enqueue_statement(session.get_bind().dialect.name, identity_key is not None)
    job_id = int(session.execute(statement, values).scalar_one())
    if due_at is None or due_at <= now:
        job_due(session)
    else:
        job_due_in(session, (due_at - now).total_seconds())
    return job_id


@functools.cache
def _enqueue_statement(dialect: str, keyed: bool) -> Any:
    """enqueue's INSERT (values bound at execution), built once per dialect: it runs for every change that queues
    work (a webhook's sync, a stock change's push), and building it cost more than running it."""
    statement = insert_of(dialect)(JOB_TABLE)
    if keyed:
        statement = statement.on_conflict_do_update(
            index_elements=["identity_key"], index_where=WAITING,
            set_={"priority": case((statement.excluded.priority < JOBS.priority, statement.excluded.priority),
                                   else_=JOBS.priority)},
        )  # fmt: skip
    return statement.returning(JOBS.id)


def enqueue_or_extend(
    session: Session,
    kind: str,
    extend: dict[str, list[Any]],
    *,
    now: datetime,
    identity_key: str,
    payload: dict[str, Any] | None = None,
    priority: int = 100,
    channel_account_id: int | None = None,
    max_attempts: int = 8,
) -> int:
    """Add ``extend``'s values to the lists of the job waiting under this identity (pending, or parked until its
    shop is reconnected: neither has run yet), creating the job if none waits. A job claimed meanwhile has read
    its payload, so the values then go to a new waiting job. One locked read and one write in the common case."""
    for _ in range(10):
        waiting = session.scalar(
            select(Job)
            .where(Job.identity_key == identity_key, Job.state.in_(("pending", "parked")))
            .with_for_update()
            .execution_options(populate_existing=True)
        )
        if waiting is not None:
            waiting.payload = _merged(waiting.payload, extend)
            return waiting.id
        created = dialect_insert(session)(Job).values(
            kind=kind, payload=_merged(payload or {}, extend), state="pending", priority=priority, due_at=now,
            channel_account_id=channel_account_id, identity_key=identity_key, attempts=0, max_attempts=max_attempts,
            created_at=now,
        )  # fmt: skip
        new_id = session.execute(
            created.on_conflict_do_nothing(index_elements=["identity_key"], index_where=WAITING).returning(
                Job.__table__.c.id
            )
        ).scalar_one_or_none()
        if new_id is not None:
            job_due(session)
            return int(new_id)
        # Another transaction created it between our read and our insert: read it again.
    raise RuntimeError(f"could not extend {kind} with identity {identity_key!r}: it kept changing")


def _merged(payload: dict[str, Any], extend: dict[str, list[Any]]) -> dict[str, Any]:
    merged = dict(payload)
    for key, values in extend.items():
        existing = list(merged.get(key, []))
        present = set(existing)
        merged[key] = existing + [value for value in values if value not in present]
    return merged


def enqueue_many(
    session: Session, kind: str, payloads: Iterable[dict[str, Any]], *, now: datetime, max_attempts: int = 8
) -> int:
    """Bulk enqueue without identity keys (imports, benchmarks); returns how many were added."""
    rows = [
        {
            "kind": kind,
            "payload": payload,
            "state": "pending",
            "priority": 100,
            "due_at": now,
            "attempts": 0,
            "max_attempts": max_attempts,
            "created_at": now,
        }
        for payload in payloads
    ]
    if rows:
        session.execute(insert(Job), rows)
    return len(rows)


@functools.cache
def _claimable(serial_kinds: frozenset[str], kinds: frozenset[str] | None = None) -> Select[Any]:
    """Due pending jobs that a claim may take (``now`` is a bound parameter): one of a ``serial_kinds`` kind only
    while no job with its identity key runs; of ``kinds`` only, if given. Built once per combination: workers ask
    many times a second, and building the statement cost more than running it."""
    due = select(JOBS.id).where(JOBS.state == "pending", JOBS.due_at <= bindparam("now", type_=JOBS.due_at.type))
    if serial_kinds:
        sibling = JOB_TABLE.alias("sibling")
        running_sibling = (
            select(sibling.c.id)
            .where(sibling.c.identity_key == JOBS.identity_key, sibling.c.state == "running")
            .exists()
        )
        due = due.where(or_(JOBS.kind.not_in(serial_kinds), JOBS.identity_key.is_(None), ~running_sibling))
    if kinds is not None:
        due = due.where(JOBS.kind.in_(kinds))
    return due


@functools.cache
def _any_due_statement(serial_kinds: frozenset[str]) -> Select[Any]:
    return _claimable(serial_kinds).limit(1)


def any_due(session: Session, *, now: datetime, serial_kinds: frozenset[str] = frozenset()) -> bool:
    """Whether a claim would find a job (a cheap read before the claim, which writes). A job waiting for its
    serial predecessor does not count, so idle workers do not queue for the write lock to claim nothing."""
    return session.scalar(_any_due_statement(serial_kinds), {"now": now}) is not None


@functools.cache
def _claim_statement(serial_kinds: frozenset[str], kinds: frozenset[str] | None, limit: int, lock: bool) -> Any:
    due = _claimable(serial_kinds, kinds).order_by(JOBS.priority, JOBS.due_at, JOBS.id).limit(limit)
    if lock:
        due = due.with_for_update(skip_locked=True)
    return (
        update(JOB_TABLE)
        .where(JOBS.id.in_(due.scalar_subquery()))
        .values(
            state="running",
            lease_owner=bindparam("worker"),
            lease_expires_at=bindparam("lease_expires_at", type_=JOBS.lease_expires_at.type),
            started_at=bindparam("now", type_=JOBS.started_at.type),
            attempts=JOBS.attempts + 1,
        )
        .returning(
            JOBS.id, JOBS.kind, JOBS.payload, JOBS.attempts, JOBS.max_attempts, JOBS.channel_account_id,
            JOBS.identity_key,
        )
    )  # fmt: skip


def claim(
    session: Session,
    worker: str,
    *,
    now: datetime,
    lease_seconds: float,
    limit: int,
    serial_kinds: frozenset[str] = frozenset(),
    kinds: frozenset[str] | None = None,
) -> list[ClaimedJob]:
    """Take up to ``limit`` due jobs for ``worker`` (of ``kinds`` only, if given), lowest priority number and
    oldest due first. A job of a ``serial_kinds`` kind is skipped while another job with its identity key is
    running."""
    statement = _claim_statement(serial_kinds, kinds, limit, not is_sqlite(session.get_bind()))
    parameters = {"worker": worker, "now": now, "lease_expires_at": now + timedelta(seconds=lease_seconds)}
    claimed = [
        ClaimedJob(row.id, row.kind, row.payload, row.attempts, row.max_attempts, row.channel_account_id, now,
                   row.identity_key)
        for row in session.execute(statement, parameters)
    ]  # fmt: skip
    claimed.sort(key=lambda job: job.id)
    return claimed


def unclaim(session: Session, claimed: Sequence[ClaimedJob], worker: str) -> int:
    """Give back jobs this worker claimed but has not started (a worker stopping with a job claimed ahead):
    pending again at once, their claim's attempt not counted."""
    if not claimed:
        return 0
    returned = session.execute(
        update(JOB_TABLE)
        .where(JOBS.id.in_([job.id for job in claimed]), JOBS.state == "running", JOBS.lease_owner == worker)
        .values(state="pending", lease_owner=None, lease_expires_at=None, started_at=None, attempts=JOBS.attempts - 1)
    )
    count = int(returned.rowcount)  # type: ignore[attr-defined]
    if count:
        job_due(session, count)
    return count


def complete_batch(session: Session, batch: Sequence[ClaimedJob], worker: str, *, now: datetime) -> bool:
    """Mark a whole batch succeeded in the handlers' transaction; False if any lease was lost (roll back)."""
    ids = [job.id for job in batch]
    result = session.execute(
        update(Job)
        .where(Job.id.in_(ids), Job.state == "running", Job.lease_owner == worker)
        .values(state="succeeded", finished_at=now, last_error=None, lease_owner=None, lease_expires_at=None)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != len(ids):  # type: ignore[attr-defined]
        return False
    session.execute(
        insert(JobAttempt),
        [
            {"job_id": job.id, "attempt": job.attempt, "worker": worker, "started_at": job.started_at,
             "finished_at": now, "outcome": "succeeded"}
            for job in batch
        ],
    )  # fmt: skip
    return True


def _finish(session: Session, job: ClaimedJob, worker: str, values: dict[str, Any]) -> bool:
    """Move a running job on, only if this worker still holds its lease."""
    parameters = {"job": job.id, "worker": worker, "lease_owner": None, "lease_expires_at": None, **values}
    result = session.execute(_FINISH, parameters)
    return bool(result.rowcount == 1)  # type: ignore[attr-defined]


# Every job's end runs these; built once, the columns to set bound at execution.
_FINISH = update(JOB_TABLE).where(
    JOBS.id == bindparam("job"), JOBS.state == "running", JOBS.lease_owner == bindparam("worker")
)
_ATTEMPT = insert(cast(Table, JobAttempt.__table__))


def _record_attempt(
    session: Session,
    job: ClaimedJob,
    worker: str,
    *,
    now: datetime,
    outcome: str,
    error: BaseException | None = None,
    error_class: str | None = None,
) -> None:
    session.execute(
        _ATTEMPT,
        {
            "job_id": job.id,
            "attempt": job.attempt,
            "worker": worker,
            "started_at": job.started_at,
            "finished_at": now,
            "outcome": outcome,
            "error_class": error_class,
            "error_type": type(error).__name__ if error else None,
            "error_message": str(error)[:4000] if error else None,
        },
    )


def complete(session: Session, job: ClaimedJob, worker: str, *, now: datetime) -> bool:
    """Mark success in the handler's own transaction; False means the lease was lost and the caller must roll
    back, because another worker owns the job now."""
    if not _finish(session, job, worker, {"state": "succeeded", "finished_at": now, "last_error": None}):
        return False
    _record_attempt(session, job, worker, now=now, outcome="succeeded")
    return True


def fail(
    session: Session,
    job: ClaimedJob,
    worker: str,
    error: BaseException,
    error_class: str,
    *,
    now: datetime,
    policy: RetryPolicy,
) -> str:
    """Apply the one handling path of the error's class; returns the outcome recorded."""
    message = f"{type(error).__name__}: {error}"
    successor = _waiting_successor(session, job)
    if successor is not None and (
        error_class in ("reauth", "deferred") or (error_class == "retryable" and job.attempt < job.max_attempts)
    ):
        # The same work is already queued again: going back to the queue would double it. A coalescing job's
        # successor may hold other items, so this job's items move over to it first.
        outcome = "superseded"
        _hand_over(session, job, successor)
        _finish(session, job, worker, {"state": "superseded", "finished_at": now,
                                       "last_error": f"{message} (superseded by job {successor})"})  # fmt: skip
        if error_class == "reauth" and job.channel_account_id is not None:
            park_account(session, job.channel_account_id, reason=str(error), now=now)
    elif error_class == "reauth" and job.channel_account_id is not None:
        outcome = "reauth"
        if _finish(session, job, worker, {"state": "parked", "last_error": message}):
            park_account(session, job.channel_account_id, reason=str(error), now=now)
    elif error_class == "deferred":
        outcome = "retry"  # its turn at the outside system has not come: no attempt is used up
        delay = float(getattr(error, "retry_after", None) or policy.base_seconds)
        _finish(session, job, worker, {"state": "pending", "due_at": now + timedelta(seconds=delay),
                                       "attempts": max(0, job.attempt - 1), "last_error": message})  # fmt: skip
    elif error_class == "retryable" and job.attempt < job.max_attempts:
        outcome = "retry"
        delay = policy.delay(job.attempt, getattr(error, "retry_after", None))
        _finish(
            session,
            job,
            worker,
            {"state": "pending", "due_at": now + timedelta(seconds=delay), "last_error": message},
        )
    else:
        outcome = "dead"
        if error_class == "reauth":
            message = f"{message} (the job names no channel account to park)"
        if _finish(session, job, worker, {"state": "dead", "finished_at": now, "last_error": message}):
            _dead_letter_issue(session, job, message, now)
    _record_attempt(session, job, worker, now=now, outcome=outcome, error=error, error_class=error_class)
    return outcome


def _hand_over(session: Session, job: ClaimedJob | Job, successor_id: int) -> None:
    """Give the waiting successor every list item of this job's payload it does not have yet."""
    successor = session.scalar(select(Job).where(Job.id == successor_id).with_for_update())
    if successor is not None:
        lists = {key: values for key, values in job.payload.items() if isinstance(values, list) and values}
        successor.payload = _merged(successor.payload, lists)


def _waiting_successor(session: Session, job: ClaimedJob | Job) -> int | None:
    """Another pending or parked job with this job's identity key, if there is one."""
    if job.identity_key is None:
        return None
    return session.scalar(
        select(Job.id).where(
            Job.identity_key == job.identity_key, Job.state.in_(("pending", "parked")), Job.id != job.id
        )
    )


def _dead_letter_issue(session: Session, job: ClaimedJob, message: str, now: datetime) -> None:
    raise_issue(
        session,
        kind="dead_letter",
        severity="error",
        fingerprint=f"job:{job.id}",
        message=f"Job {job.id} ({job.kind}) gave up after {job.attempt} attempt(s): {message}",
        now=now,
        channel_account_id=job.channel_account_id,
        subject_type="job",
        subject_id=str(job.id),
    )


def set_aside(
    session: Session,
    kind: str,
    payload: dict[str, Any],
    *,
    error: BaseException,
    now: datetime,
    channel_account_id: int | None = None,
    identity_key: str | None = None,
    max_attempts: int = 8,
) -> int:
    """Keep one item that failed permanently inside a batched job as a dead letter of its own (with its attempt
    and a ``dead_letter`` sync issue naming the error), so the rest of the batch can commit and the item can be
    retried or replayed on its own once its cause is fixed. ``payload`` is the work of that item alone. Once per
    ``identity_key``: while a dead letter with that key waits for someone, a batch re-run (after a crash, or the
    next push of the same product) adds nothing and gets that one's id. Returns the dead job's id."""
    if identity_key is not None:
        waiting = session.scalar(select(Job.id).where(Job.identity_key == identity_key, Job.state == "dead"))
        if waiting is not None:
            return int(waiting)
    reason = f"{type(error).__name__}: {error}"
    job_id = int(
        session.execute(
            insert(JOB_TABLE).returning(JOBS.id),
            {"kind": kind, "payload": payload, "state": "dead", "priority": 100, "due_at": now,
             "channel_account_id": channel_account_id, "identity_key": identity_key, "attempts": 1,
             "max_attempts": max_attempts, "last_error": reason, "created_at": now, "started_at": now,
             "finished_at": now},
        ).scalar_one()
    )  # fmt: skip
    dead = ClaimedJob(job_id, kind, payload, 1, max_attempts, channel_account_id, now, identity_key)
    _record_attempt(session, dead, "set-aside", now=now, outcome="dead", error=error, error_class="permanent")
    _dead_letter_issue(session, dead, reason, now)
    return job_id


def park_account(session: Session, channel_account_id: int, *, reason: str, now: datetime) -> int:
    """Stop all of an account's waiting work and flag the account; returns how many jobs were parked."""
    parked = session.execute(
        update(Job)
        .where(Job.channel_account_id == channel_account_id, Job.state == "pending")
        .values(state="parked")
        .execution_options(synchronize_session=False)
    )
    session.execute(
        update(ChannelAccount)
        .where(ChannelAccount.id == channel_account_id)
        .values(status="needs_reauth", status_reason=reason, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    raise_issue(
        session,
        kind="needs_reauth",
        severity="critical",
        fingerprint=f"needs_reauth:{channel_account_id}",
        message=f"Channel account {channel_account_id} must be reconnected: {reason}",
        now=now,
        channel_account_id=channel_account_id,
        subject_type="channel_account",
        subject_id=str(channel_account_id),
    )
    return int(parked.rowcount)  # type: ignore[attr-defined]


def resume_account(session: Session, channel_account_id: int, *, now: datetime) -> int:
    """After a reconnect: the account's parked jobs become due again; returns how many."""
    resumed = session.execute(
        update(Job)
        .where(Job.channel_account_id == channel_account_id, Job.state == "parked")
        .values(state="pending", due_at=now)
        .execution_options(synchronize_session=False)
    )
    count = int(resumed.rowcount)  # type: ignore[attr-defined]
    if count:
        job_due(session, count)
    return count


def recover_expired_leases(session: Session, *, now: datetime, policy: RetryPolicy, limit: int = 500) -> int:
    """Jobs whose worker died (lease expired) go back to pending, or to the dead letters if out of attempts."""
    expired = (
        select(Job)
        .where(Job.state == "running", Job.lease_expires_at < now)
        .order_by(Job.lease_expires_at)
        .limit(limit)
    )
    if not is_sqlite(session.get_bind()):
        expired = expired.with_for_update(skip_locked=True)
    jobs: Sequence[Job] = session.scalars(expired).all()
    for row in jobs:
        job = ClaimedJob(
            row.id, row.kind, row.payload, row.attempts, row.max_attempts, row.channel_account_id,
            row.started_at or now, row.identity_key,
        )  # fmt: skip
        error = TimeoutError(f"lease held by {row.lease_owner} expired; its worker stopped or hung")
        _record_attempt(session, job, row.lease_owner or "?", now=now, outcome="lease_expired", error=error,
                        error_class="retryable")  # fmt: skip
        row.lease_owner = None
        row.lease_expires_at = None
        row.last_error = f"TimeoutError: {error}"
        successor = _waiting_successor(session, row)
        if successor is not None:
            _hand_over(session, row, successor)
            row.state = "superseded"
            row.finished_at = now
            row.last_error += f" (superseded by job {successor})"
        elif row.attempts < row.max_attempts:
            row.state = "pending"
            row.due_at = now
        else:
            row.state = "dead"
            row.finished_at = now
            _dead_letter_issue(session, job, row.last_error, now)
    return len(jobs)


def retry_dead(session: Session, job_id: int, *, now: datetime) -> Job:
    """Give a dead letter a fresh set of attempts, as the same job (its history stays with it)."""
    job = session.get(Job, job_id, with_for_update=True)
    if job is None:
        raise JobStateError(f"job {job_id} does not exist")
    if job.state != "dead":
        raise JobStateError(f"job {job_id} is {job.state}; only dead jobs can be retried (replay copies any job)")
    if job.identity_key is not None:
        waiting = session.scalar(
            select(Job.id).where(Job.identity_key == job.identity_key, Job.state.in_(("pending", "parked")))
        )
        if waiting is not None:
            raise JobStateError(f"job {job_id}'s work is already queued as job {waiting}")
    job.state = "pending"
    job.attempts = 0
    job.due_at = now
    job.finished_at = None
    resolve_issue(session, f"job:{job_id}", now)
    job_due(session)
    return job


def replay(session: Session, job_id: int, *, now: datetime) -> int:
    """Run a finished job's work again as a new job that points back at it; returns the new job's id."""
    job = session.get(Job, job_id)
    if job is None:
        raise JobStateError(f"job {job_id} does not exist")
    if job.state not in ("dead", "succeeded"):
        raise JobStateError(f"job {job_id} is {job.state}; only finished (dead or succeeded) jobs can be replayed")
    return enqueue(
        session,
        job.kind,
        job.payload,
        now=now,
        priority=job.priority,
        channel_account_id=job.channel_account_id,
        identity_key=job.identity_key,
        max_attempts=job.max_attempts,
        replay_of=job.id,
        order_id=job.order_id,
    )


def count_by_state(session: Session) -> dict[tuple[str, str], int]:
    rows = session.execute(select(Job.state, Job.kind, func.count()).group_by(Job.state, Job.kind))
    return {(state, kind): count for state, kind, count in rows}
