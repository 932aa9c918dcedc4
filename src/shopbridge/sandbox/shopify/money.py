"""Money and time as the two APIs print them.

GraphQL ``Decimal``/``Money`` scalars print like Ruby's BigDecimal (``"19.9"``, ``"10.0"``); REST payloads and
webhooks print two decimals (``"19.90"``). GraphQL ``DateTime`` is ISO 8601 in UTC with ``Z``; REST payloads carry the
shop's UTC offset (``"2020-04-06T10:51:56-04:00"``, reference §7.5).
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from zoneinfo import ZoneInfo

CENT = Decimal("0.01")


def dec(value: str | int | float | Decimal | None) -> Decimal:
    if value is None:
        return Decimal(0)
    try:
        return Decimal(str(value)).quantize(CENT, rounding=ROUND_HALF_UP)
    except InvalidOperation as exc:
        raise ValueError(f"{value!r} is not a decimal amount") from exc


def gql_amount(value: Decimal | str) -> str:
    """``Decimal`` scalar: ``19.90`` → ``"19.9"``, ``10`` → ``"10.0"``."""
    d = Decimal(str(value)).normalize()
    text = format(d, "f")
    return text if "." in text else text + ".0"


def rest_amount(value: Decimal | str) -> str:
    return format(Decimal(str(value)).quantize(CENT, rounding=ROUND_HALF_UP), "f")


def gql_time(t: float | None) -> str | None:
    if t is None:
        return None
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def rest_time(t: float | None, tz: str) -> str | None:
    if t is None:
        return None
    return datetime.fromtimestamp(int(t), ZoneInfo(tz)).isoformat()


def parse_time(text: str, tz: str) -> float:
    """An ISO date or date-time from a search query or an input; a naive one is read in the shop's time zone."""
    raw = text.strip().strip("'\"")
    moment = datetime.fromisoformat(raw.replace("Z", "+00:00").replace("z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=ZoneInfo(tz))
    return moment.timestamp()
