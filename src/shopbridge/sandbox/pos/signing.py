"""The POS protocol's signature, both directions (docs/pos-protocol.md §2).

``X-POS-Signature: v1=<lowercase hex HMAC-SHA256>`` of ``{timestamp}\\n{METHOD}\\n{path}\\n{raw body}``, keyed with
the shared secret; the timestamp is Unix seconds and must be within 300 s of the receiver's clock.

This is the sandbox's own implementation: the hub keeps a separate one in its connector, so a shared bug cannot
hide in both.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from typing import Literal

ACCOUNT_HEADER = "X-POS-Account"
TIMESTAMP_HEADER = "X-POS-Timestamp"
SIGNATURE_HEADER = "X-POS-Signature"
SCHEME = "v1="
REPLAY_WINDOW_SECONDS = 300
EVENT_PATH = "/hooks/pos"

Failure = Literal["unknown_account", "bad_signature", "stale_timestamp"]


def signed_text(timestamp: str, method: str, path: str, body: bytes) -> bytes:
    """``{timestamp}\\n{METHOD}\\n{path}\\n{raw body}``: the path with its query string as sent, the body as bytes."""
    return f"{timestamp}\n{method.upper()}\n{path}\n".encode() + body


def sign(secret: str, timestamp: str | int, method: str, path: str, body: bytes = b"") -> str:
    """The ``X-POS-Signature`` value: ``v1=`` and the lowercase hex HMAC-SHA256 of the signed text."""
    digest = hmac.new(secret.encode(), signed_text(str(timestamp), method, path, body), hashlib.sha256).hexdigest()
    return SCHEME + digest


def signed_headers(account: str, secret: str, timestamp: int, method: str, path: str, body: bytes) -> dict[str, str]:
    """The three headers every event and API call carries."""
    return {
        ACCOUNT_HEADER: account,
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: sign(secret, timestamp, method, path, body),
    }


def verify(
    secret: str,
    timestamp: str | None,
    method: str,
    path: str,
    body: bytes,
    signature: str | None,
    *,
    now: float,
    window: int = REPLAY_WINDOW_SECONDS,
) -> Literal["bad_signature", "stale_timestamp"] | None:
    """None when the request is good, else the check that failed, in the protocol's order: the signature (compared
    in constant time), then the timestamp (Unix seconds, at most ``window`` seconds from ``now`` either way)."""
    expected = sign(secret, timestamp or "", method, path, body)
    if not hmac.compare_digest(expected.encode(), (signature or "").strip().encode()):
        return "bad_signature"
    if timestamp is None or not (timestamp.isascii() and timestamp.isdigit()) or abs(int(timestamp) - now) > window:
        return "stale_timestamp"
    return None


def check_request(
    account: str, secret: str, headers: Mapping[str, str], method: str, path: str, body: bytes, *, now: float
) -> Failure | None:
    """The receiver's checks on a signed request: the account first (it names the secret), then :func:`verify`.
    ``headers`` must be case-insensitive (Starlette's and httpx's are)."""
    given = headers.get(ACCOUNT_HEADER)
    if given is None or not hmac.compare_digest(given.encode(), account.encode()):
        return "unknown_account"
    return verify(secret, headers.get(TIMESTAMP_HEADER), method, path, body, headers.get(SIGNATURE_HEADER), now=now)
