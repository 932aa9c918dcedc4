"""TikTok's errors, each placed in one of the work engine's classes (retryable, re-auth, permanent)."""

from __future__ import annotations

from shopbridge.runtime.errors import PermanentError, ReauthRequired, RetryableError

RATE_LIMITED = 36009002
INTERNAL_ERROR = 36009003
REQUEST_TIMEOUT = 36009007
INVALID_SIGN = 106001
ACCESS_TOKEN_EXPIRED = 105002
INVALID_AUTH_CODE = 36004004
OVERLOADED_CREDENTIALS = 36009004


class TikTokError(Exception):
    """Carries the platform's code, message and request id so a person can quote them to TikTok support."""

    retry_after: float | None = None

    def __init__(
        self,
        message: str,
        *,
        code: int | None = None,
        request_id: str | None = None,
        http_status: int = 0,
        retry_after: float | None = None,
    ) -> None:
        detail = f"TikTok {code}: {message}" if code is not None else message
        if request_id:
            detail += f" (request_id {request_id})"
        super().__init__(detail)
        self.code = code
        self.platform_message = message
        self.request_id = request_id
        self.http_status = http_status
        self.retry_after = retry_after


class TikTokRetryable(TikTokError, RetryableError):
    """Throttling (429 / 36009002), server trouble (5xx, 36009003, 36009007), timeouts: try again later."""


class TikTokPermanent(TikTokError, PermanentError):
    """Bad data, a business rule, or a configuration error (106001: wrong app secret): retrying cannot help."""


def about_the_request(error: TikTokError) -> bool:
    """Whether a permanent error is about what one request asked for (an order or SKU TikTok refuses: a business
    code) rather than about the app, the token or the gateway (codes 101…, 105…, 106…, 360…, or none at all), which
    every request of the shop would meet alike. Only the first kind may be set aside item by item."""
    return error.code is not None and str(error.code)[:3] not in SHOP_WIDE_PREFIXES


SHOP_WIDE_PREFIXES = ("101", "105", "106", "360")  # header, token, signature and gateway codes (reference §2.4)


class TikTokReauth(TikTokError, ReauthRequired):
    """The shop's authorization no longer works; someone must reconnect it."""


class AccessTokenExpired(TikTokReauth):
    """105002: refresh the token and retry once; only if that fails is the shop parked."""


def classify(
    http_status: int, code: int | None, message: str, *, request_id: str | None = None, retry_after: float | None = None
) -> TikTokError:
    """The exception for a failed call: throttling and server trouble first, then by TikTok's code."""
    kind: type[TikTokError]
    if http_status == 429 or http_status >= 500 or code in (RATE_LIMITED, INTERNAL_ERROR, REQUEST_TIMEOUT):
        kind = TikTokRetryable
    elif code == ACCESS_TOKEN_EXPIRED:
        kind = AccessTokenExpired
    elif code == OVERLOADED_CREDENTIALS and "token" in message:
        kind = TikTokReauth  # 36009004 is overloaded: only its token variant means re-authorize
    else:
        kind = TikTokPermanent
    return kind(
        message or f"HTTP {http_status}",
        code=code,
        request_id=request_id,
        http_status=http_status,
        retry_after=retry_after,
    )
