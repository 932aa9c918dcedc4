"""Instants as the POS protocol writes them: RFC 3339 in UTC with milliseconds (``2026-12-05T14:03:07.412Z``).

The world keeps the instants it answers with (a task's ``updated_at``, a return's ``occurred_at``) as whole Unix
milliseconds, so an instant read back from an answer and sent as ``updated_since`` compares exactly with the one
stored, without floating-point rounding.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MILLISECOND = timedelta(milliseconds=1)


def millis(seconds: float) -> int:
    """Unix seconds (the sandbox clock's) as whole milliseconds, cut down."""
    return math.floor(seconds * 1000)


def iso_ms(ms: int) -> str:
    moment = EPOCH + ms * MILLISECOND
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def iso(seconds: float) -> str:
    return iso_ms(millis(seconds))


def parse_instant(text: str) -> datetime:
    """An RFC 3339 instant with a zone. A ``+`` that a query string turned into a space is taken as ``+``; an instant
    without a zone raises ValueError."""
    value = text.strip().replace(" ", "+")
    if value.endswith(("z", "Z")):
        value = value[:-1] + "+00:00"
    moment = datetime.fromisoformat(value)
    if moment.tzinfo is None:
        raise ValueError("an instant needs a zone (Z or ±hh:mm)")
    return moment


def parse_instant_ms(text: str) -> int:
    """The instant as whole Unix milliseconds (a finer part is cut down, so an inclusive bound stays inclusive)."""
    return (parse_instant(text) - EPOCH) // MILLISECOND
