"""The release rule: never while ON_HOLD, never once cancelled, never while blocked, after any extra hold."""

from datetime import UTC, datetime, timedelta

import pytest

from shopbridge.domain.orders import OrderStatus, release_decision

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize("status", [OrderStatus.UNPAID, OrderStatus.ON_HOLD, OrderStatus.CANCELLED])
def test_never_before_awaiting_shipment_or_once_cancelled(status: OrderStatus) -> None:
    assert not release_decision(status, now=NOW, reached_awaiting_at=NOW - timedelta(days=1)).release


@pytest.mark.parametrize("status", [OrderStatus.IN_TRANSIT, OrderStatus.DELIVERED, OrderStatus.COMPLETED])
def test_an_order_first_seen_after_shipping_is_not_released(status: OrderStatus) -> None:
    decision = release_decision(status, now=NOW, reached_awaiting_at=NOW)
    assert not decision.release
    assert decision.reason.endswith("already shipped outside the hub")


def test_awaiting_shipment_is_released() -> None:
    decision = release_decision(OrderStatus.AWAITING_SHIPMENT, now=NOW, reached_awaiting_at=NOW)
    assert decision.release


def test_a_blocked_or_already_released_order_is_not_released() -> None:
    assert not release_decision(OrderStatus.AWAITING_SHIPMENT, now=NOW, reached_awaiting_at=NOW, blocked=True).release
    assert not release_decision(
        OrderStatus.AWAITING_SHIPMENT, now=NOW, reached_awaiting_at=NOW, already_released=True
    ).release


def test_the_shops_extra_hold_delays_release_and_says_until_when() -> None:
    decision = release_decision(
        OrderStatus.AWAITING_SHIPMENT, now=NOW, reached_awaiting_at=NOW, extra_hold=timedelta(minutes=30)
    )
    assert not decision.release
    assert decision.not_before == NOW + timedelta(minutes=30)
    later = release_decision(
        OrderStatus.AWAITING_SHIPMENT, now=NOW + timedelta(minutes=30), reached_awaiting_at=NOW,
        extra_hold=timedelta(minutes=30),
    )  # fmt: skip
    assert later.release
