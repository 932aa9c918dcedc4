"""The check both benchmark tests make of the hub's CPU figures (`shopbridge.bench.cpu`)."""

from __future__ import annotations

from typing import Any

import pytest


def check_hub_cpu(cpu: dict[str, Any], *, events: int) -> None:
    """The hub's CPU time over the window: its web and worker processes only, per 1,000 of the run's events."""
    assert cpu["events"] == events > 0 and cpu["events_are"]
    assert cpu["seconds"] > 0 and cpu["window_seconds"] > 0, cpu
    assert cpu["per_1000_events"] == pytest.approx(cpu["seconds"] * 1000 / cpu["events"], abs=1e-3)
    assert cpu["cores"] == pytest.approx(cpu["seconds"] / cpu["window_seconds"], rel=0.01, abs=0.01)
    roles = sorted(name.split(" (pid")[0] for name in cpu["processes"])
    assert roles == ["web", "worker"] and set(cpu["by_process"]) == set(cpu["processes"])
    assert sum(cpu["by_process"].values()) == pytest.approx(cpu["seconds"], abs=0.011)
    assert all(seconds >= 0 for seconds in cpu["by_process"].values())
    # The sandbox runs beside the hub, as a child of the hub's process, and is not counted.
    assert any("shopbridge.sandbox" in item["process"] for item in cpu["not_counted"]), cpu["not_counted"]
    assert cpu["ended_during_window"] == []
