"""Prometheus metrics. Work-engine figures are read from the database at scrape time, so every process (web
replica or worker) reports the same truth; HTTP figures are this process's own."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from shopbridge.domain.clock import Clock
from shopbridge.store.db import reading
from shopbridge.store.tables import InboundEvent, Job, JobAttempt, WorkerHeartbeat

WORKER_STALE_SECONDS = 15.0


class WorkEngineCollector(Collector):
    def __init__(self, sessions: sessionmaker[Session], inbox_sessions: sessionmaker[Session], clock: Clock) -> None:
        self.sessions = sessions
        self.inbox_sessions = inbox_sessions  # the inbox may live in a database of its own (store/inbox_db.py)
        self.clock = clock

    def collect(self) -> Iterator[Metric]:
        now = self.clock.now()
        jobs = GaugeMetricFamily("shopbridge_jobs", "Jobs by state and kind.", labels=["state", "kind"])
        attempts = CounterMetricFamily("shopbridge_job_attempts", "Job attempts by outcome.", labels=["outcome"])
        inbox = GaugeMetricFamily("shopbridge_inbox_events", "Inbound events by status.", labels=["status"])
        with reading(self.sessions) as session:
            dead = 0
            for state, kind, count in session.execute(
                select(Job.state, Job.kind, func.count()).group_by(Job.state, Job.kind)
            ):
                jobs.add_metric([state, kind], count)
                dead += count if state == "dead" else 0
            for outcome, count in session.execute(
                select(JobAttempt.outcome, func.count()).group_by(JobAttempt.outcome)
            ):
                attempts.add_metric([outcome], count)
            alive = session.scalar(
                select(func.count()).where(
                    WorkerHeartbeat.last_seen_at >= now - timedelta(seconds=WORKER_STALE_SECONDS)
                )
            )
        with reading(self.inbox_sessions) as session:
            for status, count in session.execute(
                select(InboundEvent.status, func.count()).group_by(InboundEvent.status)
            ):
                inbox.add_metric([status], count)
            oldest = session.scalar(select(func.min(InboundEvent.received_at)).where(InboundEvent.status == "received"))
        yield jobs
        yield attempts
        yield inbox
        lag = (now - oldest).total_seconds() if oldest is not None else 0.0
        yield GaugeMetricFamily(
            "shopbridge_inbox_lag_seconds", "Age of the oldest unprocessed inbound event.", value=max(0.0, lag)
        )
        yield GaugeMetricFamily("shopbridge_dead_letters", "Jobs that gave up, waiting for a person.", value=dead)
        yield GaugeMetricFamily("shopbridge_workers_alive", "Workers with a recent heartbeat.", value=alive or 0)


class HttpMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter(
            "shopbridge_http_requests", "HTTP requests served.", ["method", "route", "status"], registry=registry
        )
        self.latency = Histogram(
            "shopbridge_http_request_seconds",
            "HTTP request latency.",
            ["method", "route"],
            registry=registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
        )
