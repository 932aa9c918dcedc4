"""The gateway's error catalogue: codes, HTTP statuses and message texts from the common-errors page (§2.4)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


class ApiError(Exception):
    """An error answered in the TikTok envelope. Business errors keep HTTP 200, as the real API does."""

    def __init__(self, code: int, message: str, http_status: int = 200, *, headers: dict[str, str] | None = None):
        super().__init__(f"{code} {message}")
        self.code = code
        self.message = message
        self.http_status = http_status
        self.headers = headers or {}


@dataclass(frozen=True)
class ErrorSpec:
    code: int
    message: str
    http_status: int

    def error(self, **headers: str) -> ApiError:
        return ApiError(self.code, self.message, self.http_status, headers=dict(headers) or None)


# Gateway errors. HTTP statuses observed live: 400 bad app_key, 401 bad sign, 404 unknown path, 429 throttled;
# the others are [INFERRED] in the reference (Appendix B §13) and recorded in docs/sandbox.md.
MISSING_SIGN = ErrorSpec(
    36009004, "Missing credentials. The request does not include a required signature in the query.", 401
)
TIMESTAMP_NEGATIVE = ErrorSpec(
    36009004,
    "Invalid timestamp. The value of the `timestamp` query parameter must not be lesser than 0.",
    400,
)
TIMESTAMP_TOO_OLD = ErrorSpec(
    36009004,
    "Invalid timestamp. The value of the `timestamp` query parameter must not be earlier than 5 minutes before "
    "the current time.",
    400,
)
TIMESTAMP_TOO_NEW = ErrorSpec(
    36009004,
    "Invalid timestamp. The value of the `timestamp` query parameter must not exceed the current time by more "
    "than 30 seconds.",
    400,
)
INVALID_TOKEN = ErrorSpec(36009004, "Invalid credentials. The `x-tts-access-token` header is invalid.", 401)
INVALID_APP_KEY = ErrorSpec(36009004, "Invalid credentials. Invalid `app_key` query parameter.", 400)
UNEXPECTED_SHOP_CIPHER = ErrorSpec(
    36009004,
    "Unexpected identifier. The `shop_cipher` query parameter is not required for this request.",
    400,
)
INVALID_SIGN = ErrorSpec(106001, "Invalid credentials. The `sign` query parameter is invalid.", 401)
EXPIRED_TOKEN = ErrorSpec(
    105002, "Expired credentials. The `access_token` or `x-tts-access-token` header has expired.", 401
)
SHOP_MISMATCH = ErrorSpec(
    101000,
    "Invalid query or header. The `category_asset_cipher` query parameter or `x-tts-access-token` header is invalid.",
    400,
)
MISSING_SHOP_CIPHER = ErrorSpec(
    106013,
    "Missing identifier. The `shop_cipher` query parameter is required to identify the target shop.",
    400,
)
INVALID_AUTH_CODE = ErrorSpec(36004004, "Invalid auth code.", 200)
TOO_MANY_REQUESTS = ErrorSpec(
    36009002, "Too many requests. You've made too many requests in a short period of time.", 429
)
INTERNAL_ERROR = ErrorSpec(
    36009003,
    "Internal error. Please try again. If the issue persists after multiple attempts, please contact platform support.",
    500,
)
REQUEST_TIMEOUT = ErrorSpec(36009007, "Request timeout. The request to the endpoint timed out.", 504)
INVALID_PATH = ErrorSpec(36009009, "Invalid path. The specified path does not match any available endpoint.", 404)
INVALID_METHOD = ErrorSpec(36009010, "Invalid method. The HTTP method used is not supported by this endpoint.", 405)
INVALID_BODY_FORMAT = ErrorSpec(
    36009022,
    "Invalid request format. The request body format must be `application/json` for structured data or "
    "`multipart/form-data` for binary files.",
    400,
)
MULTIPART_REQUIRED = ErrorSpec(
    36009023, "Invalid request format. The value of the `content-type` header must be `multipart/form-data`.", 400
)

# Every code the fault injector may be asked to return, so injected errors carry the real message text.
INJECTABLE: dict[int, ErrorSpec] = {
    spec.code: spec for spec in (TOO_MANY_REQUESTS, INTERNAL_ERROR, REQUEST_TIMEOUT, EXPIRED_TOKEN, INVALID_SIGN)
}


def invalid_parameter(name: str, reason: str, expected: str) -> ApiError:
    """98001004, the generic validation error; its text is a template on the common-errors page."""
    return ApiError(98001004, f"Parameter {name} is invalid. Reason: {reason}. Expected: {expected}", http_status=400)


def business(code: int, message: str) -> ApiError:
    return ApiError(code, message, 200)


def item_error(code: int, message: str, **detail: Any) -> dict[str, Any]:
    """A per-item failure inside a code-0 batch response (`data.errors[]`)."""
    entry: dict[str, Any] = {"code": code, "message": message}
    if detail:
        entry["detail"] = detail
    return entry
