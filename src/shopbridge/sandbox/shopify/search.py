"""Shopify's search syntax for the ``query:`` argument of connections (``orders``, ``productVariants``…), reference
§3.2, §4.5 and §8.1, and for webhook subscription filters (§7.1).

``updated_at:>'2026-01-01T00:00:00Z' AND status:open -tag:imported (sku:A OR sku:B) "free text"``: terms are
``field:value`` with the comparators ``:``, ``:>``, ``:>=``, ``:<``, ``:<=``, values may be quoted, terms are joined
by spaces or ``AND`` (both mean AND), ``OR`` binds looser than AND, ``-term`` / ``NOT term`` negate, parentheses
group. A trailing ``*`` makes a prefix match. A field the resource does not know is ignored (everything matches it)
and reported as a warning in ``extensions.search``, as Shopify does ("Invalid search field for this query.").
Text comparisons are case-insensitive. Naive dates are read in the shop's time zone.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from .money import parse_time

T = TypeVar("T")


@dataclass(frozen=True)
class Term:
    field: str | None
    op: str
    value: str


@dataclass(frozen=True)
class Not:
    inner: Node


@dataclass(frozen=True)
class And:
    parts: tuple[Node, ...]


@dataclass(frozen=True)
class Or:
    parts: tuple[Node, ...]


Node = Term | Not | And | Or

_FIELD_RE = re.compile(r"([A-Za-z_][A-Za-z0-9_.]*):(>=|<=|>|<|=)?")


class SearchSyntaxError(ValueError):
    pass


def _tokens(text: str) -> list[str | Term]:
    out: list[str | Term] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch.isspace():
            i += 1
            continue
        if ch in "()":
            out.append(ch)
            i += 1
            continue
        negate = False
        if ch == "-" and i + 1 < n and not text[i + 1].isspace():
            negate = True
            i += 1
        match = _FIELD_RE.match(text, i)
        name: str | None = None
        op = ":"
        if match:
            name = match.group(1)
            op = match.group(2) or ":"
            if op == "=":
                op = ":"
            i = match.end()
        value, i = _value(text, i)
        if name is None and not negate and value in ("AND", "OR", "NOT"):
            out.append(value)
            continue
        if negate:
            out.append("NOT")
        out.append(Term(name, op, value))
    return out


def _value(text: str, i: int) -> tuple[str, int]:
    n = len(text)
    if i < n and text[i] in "'\"":
        quote = text[i]
        end = text.find(quote, i + 1)
        if end < 0:
            raise SearchSyntaxError(f"unterminated quote in search query at {i}")
        return text[i + 1 : end], end + 1
    start = i
    while i < n and not text[i].isspace() and text[i] not in "()":
        i += 1
    return text[start:i], i


def parse(text: str | None) -> Node | None:
    if text is None or not text.strip():
        return None
    tokens = _tokens(text)
    pos = 0

    def peek() -> str | Term | None:
        return tokens[pos] if pos < len(tokens) else None

    def parse_or() -> Node:
        nonlocal pos
        parts = [parse_and()]
        while peek() == "OR":
            pos += 1
            parts.append(parse_and())
        return parts[0] if len(parts) == 1 else Or(tuple(parts))

    def parse_and() -> Node:
        nonlocal pos
        parts = [parse_unary()]
        while True:
            nxt = peek()
            if nxt == "AND":
                pos += 1
                parts.append(parse_unary())
            elif nxt is not None and nxt not in ("OR", ")"):
                parts.append(parse_unary())
            else:
                break
        return parts[0] if len(parts) == 1 else And(tuple(parts))

    def parse_unary() -> Node:
        nonlocal pos
        tok = peek()
        if tok == "NOT":
            pos += 1
            return Not(parse_unary())
        if tok == "(":
            pos += 1
            inner = parse_or()
            if peek() != ")":
                raise SearchSyntaxError("unbalanced parentheses in search query")
            pos += 1
            return inner
        if isinstance(tok, Term):
            pos += 1
            return tok
        raise SearchSyntaxError(f"unexpected {tok!r} in search query")

    node = parse_or()
    if pos != len(tokens):
        raise SearchSyntaxError(f"unexpected {tokens[pos]!r} in search query")
    return node


# --- fields -------------------------------------------------------------------------------------------------

Matcher = Callable[[str, str, T], bool]


def _compare(op: str, left: float | str, right: float | str) -> bool:
    if op == ":":
        return left == right
    if op == ">":
        return left > right  # type: ignore[operator]
    if op == ">=":
        return left >= right  # type: ignore[operator]
    if op == "<":
        return left < right  # type: ignore[operator]
    return left <= right  # type: ignore[operator]


def text_field(get: Callable[[T], str | list[str] | None]) -> Matcher[T]:
    """Exact (case-insensitive) match on any of the values; ``value*`` is a prefix match."""

    def match(op: str, value: str, item: T) -> bool:
        raw = get(item)
        values = [raw] if isinstance(raw, str) else list(raw or [])
        wanted = value.lower()
        for v in values:
            have = v.lower()
            if wanted.endswith("*"):
                if have.startswith(wanted[:-1]):
                    return True
            elif op == ":":
                if have == wanted:
                    return True
            elif _compare(op, have, wanted):
                return True
        return False

    return match


def time_field(get: Callable[[T], float | None], tz: Callable[[], str]) -> Matcher[T]:
    def match(op: str, value: str, item: T) -> bool:
        have = get(item)
        if have is None:
            return False
        try:
            wanted = parse_time(value, tz())
        except ValueError as exc:
            raise SearchSyntaxError(f"{value!r} is not a date") from exc
        if op == ":":
            # A bare date matches that whole day; a date-time matches that second.
            return wanted <= have < wanted + (86400 if len(value.strip("'\"")) <= 10 else 1)
        return _compare(op, int(have), int(wanted))

    return match


def number_field(get: Callable[[T], float | None]) -> Matcher[T]:
    def match(op: str, value: str, item: T) -> bool:
        have = get(item)
        if have is None:
            return False
        try:
            wanted = float(value)
        except ValueError as exc:
            raise SearchSyntaxError(f"{value!r} is not a number") from exc
        return _compare(op, float(have), wanted)

    return match


@dataclass
class Searcher(Generic[T]):
    """The fields one connection's ``query`` understands, and the free-text fields for bare words."""

    fields: dict[str, Matcher[T]]
    text: Callable[[T], list[str]] = lambda _: []
    warnings: list[dict[str, str]] = field(default_factory=list)

    def filter(self, items: list[T], query: str | None) -> list[T]:
        node = parse(query)
        if node is None:
            return items
        self._warn(node)
        return [item for item in items if self._eval(node, item)]

    def _warn(self, node: Node) -> None:
        if isinstance(node, Term):
            if node.field is not None and node.field not in self.fields:
                self.warnings.append({"field": node.field, "message": "Invalid search field for this query."})
        elif isinstance(node, Not):
            self._warn(node.inner)
        else:
            for part in node.parts:
                self._warn(part)

    def _eval(self, node: Node, item: T) -> bool:
        if isinstance(node, Term):
            if node.field is None:
                wanted = node.value.lower().rstrip("*")
                return any(wanted in text.lower() for text in self.text(item))
            matcher = self.fields.get(node.field)
            return True if matcher is None else matcher(node.op, node.value, item)
        if isinstance(node, Not):
            return not self._eval(node.inner, item)
        if isinstance(node, And):
            return all(self._eval(p, item) for p in node.parts)
        return any(self._eval(p, item) for p in node.parts)
