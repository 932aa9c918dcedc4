"""The job engine's promises, with an injected clock: nothing doubled, retries on time, dead letters kept."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from shopbridge.bootstrap import Hub
from shopbridge.demo.world import wait_until
from shopbridge.domain.clock import ManualClock
from shopbridge.runtime import jobs
from shopbridge.runtime.doorbell import Doorbell
from shopbridge.runtime.errors import Deferred, PermanentError, ReauthRequired, RetryableError
from shopbridge.runtime.registry import JobContext, JobRegistry
from shopbridge.runtime.worker import Worker
from shopbridge.store.db import transaction
from shopbridge.store.tables import AuditEntry, ChannelAccount, Job, JobAttempt, SyncIssue
from tests.conftest import postgres_only


def enqueue(hub: Hub, kind: str, **options: object) -> int:
    with transaction(hub.sessions) as session:
        return jobs.enqueue(session, kind, now=hub.clock.now(), max_attempts=4, **options)  # type: ignore[arg-type]


def job(hub: Hub, job_id: int) -> Job:
    with hub.sessions() as session:
        found = session.get(Job, job_id)
        assert found is not None
        return found


def attempts(hub: Hub, job_id: int) -> list[JobAttempt]:
    with hub.sessions() as session:
        return list(session.scalars(select(JobAttempt).where(JobAttempt.job_id == job_id).order_by(JobAttempt.id)))


def effects(hub: Hub) -> list[str]:
    with hub.sessions() as session:
        return list(session.scalars(select(AuditEntry.subject_id).order_by(AuditEntry.id)))


def write_effect(ctx: JobContext) -> None:
    ctx.session.add(AuditEntry(actor="test", action="ran", subject_type="job", subject_id=str(ctx.job_id)))


def add_account(hub: Hub, external_id: str) -> int:
    with transaction(hub.sessions) as session:
        account = ChannelAccount(channel="tiktok", label=f"shop {external_id}", external_id=external_id)
        session.add(account)
        session.flush()
        return account.id


def test_two_enqueues_with_one_identity_key_give_one_pending_job(hub: Hub, registry: JobRegistry) -> None:
    registry.register("stock.push", write_effect)
    first = enqueue(hub, "stock.push", identity_key="push:product-1")
    second = enqueue(hub, "stock.push", identity_key="push:product-1")
    assert first == second
    other = enqueue(hub, "stock.push", identity_key="push:product-2")
    assert other != first
    with hub.sessions() as session:
        assert session.scalar(select(func.count()).select_from(Job)) == 2


def test_a_running_job_does_not_absorb_new_work_with_its_identity(hub: Hub, registry: JobRegistry) -> None:
    """The running job may have read old state already, so a new change needs a new pending job."""
    registry.register("stock.push", write_effect)
    first = enqueue(hub, "stock.push", identity_key="push:product-1")
    with transaction(hub.sessions) as session:
        assert [c.id for c in jobs.claim(session, "w", now=hub.clock.now(), lease_seconds=60, limit=10)] == [first]
    second = enqueue(hub, "stock.push", identity_key="push:product-1")
    assert second != first


def test_enqueue_is_part_of_the_callers_transaction(hub: Hub) -> None:
    with pytest.raises(RuntimeError), transaction(hub.sessions) as session:
        jobs.enqueue(session, "orders.sync", now=hub.clock.now())
        raise RuntimeError("the state change failed")
    with hub.sessions() as session:
        assert session.scalar(select(func.count()).select_from(Job)) == 0


def test_handler_writes_commit_with_success_and_vanish_with_failure(hub: Hub, registry: JobRegistry) -> None:
    def half_then_fail(ctx: JobContext) -> None:
        write_effect(ctx)
        ctx.session.flush()
        raise RetryableError("the channel timed out")

    registry.register("ok", write_effect)
    registry.register("fails", half_then_fail)
    good, bad = enqueue(hub, "ok"), enqueue(hub, "fails")
    worker = Worker(hub.sessions, registry, hub.clock, hub.worker_options(), name="w1")
    assert worker.run_once() == 1  # "ok", and "fails" claimed ahead in the same transaction
    assert job(hub, bad).state == "running"
    assert worker.run_once() == 1  # "fails"
    assert effects(hub) == [str(good)]
    assert job(hub, good).state == "succeeded"
    assert job(hub, bad).state == "pending" and job(hub, bad).attempts == 1


def test_retryable_errors_back_off_exponentially_then_dead_letter(
    hub: Hub, registry: JobRegistry, clock: ManualClock
) -> None:
    def flaky(ctx: JobContext) -> None:
        raise RetryableError("HTTP 503 from the channel")

    registry.register("flaky", flaky)
    job_id = enqueue(hub, "flaky")
    worker = Worker(hub.sessions, registry, clock, hub.worker_options(), name="w1")
    for attempt, ceiling in [(1, 2.0), (2, 4.0), (3, 8.0)]:
        assert worker.run_once() == 1
        waiting = job(hub, job_id)
        assert waiting.state == "pending"
        wait = (waiting.due_at - clock.now()).total_seconds()
        assert ceiling / 2 <= wait <= ceiling, f"attempt {attempt} waits {wait}"
        clock.advance(wait - 0.01)
        assert worker.run_once() == 0, "not due yet"
        clock.advance(0.01)
    assert worker.run_once() == 1
    dead = job(hub, job_id)
    assert dead.state == "dead"
    assert dead.last_error == "RetryableError: HTTP 503 from the channel"
    assert [a.outcome for a in attempts(hub, job_id)] == ["retry", "retry", "retry", "dead"]
    assert {a.error_class for a in attempts(hub, job_id)} == {"retryable"}
    with hub.sessions() as session:
        issue = session.scalar(select(SyncIssue).where(SyncIssue.kind == "dead_letter"))
        assert issue is not None
        assert f"Job {job_id} (flaky) gave up after 4 attempt(s)" in issue.message


def test_a_servers_retry_after_is_honoured(hub: Hub, registry: JobRegistry, clock: ManualClock) -> None:
    def throttled(ctx: JobContext) -> None:
        raise RetryableError("HTTP 429", retry_after=30.0)

    registry.register("throttled", throttled)
    job_id = enqueue(hub, "throttled")
    Worker(hub.sessions, registry, clock, hub.worker_options()).run_once()
    wait = (job(hub, job_id).due_at - clock.now()).total_seconds()
    assert 30.0 <= wait <= 33.0


def test_a_deferred_job_waits_its_turn_without_using_up_attempts(
    hub: Hub, registry: JobRegistry, clock: ManualClock
) -> None:
    def busy(ctx: JobContext) -> None:
        raise Deferred("the store's cost bucket needs 4.0 s more", retry_after=4.0)

    registry.register("busy", busy)
    job_id = enqueue(hub, "busy")  # four attempts
    worker = Worker(hub.sessions, registry, clock, hub.worker_options())
    for _ in range(5):  # more deferrals than attempts: still waiting, never dead
        assert worker.run_once() == 1
        assert (job(hub, job_id).due_at - clock.now()).total_seconds() == 4.0
        clock.advance(4.0)
    deferred = job(hub, job_id)
    assert (deferred.state, deferred.attempts) == ("pending", 0)
    assert [(row.outcome, row.error_class) for row in attempts(hub, job_id)] == [("retry", "deferred")] * 5


def test_unclassified_exceptions_are_retried(hub: Hub, registry: JobRegistry) -> None:
    def buggy(ctx: JobContext) -> None:
        raise KeyError("order_id")

    registry.register("buggy", buggy)
    job_id = enqueue(hub, "buggy")
    Worker(hub.sessions, registry, hub.clock, hub.worker_options()).run_once()
    assert job(hub, job_id).state == "pending"
    assert attempts(hub, job_id)[0].error_type == "KeyError"


def test_permanent_errors_dead_letter_at_once(hub: Hub, registry: JobRegistry) -> None:
    def rejected(ctx: JobContext) -> None:
        raise PermanentError("12019028: every warehouse of the SKU is required")

    registry.register("rejected", rejected)
    job_id = enqueue(hub, "rejected")
    Worker(hub.sessions, registry, hub.clock, hub.worker_options()).run_once()
    assert job(hub, job_id).state == "dead"
    [attempt] = attempts(hub, job_id)
    assert (attempt.outcome, attempt.error_class) == ("dead", "permanent")
    assert "12019028" in (attempt.error_message or "")


def test_a_job_of_an_unknown_kind_is_a_permanent_error(hub: Hub, registry: JobRegistry) -> None:
    job_id = enqueue(hub, "no.such.kind")
    Worker(hub.sessions, registry, hub.clock, hub.worker_options()).run_once()
    dead = job(hub, job_id)
    assert dead.state == "dead"
    assert "no handler is registered for job kind 'no.such.kind'" in (dead.last_error or "")


def test_reauth_parks_the_accounts_jobs_and_flags_it(hub: Hub, registry: JobRegistry) -> None:
    def expired(ctx: JobContext) -> None:
        raise ReauthRequired("105002: access token expired and refresh failed")

    registry.register("expired", expired)
    registry.register("ok", write_effect)
    shop, other_shop = add_account(hub, "7001"), add_account(hub, "7002")
    failing = enqueue(hub, "expired", channel_account_id=shop, priority=1)
    waiting = enqueue(hub, "ok", channel_account_id=shop, priority=5)
    other = enqueue(hub, "ok", channel_account_id=other_shop, priority=5)
    worker = Worker(hub.sessions, registry, hub.clock, hub.worker_options())
    worker.options.batch_size = 1
    worker.run_once()
    assert job(hub, failing).state == "parked"
    assert job(hub, waiting).state == "parked"
    assert worker.run_once() == 1
    assert job(hub, other).state == "succeeded"
    assert worker.run_once() == 0
    with hub.sessions() as session:
        account = session.get(ChannelAccount, shop)
        assert account is not None
        assert account.status == "needs_reauth"
        assert "105002" in (account.status_reason or "")
        assert session.scalar(select(SyncIssue.severity).where(SyncIssue.kind == "needs_reauth")) == "critical"
    with transaction(hub.sessions) as session:
        assert jobs.resume_account(session, shop, now=hub.clock.now()) == 2
    assert job(hub, waiting).state == "pending"


def test_a_dead_job_can_be_retried_and_replayed(hub: Hub, registry: JobRegistry) -> None:
    outcomes = iter([PermanentError("bad SKU"), None, None])

    def sometimes(ctx: JobContext) -> None:
        error = next(outcomes)
        if error:
            raise error
        write_effect(ctx)

    registry.register("sometimes", sometimes)
    job_id = enqueue(hub, "sometimes", payload={"sku": "TEE-M"}, identity_key="sometimes:1")
    worker = Worker(hub.sessions, registry, hub.clock, hub.worker_options())
    worker.run_once()
    assert job(hub, job_id).state == "dead"

    with transaction(hub.sessions) as session:
        jobs.retry_dead(session, job_id, now=hub.clock.now())
    worker.run_once()
    retried = job(hub, job_id)
    assert (retried.state, retried.attempts) == ("succeeded", 1)
    assert [a.outcome for a in attempts(hub, job_id)] == ["dead", "succeeded"]
    with hub.sessions() as session:
        assert session.scalar(select(SyncIssue.status).where(SyncIssue.kind == "dead_letter")) == "resolved"

    with transaction(hub.sessions) as session:
        copy = jobs.replay(session, job_id, now=hub.clock.now())
    worker.run_once()
    replayed = job(hub, copy)
    assert (replayed.state, replayed.replay_of, replayed.payload) == ("succeeded", job_id, {"sku": "TEE-M"})
    assert effects(hub) == [str(job_id), str(copy)]


def test_retry_and_replay_refuse_what_does_not_fit(hub: Hub, registry: JobRegistry) -> None:
    job_id = enqueue(hub, "anything")
    with transaction(hub.sessions) as session:
        with pytest.raises(jobs.JobStateError, match="only dead jobs can be retried"):
            jobs.retry_dead(session, job_id, now=hub.clock.now())
        with pytest.raises(jobs.JobStateError, match="only finished"):
            jobs.replay(session, job_id, now=hub.clock.now())
        with pytest.raises(jobs.JobStateError, match="does not exist"):
            jobs.retry_dead(session, 999_999, now=hub.clock.now())


def test_a_dead_workers_jobs_are_recovered_after_the_lease(hub: Hub, registry: JobRegistry, clock: ManualClock) -> None:
    registry.register("ok", write_effect)
    job_id = enqueue(hub, "ok")
    with transaction(hub.sessions) as session:
        [claimed] = jobs.claim(session, "crashed-worker", now=clock.now(), lease_seconds=60, limit=10)
    clock.advance(59)
    with transaction(hub.sessions) as session:
        assert jobs.recover_expired_leases(session, now=clock.now(), policy=hub.retry_policy()) == 0
    clock.advance(2)
    with transaction(hub.sessions) as session:
        assert jobs.recover_expired_leases(session, now=clock.now(), policy=hub.retry_policy()) == 1
    assert job(hub, job_id).state == "pending"
    assert attempts(hub, job_id)[0].outcome == "lease_expired"

    survivor = Worker(hub.sessions, registry, clock, hub.worker_options(), name="survivor")
    survivor.run_once()
    # The crashed worker wakes up and tries to finish: its lease is gone, so its work must not count.
    ghost = Worker(hub.sessions, registry, clock, hub.worker_options(), name="crashed-worker")
    assert ghost.run_job(claimed) == "lease_lost"
    assert effects(hub) == [str(job_id)]
    assert job(hub, job_id).attempts == 2


def test_a_failing_job_in_a_batch_affects_only_itself(hub: Hub, registry: JobRegistry) -> None:
    def maybe(ctx: JobContext) -> None:
        if ctx.payload["n"] == 3:
            raise RetryableError("this one is unlucky")
        write_effect(ctx)

    registry.register("batched", maybe, batch=True)
    ids = [enqueue(hub, "batched", payload={"n": n}) for n in range(6)]
    Worker(hub.sessions, registry, hub.clock, hub.worker_options()).run_once()
    assert [job(hub, i).state for i in ids] == ["succeeded"] * 3 + ["pending"] + ["succeeded"] * 2
    assert sorted(effects(hub)) == sorted(str(i) for n, i in enumerate(ids) if n != 3)


def test_a_batch_runs_in_one_pass_and_records_each_attempt(hub: Hub, registry: JobRegistry) -> None:
    registry.register("batched", write_effect, batch=True)
    ids = [enqueue(hub, "batched") for _ in range(20)]
    assert Worker(hub.sessions, registry, hub.clock, hub.worker_options()).run_once() == 20
    assert all(job(hub, i).state == "succeeded" for i in ids)
    assert all([a.outcome for a in attempts(hub, i)] == ["succeeded"] for i in ids)


def test_higher_priority_and_older_jobs_run_first(hub: Hub, registry: JobRegistry, clock: ManualClock) -> None:
    ran: list[str] = []
    registry.register("record", lambda ctx: ran.append(ctx.payload["name"]))
    enqueue(hub, "record", payload={"name": "late"}, priority=100)
    clock.advance(1)
    enqueue(hub, "record", payload={"name": "urgent"}, priority=1)
    enqueue(hub, "record", payload={"name": "later"}, priority=100)
    enqueue(hub, "record", payload={"name": "future"}, due_at=clock.now() + timedelta(hours=1))
    worker = Worker(hub.sessions, registry, clock, hub.worker_options())
    worker.options.batch_size = 1
    while worker.run_once():
        pass
    assert ran == ["urgent", "late", "later"]


def test_a_failed_job_whose_work_is_queued_again_is_superseded(hub: Hub, registry: JobRegistry) -> None:
    """A change arrived while the job ran, so its work is pending again: retrying it as well would double it."""
    calls: list[int] = []

    def push(ctx: JobContext) -> None:
        calls.append(ctx.job_id)
        if len(calls) == 1:
            enqueue(hub, "stock.push", identity_key="push:1")  # a newer change, queued while this one runs
            raise RetryableError("HTTP 503")
        write_effect(ctx)

    registry.register("stock.push", push)
    first = enqueue(hub, "stock.push", identity_key="push:1")
    worker = Worker(hub.sessions, registry, hub.clock, hub.worker_options())
    worker.run_once()
    superseded = job(hub, first)
    assert superseded.state == "superseded"
    assert "superseded by job" in (superseded.last_error or "")
    assert [a.outcome for a in attempts(hub, first)] == ["superseded"]
    worker.run_once()
    assert len(calls) == 2 and len(effects(hub)) == 1


def test_reauth_with_a_waiting_successor_supersedes_and_parks(hub: Hub, registry: JobRegistry) -> None:
    shop = add_account(hub, "7003")

    def expired(ctx: JobContext) -> None:
        enqueue(hub, "orders.sync", identity_key="sync:1", channel_account_id=shop)
        raise ReauthRequired("refresh failed")

    registry.register("orders.sync", expired)
    first = enqueue(hub, "orders.sync", identity_key="sync:1", channel_account_id=shop)
    Worker(hub.sessions, registry, hub.clock, hub.worker_options()).run_once()
    assert job(hub, first).state == "superseded"
    with hub.sessions() as session:
        states = set(session.scalars(select(Job.state).where(Job.id != first)))
        account = session.get(ChannelAccount, shop)
    assert states == {"parked"}
    assert account is not None and account.status == "needs_reauth"


def test_a_dead_workers_job_with_a_waiting_successor_is_superseded(
    hub: Hub, registry: JobRegistry, clock: ManualClock
) -> None:
    first = enqueue(hub, "stock.push", identity_key="push:9")
    with transaction(hub.sessions) as session:
        jobs.claim(session, "crashed", now=clock.now(), lease_seconds=10, limit=1)
    second = enqueue(hub, "stock.push", identity_key="push:9")
    clock.advance(11)
    with transaction(hub.sessions) as session:
        assert jobs.recover_expired_leases(session, now=clock.now(), policy=hub.retry_policy()) == 1
    assert job(hub, first).state == "superseded"
    assert job(hub, second).state == "pending"


def test_extending_coalesces_into_the_waiting_job_and_never_into_a_claimed_one(hub: Hub, clock: ManualClock) -> None:
    def extend(order_id: str) -> int:
        with transaction(hub.sessions) as session:
            return jobs.enqueue_or_extend(
                session, "orders.sync", {"order_ids": [order_id]}, now=clock.now(), identity_key="sync:shop"
            )

    first = extend("A")
    assert extend("B") == first and extend("A") == first
    assert job(hub, first).payload == {"order_ids": ["A", "B"]}
    with transaction(hub.sessions) as session:
        jobs.claim(session, "w", now=clock.now(), lease_seconds=60, limit=1)
    second = extend("C")
    assert second != first, "the claimed job has read its payload already"
    assert job(hub, second).payload == {"order_ids": ["C"]}
    assert job(hub, first).payload == {"order_ids": ["A", "B"]}


def test_a_superseded_coalescing_job_hands_its_items_to_its_successor(hub: Hub, registry: JobRegistry) -> None:
    """A per-shop sync gathers order ids; if it fails while a newer one waits, the newer one must take its ids."""

    def sync(ctx: JobContext) -> None:
        if ctx.payload["order_ids"] == ["A", "B"]:
            with transaction(hub.sessions) as session:
                jobs.enqueue_or_extend(session, "orders.sync", {"order_ids": ["C"]}, now=hub.clock.now(),
                                       identity_key="sync:shop")  # fmt: skip
            raise RetryableError("deadlock detected")

    registry.register("orders.sync", sync)
    with transaction(hub.sessions) as session:
        first = jobs.enqueue_or_extend(session, "orders.sync", {"order_ids": ["A", "B"]}, now=hub.clock.now(),
                                       identity_key="sync:shop")  # fmt: skip
    Worker(hub.sessions, registry, hub.clock, hub.worker_options()).run_once()
    assert job(hub, first).state == "superseded"
    with hub.sessions() as session:
        successor = session.scalar(select(Job).where(Job.state == "pending"))
    assert successor is not None
    assert successor.payload["order_ids"] == ["C", "A", "B"]


def test_a_parked_job_still_gathers_work_until_its_shop_is_reconnected(hub: Hub, clock: ManualClock) -> None:
    """A shop waiting for re-authorization keeps receiving webhooks: they must join its parked work, not fail."""
    shop = add_account(hub, "7004")
    with transaction(hub.sessions) as session:
        first = jobs.enqueue_or_extend(session, "orders.sync", {"order_ids": ["A"]}, now=clock.now(),
                                       identity_key="sync:7004", channel_account_id=shop)  # fmt: skip
        jobs.park_account(session, shop, reason="deauthorized", now=clock.now())
    with transaction(hub.sessions) as session:
        again = jobs.enqueue_or_extend(session, "orders.sync", {"order_ids": ["B"]}, now=clock.now(),
                                       identity_key="sync:7004", channel_account_id=shop)  # fmt: skip
    assert again == first
    parked = job(hub, first)
    assert (parked.state, parked.payload) == ("parked", {"order_ids": ["A", "B"]})


def test_a_serial_kind_runs_one_job_per_identity_key_at_a_time(hub: Hub, registry: JobRegistry) -> None:
    registry.register("stock.push", write_effect, serial=True)
    first = enqueue(hub, "stock.push", identity_key="push:product-1")
    with transaction(hub.sessions) as session:
        claimed = jobs.claim(session, "w1", now=hub.clock.now(), lease_seconds=60, limit=10,
                             serial_kinds=registry.serial_kinds())  # fmt: skip
    assert [job.id for job in claimed] == [first]
    running = claimed[0]
    # While the first push runs, its successor (same product) waits; other products do not.
    successor = enqueue(hub, "stock.push", identity_key="push:product-1")
    other_product = enqueue(hub, "stock.push", identity_key="push:product-2")
    with transaction(hub.sessions) as session:
        claimed = jobs.claim(session, "w2", now=hub.clock.now(), lease_seconds=60, limit=10,
                             serial_kinds=registry.serial_kinds())  # fmt: skip
    assert [job.id for job in claimed] == [other_product]
    with transaction(hub.sessions) as session:
        assert jobs.complete(session, running, "w1", now=hub.clock.now())
    with transaction(hub.sessions) as session:
        claimed = jobs.claim(session, "w2", now=hub.clock.now(), lease_seconds=60, limit=10,
                             serial_kinds=registry.serial_kinds())  # fmt: skip
    assert [job.id for job in claimed] == [successor]


def test_joining_a_waiting_job_keeps_the_more_urgent_priority(hub: Hub) -> None:
    waiting = enqueue(hub, "stock.push", identity_key="push:product-1", priority=50)
    assert enqueue(hub, "stock.push", identity_key="push:product-1", priority=80) == waiting
    assert job(hub, waiting).priority == 50
    assert enqueue(hub, "stock.push", identity_key="push:product-1", priority=10) == waiting
    assert job(hub, waiting).priority == 10


def test_a_job_waiting_for_its_serial_predecessor_is_not_due_for_an_idle_worker(
    hub: Hub, registry: JobRegistry
) -> None:
    """An idle worker reads before it claims: a successor that cannot be claimed yet must not send it to the
    write lock for nothing."""
    registry.register("stock.push", write_effect, serial=True)
    enqueue(hub, "stock.push", identity_key="push:product-1")
    serial = registry.serial_kinds()
    with transaction(hub.sessions) as session:
        (running,) = jobs.claim(session, "w1", now=hub.clock.now(), lease_seconds=60, limit=10, serial_kinds=serial)
    enqueue(hub, "stock.push", identity_key="push:product-1")
    with hub.sessions() as session:
        assert not jobs.any_due(session, now=hub.clock.now(), serial_kinds=serial)
        assert jobs.any_due(session, now=hub.clock.now())  # it is pending and due, only not claimable
    with transaction(hub.sessions) as session:
        assert jobs.complete(session, running, "w1", now=hub.clock.now())
    with hub.sessions() as session:
        assert jobs.any_due(session, now=hub.clock.now(), serial_kinds=serial)


@postgres_only()
def test_a_worker_does_not_claim_a_job_whose_joining_change_is_not_committed(hub: Hub) -> None:
    """A stock change joins the push waiting for its product; a worker claiming that push before the change
    commits would read the old stock and leave the change unpushed. The join locks the job's row, so the claim
    passes it by until the change is committed."""
    waiting = enqueue(hub, "stock.push", identity_key="push:product-1")
    with transaction(hub.sessions) as change:
        assert jobs.enqueue(change, "stock.push", now=hub.clock.now(), identity_key="push:product-1") == waiting
        with transaction(hub.sessions) as worker:
            assert jobs.claim(worker, "w1", now=hub.clock.now(), lease_seconds=60, limit=10) == []
    with transaction(hub.sessions) as worker:
        assert [c.id for c in jobs.claim(worker, "w1", now=hub.clock.now(), lease_seconds=60, limit=10)] == [waiting]


def test_a_worker_claims_a_network_job_alone(hub: Hub, registry: JobRegistry) -> None:
    """Jobs that call out are not hoarded by one worker: each pass takes one, so idle workers share them."""
    registry.register("tiktok.call", write_effect)
    for number in range(5):
        enqueue(hub, "tiktok.call", identity_key=f"call:{number}")
    worker = Worker(hub.sessions, registry, hub.clock, name="w1")
    assert worker.run_once() == 1
    assert len(effects(hub)) == 1


def test_a_committed_job_due_now_rings_the_doorbell_and_nothing_else_does(hub: Hub, clock: ManualClock) -> None:
    bell = Doorbell.of(hub.engine)
    before = bell.rings
    enqueue(hub, "later", due_at=clock.now() + timedelta(minutes=5))
    with pytest.raises(RuntimeError), transaction(hub.sessions) as session:
        jobs.enqueue(session, "rolled.back", now=clock.now())
        raise RuntimeError("the caller's transaction fails")
    assert bell.rings == before
    enqueue(hub, "now")
    assert bell.rings == before + 1


def test_an_idle_worker_wakes_when_a_job_is_queued_not_at_its_next_poll(hub: Hub, registry: JobRegistry) -> None:
    """The worker looks at the table once a minute here; only the doorbell can make it run the job in seconds."""
    registry.register("wake", write_effect)
    options = replace(hub.worker_options(), poll_seconds=60.0, idle_seconds=60.0, heartbeat_seconds=60.0)
    worker = Worker(hub.sessions, registry, hub.clock, options, name="sleeper")
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    try:
        wait_until(lambda: worker.doorbell.sleeping == 1, timeout=10, message="the worker to go idle")
        job_id = enqueue(hub, "wake")
        wait_until(lambda: job(hub, job_id).state == "succeeded", timeout=10, message="the queued job to run")
    finally:
        worker.stop()
        thread.join(10)
    assert not thread.is_alive()


def raising(error: Exception) -> Callable[[JobContext], None]:
    def handler(ctx: JobContext) -> None:
        raise error

    return handler


def test_a_failed_jobs_transaction_claims_nothing_ahead(hub: Hub, registry: JobRegistry) -> None:
    registry.register("fails", raising(RetryableError("the channel timed out")))
    registry.register("ok", write_effect)
    bad, good = enqueue(hub, "fails"), enqueue(hub, "ok")
    Worker(hub.sessions, registry, hub.clock, hub.worker_options(), name="w1").run_once()
    assert job(hub, bad).state == "pending"
    assert job(hub, good).state == "pending" and job(hub, good).lease_owner is None


def test_a_stopping_worker_gives_back_the_job_it_claimed_ahead(hub: Hub, registry: JobRegistry) -> None:
    registry.register("ok", write_effect)
    first, second = enqueue(hub, "ok"), enqueue(hub, "ok")
    worker = Worker(hub.sessions, registry, hub.clock, hub.worker_options(), name="w1")
    worker.run_once()
    assert job(hub, first).state == "succeeded" and job(hub, second).state == "running"
    worker.stop()
    worker.run()  # stopped before its first pass: only the shutdown runs
    given_back = job(hub, second)
    assert (given_back.state, given_back.lease_owner, given_back.attempts) == ("pending", None, 0)
    assert Worker(hub.sessions, registry, hub.clock, hub.worker_options(), name="w2").run_once() == 1
    assert job(hub, second).state == "succeeded"
