"""Cursor pagination with opaque tokens, like TikTok's `next_page_token`.

A token is keyset-based (the sort key of the last item served) so concurrent inserts neither skip nor repeat
items. It is base64 with a fixed prefix that always yields `+`, `/` and `=`: clients that forget to
URL-encode the token (or sign it encoded) fail here exactly as they would against the real gateway.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from .errors import invalid_parameter

T = TypeVar("T")
SortKey = tuple[Any, ...]

# 0xFB 0xEF 0xFF encodes to "++//"; padding the payload to length ≡ 1 (mod 3) adds "==".
_MAGIC = b"\xfb\xef\xff"


def encode_token(last_key: SortKey, scope: str) -> str:
    payload = json.dumps({"k": list(last_key), "s": scope}, separators=(",", ":")).encode()
    while (len(_MAGIC) + len(payload)) % 3 != 1:
        payload += b" "
    return base64.b64encode(_MAGIC + payload).decode()


def decode_token(token: str, scope: str) -> SortKey:
    try:
        raw = base64.b64decode(token, validate=True)
        if not raw.startswith(_MAGIC):
            raise ValueError("foreign token")
        body = json.loads(raw[len(_MAGIC) :])
        if body["s"] != scope:
            raise ValueError("token from another query")
        return tuple(body["k"])
    except (ValueError, KeyError, TypeError, binascii.Error) as exc:
        raise invalid_parameter(
            "page_token", "the token is malformed or belongs to another query", "a next_page_token"
        ) from exc


def within(value: int, ge: int | None, lt: int | None) -> bool:
    """TikTok's time filters: ``*_ge`` inclusive, ``*_lt`` exclusive, either one optional."""
    return (ge is None or value >= ge) and (lt is None or value < lt)


def scope_of(*parts: object) -> str:
    """A short fingerprint of the query so a token cannot be replayed against different filters."""
    text = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    next_page_token: str
    total_count: int


def paginate(
    items: Sequence[T],
    key: Callable[[T], SortKey],
    *,
    descending: bool,
    page_size: int,
    page_token: str | None,
    scope: str,
) -> Page[T]:
    ordered = sorted(items, key=key, reverse=descending)
    if page_token:
        after = decode_token(page_token, scope)
        ordered = [i for i in ordered if (key(i) < after if descending else key(i) > after)]
    page = ordered[:page_size]
    more = len(ordered) > page_size
    token = encode_token(key(page[-1]), scope) if more and page else ""
    return Page(items=page, next_page_token=token, total_count=len(items))
