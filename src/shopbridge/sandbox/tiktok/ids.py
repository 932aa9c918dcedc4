"""Identifiers shaped like TikTok's: numeric strings, 18-19 digits, opaque ciphers and tokens."""

from __future__ import annotations

import base64
import random
import string
from datetime import UTC, datetime


class IdFactory:
    """One random source for every identifier, seedable so a seeded sandbox is reproducible."""

    def __init__(self, seed: int | None = None) -> None:
        self.rng: random.Random = random.Random(seed) if seed is not None else random.SystemRandom()

    def numeric(self, prefix: str, length: int = 19) -> str:
        digits = "".join(self.rng.choice(string.digits) for _ in range(length - len(prefix)))
        return prefix + digits

    def order_id(self) -> str:
        return self.numeric("57", 18)

    def product_id(self) -> str:
        return self.numeric("17", 19)

    def line_item_id(self) -> str:
        return self.numeric("57", 18)

    def generic(self) -> str:
        return self.numeric("7", 19)

    def _token(self, nbytes: int) -> str:
        raw = bytes(self.rng.getrandbits(8) for _ in range(nbytes))
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    def shop_cipher(self) -> str:
        return "GCP_" + self._token(21)

    def access_token(self) -> str:
        return "TTP_" + self._token(60)

    def refresh_token(self) -> str:
        return "TTP_" + self._token(36)

    def auth_code(self) -> str:
        return "ROW_" + self._token(24)

    def shop_code(self) -> str:
        return "".join(self.rng.choice(string.ascii_uppercase + string.digits) for _ in range(12))

    def request_id(self, now: float) -> str:
        """`202203070749000101890810281E8C70B7`: a UTC timestamp then 20 hex digits."""
        stamp = datetime.fromtimestamp(now, UTC).strftime("%Y%m%d%H%M%S")
        return stamp + f"{self.rng.getrandbits(80):020X}"
