"""Status drift over REST (services/drift.py): the drift rate over 24 hours, the newest checks and the open drift
(``GET /api/v1/drift``), and a check of every account now (``POST /api/v1/drift/check``); and its Prometheus
figures, read from the database at scrape time."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

from fastapi import APIRouter, Depends
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector
from pydantic import BaseModel, Field
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from shopbridge.bootstrap import Hub
from shopbridge.domain.clock import Clock
from shopbridge.services import drift
from shopbridge.services.access import Caller
from shopbridge.store.db import reading, transaction
from shopbridge.store.tables import SyncIssue
from shopbridge.web.auth import OPERATORS, READERS, require
from shopbridge.web.errors import refusals


class Rate(BaseModel):
    since: str = Field(description="The start of the period (ISO 8601, UTC).")
    checks: int = Field(description="Checks recorded in the period.")
    orders_checked: int = Field(description="Orders compared, summed over the checks.")
    drifted: int = Field(description="Orders found drifted, summed over the checks.")
    repaired: int = Field(description="Drifts the hub repaired itself.")
    rate: float = Field(description="drifted / orders_checked (0 when nothing was compared).")
    kinds: dict[str, int] = Field(description="Drifted orders per kind of mismatch.")


class Check(BaseModel):
    id: int
    account_id: int
    account: str
    channel: str
    checked_at: str
    orders_checked: int
    drifted: int
    repaired: int
    kinds: dict[str, int]


class OpenDrift(BaseModel):
    issue_id: int
    kind: str | None = Field(description="e.g. shipped_not_recorded, cancelled_not_in_hub.")
    act: str = Field(description="Who should act: ops, owner, or none (the hub repaired it).")
    repair: str | None = Field(description="What the hub did about it itself, if anything.")
    repaired: bool
    message: str
    severity: str
    order_id: int | None
    external_order_id: str | None
    account: str | None = Field(description="The account whose side disagreed.")
    first_seen_at: str
    last_seen_at: str
    occurrences: int


class Summary(BaseModel):
    last_24h: Rate
    checks: list[Check] = Field(description="The newest checks, newest first.")
    open: list[OpenDrift] = Field(description="Open drift issues, newest first.")


class QueuedCheck(BaseModel):
    account_id: int
    account: str
    channel: str
    job_id: int = Field(description="The check's job (`shopbridge jobs show ID`).")


class Queued(BaseModel):
    queued: list[QueuedCheck] = Field(description="One check per active account whose channel has one.")


def router(hub: Hub) -> APIRouter:
    routes = APIRouter(prefix="/api/v1", tags=["drift"])
    reader = Depends(require(hub, READERS))
    operator = Depends(require(hub, OPERATORS))

    @routes.get("/drift", summary="Status drift: the rate over 24 hours, the newest checks, the open drift.",
                responses=refusals(401, 403))  # fmt: skip
    def drift_summary(caller: Caller = reader) -> Summary:
        with reading(hub.sessions) as session:
            return Summary.model_validate(drift.summary(session, now=hub.clock.now()))

    @routes.post("/drift/check", status_code=202, summary="Check every account for status drift now.",
                 responses=refusals(401, 403))  # fmt: skip
    def check(caller: Caller = operator) -> Queued:
        with transaction(hub.sessions) as session:
            queued = drift.check_now(session, frozenset(hub.registry.names()), now=hub.clock.now(),
                                     actor=caller.email, settle_seconds=hub.settings.drift_settle_seconds)  # fmt: skip
            return Queued(queued=[QueuedCheck(account_id=account.id, account=account.label, channel=account.channel,
                                              job_id=job_id) for account, job_id in queued])  # fmt: skip

    return routes


class DriftCollector(Collector):
    """The drift rate and drifted orders per kind over the last 24 hours, and the open drift issues."""

    def __init__(self, sessions: sessionmaker[Session], clock: Clock) -> None:
        self.sessions = sessions
        self.clock = clock

    def collect(self) -> Iterator[Metric]:
        with reading(self.sessions) as session:
            rate = drift.drift_rate(session, self.clock.now() - timedelta(hours=24))
            open_issues = session.scalar(select(func.count()).where(SyncIssue.kind == drift.ISSUE_KIND,
                                                                    SyncIssue.status == "open"))  # fmt: skip
        yield GaugeMetricFamily("shopbridge_drift_rate", "Drifted orders per order compared, last 24 hours.",
                                value=rate.rate)  # fmt: skip
        yield GaugeMetricFamily("shopbridge_drift_orders_checked", "Orders compared by the drift checks, last 24 "
                                "hours.", value=rate.orders_checked)  # fmt: skip
        kinds = GaugeMetricFamily("shopbridge_drifted_orders", "Drifted orders by kind of mismatch, last 24 hours.",
                                  labels=["kind"])  # fmt: skip
        for kind, count in sorted(rate.kinds.items()):
            kinds.add_metric([kind], count)
        yield kinds
        yield GaugeMetricFamily("shopbridge_drift_open", "Open status drift issues.", value=open_issues or 0)
