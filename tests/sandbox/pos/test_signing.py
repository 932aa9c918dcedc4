"""§2 signing: the signature helper against the protocol's formula, and the API's three checks (account,
signature, timestamp) answering 401 with the check that failed."""

from __future__ import annotations

import hashlib
import hmac
import time

import pytest

from shopbridge.sandbox.pos import sign, verify
from shopbridge.sandbox.pos.models import ErrorBody, TaskList

from .conftest import ACCOUNT, SECRET, Pos, task_body

pytestmark = pytest.mark.anyio


def test_sign_is_the_hmac_of_the_signed_text() -> None:
    body = b'{"reason":"buyer_cancelled"}'
    text = b"1765000000\nPOST\n/v1/fulfilment-tasks/T-55/cancel\n" + body
    expected = "v1=" + hmac.new(SECRET.encode(), text, hashlib.sha256).hexdigest()
    assert sign(SECRET, 1765000000, "post", "/v1/fulfilment-tasks/T-55/cancel", body) == expected
    assert sign(SECRET, "1765000000", "POST", "/v1/fulfilment-tasks/T-55/cancel", body) == expected
    # A GET signs an empty body; the query is part of the path.
    get_text = b"1\nGET\n/v1/fulfilment-tasks?task_ref=sb-12\n"
    get = "v1=" + hmac.new(SECRET.encode(), get_text, hashlib.sha256).hexdigest()
    assert sign(SECRET, 1, "GET", "/v1/fulfilment-tasks?task_ref=sb-12") == get


def test_verify_names_the_check_that_failed() -> None:
    now = 1_765_000_000
    good = sign(SECRET, now, "POST", "/hooks/pos", b"{}")
    assert verify(SECRET, str(now), "POST", "/hooks/pos", b"{}", good, now=now) is None
    assert verify(SECRET, str(now), "POST", "/hooks/pos", b"{ }", good, now=now) == "bad_signature"
    assert verify(SECRET + "x", str(now), "POST", "/hooks/pos", b"{}", good, now=now) == "bad_signature"
    assert verify(SECRET, str(now), "POST", "/hooks/pos?x=1", b"{}", good, now=now) == "bad_signature"
    assert verify(SECRET, str(now), "POST", "/hooks/pos", b"{}", None, now=now) == "bad_signature"
    assert verify(SECRET, str(now), "POST", "/hooks/pos", b"{}", good.upper(), now=now) == "bad_signature"
    # The window is 300 s either way, inclusive.
    assert verify(SECRET, str(now), "POST", "/hooks/pos", b"{}", good, now=now + 300) is None
    assert verify(SECRET, str(now), "POST", "/hooks/pos", b"{}", good, now=now + 301) == "stale_timestamp"
    assert verify(SECRET, str(now), "POST", "/hooks/pos", b"{}", good, now=now - 301) == "stale_timestamp"
    odd = sign(SECRET, "soon", "POST", "/hooks/pos", b"{}")
    assert verify(SECRET, "soon", "POST", "/hooks/pos", b"{}", odd, now=now) == "stale_timestamp"


async def test_a_signed_call_is_served(pos: Pos) -> None:
    response = await pos.api("GET", "/v1/fulfilment-tasks?updated_since=2020-01-01T00:00:00Z")
    assert response.status_code == 200, response.text
    assert TaskList.model_validate(response.json()).tasks == []


@pytest.mark.parametrize(
    ("kwargs", "code"),
    [
        ({"account": "someone-else"}, "unknown_account"),
        ({"secret": "another_secret_0123456789abcdef0123"}, "bad_signature"),
        ({"timestamp": -301}, "stale_timestamp"),
        ({"timestamp": 400}, "stale_timestamp"),
    ],
)
async def test_a_failed_check_answers_401_naming_it(pos: Pos, kwargs: dict[str, object], code: str) -> None:
    # A timestamp is given as seconds from now, read when the test runs (not when it is collected).
    if "timestamp" in kwargs:
        kwargs = {"timestamp": int(time.time()) + int(str(kwargs["timestamp"]))}
    response = await pos.api("GET", "/v1/locations", **kwargs)  # type: ignore[arg-type]
    assert response.status_code == 401
    assert ErrorBody.model_validate(response.json()).error.code == code


async def test_missing_headers_and_a_signature_without_the_query_are_refused(pos: Pos) -> None:
    bare = await pos.client.get("/v1/locations")
    assert bare.status_code == 401 and bare.json()["error"]["code"] == "unknown_account"
    stamp = int(time.time())
    headers = {"X-POS-Account": ACCOUNT, "X-POS-Timestamp": str(stamp),
               "X-POS-Signature": sign(SECRET, stamp, "GET", "/v1/stock")}  # fmt: skip
    response = await pos.client.get("/v1/stock?location_id=store-downtown", headers=headers)
    assert response.status_code == 401
    error = response.json()["error"]
    assert error["code"] == "bad_signature" and error["details"]["path"] == "/v1/stock?location_id=store-downtown"
    # Nothing happened behind a refused call.
    body = task_body("sb-unsigned", [("TEE-M", 1)])
    refused = await pos.client.post("/v1/fulfilment-tasks", json=body, headers=headers)
    assert refused.status_code == 401 and pos.sb.world.tasks == {}


async def test_a_replay_inside_the_window_is_served_and_changes_nothing(pos: Pos) -> None:
    """The API keeps no nonces: every operation is idempotent or a read, so the same signed request twice is fine."""
    raw = b'{"task_ref":"sb-9","location_id":"store-downtown","order_ref":{"channel":"tiktok","order_id":"9"},' \
          b'"lines":[{"sku":"TEE-M","quantity":2}]}'  # fmt: skip
    stamp = int(time.time())
    headers = {"X-POS-Account": ACCOUNT, "X-POS-Timestamp": str(stamp), "Content-Type": "application/json",
               "X-POS-Signature": sign(SECRET, stamp, "POST", "/v1/fulfilment-tasks", raw)}  # fmt: skip
    first = await pos.client.post("/v1/fulfilment-tasks", content=raw, headers=headers)
    again = await pos.client.post("/v1/fulfilment-tasks", content=raw, headers=headers)
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json() == again.json()
    assert await pos.level("store-downtown", "TEE-M") == {"sku": "TEE-M", "on_hand": 5, "allocated": 2}
