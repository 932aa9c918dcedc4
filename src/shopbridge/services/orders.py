"""Order intake: the idempotent upsert every channel converges on, SKU matching, blocking, and the release gate.

Webhook and poll both end here, keyed on (channel account, external id); an older read never overwrites a newer
one, so duplicated and reordered events are harmless.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, bindparam, delete, insert, select, update
from sqlalchemy.orm import Session

from shopbridge.domain.matching import LINE_REASONS, BlockReason, Catalogue, currency_problem
from shopbridge.domain.money import Money
from shopbridge.domain.order_stock import Step, stock_steps
from shopbridge.domain.orders import CancelReason, Order, OrderStatus, ReleaseDecision, progress, release_decision
from shopbridge.runtime.jobs import enqueue
from shopbridge.services import fulfilment
from shopbridge.services.availability import in_chunks, with_known_truth
from shopbridge.services.stock import LedgerLine, fulfilment_location, record_movements
from shopbridge.store.db import dialect_insert
from shopbridge.store.sync_issues import order_blocked_fingerprint, raise_issue, resolve_issue
from shopbridge.store.tables import (
    ChannelAccount,
    ChannelListing,
    OrderEvent,
    OrderLine,
    OrderStatusChange,
    Product,
    StockLevel,
    StockMovement,
    Variant,
)
from shopbridge.store.tables import Order as OrderRow

RELEASE_DUE = "orders.release_due"
# The tables written many rows at a time with Core statements (cheaper than the ORM's unit of work).
ORDERS = cast(Table, OrderRow.__table__)
ORDER_LINES = cast(Table, OrderLine.__table__)
STATUS_CHANGES = cast(Table, OrderStatusChange.__table__)


@dataclass(frozen=True)
class Intake:
    order_id: int
    created: bool
    status_changed: bool
    stale: bool
    released: bool
    blocked_reason: str | None


def read_catalogue(session: Session, account_id: int, orders: list[Order]) -> Catalogue:
    """The catalogue entries the lines of ``orders`` can match, in three reads."""
    sku_ids = sorted({line.external_sku_id for order in orders for line in order.lines})
    seller_skus = sorted({line.seller_sku for order in orders for line in order.lines if line.seller_sku})
    by_listing: dict[str, int] = {}
    for chunk in in_chunks(sku_ids):
        by_listing.update(
            (sku_id, variant_id)
            for sku_id, variant_id in session.execute(
                select(ChannelListing.external_sku_id, ChannelListing.variant_id).where(
                    ChannelListing.channel_account_id == account_id,
                    ChannelListing.external_sku_id.in_(chunk),
                    ChannelListing.variant_id.is_not(None),
                )
            )
            if variant_id is not None
        )
    by_seller_sku: dict[str, int] = {}
    for chunk in in_chunks(seller_skus):
        by_seller_sku.update(session.execute(select(Variant.sku, Variant.id).where(Variant.sku.in_(chunk))).all())
    deleted: set[int] = set()
    for ids in in_chunks(sorted({*by_listing.values(), *by_seller_sku.values()})):
        deleted.update(
            session.scalars(
                select(Variant.id)
                .join(Product, Product.id == Variant.product_id)
                .where(Variant.id.in_(ids), Product.status == "deleted")
            )
        )
    return Catalogue(by_listing, by_seller_sku, frozenset(deleted))


def _minor(money: Money | None) -> int | None:
    return None if money is None else money.to_minor()


def _history(session: Session, changes: list[tuple[int, Order]], source: str, now: datetime) -> None:
    """Record each (order id, order as read) as a status change, in one statement."""
    if changes:
        session.execute(insert(STATUS_CHANGES), [
            {"order_id": order_id, "channel_status": order.channel_status, "status": order.status.value,
             "source": source, "occurred_at": order.updated_at, "recorded_at": now}
            for order_id, order in changes
        ])  # fmt: skip


def _columns(order: Order, now: datetime) -> dict[str, Any]:
    """The order's columns as read from the channel (all but its identity, block, release and oversold state)."""
    return {
        "channel_status": order.channel_status, "status": order.status.value, "currency": order.currency,
        "total_minor": order.total.to_minor(), "subtotal_minor": _minor(order.subtotal),
        "shipping_minor": _minor(order.shipping), "tax_minor": _minor(order.tax),
        "payment_method": order.payment_method, "is_cod": order.is_cod, "buyer": dict(order.buyer),
        "recipient": dict(order.recipient),
        "deadlines": {key: int(value.timestamp()) for key, value in order.deadlines.items()},
        "dispatch_by": order.dispatch_by, "buyer_name": order.buyer_name,
        "packages": {"packages": list(order.packages), "warehouse_id": order.warehouse_id},
        "channel_created_at": order.created_at, "channel_updated_at": order.updated_at, "updated_at": now,
    }  # fmt: skip


def _awaiting_shipment(order: Order) -> bool:
    """The order has reached AWAITING_SHIPMENT (or gone beyond it) and is not cancelled."""
    return order.status is not OrderStatus.CANCELLED and progress(order.status) >= progress(
        OrderStatus.AWAITING_SHIPMENT
    )


def _line_rows(order_id: int, order: Order, catalogue: Catalogue) -> tuple[list[dict[str, Any]], list[tuple[str, str]]]:
    """The order's lines as order_lines rows, matched against the catalogue, and the problems matching found."""
    rows, problems = [], []
    for line in order.lines:
        match = catalogue.match(line.external_sku_id, line.seller_sku, line.title)
        if match.problem:
            problems.append(match.problem)
        rows.append({
            "order_id": order_id, "variant_id": match.variant_id, "sku": line.seller_sku,
            "external_sku_id": line.external_sku_id, "external_product_id": line.external_product_id,
            "title": line.title, "quantity": line.quantity, "unit_price_minor": line.unit_price.to_minor(),
            "currency": line.unit_price.currency, "line_item_ids": {"ids": list(line.line_item_ids)},
        })  # fmt: skip
    return rows, problems


@dataclass
class NewOrder:
    """An order created by ``create_orders``: what settling its stock and releasing it read, without an ORM row."""

    id: int
    external_id: str
    status: str
    packages: dict[str, Any]
    oversold_units: int = 0


@dataclass(frozen=True)
class NewLine:
    variant_id: int | None
    sku: str | None
    external_sku_id: str | None
    quantity: int
    line_item_ids: dict[str, Any]


def create_orders(
    session: Session,
    account: ChannelAccount,
    orders: list[Order],
    *,
    source: str,
    now: datetime,
    catalogue: Catalogue,
    settlement: Settlement,
) -> list[Order]:
    """Create the orders of a batch that the hub does not have yet, in a few statements for the whole batch (the
    orders, their lines, their history), then block, release and settle each as ``upsert_order`` would. Returns
    the orders it did not create (the hub had them already, or one came twice), for ``upsert_order``."""
    firsts: dict[str, Order] = {}
    rest: list[Order] = []
    for order in orders:
        if order.external_id in firsts:
            rest.append(order)
        else:
            firsts[order.external_id] = order
    if not firsts:
        return rest
    hold = extra_hold(account)
    decisions: dict[str, ReleaseDecision] = {}
    blocks: dict[str, tuple[str, str] | None] = {}
    matched: dict[str, list[dict[str, Any]]] = {}  # each order's lines, their order id set once it is known
    values = []
    for external_id, order in firsts.items():
        matched[external_id], problems = _line_rows(0, order, catalogue)
        blocks[external_id] = problem = currency_problem(account.currency, order.currency) or (
            problems[0] if problems else None
        )
        awaiting = now if _awaiting_shipment(order) else None
        decision = release_decision(order.status, now=now, reached_awaiting_at=awaiting, extra_hold=hold,
                                    blocked=problem is not None)  # fmt: skip
        decisions[external_id] = decision
        values.append({
            **_columns(order, now), "channel_account_id": account.id, "external_id": external_id, "created_at": now,
            "blocked_reason": problem[0] if problem else None, "blocked_message": problem[1] if problem else None,
            "oversold_units": 0, "awaiting_shipment_at": awaiting, "released_at": now if decision.release else None,
        })  # fmt: skip
    inserted = session.execute(
        dialect_insert(session)(ORDERS)
        .on_conflict_do_nothing(index_elements=["channel_account_id", "external_id"])
        .returning(ORDERS.c.id, ORDERS.c.external_id),
        values,
    ).all()
    created = {str(external_id): int(order_id) for order_id, external_id in inserted}
    rest.extend(order for external_id, order in firsts.items() if external_id not in created)
    if not created:
        return rest
    line_rows: list[dict[str, Any]] = []
    new_orders: list[tuple[NewOrder, list[NewLine], tuple[str, str] | None]] = []
    for row_values in values:
        external_id = row_values["external_id"]
        if external_id not in created:
            continue
        order_id, order = created[external_id], firsts[external_id]
        rows = [{**row, "order_id": order_id} for row in matched[external_id]]
        line_rows.extend(rows)
        lines = [NewLine(r["variant_id"], r["sku"], r["external_sku_id"], r["quantity"], r["line_item_ids"])
                 for r in rows]  # fmt: skip
        new_orders.append(
            (NewOrder(order_id, external_id, order.status.value, row_values["packages"]), lines, blocks[external_id])
        )
    if line_rows:
        session.execute(insert(ORDER_LINES), line_rows)
    _history(session, [(new.id, firsts[new.external_id]) for new, _, _ in new_orders], source, now)
    for new, lines, blocked in new_orders:
        if blocked is not None:
            _raise_blocked(session, account, new.id, new.external_id, blocked, now)
        _release_effects(session, account, new, decisions[new.external_id], now, lines)
        settle_stock(session, account, new, now=now, new=True, settlement=settlement, lines=lines)
    oversold = [{"order_id": new.id, "units": new.oversold_units} for new, _, _ in new_orders if new.oversold_units]
    if oversold:
        session.execute(
            update(ORDERS).where(ORDERS.c.id == bindparam("order_id")).values(oversold_units=bindparam("units")),
            oversold,
        )
    return rest


def upsert_order(
    session: Session,
    account: ChannelAccount,
    order: Order,
    *,
    source: str,
    now: datetime,
    force: bool = False,
    catalogue: Catalogue | None = None,
    settlement: Settlement | None = None,
    known: bool = False,
) -> Intake:
    """Create or update the hub's copy of a channel order, then apply the release gate. A read that is not newer
    than the hub's copy changes nothing (and writes nothing), unless ``force`` asks to re-run matching after a fix.
    ``catalogue`` is what the lines are matched against (read_catalogue; read here for this order if not given);
    ``settlement`` gathers the stock movements of a batch of orders (see Settlement; written here if not given);
    ``known``: the caller knows the hub has the order (``create_orders`` found it), so no insert is tried."""
    # Create the row if it is missing, then lock it: two jobs upserting one new order serialize on the lock
    # instead of racing to insert (which would fail one of them on PostgreSQL). Orders are never deleted.
    created = not known and (
        session.execute(
            dialect_insert(session)(OrderRow)
            .values(
                channel_account_id=account.id, external_id=order.external_id, created_at=now, **_columns(order, now)
            )
            .on_conflict_do_nothing(index_elements=["channel_account_id", "external_id"])
            .returning(OrderRow.__table__.c.id)
        ).scalar_one_or_none()
        is not None
    )  # fmt: skip
    row = session.scalar(
        select(OrderRow)
        .where(OrderRow.channel_account_id == account.id, OrderRow.external_id == order.external_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    assert row is not None
    if not created:
        stored = (row.channel_updated_at, progress(OrderStatus(row.status)))
        read = (order.updated_at, progress(order.status))
        if read < stored or (read == stored and row.channel_status == order.channel_status and not force):
            return Intake(row.id, False, False, read < stored, False, row.blocked_reason)
    status_changed = created or row.status != order.status.value or row.channel_status != order.channel_status
    for column, value in _columns(order, now).items():
        setattr(row, column, value)
    if _awaiting_shipment(order):
        row.awaiting_shipment_at = row.awaiting_shipment_at or now
    session.flush()

    problems: list[tuple[str, str]] = []
    if currency := currency_problem(account.currency, order.currency):
        problems.append(currency)
    lines_rewritten = created or force or not _same_lines(session, row.id, order)
    if not lines_rewritten:
        # A status change re-reads the same lines: keep them, and keep a line problem found before (a retry
        # after a fix passes force=True to match again).
        if row.blocked_reason in LINE_REASONS:
            problems.append((str(row.blocked_reason), str(row.blocked_message)))
    else:
        if not created:
            session.execute(delete(OrderLine).where(OrderLine.order_id == row.id))
        line_rows, line_problems = _line_rows(row.id, order, catalogue or read_catalogue(session, account.id, [order]))
        problems.extend(line_problems)
        if line_rows:
            session.execute(insert(ORDER_LINES), line_rows)
    if row.blocked_reason == BlockReason.STORE_REFUSED:
        # The store that fulfils the order refused it: only placing it again (services/fulfilment.py) lifts that.
        problems.append((str(row.blocked_reason), str(row.blocked_message)))
    _set_blocked(session, account, row, problems[0] if problems else None, now)
    if status_changed:
        _history(session, [(row.id, order)], source, now)
    session.flush()
    released = apply_release_gate(session, account, row, now=now)
    if created or status_changed or lines_rewritten:
        settle_stock(session, account, row, now=now, new=created, settlement=settlement)
    return Intake(row.id, created, status_changed, False, released, row.blocked_reason)


def cancel_here(session: Session, order_id: int, *, now: datetime, source: str) -> bool:
    """Cancel an order the hub itself holds the truth of (one staff entered): its status becomes cancelled with a
    history entry, its reserved units are released, and a store it was placed in is asked to cancel it, as for any
    channel's cancellation. Returns False for an order already cancelled."""
    row = session.get(OrderRow, order_id, with_for_update=True, populate_existing=True)
    if row is None:
        raise LookupError(f"order {order_id} does not exist")
    if row.status == OrderStatus.CANCELLED:
        return False
    account = session.get(ChannelAccount, row.channel_account_id)
    assert account is not None
    row.status, row.channel_status, row.dispatch_by = OrderStatus.CANCELLED.value, "CANCELLED", None
    row.channel_updated_at = row.updated_at = now
    session.execute(insert(STATUS_CHANGES), [{"order_id": row.id, "channel_status": row.channel_status,
                                             "status": row.status, "source": source, "occurred_at": now,
                                             "recorded_at": now}])  # fmt: skip
    session.flush()
    apply_release_gate(session, account, row, now=now)
    settle_stock(session, account, row, now=now)
    return True


def _line_key(sku_id: str, seller_sku: str | None, quantity: int, minor: int, currency: str,
              ids: list[str]) -> tuple[object, ...]:  # fmt: skip
    return (sku_id, seller_sku or "", quantity, minor, currency, tuple(ids))


def _same_lines(session: Session, order_id: int, order: Order) -> bool:
    stored = session.execute(
        select(OrderLine.external_sku_id, OrderLine.sku, OrderLine.quantity, OrderLine.unit_price_minor,
               OrderLine.currency, OrderLine.line_item_ids).where(OrderLine.order_id == order_id)
    ).all()  # fmt: skip
    return sorted(_line_key(r[0], r[1], r[2], r[3], r[4], [str(i) for i in (r[5] or {}).get("ids", [])])
                  for r in stored) == sorted(
        _line_key(line.external_sku_id, line.seller_sku, line.quantity, line.unit_price.to_minor(),
                  line.unit_price.currency, [str(i) for i in line.line_item_ids])
        for line in order.lines
    )  # fmt: skip


def block_unreadable(
    session: Session,
    account: ChannelAccount,
    external_id: str,
    channel_status: str | None,
    problem: str,
    *,
    now: datetime,
) -> int:
    """An order whose payload cannot be read is still kept, as Blocked with the field named, so it is never lost."""
    row = session.scalar(
        select(OrderRow).where(OrderRow.channel_account_id == account.id, OrderRow.external_id == external_id)
    )
    if row is None:
        status = OrderStatus.UNPAID.value
        row = OrderRow(
            channel_account_id=account.id, external_id=external_id, channel_status=channel_status or "UNKNOWN",
            status=status, currency=account.currency or "USD", total_minor=0, channel_created_at=now,
            channel_updated_at=now, created_at=now, updated_at=now,
        )  # fmt: skip
        session.add(row)
        session.flush()
    _set_blocked(session, account, row, (BlockReason.MISSING_FIELD, problem), now)
    return row.id


def _set_blocked(
    session: Session, account: ChannelAccount, row: OrderRow, problem: tuple[str, str] | None, now: datetime
) -> None:
    fingerprint = order_blocked_fingerprint(row.id)
    if problem is None:
        if row.blocked_reason is not None:
            resolve_issue(session, fingerprint, now)
        row.blocked_reason = row.blocked_message = None
        return
    row.blocked_reason, row.blocked_message = problem
    _raise_blocked(session, account, row.id, row.external_id, problem, now)


def _raise_blocked(
    session: Session, account: ChannelAccount, order_id: int, external_id: str, problem: tuple[str, str], now: datetime
) -> None:
    raise_issue(
        session, kind="order_blocked", severity="error", fingerprint=order_blocked_fingerprint(order_id),
        message=f"{account.label} order {external_id} is blocked: {problem[1]}", now=now,
        channel_account_id=account.id, subject_type="order", subject_id=str(order_id), details={"reason": problem[0]},
    )  # fmt: skip


def extra_hold(account: ChannelAccount) -> timedelta:
    return timedelta(seconds=float((account.settings or {}).get("extra_hold_seconds", 0)))


def apply_release_gate(session: Session, account: ChannelAccount, row: OrderRow, *, now: datetime) -> bool:
    """Release to fulfilment when the gate allows; returns True if this call released the order."""
    status = OrderStatus(row.status)
    if status is OrderStatus.CANCELLED and row.released_at is not None:
        _cancel_after_release(session, account, row, now)
        return False
    decision = release_decision(
        status, now=now, reached_awaiting_at=row.awaiting_shipment_at, extra_hold=extra_hold(account),
        blocked=row.blocked_reason is not None, already_released=row.released_at is not None,
    )  # fmt: skip
    if decision.release:
        row.released_at = now
    return _release_effects(session, account, row, decision, now)


def _release_effects(
    session: Session,
    account: ChannelAccount,
    row: OrderRow | NewOrder,
    decision: ReleaseDecision,
    now: datetime,
    lines: Sequence[OrderLine | NewLine] | None = None,
) -> bool:
    """What a release decision asks for: a re-check at the end of an extra hold, or the released event (with
    ``lines``, read here if not given). The caller has set the release time. Returns whether it released."""
    if decision.not_before is not None:
        enqueue(session, RELEASE_DUE, {"order_id": row.id}, now=now, due_at=decision.not_before,
                identity_key=f"release:{row.id}", channel_account_id=account.id, order_id=row.id)  # fmt: skip
    if not decision.release:
        return False
    if lines is None:
        lines = session.scalars(select(OrderLine).where(OrderLine.order_id == row.id)).all()
    ordered = sorted(lines, key=lambda line: (line.variant_id is not None, line.variant_id or 0))
    _emit(session, account, row, "released", now, {"lines": [_line_payload(line) for line in ordered]})
    fulfilment.hand_over(session, account, row.id, now=now)
    return True


def _cancel_after_release(session: Session, account: ChannelAccount, row: OrderRow, now: datetime) -> None:
    if session.scalar(select(OrderEvent.id).where(OrderEvent.order_id == row.id, OrderEvent.kind == "cancelled")):
        return
    _emit(session, account, row, "cancelled", now, {"after_release": True})
    fulfilment.cancel_in_fulfillers(session, row.id, CancelReason.BUYER, now=now)


# The ledger's kind of movement for each step of an order's life.
MOVEMENT_KINDS = {Step.RESERVE: "reservation", Step.UNRESERVE: "release", Step.SHIP: "sale"}


def _step_key(step: Step, order_id: int, variant_id: int) -> str:
    return f"{step.value}:{order_id}:{variant_id}"


@dataclass
class Settlement:
    """The stock effects of a batch of orders, written together: the ledger lines of every order go in one
    ``record_movements`` call, so a chunk of orders costs one ledger write and one round of pushes rather than a
    few statements each. What the orders need to read (their location, which SKUs have a known truth, the free
    units) is read once per SKU; free units are then counted down in memory as the batch's orders reserve, so each
    order's oversold check sees the orders before it."""

    lines: dict[str, list[LedgerLine]] = field(default_factory=dict)  # by movement source (the channel)
    locations: dict[tuple[int, str | None], int | None] = field(default_factory=dict)
    known: dict[int, bool] = field(default_factory=dict)
    free: dict[tuple[int, int], int] = field(default_factory=dict)

    def location(self, session: Session, account_id: int, warehouse: str | None) -> int | None:
        if (account_id, warehouse) not in self.locations:
            self.locations[account_id, warehouse] = fulfilment_location(session, account_id, warehouse)
        return self.locations[account_id, warehouse]

    def known_truth(self, session: Session, variant_ids: list[int]) -> set[int]:
        missing = [variant_id for variant_id in variant_ids if variant_id not in self.known]
        found = with_known_truth(session, missing)
        self.known.update((variant_id, variant_id in found) for variant_id in missing)
        return {variant_id for variant_id in variant_ids if self.known[variant_id]}

    def free_units(self, session: Session, variant_ids: list[int], location_id: int) -> dict[int, int]:
        missing = sorted(v for v in variant_ids if (v, location_id) not in self.free)
        read = _free_units(session, missing, location_id)
        self.free.update(((v, location_id), read.get(v, 0)) for v in missing)
        return {v: self.free[v, location_id] for v in variant_ids}

    def add(self, source: str, line: LedgerLine) -> None:
        self.lines.setdefault(source, []).append(line)
        key = (line.variant_id, line.location_id)
        if key in self.free:
            self.free[key] += line.on_hand_delta - line.reserved_delta

    def write(self, session: Session, *, now: datetime) -> None:
        """Record what the batch's orders settled, and start over (the reads stay valid within the transaction)."""
        for source, lines in sorted(self.lines.items()):
            record_movements(session, lines, source=source, now=now)
        self.lines.clear()


def settle_stock(
    session: Session,
    account: ChannelAccount,
    row: OrderRow | NewOrder,
    *,
    now: datetime,
    new: bool = False,
    settlement: Settlement | None = None,
    lines: Sequence[OrderLine | NewLine] | None = None,
) -> None:
    """The order's effect on the stock truth, each step once (idempotency keys): a received order reserves its
    units; shipment turns the reservation into a sale; a cancellation before shipment releases it. An order first
    seen already shipped moves nothing. An order for units the truth no longer has is flagged oversold (reserved
    all the same: it is owed) with a sync issue. ``new``: the order was created in this transaction, so none of
    its steps can be recorded yet. With ``settlement`` the movements join that batch (the caller writes it before
    committing); without, they are written here. ``lines``: the order's lines, if the caller has them."""
    batch = settlement or Settlement()
    status = OrderStatus(row.status)
    # The location its stock comes from: where a fulfilling account routed it (its reservation moved there), else
    # the one its channel warehouse maps to.
    routed = row.fulfilment_location_id if isinstance(row, OrderRow) else None
    location = routed or batch.location(session, account.id, _warehouse(row))
    if location is None:
        return
    # Stock rows are locked in variant order, so concurrent jobs settling overlapping SKUs queue instead of
    # deadlocking (PostgreSQL); a deadlock that still happens is a retryable error.
    if lines is None:
        lines = session.scalars(select(OrderLine).where(OrderLine.order_id == row.id)).all()
    lines = sorted((line for line in lines if line.variant_id is not None), key=lambda line: line.variant_id or 0)
    if not lines:
        return
    status_lines = [(line.variant_id, line.quantity) for line in lines if line.variant_id is not None]
    keys = {_step_key(step, row.id, variant_id): (step, variant_id) for variant_id, _ in status_lines for step in Step}
    done = set() if new else {
        keys[key] for key in session.scalars(select(StockMovement.idempotency_key)
                                             .where(StockMovement.idempotency_key.in_(list(keys))))
    }  # fmt: skip
    reserving = [variant_id for variant_id, _ in status_lines if (Step.RESERVE, variant_id) not in done]
    truth = batch.known_truth(session, [] if status is OrderStatus.CANCELLED else reserving)
    free = batch.free_units(session, sorted(truth), location)
    by_variant = {line.variant_id: line for line in lines}
    short: list[str] = []
    unfillable: list[dict[str, Any]] = []
    reference = f"order:{row.id}"
    for step in stock_steps(status, status_lines, done, free=free, known=truth):
        line = by_variant[step.variant_id]
        if step.short:
            row.oversold_units += step.short
            short.append(f"{line.sku or line.external_sku_id}: ordered {step.units}, {step.units - step.short} free")
            unfillable.append({"sku_id": line.external_sku_id, "quantity": step.short})
        batch.add(account.channel, LedgerLine(_step_key(step.step, row.id, step.variant_id), step.variant_id,
                                              location, MOVEMENT_KINDS[step.step], step.on_hand_delta, reference,
                                              step.reserved_delta))  # fmt: skip
    if settlement is None:
        batch.write(session, now=now)
    if short:
        raise_issue(
            session, kind="oversold", severity="error", fingerprint=f"oversold:{row.id}",
            message=f"{account.label} order {row.external_id} sold stock the hub no longer had ({'; '.join(short)})",
            now=now, channel_account_id=account.id, subject_type="order", subject_id=str(row.id),
            details={"oversold_units": row.oversold_units},
        )  # fmt: skip
        if (account.settings or {}).get("cancel_oversold"):
            kind = f"{account.channel}.cancel_oversold"
            enqueue(session, kind, {"order_id": row.id, "external_id": row.external_id, "skus": unfillable}, now=now,
                    channel_account_id=account.id, identity_key=f"{kind}:{row.id}", priority=5,
                    order_id=row.id)  # fmt: skip


def _free_units(session: Session, variant_ids: list[int], location_id: int) -> dict[int, int]:
    """On-hand minus reserved per variant at a location, rows locked in variant order (PostgreSQL)."""
    if not variant_ids:
        return {}
    rows = session.execute(
        select(StockLevel.variant_id, StockLevel.on_hand, StockLevel.reserved)
        .where(StockLevel.variant_id.in_(variant_ids), StockLevel.location_id == location_id)
        .order_by(StockLevel.variant_id)
        .with_for_update()
    ).all()
    return {variant_id: on_hand - reserved for variant_id, on_hand, reserved in rows}


def _warehouse(row: OrderRow | NewOrder) -> str | None:
    warehouse = (row.packages or {}).get("warehouse_id")
    return str(warehouse) if warehouse else None


def _line_payload(line: OrderLine | NewLine) -> dict[str, Any]:
    return {"variant_id": line.variant_id, "sku": line.sku, "quantity": line.quantity,
            "line_item_ids": (line.line_item_ids or {}).get("ids", [])}  # fmt: skip


def _emit(
    session: Session,
    account: ChannelAccount,
    row: OrderRow | NewOrder,
    kind: str,
    now: datetime,
    payload: dict[str, Any],
) -> None:
    payload = {"external_id": row.external_id, "channel": account.channel, **payload}
    session.add(OrderEvent(order_id=row.id, channel_account_id=account.id, kind=kind, created_at=now, payload=payload))


def release_due(session: Session, order_id: int, *, now: datetime) -> bool:
    """The delayed re-check after a shop's extra hold."""
    row = session.get(OrderRow, order_id)
    if row is None:
        return False
    account = session.get(ChannelAccount, row.channel_account_id)
    assert account is not None
    return apply_release_gate(session, account, row, now=now)
