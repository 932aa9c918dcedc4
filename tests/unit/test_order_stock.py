"""The stock steps of an order's life: whatever order the channel's statuses are read in, and however often, each
order ends with its units reserved (open), sold (shipped) or back (cancelled before shipping), never twice."""

from hypothesis import given
from hypothesis import strategies as st

from shopbridge.domain.order_stock import LineStep, Step, stock_steps
from shopbridge.domain.orders import OrderStatus, progress

MUG, TEE = 1, 2
SHIPPED_OR_LATER = [
    status
    for status in OrderStatus
    if status is not OrderStatus.CANCELLED and progress(status) >= progress(OrderStatus.IN_TRANSIT)
]


def test_a_new_order_reserves_and_a_shortfall_is_counted_only_where_the_hub_knows_the_stock() -> None:
    steps = stock_steps(OrderStatus.ON_HOLD, [(MUG, 3), (TEE, 2)], set(), free={MUG: 1, TEE: 0}, known={MUG})
    assert steps == [LineStep(Step.RESERVE, MUG, 3, short=2), LineStep(Step.RESERVE, TEE, 2)]
    assert [(step.on_hand_delta, step.reserved_delta) for step in steps] == [(0, 3), (0, 2)]


def test_negative_free_units_count_as_none() -> None:
    assert stock_steps(OrderStatus.UNPAID, [(MUG, 2)], set(), free={MUG: -4}, known={MUG})[0].short == 2


def test_shipping_sells_what_was_reserved_and_cancelling_releases_it() -> None:
    reserved = {(Step.RESERVE, MUG)}
    assert stock_steps(OrderStatus.IN_TRANSIT, [(MUG, 3)], reserved, free={}, known=set()) == [
        LineStep(Step.SHIP, MUG, 3)
    ]
    released = stock_steps(OrderStatus.CANCELLED, [(MUG, 3)], reserved, free={}, known=set())
    assert released == [LineStep(Step.UNRESERVE, MUG, 3)] and released[0].reserved_delta == -3


def test_an_order_first_seen_shipped_or_cancelled_moves_nothing() -> None:
    for status in [*SHIPPED_OR_LATER, OrderStatus.CANCELLED]:
        assert stock_steps(status, [(MUG, 3)], set(), free={MUG: 10}, known={MUG}) == []


def test_a_cancellation_after_shipping_gives_nothing_back() -> None:
    done = {(Step.RESERVE, MUG), (Step.SHIP, MUG)}
    assert stock_steps(OrderStatus.CANCELLED, [(MUG, 3)], done, free={}, known=set()) == []


@given(
    statuses=st.lists(st.sampled_from(list(OrderStatus)), min_size=1, max_size=8),
    units=st.integers(1, 50),
    free=st.integers(-10, 60),
)
def test_any_sequence_of_reads_moves_each_unit_once(statuses: list[OrderStatus], units: int, free: int) -> None:
    """The hub applies an order's reads in its lifecycle's order (an older read never moves it back), each status
    any number of times, starting anywhere in the life: history read on connect may begin shipped or cancelled."""
    statuses = sorted(statuses, key=progress)
    done: set[tuple[Step, int]] = set()
    on_hand = reserved = 0
    first = statuses[0]
    for status in statuses:
        for step in stock_steps(status, [(MUG, units)], done, free={MUG: free}, known={MUG}):
            assert (step.step, step.variant_id) not in done, "a step happens once"
            done.add((step.step, step.variant_id))
            on_hand += step.on_hand_delta
            reserved += step.reserved_delta
    assert not {(Step.SHIP, MUG), (Step.UNRESERVE, MUG)} <= done, "never both sold and released"
    assert (on_hand, reserved) in {(0, 0), (0, units), (-units, 0)}
    if (Step.RESERVE, MUG) in done and (Step.SHIP, MUG) not in done and (Step.UNRESERVE, MUG) not in done:
        assert reserved == units, "open: its units are held"
    if first is OrderStatus.CANCELLED or first in SHIPPED_OR_LATER:
        assert on_hand == 0, "an order first seen shipped or cancelled never takes units off on-hand"
    if (Step.SHIP, MUG) in done:
        assert on_hand == -units and reserved == 0, "sold: gone from on-hand, no longer held"


@given(units=st.integers(1, 50), free=st.integers(-10, 60), known=st.booleans())
def test_a_reservation_is_short_by_exactly_what_the_truth_cannot_cover(units: int, free: int, known: bool) -> None:
    (step,) = stock_steps(OrderStatus.AWAITING_SHIPMENT, [(MUG, units)], set(), free={MUG: free},
                          known={MUG} if known else set())  # fmt: skip
    assert step.short == (max(0, units - max(free, 0)) if known else 0)
