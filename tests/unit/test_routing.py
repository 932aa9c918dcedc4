"""The routing rule: a location with every unit first, then the merchant's order of locations; never split."""

from __future__ import annotations

from shopbridge.domain.routing import route

LOCATIONS = ["downtown", "mall", "airport"]


def test_the_best_location_with_every_unit_comes_first() -> None:
    available = {("downtown", "TEE"): 1, ("mall", "TEE"): 5, ("airport", "TEE"): 9, ("mall", "MUG"): 1}
    routed = route({"TEE": 2}, LOCATIONS, available)
    assert routed.candidates == ("mall", "airport")
    assert routed.shortages == {"downtown": {"TEE": 1}}
    # Every line counts: the mall has the tee but not two mugs, so only the airport... which has no mug at all.
    both = route({"TEE": 2, "MUG": 2}, LOCATIONS, available)
    assert both.candidates == ()
    assert both.explain() == ("no location has every unit: downtown lacks 2 MUG, 1 TEE; mall lacks 1 MUG; "
                              "airport lacks 2 MUG")  # fmt: skip


def test_a_location_that_refused_is_passed_over_and_oversold_counts_as_none() -> None:
    available = {("downtown", "TEE"): -3, ("mall", "TEE"): 2, ("airport", "TEE"): 2}
    assert route({"TEE": 1}, LOCATIONS, available).candidates == ("mall", "airport")
    assert route({"TEE": 1}, LOCATIONS, available, excluded={"mall"}).candidates == ("airport",)
    assert route({"TEE": 1}, LOCATIONS, available).shortages == {"downtown": {"TEE": 1}}
    assert route({"TEE": 1}, [], available).explain() == "the account has no active location"
