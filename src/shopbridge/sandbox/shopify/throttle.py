"""The cost-based leaky bucket of the GraphQL Admin API (reference §2.1), one per (app, shop).

A call needs its *requested* cost available; it is taken before execution and the difference to the *actual* cost
is given back afterwards. The bucket refills at ``restoreRate`` points per second of real (wall) time up to
``maximumAvailable``. Shopify's defaults for a Standard plan are 2000/100 (older shops: 1000/50); both come from
``Settings`` so the control API can change them on the fly.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class Bucket:
    available: float
    updated: float


class Buckets:
    def __init__(self, wall: Callable[[], float]) -> None:
        self._wall = wall
        self._buckets: dict[tuple[str, str], Bucket] = {}

    def _refilled(self, key: tuple[str, str], size: float, rate: float) -> Bucket:
        now = self._wall()
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = Bucket(available=size, updated=now)
        bucket.available = min(size, bucket.available + max(0.0, now - bucket.updated) * rate)
        bucket.updated = now
        return bucket

    def available(self, key: tuple[str, str], size: float, rate: float) -> float:
        return self._refilled(key, size, rate).available

    def take(self, key: tuple[str, str], cost: float, size: float, rate: float) -> bool:
        bucket = self._refilled(key, size, rate)
        if cost > bucket.available:
            return False
        bucket.available -= cost
        return True

    def give_back(self, key: tuple[str, str], points: float, size: float, rate: float) -> None:
        bucket = self._refilled(key, size, rate)
        bucket.available = min(size, bucket.available + max(0.0, points))

    def reset(self) -> None:
        self._buckets.clear()
