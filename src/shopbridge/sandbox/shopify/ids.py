"""Identifiers shaped like Shopify's: numeric ids that grow over time, global ids (GIDs), tokens and UUIDs.

Every resource has a numeric id (the REST id, exposed as ``legacyResourceId``) and a GID such as
``gid://shopify/Order/5612345678901`` (reference §1.1). An InventoryLevel's GID is composite:
``gid://shopify/InventoryLevel/<location id>?inventory_item_id=<item id>``.
"""

from __future__ import annotations

import random
import re
import string
import uuid
from urllib.parse import parse_qs, urlsplit

GID_RE = re.compile(r"^gid://shopify/(?P<kind>[A-Za-z]+)/(?P<id>\d+)(?:\?(?P<query>.*))?$")


def gid(kind: str, number: int | str) -> str:
    return f"gid://shopify/{kind}/{number}"


def level_gid(location_id: int | str, item_id: int | str) -> str:
    return f"gid://shopify/InventoryLevel/{location_id}?inventory_item_id={item_id}"


def parse_gid(value: str | None, kind: str) -> str | None:
    """The numeric id of a GID of ``kind``; None when the value is not one."""
    if not value:
        return None
    match = GID_RE.match(value.strip())
    if match is None or match.group("kind") != kind:
        return None
    return match.group("id")


def gid_kind(value: str) -> str | None:
    match = GID_RE.match(value.strip())
    return match.group("kind") if match else None


def parse_level_gid(value: str) -> tuple[str, str] | None:
    """(location id, inventory item id) from an InventoryLevel GID."""
    match = GID_RE.match(value.strip())
    if match is None or match.group("kind") != "InventoryLevel" or not match.group("query"):
        return None
    item = parse_qs(urlsplit("?" + match.group("query")).query).get("inventory_item_id", [""])[0]
    return (match.group("id"), item) if item.isdigit() else None


class IdFactory:
    """Numeric ids grow like Shopify's (13 digits, increasing, with gaps); tokens and UUIDs are random. One random
    source, seedable so a seeded sandbox is reproducible."""

    FIRST_ID = 5_600_000_000_000

    def __init__(self, seed: int | None, last_id: int) -> None:
        self.rng: random.Random = random.Random(seed) if seed is not None else random.SystemRandom()
        self.last_id = max(last_id, self.FIRST_ID + self.rng.randint(0, 99_999_999))

    def next_id(self) -> int:
        self.last_id += self.rng.randint(1, 97)
        return self.last_id

    def token(self, prefix: str, nbytes: int = 16) -> str:
        return prefix + "".join(f"{self.rng.getrandbits(8):02x}" for _ in range(nbytes))

    def uuid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def code(self) -> str:
        return "".join(self.rng.choice(string.hexdigits.lower()[:16]) for _ in range(32))
