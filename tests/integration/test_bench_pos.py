"""A smoke run of the POS benchmark's core: a tiny load through the whole loop with one drift of each kind, the
result's shape and its invariants (no refund doubled or missing, every injection found, no false drift; no timing
assertions: those figures belong to `shopbridge bench pos`); and its counting on a made-up reading."""

from __future__ import annotations

from typing import Any

import pytest
from rich.console import Console
from rich.progress import Progress

from shopbridge.bench.pos import (
    DOWNTOWN,
    FIGURES,
    Injection,
    Observed,
    Outbox,
    Placed,
    Returned,
    Scenario,
    analyse,
    measure_pos,
)

pytestmark = pytest.mark.slow


def test_a_small_clean_run_refunds_each_return_once_finds_every_drift_and_reports_every_key() -> None:
    scenario = Scenario(seconds=4, tiktok_rate=3, till_rate=3, return_rate=0.5, drift_every=4, drift_offset=1,
                        drift_check_seconds=6, drift_settle_seconds=2, settle_seconds=60)  # fmt: skip
    with Progress(console=Console(quiet=True), disable=True) as progress:
        result = measure_pos(scenario, progress=progress, label="smoke")
    assert result["starting_stock_in_sync"]
    assert result["tiktok_orders_placed"] == 12 and result["tiktok_orders_refused"] == 0
    assert result["staff_errors"] == []
    for name in FIGURES:
        assert {"n", "p50", "p99", "unfinished", "is_lower_bound"} <= result[name].keys()
    assert result["ship_to_tiktok_ms"]["unfinished"] == 0
    # one injection of each kind, on orders 1, 5 and 9: each made (or overtaken by the associates) and found
    assert result["drift_injected"] + result["drift_not_injected"] == 3 and result["drift_injected"] >= 1
    assert result["drift_detected"] + result["drift_detected_late"] == result["drift_injected"]
    assert result["drift_missed"] == 0
    assert result["false_drift"] == 0 and result["drift_from_lost_events"] == result["drift_from_late_events"] == 0
    counts = result["counts"]
    assert counts["returns_silent"] == result["drift_by_kind"]["silent_return"].get("injected", 0)
    assert result["refunds_doubled"] == result["refunds_missing"] == result["refunds_wrong_lines"] == 0
    assert result["return_to_refund_ms"]["n"] == counts["returns_with_event"]
    assert result["oversold_units"] == 0
    assert result["pos_event_delivery"]["by_status"].get("lost", 0) == 0
    assert result["hub_cpu"]["events"] >= 12


# --- the counting, on a made-up reading ---------------------------------------------------------------------------


def _task(order_id: str, status: str, *, at: str = "2026-12-05T10:00:02.000Z", silent: bool = False) -> dict[str, Any]:
    history = [{"status": "open", "at": "2026-12-05T10:00:01.000Z", "by": "api", "silent": False}]
    if status != "open":
        history.append({"status": status, "at": at, "by": "associates", "silent": silent})
    return {"task_id": f"T-{order_id}", "task_ref": f"sb-{order_id}", "location_id": DOWNTOWN, "status": status,
            "order_ref": {"channel": "tiktok", "order_id": order_id}, "lines": [{"sku": "MUG", "quantity": 2}],
            "history": history}  # fmt: skip


T0 = 1_796_464_800.0  # 2026-12-05T10:00:00Z


def _seen(**changes: Any) -> Observed:
    placed = [Placed(0, T0, "A", "MUG", 2), Placed(1, T0, "B", "MUG", 2, "silent_ship"),
              Placed(2, T0, "C", "MUG", 2), Placed(3, T0, "D", "MUG", 2), Placed(4, T0, "E", "MUG", 2)]  # fmt: skip
    tasks = [_task("A", "shipped"), _task("B", "shipped", silent=True), _task("C", "shipped"),
             _task("D", "shipped"), _task("E", "shipped")]  # fmt: skip
    sales = [{"sale_id": "S-1", "location_id": DOWNTOWN, "occurred_at": "2026-12-05T10:00:03.000Z", "silent": False,
              "lines": [{"sku": "SOCK", "quantity": 2}, {"sku": "MUG", "quantity": 1}],
              "levels": [{"sku": "SOCK", "on_hand": 598, "allocated": 0}, {"sku": "MUG", "on_hand": 500,
                                                                          "allocated": 4}]}]  # fmt: skip
    outbox = Outbox(
        statuses={"A": {"AWAITING_COLLECTION": T0 + 2.5}, "B": {"AWAITING_COLLECTION": T0 + 9.0},
                  "C": {"AWAITING_COLLECTION": T0 + 3.0}, "D": {"AWAITING_COLLECTION": T0 + 2.2},
                  "E": {}},
        refunds={"C": {"R1": T0 + 11.0}, "D": {"R2": T0 + 12.0, "R3": T0 + 13.0}},
    )  # fmt: skip
    returns = [Returned("C", "T-C", "RET-1", T0 + 10.0, {"MUG": 1}, False),
               Returned("D", "T-D", "RET-2", T0 + 10.0, {"MUG": 2}, False),
               Returned("E", "T-E", "RET-3", T0 + 10.0, {"MUG": 1}, True)]  # fmt: skip
    hub = {
        "issues": [{"order_id": "B", "kind": "shipped_not_recorded", "first_seen": T0 + 8.0},
                   {"order_id": "E", "kind": "returned_not_recorded", "first_seen": T0 + 30.0},
                   {"order_id": "A", "kind": "shipped_not_recorded", "first_seen": T0 + 20.0}],
        "blocked": [{"order_id": "F", "reason": "store_refused", "message": "", "units": 5}],
        "oversold": {"A": 1},
        "seller_refunds": [{"order_id": "C", "skus": ["MUG", "MUG"]}, {"order_id": "D", "skus": ["MUG", "MUG"]},
                           {"order_id": "D", "skus": ["MUG", "MUG"]}],
        "store_returns": [],
    }  # fmt: skip
    fields: dict[str, Any] = {
        "placed": placed, "injections": [Injection("silent_ship", "B", "T-B", T0 + 2.0, True),
                                         Injection("silent_return", "E", "T-E", T0 + 10.0, True)],
        "returns": returns, "tasks": tasks, "sales": sales, "outbox": outbox,
        "arrivals": {"SOCK": [(T0 - 5.0, 0), (T0 + 1.0, 600), (T0 + 3.4, 599), (T0 + 3.6, 598)]},
        "pos_offset": 0.0, "at": T0 + 60.0, "drift_limit_seconds": 16.0, "drift_settle_seconds": 4.0, "hub": hub,
        "final": True,
    }  # fmt: skip
    fields.update(changes)
    return Observed(**fields)


def test_the_figures_and_counts_on_a_made_up_reading() -> None:
    figures = analyse(_seen())
    # the till sale of two socks: TikTok's first quantity at most 598 after the sale (an older 0 does not count)
    assert figures["till_to_tiktok_ms"]["n"] == 1 and figures["till_to_tiktok_ms"]["p50"] == 600.0
    # shipped with their events: A, C, D (B shipped silently is drift); E's tracking is not on TikTok yet
    ship = figures["ship_to_tiktok_ms"]
    assert ship["n"] == 4 and ship["unfinished"] == 1 and ship["is_lower_bound"]
    assert ship["max"] == 58_000.0  # E's shipment has waited 58 s so far
    # C refunded once after 1 s; D twice, the first after 2 s (doubled); E (silent) never (missing), and as drift
    # it is not timed here
    assert figures["return_to_refund_ms"]["n"] == 2 and figures["return_to_refund_ms"]["max"] == 2000.0
    assert figures["refunds_doubled"] == 1 and figures["refunds_missing"] == 1
    assert figures["refunds_wrong_lines"] == 1  # C's one refund holds two mugs, the return took one back
    assert figures["oversold_units"] == 1  # A; F is not one of the bench's orders
    # B's silent ship found 6 s after, in time; E's return found 20 s after: late; A's drift nobody injected is false
    assert figures["drift_injected"] == 2
    assert figures["drift_detected"] == 1 and figures["drift_detected_late"] == 1
    assert figures["false_drift"] == 1 and figures["drift_from_lost_events"] == 0
    assert figures["detect_ms"]["n"] == 2


def test_in_the_faulty_mode_a_drift_whose_event_was_lost_or_late_is_not_false() -> None:
    shipped_a = {"delivery": 1, "status": "lost", "attempts": [], "created_at": "2026-12-05T10:00:02.000Z",
                 "event": {"type": "task.updated", "data": {"task_ref": "sb-A", "status": "shipped"}}}  # fmt: skip
    lost = analyse(_seen(events=[shipped_a], faulty=True))
    assert lost["false_drift"] == 0 and lost["drift_from_lost_events"] == 1
    late_a = {**shipped_a, "status": "delivered",
              "attempts": [{"at": "2026-12-05T10:00:25.000Z", "status_code": 200}]}  # fmt: skip
    late = analyse(_seen(events=[late_a], faulty=True))
    assert late["false_drift"] == 0 and late["drift_from_late_events"] == 1
    on_time = {**shipped_a, "status": "delivered",
               "attempts": [{"at": "2026-12-05T10:00:02.100Z", "status_code": 200}]}  # fmt: skip
    heard = analyse(_seen(events=[on_time], faulty=True))
    assert heard["false_drift"] == 1
    # without faults, the same lost event does not excuse the drift
    assert analyse(_seen(events=[shipped_a]))["false_drift"] == 1
