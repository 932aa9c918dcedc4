"""A smoke run of the store-loop benchmark's core: a tiny load through the whole loop, the result's shape and nothing
lost or doubled (no timing assertions: those figures belong to `shopbridge bench store-loop`); and its counting of
lost and doubled work on a made-up reading."""

from __future__ import annotations

import pytest
from rich.console import Console
from rich.progress import Progress

from shopbridge.bench.store_loop import FIGURES, Cancelled, Observed, Placed, Scenario, analyse, measure_loop

pytestmark = pytest.mark.slow


def test_a_small_clean_run_loses_and_doubles_nothing_and_reports_every_key() -> None:
    scenario = Scenario(seconds=3, tiktok_rate=2, web_rate=1, in_store_rate=1, cancel_share=0.5, settle_seconds=60,
                        final_settle_seconds=30)  # fmt: skip
    with Progress(console=Console(quiet=True), disable=True) as progress:
        result = measure_loop(scenario, progress=progress, label="smoke")
    assert result["starting_stock_in_sync"]
    assert result["tiktok_orders_placed"] == 6 and result["web_orders_placed"] == 3
    assert result["tiktok_orders_refused"] == result["web_orders_refused"] == 0
    assert result["lost"] == 0, result["lost_detail"]
    assert result["doubled"] == 0, result["doubled_detail"]
    assert result["wrong_tracking"] == 0
    counts = result["counts"]
    assert counts["tiktok_orders_released"] == 6 and counts["store_orders_placed_by_hub"] == 6
    assert counts["store_orders_fulfilled"] + counts["store_cancellations"] == 6
    for name in FIGURES:
        assert {"n", "p50", "p99", "unfinished", "is_lower_bound"} <= result[name].keys()
        assert result[name]["unfinished"] == 0
    assert result["release_to_store_ms"]["n"] == 6
    assert result["fulfil_to_tiktok_ms"]["n"] == counts["store_orders_fulfilled"]
    assert result["store_stock_to_tiktok_ms"]["n"] == 3
    assert result["store_cancel_to_tiktok_ms"]["n"] == counts["store_cancellations"]
    assert isinstance(result["throttled_errors"], int)
    assert result["api_calls"]["shopify"]["by_operation"].get("orderCreate", 0) >= 6
    assert result["api_calls"]["tiktok"]["total"] > 0
    assert result["staff_errors"] == []


def _placed(order_id: str, at: float, sku: str = "TEE-M", quantity: int = 1, gid: str = "") -> Placed:
    return Placed(0, at, at, order_id, sku, quantity, gid)


def _store_order(order_id: str, source: str | None, created: float, *, fulfilled: float | None = None,
                 cancelled: float | None = None, tracking: str = "1Z1") -> dict[str, object]:  # fmt: skip
    fulfilments = [] if fulfilled is None else [
        {"status": "SUCCESS", "created_at": fulfilled, "tracking": [{"number": tracking}]}
    ]  # fmt: skip
    return {"id": order_id, "source_identifier": source, "created_at": created, "fulfillments": fulfilments,
            "cancelled_at": cancelled}  # fmt: skip


def test_lost_and_doubled_are_counted_against_both_truths() -> None:
    tiktok = [_placed("T1", 100.0), _placed("T2", 100.0), _placed("T3", 100.0), _placed("T4", 100.0)]
    web = [_placed("W1", 100.0, "CAP", 2, "gid://shopify/Order/91")]
    store = [
        _store_order("1", "T1", 102.0, fulfilled=104.0),  # shipped on TikTok
        _store_order("2", "T1", 102.5),  # a second store order for T1: doubled
        # T2 released, never placed: lost
        _store_order("3", "T3", 102.0, fulfilled=104.0),  # fulfilled, not shipped on TikTok: lost
        _store_order("4", "T4", 102.0, cancelled=103.0),  # cancelled by the staff, cancelled on TikTok
        _store_order("91", None, 100.0),
    ]
    events = {
        "T1": {"AWAITING_SHIPMENT": 101.0, "AWAITING_COLLECTION": 104.5},
        "T2": {"AWAITING_SHIPMENT": 101.0},
        "T3": {"AWAITING_SHIPMENT": 101.0},
        "T4": {"AWAITING_SHIPMENT": 101.0, "CANCEL": 103.5},
    }
    line = {"package_id": "P1", "tracking_number": "1Z1"}
    truth = {
        "T1": {"status": "AWAITING_COLLECTION", "line_items": [line]},
        "T2": {"status": "AWAITING_SHIPMENT", "line_items": [{"package_id": "P2"}]},
        "T3": {"status": "AWAITING_SHIPMENT", "line_items": [{"package_id": "P3"}]},
        "T4": {"status": "CANCELLED", "line_items": [{"package_id": "P4"}]},
    }
    seen = Observed(tiktok, web, [Cancelled("4", "T4", 103.0, True)], store, events,
                    {"CAP": [(100.5, 2000), (100.7, 1998)], "TOTE": []}, 0.0, 110.0, truth=truth,
                    hub={"store_order_ids": ["gid://shopify/Order/91"]})  # fmt: skip
    figures = analyse(seen)
    assert figures["lost_detail"]["store_orders"] == 1
    assert figures["lost_detail"]["tiktok_shipments"] == 1
    assert figures["lost_detail"]["cancellations"] == 0
    assert figures["lost"] == 2
    assert figures["doubled"] == 1 and figures["doubled_detail"]["store_orders"] == 1
    assert figures["release_to_store_ms"]["n"] == 4  # three through, T2 still waiting
    assert figures["release_to_store_ms"]["unfinished"] == 1 and figures["release_to_store_ms"]["is_lower_bound"]
    assert figures["fulfil_to_tiktok_ms"]["p50"] is not None
    assert figures["store_stock_to_tiktok_ms"] == {**figures["store_stock_to_tiktok_ms"], "n": 1, "p50": 700.0}
    assert figures["store_cancel_to_tiktok_ms"]["p50"] == 500.0
