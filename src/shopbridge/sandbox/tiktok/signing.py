"""Request and webhook signatures exactly as the TikTok Shop gateway computes them (reference §1, §9.2).

This is the sandbox's own implementation: the product keeps a separate one, so a shared bug cannot hide.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Sequence

# The gateway never signs these: `sign` is the output, `access_token` travels in a header since 202309.
EXCLUDED_KEYS = frozenset({"sign", "access_token"})


def _is_multipart(content_type: str) -> bool:
    return content_type.split(";", 1)[0].strip().lower() == "multipart/form-data"


def string_to_sign(path: str, pairs: Iterable[tuple[str, str]], body: bytes, content_type: str) -> bytes:
    """`path + Σ sorted key+value + body`, before the secret wrap. Values are the decoded query values."""
    kept = [(k, v) for k, v in pairs if k not in EXCLUDED_KEYS]
    # A stable sort keeps repeated keys in the order they were sent (`ids=a&ids=b` → `idsaidsb`).
    kept.sort(key=lambda kv: kv[0])
    text = path + "".join(k + v for k, v in kept)
    raw = text.encode()
    if not _is_multipart(content_type):
        raw += body
    return raw


def sign(
    app_secret: str,
    path: str,
    pairs: Iterable[tuple[str, str]],
    body: bytes = b"",
    content_type: str = "application/json",
) -> str:
    """hex(HMAC-SHA256(app_secret, app_secret + string_to_sign + app_secret))."""
    secret = app_secret.encode()
    message = secret + string_to_sign(path, pairs, body, content_type) + secret
    return hmac.new(secret, message, hashlib.sha256).hexdigest()


def _first_value_only(pairs: Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
    seen: set[str] = set()
    out: list[tuple[str, str]] = []
    for k, v in pairs:
        if k not in seen:
            seen.add(k)
            out.append((k, v))
    return out


def _comma_joined(pairs: Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
    joined: dict[str, list[str]] = {}
    for k, v in pairs:
        joined.setdefault(k, []).append(v)
    return [(k, ",".join(vs)) for k, vs in joined.items()]


def accepted_signatures(
    app_secret: str, path: str, pairs: Sequence[tuple[str, str]], body: bytes, content_type: str
) -> set[str]:
    """Every signature the sandbox accepts for one request.

    How the real gateway signs a repeated query key is unknown (reference §1.3), so all three forms the SDKs use
    are accepted: every value signed, first value only (Go's `queries.Get`), and the values comma-joined.
    """
    forms = {tuple(pairs), tuple(_first_value_only(pairs)), tuple(_comma_joined(pairs))}
    return {sign(app_secret, path, form, body, content_type) for form in forms}


def verify(
    app_secret: str, path: str, pairs: Sequence[tuple[str, str]], body: bytes, content_type: str, given: str
) -> bool:
    candidates = accepted_signatures(app_secret, path, pairs, body, content_type)
    # compare_digest on every candidate so timing does not reveal which form almost matched.
    results = [hmac.compare_digest(candidate, given.lower()) for candidate in candidates]
    return any(results)


def webhook_signature(app_key: str, app_secret: str, raw_body: bytes) -> str:
    """The `Authorization` header of a webhook delivery: hex(HMAC-SHA256(app_secret, app_key + raw_body))."""
    return hmac.new(app_secret.encode(), app_key.encode() + raw_body, hashlib.sha256).hexdigest()
