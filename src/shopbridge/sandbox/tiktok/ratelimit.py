"""Token buckets per (app, shop, path): TikTok assigns QPS dynamically and answers overflow with 429/36009002."""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    """Buckets refill on the wall clock: throughput is a property of the real world, not of sandbox time."""

    def __init__(self) -> None:
        self._buckets: dict[tuple[str, str, str], _Bucket] = {}

    def take(self, key: tuple[str, str, str], *, qps: float, burst: int, now: float) -> float | None:
        """Spend one token. Returns None when allowed, else the seconds until a token is available."""
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = _Bucket(tokens=float(burst), updated=now)
        bucket.tokens = min(float(burst), bucket.tokens + max(0.0, now - bucket.updated) * qps)
        bucket.updated = now
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return None
        if qps <= 0:
            return math.inf
        return (1.0 - bucket.tokens) / qps

    def reset(self) -> None:
        self._buckets.clear()
