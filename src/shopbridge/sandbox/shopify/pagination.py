"""Cursor connections (reference §8.1): ``first``/``after`` or ``last``/``before``, ``edges { cursor node }``,
``nodes`` and ``pageInfo { hasNextPage hasPreviousPage startCursor endCursor }``; at most 250 per page.

A cursor is opaque base64 of ``{"last_id": ..., "last_value": ...}``, the shape Shopify's cursors decode to, so a
page boundary survives inserts: the next page starts strictly after the last (sort value, id) seen.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from graphql import GraphQLError

T = TypeVar("T")
MAX_PAGE = 250

SortValue = float | int | str | None


@dataclass
class PageInfo:
    hasNextPage: bool
    hasPreviousPage: bool
    startCursor: str | None
    endCursor: str | None


@dataclass
class Edge(Generic[T]):
    cursor: str
    node: T


@dataclass
class Connection(Generic[T]):
    edges: list[Edge[T]]
    nodes: list[T]
    pageInfo: PageInfo


def encode_cursor(value: SortValue, item_id: int) -> str:
    raw = json.dumps({"last_id": item_id, "last_value": value}, separators=(",", ":"))
    return base64.b64encode(raw.encode()).decode()


def decode_cursor(cursor: str) -> tuple[SortValue, int]:
    try:
        data = json.loads(base64.b64decode(cursor.encode(), validate=True))
        return data["last_value"], int(data["last_id"])
    except (binascii.Error, ValueError, KeyError, TypeError) as exc:
        raise GraphQLError("Invalid cursor for current pagination sort.") from exc


def _key(value: SortValue, item_id: int) -> tuple[int, Any, int]:
    # None sorts first; numbers and strings never meet in one connection's sort.
    return (0, 0, item_id) if value is None else (1, value, item_id)


def check_page_args(first: int | None, last: int | None) -> int:
    if first is None and last is None:
        raise GraphQLError("you must provide one of first or last")
    if first is not None and last is not None:
        raise GraphQLError("providing both first and last is not supported")
    size = first if first is not None else last
    assert size is not None
    if size < 0 or size > MAX_PAGE:
        name = "first" if first is not None else "last"
        raise GraphQLError(f"The '{name}' argument must be between 0 and {MAX_PAGE}, got {size}.")
    return size


def paginate(
    items: Sequence[T],
    sort: Callable[[T], tuple[SortValue, int]],
    *,
    first: int | None = None,
    after: str | None = None,
    last: int | None = None,
    before: str | None = None,
    reverse: bool = False,
) -> Connection[T]:
    """One page of ``items`` ordered by ``sort`` (ascending, or descending when ``reverse``)."""
    size = check_page_args(first, last)
    keyed = sorted(((sort(item), item) for item in items), key=lambda kv: _key(*kv[0]), reverse=reverse)

    def after_cursor(cursor: str) -> int:
        value, item_id = decode_cursor(cursor)
        mark = _key(value, item_id)
        for index, (k, _) in enumerate(keyed):
            here = _key(*k)
            if (here < mark) if reverse else (here > mark):
                return index
        return len(keyed)

    start, end = 0, len(keyed)
    if after is not None:
        start = after_cursor(after)
    if before is not None:
        value, item_id = decode_cursor(before)
        mark = _key(value, item_id)
        end = next(
            (i for i, (k, _) in enumerate(keyed) if ((_key(*k) <= mark) if reverse else (_key(*k) >= mark))),
            len(keyed),
        )
        end = max(end, start)
    window = keyed[start:end]
    if first is not None:
        page = window[:size]
        has_next = len(window) > size or end < len(keyed)
        has_prev = start > 0
    else:
        page = window[max(0, len(window) - size) :]
        has_prev = len(window) > size or start > 0
        has_next = end < len(keyed)
    edges = [Edge(encode_cursor(k[0], k[1]), item) for k, item in page]
    return Connection(
        edges=edges,
        nodes=[e.node for e in edges],
        pageInfo=PageInfo(
            hasNextPage=has_next,
            hasPreviousPage=has_prev,
            startCursor=edges[0].cursor if edges else None,
            endCursor=edges[-1].cursor if edges else None,
        ),
    )
