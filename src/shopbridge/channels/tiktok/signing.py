"""Request and webhook signatures, exactly as TikTok Shop computes them (reference §1 and §9.2)."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable

EXCLUDED_FROM_SIGNATURE = frozenset({"sign", "access_token"})


def string_to_sign(path: str, query: Iterable[tuple[str, str]], body: bytes | None) -> bytes:
    """Path, then every query pair but ``sign`` and ``access_token`` as key+value in ordinal key order (decoded
    values), then the exact body bytes (left out for multipart uploads: pass ``None``)."""
    pairs = sorted((key, value) for key, value in query if key not in EXCLUDED_FROM_SIGNATURE)
    text = path + "".join(key + value for key, value in pairs)
    return text.encode() + (body or b"")


def sign_request(app_secret: str, path: str, query: Iterable[tuple[str, str]], body: bytes | None = None) -> str:
    secret = app_secret.encode()
    message = secret + string_to_sign(path, query, body) + secret
    return hmac.new(secret, message, hashlib.sha256).hexdigest()


def webhook_signature(app_key: str, app_secret: str, raw_body: bytes) -> str:
    """The ``Authorization`` header of a webhook delivery: HMAC-SHA256(app_secret, app_key + raw body), hex."""
    return hmac.new(app_secret.encode(), app_key.encode() + raw_body, hashlib.sha256).hexdigest()


def verify_webhook(app_key: str, app_secret: str, raw_body: bytes, authorization: str | None) -> bool:
    """Constant-time check of a delivery's signature over the body exactly as received."""
    if not authorization:
        return False
    expected = webhook_signature(app_key, app_secret, raw_body)
    return hmac.compare_digest(expected.encode(), authorization.strip().lower().encode())
