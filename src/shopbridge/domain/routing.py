"""Which of an account's locations fulfils an order: the routing rule, stock first, then priority.

A location that has every unit of every line is preferred to one that has not; among those, the best priority
(the merchant's order of locations) wins. An order no single location can fill is not split: it is not routed,
and the shortages are named so that someone can move stock or fulfil it by hand."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Route:
    """The locations able to fill the order, best first (empty: none), and what each other location lacks."""

    candidates: tuple[str, ...]
    shortages: Mapping[str, Mapping[str, int]]  # location -> sku -> units missing

    def explain(self) -> str:
        """One line for an ops person: why no location can fill the order."""
        if not self.shortages:
            return "the account has no active location"
        parts = []
        for location, missing in self.shortages.items():
            lacking = ", ".join(f"{units} {sku}" for sku, units in sorted(missing.items()))
            parts.append(f"{location} lacks {lacking}")
        return "no location has every unit: " + "; ".join(parts)


def route(lines: Mapping[str, int], locations: Sequence[str], available: Mapping[tuple[str, str], int], *,
          excluded: Collection[str] = ()) -> Route:  # fmt: skip
    """``lines``: units per SKU; ``locations``: the candidates in priority order, best first; ``available``: units
    each (location, SKU) can still sell; ``excluded``: locations that refused the order already."""
    candidates: list[str] = []
    shortages: dict[str, dict[str, int]] = {}
    for location in locations:
        if location in excluded:
            continue
        missing = {sku: units - max(0, available.get((location, sku), 0)) for sku, units in lines.items()}
        missing = {sku: units for sku, units in missing.items() if units > 0}
        if missing:
            shortages[location] = missing
        else:
            candidates.append(location)
    return Route(tuple(candidates), shortages)
