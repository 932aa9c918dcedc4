"""Each TikTok failure lands in exactly one of the engine's error classes."""

import httpx
import pytest

from shopbridge.channels.tiktok.client import unwrap
from shopbridge.channels.tiktok.errors import AccessTokenExpired, TikTokPermanent, TikTokReauth, TikTokRetryable
from shopbridge.runtime.errors import PermanentError, ReauthRequired, RetryableError, classify


def envelope(status: int, code: int, message: str, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.Response(
        status, json={"code": code, "message": message, "request_id": "2026X", "data": None}, headers=headers
    )


@pytest.mark.parametrize(
    ("response", "kind", "engine_class"),
    [
        (envelope(429, 36009002, "Too many requests."), TikTokRetryable, "retryable"),
        (envelope(200, 36009003, "Internal error."), TikTokRetryable, "retryable"),
        (envelope(200, 36009007, "Request timeout."), TikTokRetryable, "retryable"),
        (httpx.Response(502, text="<html>bad gateway</html>"), TikTokRetryable, "retryable"),
        (envelope(401, 106001, "Invalid credentials. The 'sign' query parameter is invalid."), TikTokPermanent,
         "permanent"),
        (envelope(401, 105002, "Expired credentials."), AccessTokenExpired, "reauth"),
        (envelope(401, 36009004, "Invalid credentials. The `x-tts-access-token` header is invalid."), TikTokReauth,
         "reauth"),
        (envelope(200, 12019028, "Multiple warehouses detected."), TikTokPermanent, "permanent"),
    ],
)  # fmt: skip
def test_classification(response: httpx.Response, kind: type[Exception], engine_class: str) -> None:
    with pytest.raises(kind) as raised:
        unwrap(response)
    assert classify(raised.value) == engine_class


def test_the_platforms_message_and_request_id_are_kept() -> None:
    with pytest.raises(PermanentError, match=r"TikTok 12019028: Multiple warehouses detected. \(request_id 2026X\)"):
        unwrap(envelope(200, 12019028, "Multiple warehouses detected."))


def test_retry_after_is_passed_on() -> None:
    with pytest.raises(RetryableError) as raised:
        unwrap(envelope(429, 36009002, "Too many requests.", headers={"retry-after": "7"}))
    assert raised.value.retry_after == 7.0


def test_success_returns_data() -> None:
    response = httpx.Response(200, json={"code": 0, "message": "Success", "request_id": "x", "data": {"a": 1}})
    assert unwrap(response) == {"a": 1}


def test_reauth_is_the_engines_reauth() -> None:
    assert issubclass(AccessTokenExpired, ReauthRequired)
