"""The stock ledger: for any interleaving of movements, duplicates and replays, each idempotency key moves stock
once, and the levels equal the sum of the unique movements."""

from __future__ import annotations

import itertools

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from shopbridge.bootstrap import Hub
from shopbridge.domain.stock import StockRule, available_to_sell
from shopbridge.services.stock import record_movement
from shopbridge.store.db import transaction
from shopbridge.store.tables import Location, Product, StockLevel, Variant

KINDS = ("sale", "return", "restock", "adjustment", "transfer", "reservation", "release")
movement = st.tuples(st.integers(0, 12), st.sampled_from(KINDS), st.integers(-20, 20), st.integers(-5, 5))
examples = itertools.count()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(movement, min_size=1, max_size=30), st.randoms(use_true_random=False))
def test_each_key_moves_stock_once_whatever_the_order(
    hub: Hub, movements: list[tuple[int, str, int, int]], rng: object
) -> None:
    example = next(examples)
    with transaction(hub.sessions) as session:
        product = Product(title=f"example {example}")
        location = Location(code=f"L{example}", name="shelf")
        session.add_all([product, location])
        session.flush()
        variant = Variant(product_id=product.id, sku=f"SKU-{example}")
        session.add(variant)
        session.flush()
        variant_id, location_id = variant.id, location.id

    deliveries = movements + movements[::2]  # every other movement arrives twice
    rng.shuffle(deliveries)  # type: ignore[attr-defined]
    first: dict[int, tuple[int, int]] = {}
    for key, kind, on_hand_delta, reserved_delta in deliveries:
        with transaction(hub.sessions) as session:
            applied = record_movement(
                session, variant_id=variant_id, location_id=location_id, kind=kind,
                idempotency_key=f"{example}:{key}", source="test", now=hub.clock.now(),
                on_hand_delta=on_hand_delta, reserved_delta=reserved_delta,
            )  # fmt: skip
        assert applied == (key not in first)
        first.setdefault(key, (on_hand_delta, reserved_delta))

    with hub.sessions() as session:
        level = session.scalar(
            select(StockLevel).where(StockLevel.variant_id == variant_id, StockLevel.location_id == location_id)
        )
    assert level is not None
    assert level.on_hand == sum(delta for delta, _ in first.values())
    assert level.reserved == sum(delta for _, delta in first.values())
    assert available_to_sell(level.on_hand, level.reserved, StockRule(), hub.clock.now()) >= 0
