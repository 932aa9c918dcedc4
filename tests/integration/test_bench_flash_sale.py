"""A very short run of the flash-sale benchmark (a few SKUs, a few seconds, both modes side by side): the JSON's
shape and that its counted figures agree with each other. No wall-clock targets: those belong to
`shopbridge bench flash-sale`."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ElementTree
from pathlib import Path
from typing import Any

import pytest

from shopbridge.bench.flash_sale import (
    EngineMissing,
    Event,
    Scenario,
    censored_summary,
    propagation,
    run_flash_sale,
    tiktok_channel,
    write_chart,
)
from shopbridge.config import Settings
from tests.integration.bench_hub_cpu import check_hub_cpu

ENGINE = "stock_push_mode" in Settings.model_fields

TINY = Scenario(
    seconds=5, hot_products=2, hot_skus_per_product=2, hot_units=10, background_products=2,
    background_skus_per_product=2, background_units=10, background_rate=4, interval_seconds=2,
    event_settle_seconds=2, interval_settle_seconds=3, setup_timeout_seconds=60,
)  # fmt: skip


@pytest.mark.slow
@pytest.mark.skipif(not ENGINE, reason="the hub has no stock push engine yet (Settings has no stock_push_mode)")
def test_a_tiny_flash_sale_reports_every_key_and_its_counts_add_up(tmp_path: Path) -> None:
    result = run_flash_sale(TINY, side_by_side=True)
    json.dumps(result)  # the JSON the command writes
    assert set(result["modes"]) == {"event", "interval"}
    assert set(result["met"]) == {"event.oversold_units", "event.propagation_ms.p99", "event.rate_limited"}
    for mode, run in result["modes"].items():
        check_mode(mode, run)
    chart = tmp_path / "flash-sale.svg"
    write_chart(result, chart)
    assert ElementTree.parse(chart).getroot().tag.endswith("svg")


def check_mode(mode: str, run: dict[str, Any]) -> None:
    assert run["mode"] == mode and run["engine"]["stock_push_mode"] == mode
    assert run["errors"] == 0, run["first_errors"]
    hot = run["hot"]
    assert hot["skus"] == 4 and hot["stock"] == 40
    # What TikTok sold is what the buyers were told it accepted.
    assert hot["tiktok_units_sold"] == hot["tiktok_orders_accepted"]
    # Oversold units are the per-SKU excess of TikTok's and the store's sales over the stock, never less than the
    # overall excess.
    assert run["oversold_units"] == sum(hot["oversold_by_sku"].values())
    assert run["oversold_units"] >= hot["tiktok_units_sold"] + hot["store_units_sold"] - hot["stock"]
    assert run["oversold_skus"] == len(hot["oversold_by_sku"])
    # Every movement the bench posted is a stock event; the propagation sample accounts for each one.
    detail = run["stock_events_detail"]
    assert run["stock_events"] == detail["store_sales"] + detail["background"] > 0
    assert detail["store_sales"] == hot["store_units_sold"]
    spread = run["propagation_ms"]
    assert spread["n"] == spread["seen"] + spread["never_seen"]
    assert spread["seen"] == spread["matched_exact"] + spread["matched_newer"]
    assert spread["n"] + spread["unchanged"] == run["stock_events"]
    assert spread["n"] == sum(group["n"] for group in spread["by_group"].values())
    assert {"p50", "p99"} <= spread.keys()
    if spread["seen"]:
        assert spread["p50"] is not None and spread["p50"] <= spread["p99"] <= spread["max"]
    # The buffer held back part of the hot stock at the start, and TikTok showed the rest.
    assert 0 < run["held_back_units"] < hot["stock"]
    assert run["held_back_share"] == round(run["held_back_units"] / hot["stock"], 4)
    # API calls: every call the sandbox answered, by endpoint and by status; 429s among them.
    assert run["api_calls"] == sum(run["api_calls_by_endpoint"].values()) == sum(run["api_calls_by_status"].values())
    assert run["rate_limited"] == run["api_calls_by_status"].get("429", 0)
    pushes = run["api_calls_by_endpoint"].get("POST /product/202309/products/{product_id}/inventory/update", 0)
    assert pushes > 0 and run["inventory_updates_received"] > 0
    chart = run["chart"]
    assert chart["sku"] == "HOT-01-1" and chart["hub"] and chart["tiktok"]
    # The hub's CPU time over the window (its web and worker processes), per 1,000 stock events and TikTok orders.
    check_hub_cpu(run["hub_cpu"], events=run["stock_events"] + hot["tiktok_orders_accepted"])


def event(sku: str, sent: float, available: int, *, hot: bool = False) -> Event:
    return Event(sku, hot, "sale" if hot else "adjustment", sent, sent + 0.01, available)


def test_propagation_matches_the_quantity_or_a_newer_one() -> None:
    events = [
        event("BG-1", 10.0, 7),  # pushed as 7 at 10.4
        event("BG-2", 10.0, 5),  # superseded by 4 before any push: the push of 4 at 11.0 counts
        event("BG-2", 10.5, 4),
        event("HOT-1", 10.0, 9, hot=True),  # a lower quantity (a reservation meanwhile) counts for a hot SKU
        event("BG-3", 10.0, 3),  # TikTok was last told 3: nothing to push
        event("BG-4", 10.0, 8),  # never pushed
        event("BG-5", 10.0, 6),  # an older push arriving later with another quantity does not count
    ]
    updates = {
        "BG-1": [(9.0, 8), (10.4, 7)],
        "BG-2": [(11.0, 4)],
        "HOT-1": [(10.2, 8)],
        "BG-3": [(9.5, 3)],
        "BG-5": [(10.1, 2), (10.3, 6)],
    }
    told = {"BG-1": 8, "BG-2": 6, "HOT-1": 10, "BG-3": 2, "BG-4": 9, "BG-5": 9}
    result = propagation(events, updates, told, observation_end=12.0)
    assert result["unchanged"] == 1
    assert result["matched_exact"] == 3 and result["matched_newer"] == 2
    assert result["seen"] == 5 and result["never_seen"] == 1 and result["n"] == 6
    assert result["by_group"]["hot"]["n"] == 1 and result["by_group"]["hot"]["p50"] == pytest.approx(200.0)
    assert result["max"] == pytest.approx(2000.0) and result["max_is_a_lower_bound"] is True


def test_a_percentile_resting_on_a_value_never_seen_is_a_lower_bound() -> None:
    summary = censored_summary([100.0] * 98, [5000.0, 6000.0])
    assert summary["p50"] == 100.0 and summary["p50_is_a_lower_bound"] is False
    assert summary["p99_is_a_lower_bound"] is True and summary["never_seen"] == 2
    assert censored_summary([], [])["p99"] is None


def test_a_stock_answer_without_channels_names_the_missing_engine() -> None:
    with pytest.raises(EngineMissing, match="no `channels` key"):
        tiktok_channel({"sku": "HOT-01-1", "on_hand": 100, "reserved": 0})
    assert tiktok_channel({"channels": [{"channel": "tiktok", "available": 97}]}) == {
        "channel": "tiktok",
        "available": 97,
    }
    assert tiktok_channel({"channels": []}) is None
