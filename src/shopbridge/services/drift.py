"""The status drift detector: every open order's state in the hub compared, on a schedule, with what each outside
system shows of it (domain/drift.py says what disagrees, who acts, and what is safe to repair).

How a check runs:

- ``DRIFT_CHECK`` (periodic, every ``check_period`` seconds) queues ``<channel>.check_drift`` (``check_kind``) for
  every active account whose channel registers that kind, one waiting check per account (``queue_checks``; the
  dashboard's "Check now", the API and the command line queue the same);
- the channel's job reads its side and hands what it read to the hub: a channel whose accounts fulfil orders (a
  store, a POS) reads the orders the hub placed there (``links_to_check``) and calls ``record_fulfiller_readings``;
  a channel where buyers order (TikTok, the store for its own orders) reads the hub's open orders of the account
  (``orders_to_check``) and calls ``record_origin_readings``. Both pass their job's payload through;
- a disagreement seen for the first time may be a change whose event is still on its way, so it is a *suspect*:
  the check queues itself again ``settle`` seconds later for those orders only (payload ``orders``), and a
  disagreement still there then is drift. One already reported (its issue is open) is drift at once;
- each drifted order and kind raises one ``status_drift`` issue (fingerprint ``drift:{kind}:{order_id}``) naming
  the mismatch, both systems' words and who should act; the repairs that are safe are made at once; the issues of
  orders no longer drifting are resolved; and the check is recorded as a ``drift_checks`` row (orders compared,
  orders drifted, repairs, drifted orders per kind), from which the drift rate is read.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session

from shopbridge.domain.drift import (
    FULFILLER_KINDS,
    ORIGIN_KINDS,
    Drift,
    DriftKind,
    FulfillerReading,
    LinkFacts,
    OrderFacts,
    OriginReading,
    RefundFacts,
    Repair,
    ShipmentFacts,
    fulfiller_drift,
    origin_drift,
)
from shopbridge.domain.orders import TO_DISPATCH, CancelReason, OrderStatus
from shopbridge.runtime.jobs import enqueue
from shopbridge.services import audit, fulfilment, returns
from shopbridge.store.sync_issues import raise_issue
from shopbridge.store.tables import (
    ChannelAccount,
    DriftCheck,
    Job,
    Order,
    OrderLink,
    Shipment,
    StoreReturn,
    SyncIssue,
)

# What a channel's check uses (see the module's docstring), and what the web, the command line and bootstrap read.
__all__ = ["DRIFT_CHECK", "FULFILLER", "ISSUE_KIND", "ORIGIN", "PRIORITY", "FulfillerReading", "OriginReading",
           "check_kind", "check_now", "check_period", "drift_rate", "links_to_check", "orders_to_check",
           "queue_checks", "record_fulfiller_readings", "record_origin_readings", "summary", "wants"]  # fmt: skip

DRIFT_CHECK = "drift.check"
ISSUE_KIND = "status_drift"
SETTLE_SECONDS = 10.0  # a first sighting waits this long for an event on its way before it counts
RECENT = timedelta(days=3)  # cancelled orders and store returns are compared this long after their last change
LINK_STATES = ("placed", "cancel_requested", "cancel_refused")  # links whose order a fulfiller holds
LIVE_JOB = ("pending", "running", "parked")  # the work is asked for and has not finished (parked: reconnecting)
PRIORITY = 50
FULFILLER, ORIGIN = "fulfiller", "origin"
SIDES: dict[str, frozenset[DriftKind]] = {FULFILLER: FULFILLER_KINDS, ORIGIN: ORIGIN_KINDS}
DAY = timedelta(hours=24)


def check_kind(channel: str) -> str:
    """The job that compares one account of ``channel`` with the hub (register it ``serial``, at ``PRIORITY``):
    payload ``{"settle"}`` for every order the account holds, or ``{"settle", "side", "orders": [hub order ids],
    "carry"}`` to confirm one side's suspects; its handler passes the payload on to ``links_to_check`` /
    ``orders_to_check`` and to ``record_fulfiller_readings`` / ``record_origin_readings``."""
    return f"{channel}.check_drift"


def fingerprint(kind: str, order_id: int) -> str:
    return f"drift:{kind}:{order_id}"


def check_period(interval_seconds: float, settle_seconds: float = SETTLE_SECONDS) -> float:
    """How often checks run so that a drift is reported within ``interval_seconds`` of happening: a suspect is
    confirmed ``settle_seconds`` after the check that first saw it."""
    return max(interval_seconds - settle_seconds, interval_seconds / 2)


def queue_checks(session: Session, registered: Collection[str], *, now: datetime,
                 settle_seconds: float = SETTLE_SECONDS) -> list[tuple[ChannelAccount, int]]:  # fmt: skip
    """One check of every active account whose channel registers a drift check (``registered``: the job kinds the
    hub runs); a check already waiting is not queued twice. Returns each account and its check's job id."""
    queued = []
    for account in session.scalars(select(ChannelAccount).where(ChannelAccount.status == "active")
                                   .order_by(ChannelAccount.id)):  # fmt: skip
        kind = check_kind(account.channel)
        if kind in registered:
            job_id = enqueue(session, kind, {"settle": settle_seconds}, now=now, priority=PRIORITY,
                             identity_key=f"{kind}:{account.id}", channel_account_id=account.id)  # fmt: skip
            queued.append((account, job_id))
    return queued


def check_now(session: Session, registered: Collection[str], *, now: datetime, actor: str,
              settle_seconds: float = SETTLE_SECONDS) -> list[tuple[ChannelAccount, int]]:  # fmt: skip
    """A person asks for a check of every account now (the dashboard, the API, the command line): audited."""
    queued = queue_checks(session, registered, now=now, settle_seconds=settle_seconds)
    audit.record(
        session,
        actor,
        "drift.check",
        "drift_check",
        "all",
        now=now,
        after={"accounts": [account.id for account, _ in queued], "jobs": [job for _, job in queued]},
    )
    return queued


def wants(payload: Mapping[str, Any] | None, side: str) -> bool:
    """Whether a check with this payload reads ``side`` (``fulfiller`` or ``origin``): a whole check reads every
    side its channel has; a confirmation only the side whose suspects it confirms."""
    return not payload or payload.get("side") in (None, side)


def _named(payload: Mapping[str, Any] | None) -> list[int] | None:
    """The orders a confirming check is about, or None for a whole check."""
    if not payload or "orders" not in payload:
        return None
    return [int(order_id) for order_id in payload.get("orders") or []]


def links_to_check(session: Session, account_id: int, payload: Mapping[str, Any] | None = None, *,
                   now: datetime) -> list[OrderLink]:  # fmt: skip
    """The orders placed at a fulfilling account that it still holds: links placed (or being cancelled) whose order
    still waits to ship, or was cancelled (or its cancellation asked) in the last few days. With ``payload``'s
    ``orders``, those orders' links only."""
    to_ship = [status.value for status in TO_DISPATCH]
    query = (
        select(OrderLink).join(Order, Order.id == OrderLink.order_id)
        .where(OrderLink.channel_account_id == account_id, OrderLink.state.in_(LINK_STATES),
               or_(Order.status.in_(to_ship),
                   and_(Order.status == OrderStatus.CANCELLED.value, Order.updated_at >= now - RECENT)))
        .order_by(OrderLink.id)
    )  # fmt: skip
    named = _named(payload)
    if named is not None:
        query = query.where(OrderLink.order_id.in_(named))
    return list(session.scalars(query))


def orders_to_check(session: Session, account_id: int, payload: Mapping[str, Any] | None = None, *,
                    now: datetime) -> list[Order]:  # fmt: skip
    """The open orders of an account where buyers order: still to be shipped (or paid), or with a store return
    refunded or being refunded in the last few days. With ``payload``'s ``orders``, those orders only."""
    with_returns = select(StoreReturn.order_id).where(StoreReturn.state.in_(("refunding", "refunded")),
                                                      StoreReturn.updated_at >= now - RECENT)  # fmt: skip
    waiting = [OrderStatus.UNPAID.value, *(status.value for status in TO_DISPATCH)]
    query = (
        select(Order).where(Order.channel_account_id == account_id,
                            or_(Order.status.in_(waiting), Order.id.in_(with_returns)))
        .order_by(Order.id)
    )  # fmt: skip
    named = _named(payload)
    if named is not None:
        query = query.where(Order.id.in_(named))
    return list(session.scalars(query))


def _live(session: Session, keys: Iterable[str]) -> set[str]:
    """Which of these job identities have work waiting or running."""
    wanted = sorted(set(keys))
    live: set[str] = set()
    for start in range(0, len(wanted), 500):
        live.update(session.scalars(select(Job.identity_key).where(
            Job.identity_key.in_(wanted[start : start + 500]), Job.state.in_(LIVE_JOB))))  # fmt: skip
    return {key for key in live if key}


def _labels(session: Session) -> dict[int, str]:
    return {int(key): str(value) for key, value in session.execute(select(ChannelAccount.id, ChannelAccount.label))}


# --- the fulfiller's side ------------------------------------------------------------------------------------------


def _link_facts(session: Session, account: ChannelAccount, link_ids: Sequence[int]) -> dict[int, LinkFacts]:
    """The hub's side of these links of ``account``, read now (after the fulfiller was read)."""
    labels = _labels(session)
    facts: dict[int, LinkFacts] = {}
    for start in range(0, len(link_ids), 500):
        rows = session.execute(
            select(OrderLink, Order).join(Order, Order.id == OrderLink.order_id)
            .where(OrderLink.id.in_(link_ids[start : start + 500]), OrderLink.channel_account_id == account.id)
        ).all()  # fmt: skip
        order_ids = [order.id for _, order in rows]
        shipped: dict[int, set[str]] = {}
        for order_id, external_id in session.execute(select(Shipment.order_id, Shipment.external_id).where(
                Shipment.channel_account_id == account.id, Shipment.order_id.in_(order_ids))):  # fmt: skip
            shipped.setdefault(order_id, set()).add(external_id)
        taken: dict[int, set[str]] = {}
        for returned_for, external_id in session.execute(select(StoreReturn.order_id, StoreReturn.external_id).where(
                StoreReturn.channel_account_id == account.id, StoreReturn.order_id.in_(order_ids))):  # fmt: skip
            if returned_for is not None:
                taken.setdefault(returned_for, set()).add(external_id)
        for link, order in rows:
            facts[link.id] = LinkFacts(
                link_id=link.id, order_id=order.id, order_external_id=order.external_id,
                origin=labels.get(order.channel_account_id, "the order's channel"), fulfiller=account.label,
                placed_as=link.external_name or link.external_id, order_status=OrderStatus(order.status),
                order_updated_at=order.updated_at, link_state=link.state, link_updated_at=link.updated_at,
                recorded_shipments=frozenset(shipped.get(order.id, ())),
                recorded_returns=frozenset(taken.get(order.id, ())),
            )  # fmt: skip
    return facts


def record_fulfiller_readings(
    session: Session, account: ChannelAccount, readings: Sequence[FulfillerReading], *,
    payload: Mapping[str, Any] | None = None, now: datetime,
) -> DriftCheck | None:  # fmt: skip
    """Compare what a fulfilling account showed of the orders placed there (one reading per link of
    ``links_to_check``) with the hub, in the check job's unit of work: issues raised and resolved, safe repairs made
    (a shipment recorded and its tracking sent on, a return recorded and refunded, a cancellation asked again, the
    fulfiller's cancellation taken to the order's channel). Returns the check's record, or None when suspects wait
    for their confirmation (which records it)."""
    facts = _link_facts(session, account, [reading.link_id for reading in readings])
    found: list[tuple[int, Drift]] = []
    for reading in readings:
        link = facts.get(reading.link_id)
        if link is not None:
            found += [(link.order_id, drift) for drift in fulfiller_drift(link, reading, now=now)]
    by_order = {link.order_id: link for link in facts.values()}

    def repair(order_id: int, drift: Drift) -> bool:
        return _repair_fulfiller(session, account, by_order[order_id], drift, now=now)

    checked = sorted({link.order_id for link in facts.values()})
    return _settle(session, account, FULFILLER, checked, found, repair, payload or {}, now=now)


def _repair_fulfiller(session: Session, account: ChannelAccount, facts: LinkFacts, drift: Drift, *,
                      now: datetime) -> bool:  # fmt: skip
    link = session.get(OrderLink, facts.link_id, with_for_update=True, populate_existing=True)
    if link is None:
        return False
    if drift.repair is Repair.RECORD_SHIPMENT:
        made = [fulfilment.record_shipment(session, link, shipment, now=now) for shipment in drift.shipments
                if isinstance(shipment, fulfilment.Fulfilment)]  # fmt: skip
        return any(made)
    if drift.repair is Repair.RECORD_RETURN:
        taken = [returns.record_store_return(session, account, returned, now=now)[1] for returned in drift.returns
                 if isinstance(returned, returns.ReturnIn)]  # fmt: skip
        return any(taken)
    if drift.repair is Repair.ASK_CANCEL:
        if link.state == "placed":
            return fulfilment.cancel_in_fulfillers(session, link.order_id, CancelReason.OTHER, now=now) > 0
        # Asked before and not answered: a new request (the fulfiller's idempotency key follows the link's time).
        link.updated_at = now
        enqueue(session, fulfilment.cancel_kind(account.channel),
                {"order_id": link.order_id, "link_id": link.id, "reason": CancelReason.OTHER}, now=now,
                identity_key=f"cancel-placed:{link.id}", channel_account_id=account.id, priority=20,
                order_id=link.order_id)  # fmt: skip
        return True
    if drift.repair is Repair.TAKE_CANCELLATION:
        fulfilment.cancelled_in_store(session, link, drift.cancel_reason or CancelReason.OTHER, now=now)
        return True
    return False


# --- the origin's side -------------------------------------------------------------------------------------------


def _order_facts(session: Session, account: ChannelAccount, order_ids: Sequence[int]) -> dict[int, OrderFacts]:
    """The hub's side of these orders of ``account``, read now (after the channel was read)."""
    labels = _labels(session)
    facts: dict[int, OrderFacts] = {}
    for start in range(0, len(order_ids), 500):
        chunk = order_ids[start : start + 500]
        orders = list(session.scalars(select(Order).where(Order.id.in_(chunk), Order.channel_account_id == account.id)))
        shipments = list(session.scalars(select(Shipment).where(Shipment.order_id.in_(chunk))))
        refunds = list(session.scalars(select(StoreReturn).where(
            StoreReturn.order_id.in_(chunk), StoreReturn.state.in_(("refunding", "refunded")))))  # fmt: skip
        placed: dict[int, list[str]] = {}
        for order_id, store_id in session.execute(select(OrderLink.order_id, OrderLink.channel_account_id).where(
                OrderLink.order_id.in_(chunk), OrderLink.state.in_(("placing", *LINK_STATES)))):  # fmt: skip
            placed.setdefault(order_id, []).append(labels.get(store_id, "a store"))
        live = _live(session, [f"ship:{s.id}" for s in shipments] + [f"refund:{r.id}" for r in refunds])
        for order in orders:
            facts[order.id] = OrderFacts(
                order_id=order.id, external_id=order.external_id, origin=account.label,
                status=OrderStatus(order.status), channel_status=order.channel_status, updated_at=order.updated_at,
                placed_at=tuple(placed.get(order.id, ())),
                shipments=tuple(ShipmentFacts(s.id, s.tracking_number, s.state, s.sent_at or s.created_at,
                                              f"ship:{s.id}" in live)
                                for s in shipments if s.order_id == order.id),
                refunds=tuple(RefundFacts(r.id, r.external_id, r.state, r.refund_external_id, r.updated_at,
                                          f"refund:{r.id}" in live)
                              for r in refunds if r.order_id == order.id),
            )  # fmt: skip
    return facts


def record_origin_readings(session: Session, account: ChannelAccount, readings: Sequence[OriginReading], *,
                           resync_kind: str, payload: Mapping[str, Any] | None = None,
                           now: datetime) -> DriftCheck | None:  # fmt: skip
    """Compare what an account's own channel showed of its open orders (one reading per order of
    ``orders_to_check``) with the hub, in the check job's unit of work: issues raised and resolved, safe repairs
    made (the order read again with ``resync_kind``, a shipment's tracking sent again, a store return's refund
    asked again). Returns the check's record, or None when suspects wait for their confirmation."""
    facts = _order_facts(session, account, [reading.order_id for reading in readings])
    found: list[tuple[int, Drift]] = []
    for reading in readings:
        order = facts.get(reading.order_id)
        if order is not None:
            found += [(order.order_id, drift) for drift in origin_drift(order, reading, now=now)]

    def repair(order_id: int, drift: Drift) -> bool:
        return _repair_origin(session, account, facts[order_id], drift, resync_kind, now=now)

    return _settle(session, account, ORIGIN, sorted(facts), found, repair, payload or {}, now=now)


def _repair_origin(session: Session, account: ChannelAccount, facts: OrderFacts, drift: Drift, resync_kind: str, *,
                   now: datetime) -> bool:  # fmt: skip
    if drift.repair is Repair.RESYNC:
        enqueue(session, resync_kind, {"order_ids": [facts.external_id], "source": "drift"}, now=now,
                identity_key=f"{resync_kind}:{account.id}:drift:{facts.external_id}", channel_account_id=account.id,
                priority=10, order_id=facts.order_id)  # fmt: skip
        return True
    if drift.repair is Repair.RESEND_TRACKING:
        for shipment_id in drift.shipment_ids:
            shipment = session.get(Shipment, shipment_id, with_for_update=True)
            if shipment is None:
                continue
            shipment.state, shipment.error = "pending", None
            enqueue(session, fulfilment.ship_kind(account.channel), {"shipment_id": shipment.id}, now=now,
                    identity_key=f"ship:{shipment.id}", channel_account_id=account.id, priority=5,
                    order_id=facts.order_id)  # fmt: skip
        return bool(drift.shipment_ids)
    if drift.repair is Repair.ASK_REFUND:
        for return_id in drift.return_ids:
            enqueue(session, returns.refund_kind(account.channel), {"return_id": return_id}, now=now,
                    identity_key=f"refund:{return_id}", channel_account_id=account.id, priority=10,
                    order_id=facts.order_id)  # fmt: skip
        return bool(drift.return_ids)
    return False


# --- settling a check ----------------------------------------------------------------------------------------------


def _open_drift_issues(session: Session, order_ids: Sequence[int]) -> list[SyncIssue]:
    issues: list[SyncIssue] = []
    subjects = [str(order_id) for order_id in order_ids]
    for start in range(0, len(subjects), 500):
        issues += session.scalars(select(SyncIssue).where(
            SyncIssue.kind == ISSUE_KIND, SyncIssue.status == "open", SyncIssue.subject_type == "order",
            SyncIssue.subject_id.in_(subjects[start : start + 500])))  # fmt: skip
    return issues


def _settle(session: Session, account: ChannelAccount, side: str, checked: Sequence[int],
            found: Sequence[tuple[int, Drift]], repair: Callable[[int, Drift], bool], payload: Mapping[str, Any], *,
            now: datetime) -> DriftCheck | None:  # fmt: skip
    """Confirm, report and repair what a check found; resolve what no longer drifts; record the check (or queue the
    confirmation of its suspects, which records it)."""
    confirming = "orders" in payload
    carried = payload.get("carry") or {}
    done_before = set(carried.get("reported") or [])  # confirmed by the check whose suspects these are
    issues = _open_drift_issues(session, checked)
    reported = {issue.fingerprint for issue in issues}
    confirmed: list[tuple[int, Drift]] = []
    suspects: set[int] = set()
    for order_id, drift in found:
        if fingerprint(drift.kind, order_id) in done_before:
            continue
        if confirming or fingerprint(drift.kind, order_id) in reported:
            confirmed.append((order_id, drift))
        else:
            suspects.add(order_id)
    still = {fingerprint(drift.kind, order_id) for order_id, drift in found}
    compared = {str(order_id) for order_id in checked}
    for issue in session.scalars(
        select(SyncIssue).where(
            SyncIssue.kind == ISSUE_KIND, SyncIssue.status == "open", SyncIssue.channel_account_id == account.id
        )
    ):
        details = issue.details or {}
        if details.get("drift") not in SIDES[side]:
            continue
        if issue.subject_id in compared:
            gone = issue.fingerprint not in still
        else:  # its order left the orders compared (shipped, cancelled): what the hub repaired is over
            gone = not confirming and details.get("act") == "none"
        if gone:
            issue.status, issue.resolved_at = "resolved", now
    repaired = 0
    for order_id, drift in confirmed:
        done = drift.repair is not None and bool(repair(order_id, drift))
        repaired += done
        raise_issue(
            session, kind=ISSUE_KIND, severity="warning" if drift.role_to_act == "none" else "error",
            fingerprint=fingerprint(drift.kind, order_id), message=drift.message, now=now,
            channel_account_id=account.id, subject_type="order", subject_id=str(order_id),
            details={"drift": drift.kind.value, "act": drift.role_to_act,
                     "repair": drift.repair.value if drift.repair is not None else None, "repaired": done},
        )  # fmt: skip
    drifted = set(carried.get("drifted") or []) | {order_id for order_id, _ in confirmed}
    kinds: Counter[str] = Counter(carried.get("kinds") or {})
    for kind, orders in _orders_by_kind(confirmed).items():
        kinds[kind] += len(orders)
    repaired += int(carried.get("repaired") or 0)
    orders_checked = int(carried["checked"]) if "checked" in carried else len(checked)
    settle = float(payload.get("settle", SETTLE_SECONDS))
    if suspects and not confirming:
        kind = check_kind(account.channel)
        enqueue(session, kind, {"settle": settle, "side": side, "orders": sorted(suspects),
                                "carry": {"checked": orders_checked, "drifted": sorted(drifted), "kinds": dict(kinds),
                                          "repaired": repaired,
                                          "reported": sorted(fingerprint(d.kind, o) for o, d in confirmed)}},
                now=now, due_at=now + timedelta(seconds=settle), priority=PRIORITY,
                identity_key=f"{kind}:{account.id}:confirm:{side}", channel_account_id=account.id)  # fmt: skip
        return None
    check = DriftCheck(checked_at=now, channel_account_id=account.id, orders_checked=orders_checked,
                       drifted=len(drifted), repaired=repaired, kinds=dict(sorted(kinds.items())))  # fmt: skip
    session.add(check)
    session.flush()
    return check


def _orders_by_kind(confirmed: Iterable[tuple[int, Drift]]) -> dict[str, set[int]]:
    by_kind: dict[str, set[int]] = {}
    for order_id, drift in confirmed:
        by_kind.setdefault(drift.kind.value, set()).add(order_id)
    return by_kind


# --- what people read ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DriftRate:
    since: datetime
    checks: int
    orders_checked: int
    drifted: int
    repaired: int
    kinds: dict[str, int]

    @property
    def rate(self) -> float:
        """Drifted orders per order compared (0 when nothing was compared)."""
        return self.drifted / self.orders_checked if self.orders_checked else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {"since": self.since.isoformat(), "checks": self.checks, "orders_checked": self.orders_checked,
                "drifted": self.drifted, "repaired": self.repaired, "rate": round(self.rate, 6),
                "kinds": dict(sorted(self.kinds.items()))}  # fmt: skip


def drift_rate(session: Session, since: datetime) -> DriftRate:
    """The checks since ``since``, summed: orders compared, orders drifted (per kind), repairs."""
    checks, checked, drifted, repaired = session.execute(
        select(func.count(), func.coalesce(func.sum(DriftCheck.orders_checked), 0),
               func.coalesce(func.sum(DriftCheck.drifted), 0), func.coalesce(func.sum(DriftCheck.repaired), 0))
        .where(DriftCheck.checked_at >= since)
    ).one()  # fmt: skip
    kinds: Counter[str] = Counter()
    if drifted:
        for found in session.scalars(select(DriftCheck.kinds).where(DriftCheck.checked_at >= since,
                                                                    DriftCheck.drifted > 0)):  # fmt: skip
            kinds.update({str(kind): int(count) for kind, count in (found or {}).items()})
    return DriftRate(since, int(checks), int(checked), int(drifted), int(repaired), dict(kinds))


def last_checks(session: Session, *, limit: int = 30) -> list[dict[str, Any]]:
    """The newest checks, with the account each read (a store that also takes orders of its own records one check
    as their fulfiller and one as their origin)."""
    rows = session.execute(
        select(DriftCheck, ChannelAccount).join(ChannelAccount, ChannelAccount.id == DriftCheck.channel_account_id)
        .order_by(DriftCheck.checked_at.desc(), DriftCheck.id.desc()).limit(limit)
    ).all()  # fmt: skip
    return [{"id": check.id, "account_id": account.id, "account": account.label, "channel": account.channel,
             "checked_at": check.checked_at.isoformat(), "orders_checked": check.orders_checked,
             "drifted": check.drifted, "repaired": check.repaired, "kinds": dict(check.kinds or {})}
            for check, account in rows]  # fmt: skip


def open_drift(session: Session, *, limit: int = 200) -> list[dict[str, Any]]:
    """Open drift issues, the newest first, with the order each is about."""
    labels = _labels(session)
    rows = session.scalars(select(SyncIssue).where(SyncIssue.kind == ISSUE_KIND, SyncIssue.status == "open")
                           .order_by(SyncIssue.last_seen_at.desc(), SyncIssue.id.desc()).limit(limit))  # fmt: skip
    issues = list(rows)
    subjects = [int(issue.subject_id or 0) for issue in issues if (issue.subject_id or "").isdigit()]
    orders = {order_id: external for order_id, external in session.execute(
        select(Order.id, Order.external_id).where(Order.id.in_(subjects)))} if subjects else {}  # fmt: skip
    shown = []
    for issue in issues:
        details = issue.details or {}
        order_id = int(issue.subject_id or 0) if (issue.subject_id or "").isdigit() else None
        shown.append({
            "issue_id": issue.id, "kind": details.get("drift"), "act": details.get("act") or "ops",
            "repair": details.get("repair"), "repaired": bool(details.get("repaired")), "message": issue.message,
            "severity": issue.severity, "order_id": order_id,
            "external_order_id": orders.get(order_id) if order_id is not None else None,
            "account": labels.get(issue.channel_account_id) if issue.channel_account_id else None,
            "first_seen_at": issue.first_seen_at.isoformat(), "last_seen_at": issue.last_seen_at.isoformat(),
            "occurrences": issue.occurrences,
        })  # fmt: skip
    return shown


def summary(session: Session, *, now: datetime) -> dict[str, Any]:
    """What the drift page and ``GET /api/v1/drift`` show: the rate over 24 hours, the newest checks, and the open
    drift."""
    return {"last_24h": drift_rate(session, now - DAY).as_dict(), "checks": last_checks(session),
            "open": open_drift(session)}  # fmt: skip
