"""When to try a failed job again."""

from __future__ import annotations

import random
from dataclasses import dataclass, field


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 8
    base_seconds: float = 2.0
    max_seconds: float = 3600.0
    rng: random.Random = field(default_factory=random.Random, compare=False)

    def ceiling(self, attempt: int) -> float:
        """The longest wait after the given (1-based) failed attempt: base * 2^(attempt-1), capped."""
        return float(min(self.max_seconds, self.base_seconds * 2.0 ** (attempt - 1)))

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to wait before the next attempt.

        Equal jitter (between half the ceiling and the ceiling) spreads retries of jobs that failed together
        while keeping the exponential growth. A server's retry-after is obeyed: never less, at most 10% more,
        so jobs throttled together do not come back in the same instant.
        """
        if retry_after is not None and retry_after > 0:
            return retry_after + self.rng.uniform(0, retry_after / 10)
        ceiling = self.ceiling(attempt)
        return ceiling / 2 + self.rng.uniform(0, ceiling / 2)
