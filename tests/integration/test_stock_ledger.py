"""The stock ledger: for any interleaving of movements, duplicates and replays, each idempotency key moves stock
once, and the levels equal the sum of the unique movements."""

from __future__ import annotations

import itertools

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from shopbridge.bootstrap import Hub
from shopbridge.domain.stock import StockRule, available_to_sell
from shopbridge.services.stock import StockError, apply_external_movement, record_movement
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


outside_kinds = st.sampled_from(["restock", "return", "sale", "adjustment"])
outside_quantities = st.one_of(
    st.integers(-8, 8), st.sampled_from([10**6, 10**6 + 1, -(10**6), -(10**6) - 1, 2**62, 2**63, -(2**63)])
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(outside_kinds, outside_quantities), min_size=1, max_size=15))
def test_stock_from_outside_stays_a_whole_number_in_range(hub: Hub, movements: list[tuple[str, int]]) -> None:
    """Whatever is reported from outside, on-hand stays an integer within the ceiling, and only a sale (raised as
    oversold) takes it below zero: a quantity out of range, or an adjustment past zero, is refused whole."""
    example = next(examples)
    with transaction(hub.sessions) as session:
        product = Product(title=f"outside {example}")
        session.add_all([product, Location(code=f"O{example}", name="shelf")])
        session.flush()
        session.add(Variant(product_id=product.id, sku=f"OUT-{example}"))
    expected = 0
    for number, (kind, quantity) in enumerate(movements):
        delta = -quantity if kind == "sale" else quantity
        refusable = abs(quantity) > 10**6 or quantity == 0 or (kind != "adjustment" and quantity < 0)
        should_refuse = refusable or (kind == "adjustment" and delta < 0 and expected + delta < 0)
        try:
            with transaction(hub.sessions) as session:
                apply_external_movement(
                    session, sku=f"OUT-{example}", location_code=f"O{example}", kind=kind, quantity=quantity,
                    idempotency_key=f"outside:{example}:{number}", origin="hub", now=hub.clock.now(),
                )  # fmt: skip
        except StockError:
            refused = True
        else:
            refused = False
            expected += delta
        assert refused == should_refuse, (kind, quantity, expected)
        with hub.sessions() as session:
            on_hand = session.scalar(select(StockLevel.on_hand).join(Variant).where(Variant.sku == f"OUT-{example}"))
        assert type(on_hand or 0) is int and (on_hand or 0) == expected
        assert -(10**9) <= expected <= 10**9
