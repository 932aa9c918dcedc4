"""The hub's side of the POS protocol's signature (§2), checked against the protocol's own formula and against the
POS sandbox's signer (written apart from the connector, from the same document)."""

from __future__ import annotations

import hashlib
import hmac

from shopbridge.channels.pos.client import check_signature, signature
from shopbridge.sandbox.pos import sign

SECRET = "pos_sandbox_secret_0123456789abcdef"
NOW = 1_765_000_000


def test_the_signature_is_the_protocols_hmac_and_the_sandbox_agrees() -> None:
    body = b'{"version":1}'
    text = f"{NOW}\nPOST\n/hooks/pos\n".encode() + body
    assert signature(SECRET, str(NOW), "post", "/hooks/pos", body) == (
        "v1=" + hmac.new(SECRET.encode(), text, hashlib.sha256).hexdigest()
    )
    path = "/v1/fulfilment-tasks?task_ref=sb-12"
    assert signature(SECRET, str(NOW), "GET", path) == sign(SECRET, NOW, "GET", path)


def test_each_check_fails_with_its_own_code() -> None:
    body = b"{}"
    good = signature(SECRET, str(NOW), "POST", "/hooks/pos", body)
    assert check_signature(SECRET, str(NOW), "POST", "/hooks/pos", body, good, now=NOW + 300) is None
    assert check_signature(SECRET, str(NOW), "POST", "/hooks/pos", b"{ }", good, now=NOW) == "bad_signature"
    assert check_signature(SECRET, str(NOW), "POST", "/hooks/pos?x=1", body, good, now=NOW) == "bad_signature"
    assert check_signature(SECRET, str(NOW), "POST", "/hooks/pos", body, None, now=NOW) == "bad_signature"
    assert check_signature(SECRET, str(NOW), "POST", "/hooks/pos", body, good, now=NOW + 301) == "stale_timestamp"
    assert check_signature(SECRET, str(NOW), "POST", "/hooks/pos", body, good, now=NOW - 301) == "stale_timestamp"
    odd = signature(SECRET, "soon", "POST", "/hooks/pos", body)
    assert check_signature(SECRET, "soon", "POST", "/hooks/pos", body, odd, now=NOW) == "stale_timestamp"
