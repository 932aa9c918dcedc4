"""API versions (reference §1.2): quarterly ``YYYY-MM`` releases plus ``unstable``.

A version older than the oldest supported one "falls forward" to it, and the answer's ``X-Shopify-API-Version``
says which version served the call. A month that is not a release month (01, 04, 07, 10), or any other string, is
not a version: 404. ``unstable`` behaves as the newest schema.

The schema and behaviour change only where the reference records it, so versions fall in three generations:
``legacy`` (≤ 2025-10: ``compareQuantity``), ``2026-01`` (``changeFromQuantity`` with fallback, ``@idempotent``
optional) and ``2026-04`` (``changeFromQuantity`` and ``@idempotent`` mandatory).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

VERSION_RE = re.compile(r"^(\d{4})-(\d{2})$")
RELEASE_MONTHS = (1, 4, 7, 10)
OLDEST_SUPPORTED = (2025, 4)
LATEST_STABLE = (2026, 7)
UNSTABLE = (9999, 99)


@dataclass(frozen=True)
class Version:
    name: str
    year: int
    month: int

    @classmethod
    def parse(cls, text: str) -> Version | None:
        """The version that serves a request for ``text`` (fallen forward), or None when it is no version."""
        if text == "unstable":
            return cls("unstable", *UNSTABLE)
        match = VERSION_RE.match(text)
        if match is None:
            return None
        year, month = int(match.group(1)), int(match.group(2))
        if month not in RELEASE_MONTHS:
            return None
        if (year, month) < OLDEST_SUPPORTED:
            year, month = OLDEST_SUPPORTED
        return cls(f"{year:04d}-{month:02d}", year, month)

    def at_least(self, year: int, month: int) -> bool:
        return (self.year, self.month) >= (year, month)

    @property
    def generation(self) -> str:
        if self.at_least(2026, 4):
            return "2026-04"
        if self.at_least(2026, 1):
            return "2026-01"
        return "legacy"

    @classmethod
    def of_generation(cls, generation: str) -> Version:
        return {
            "legacy": cls("2025-10", 2025, 10),
            "2026-01": cls("2026-01", 2026, 1),
            "2026-04": cls("2026-04", 2026, 4),
        }[generation]

    @property
    def supported(self) -> bool:
        return self.name == "unstable" or (self.year, self.month) <= LATEST_STABLE


def public_versions() -> list[Version]:
    out: list[Version] = []
    year, month = OLDEST_SUPPORTED
    while (year, month) <= LATEST_STABLE:
        out.append(Version(f"{year:04d}-{month:02d}", year, month))
        month += 3
        if month > 12:
            year, month = year + 1, 1
    out.append(Version("unstable", *UNSTABLE))
    return out
