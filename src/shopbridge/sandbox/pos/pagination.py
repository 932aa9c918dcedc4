"""Opaque page cursors: base64url JSON naming the listing they belong to and where the last page ended.

A cursor holds the listing's filter too (``updated_since``), so the next page reads the same listing whatever the
caller sends beside it.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from .errors import PosError

TASKS_PAGE = 100
RETURNS_PAGE = 100
STOCK_PAGE = 500


def invalid_query(message: str, parameter: str) -> PosError:
    return PosError(400, "invalid_query", message, {"parameter": parameter})


def encode(listing: str, position: dict[str, Any]) -> str:
    raw = json.dumps({"listing": listing, **position}, separators=(",", ":"), sort_keys=True).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode(listing: str, cursor: str) -> dict[str, Any]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        position = json.loads(raw)
    except (binascii.Error, ValueError):
        raise invalid_query("the cursor is not one this POS gave", "cursor") from None
    if not isinstance(position, dict) or position.get("listing") != listing:
        raise invalid_query("the cursor belongs to another listing", "cursor")
    return position
