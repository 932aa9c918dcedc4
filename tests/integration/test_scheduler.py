"""Periodic jobs: persisted, so a restart neither forgets nor stampedes, and many processes enqueue once."""

from __future__ import annotations

from sqlalchemy import func, select

from shopbridge.bootstrap import Hub
from shopbridge.domain.clock import ManualClock
from shopbridge.runtime.scheduler import Periodic, Scheduler
from shopbridge.store.db import transaction
from shopbridge.store.tables import Job

POLL = Periodic("tiktok.poll:7001", "tiktok.poll_orders", 60.0, {"shop": "7001"})


def tick(hub: Hub, scheduler: Scheduler) -> list[str]:
    with transaction(hub.sessions) as session:
        scheduler.sync(session, hub.clock.now())
        return scheduler.tick(session, hub.clock.now())


def jobs_enqueued(hub: Hub) -> int:
    with hub.sessions() as session:
        return session.scalar(select(func.count()).select_from(Job)) or 0


def test_a_schedule_runs_first_at_once_then_every_interval(hub: Hub, clock: ManualClock) -> None:
    scheduler = Scheduler([POLL])
    assert tick(hub, scheduler) == [POLL.name]
    clock.advance(59)
    assert tick(hub, scheduler) == []
    clock.advance(1)
    assert tick(hub, scheduler) == [POLL.name]


def test_a_restart_does_not_stampede(hub: Hub, clock: ManualClock) -> None:
    assert tick(hub, Scheduler([POLL])) == [POLL.name]
    clock.advance(30)
    assert tick(hub, Scheduler([POLL])) == [], "the restarted scheduler remembers the last run"
    clock.advance(3600)  # down for an hour: sixty missed runs collapse into one
    assert tick(hub, Scheduler([POLL])) == [POLL.name]
    assert tick(hub, Scheduler([POLL])) == []


def test_many_processes_ticking_enqueue_each_run_once(hub: Hub, clock: ManualClock) -> None:
    schedulers = [Scheduler([POLL]) for _ in range(4)]
    assert sum(len(tick(hub, scheduler)) for scheduler in schedulers) == 1
    clock.advance(60)
    assert sum(len(tick(hub, scheduler)) for scheduler in schedulers) == 1
    assert jobs_enqueued(hub) == 1, "the second run found the first still pending: same identity, no new job"
