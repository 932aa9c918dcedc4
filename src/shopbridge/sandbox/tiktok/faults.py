"""Fault injection per endpoint: latency drawn from a distribution, errors by code, 429s and timeouts."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Literal

from .models import EndpointFault, LatencySpec

FaultAction = Literal["error", "throttle", "timeout"]


@dataclass(frozen=True)
class FaultDecision:
    latency_seconds: float
    action: FaultAction | None
    error_code: int
    timeout_seconds: float


def sample_latency(spec: LatencySpec, rng: random.Random) -> float:
    if spec.distribution == "fixed":
        ms = spec.mean_ms
    elif spec.distribution == "uniform":
        ms = rng.uniform(spec.min_ms, spec.max_ms)
    elif spec.distribution == "normal":
        ms = rng.gauss(spec.mean_ms, spec.stddev_ms)
    else:
        ms = rng.expovariate(1.0 / spec.mean_ms) if spec.mean_ms > 0 else 0.0
    return max(0.0, ms) / 1000.0


def decide(fault: EndpointFault, rng: random.Random) -> FaultDecision:
    """One draw decides the request's fate, so the configured rates add up as a caller expects."""
    roll = rng.random()
    action: FaultAction | None = None
    if roll < fault.timeout_rate:
        action = "timeout"
    elif roll < fault.timeout_rate + fault.rate_429:
        action = "throttle"
    elif roll < fault.timeout_rate + fault.rate_429 + fault.error_rate:
        action = "error"
    return FaultDecision(
        latency_seconds=sample_latency(fault.latency, rng),
        action=action,
        error_code=fault.error_code,
        timeout_seconds=fault.timeout_seconds,
    )
