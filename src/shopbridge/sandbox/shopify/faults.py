"""Fault injection on the GraphQL Admin API, per root field (``orders``, ``inventorySetQuantities``…) or ``*``:
latency drawn from a distribution, 5xx answers at a rate, and forced THROTTLED answers at a rate. One draw decides
a call's fate, so configured rates add up as a caller expects. (Webhook faults live in webhooks.py.)"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Literal

from .models import ApiFault, LatencySpec


@dataclass(frozen=True)
class FaultDecision:
    latency_seconds: float
    action: Literal["error", "throttle"] | None
    status: int


def sample_latency(spec: LatencySpec, rng: random.Random) -> float:
    if spec.distribution == "fixed":
        ms = spec.mean_ms
    elif spec.distribution == "uniform":
        ms = rng.uniform(spec.min_ms, spec.max_ms)
    else:
        ms = rng.expovariate(1.0 / spec.mean_ms) if spec.mean_ms > 0 else 0.0
    return max(0.0, ms) / 1000.0


def decide(fault: ApiFault, rng: random.Random) -> FaultDecision:
    roll = rng.random()
    action: Literal["error", "throttle"] | None = None
    if roll < fault.error_rate:
        action = "error"
    elif roll < fault.error_rate + fault.throttle_rate:
        action = "throttle"
    return FaultDecision(sample_latency(fault.latency, rng), action, fault.error_status)
