"""The POS API as the hub calls it (docs/pos-protocol.md §2, §4): every call signed with the account's shared
secret, every refusal read from the protocol's one error shape into an error the work engine knows how to handle.

- 401 (a signature or timestamp the POS refused, an account it does not know): ``PosReauth``, which parks the
  account until it is reconnected;
- 429, 503, other 5xx, a timeout or a dropped connection: ``PosUnavailable`` (retried, after ``Retry-After`` when
  the POS gives one);
- any other 4xx: ``PosRefused`` with the POS's ``code``, ``message`` and ``details``, for the caller to decide.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

import httpx

from shopbridge.runtime.errors import ReauthRequired, RetryableError

ACCOUNT_HEADER = "X-POS-Account"
TIMESTAMP_HEADER = "X-POS-Timestamp"
SIGNATURE_HEADER = "X-POS-Signature"
REPLAY_WINDOW_SECONDS = 300
MIN_SECRET_LENGTH = 32


def signed_text(timestamp: str, method: str, path: str, body: bytes) -> bytes:
    """§2: ``{timestamp}\\n{METHOD}\\n{path with its query}\\n{raw body}``."""
    return f"{timestamp}\n{method.upper()}\n{path}\n".encode() + body


def signature(secret: str, timestamp: str, method: str, path: str, body: bytes = b"") -> str:
    """``v1=`` and the lowercase hex HMAC-SHA256 of the signed text, keyed with the shared secret."""
    return "v1=" + hmac.new(secret.encode(), signed_text(timestamp, method, path, body), hashlib.sha256).hexdigest()


def check_signature(secret: str, timestamp: str | None, method: str, path: str, body: bytes,
                    header: str | None, *, now: float) -> str | None:  # fmt: skip
    """The receiver's checks after the account's (§2): the signature in constant time, then the timestamp within
    the replay window. Returns the failed check's code, or None when both pass."""
    expected = signature(secret, timestamp or "", method, path, body)
    if not header or not hmac.compare_digest(expected.encode(), header.strip().encode()):
        return "bad_signature"
    if not timestamp or not (timestamp.isascii() and timestamp.isdigit()):
        return "stale_timestamp"
    if abs(int(timestamp) - now) > REPLAY_WINDOW_SECONDS:
        return "stale_timestamp"
    return None


class PosError(Exception):
    """A POS call that did not succeed."""


class PosReauth(PosError, ReauthRequired):
    """401: the POS refused the hub's signature (the secret changed) or does not know the account."""


class PosUnavailable(PosError, RetryableError):
    """The POS could not answer now (429, 5xx, a timeout, a dropped connection): retried."""


@dataclass
class PosRefused(PosError):
    """The POS refused the request (a 4xx other than 401 and 429), naming why."""

    status: int
    code: str
    message: str
    details: Mapping[str, Any]

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


@dataclass(frozen=True)
class PosAccount:
    """Where a POS answers and how the hub signs: its base URL (ending in ``/v1``), account id and secret."""

    base_url: str
    account: str
    secret: str


class PosClient:
    def __init__(self, account: PosAccount, http: httpx.Client, *, clock: Any = time.time) -> None:
        self.account = account
        self.http = http
        self._clock = clock
        self._base = account.base_url.rstrip("/")
        self._base_path = urlsplit(self._base).path.rstrip("/")

    def request(self, method: str, path: str, *, params: Mapping[str, Any] | None = None,
                body: Mapping[str, Any] | None = None) -> dict[str, Any]:  # fmt: skip
        """One signed call; ``path`` is the operation's path under the base URL (``/fulfilment-tasks``)."""
        query = urlencode({key: value for key, value in (params or {}).items() if value is not None})
        signed_path = f"{self._base_path}{path}" + (f"?{query}" if query else "")
        raw = json.dumps(body, separators=(",", ":")).encode() if body is not None else b""
        stamp = str(int(self._clock()))
        headers = {
            ACCOUNT_HEADER: self.account.account,
            TIMESTAMP_HEADER: stamp,
            SIGNATURE_HEADER: signature(self.account.secret, stamp, method, signed_path, raw),
        }
        if body is not None:
            headers["Content-Type"] = "application/json"
        url = f"{self._base}{path}" + (f"?{query}" if query else "")
        try:
            response = self.http.request(method, url, content=raw or None, headers=headers)
        except httpx.TimeoutException as error:
            raise PosUnavailable(f"the POS did not answer {method} {path} in time: {error}") from error
        except httpx.TransportError as error:
            raise PosUnavailable(f"the POS could not be reached for {method} {path}: {error}") from error
        return self._read(method, path, response)

    def _read(self, method: str, path: str, response: httpx.Response) -> dict[str, Any]:
        try:
            answer = response.json()
        except ValueError:
            answer = None
        if response.is_success:
            if not isinstance(answer, dict):
                raise PosUnavailable(f"the POS answered {method} {path} with something other than a JSON object")
            return answer
        error = answer.get("error") if isinstance(answer, dict) else None
        error = error if isinstance(error, dict) else {}
        code = str(error.get("code") or f"http_{response.status_code}")
        message = str(error.get("message") or response.text[:200] or response.reason_phrase)
        given = error.get("details")
        details: dict[str, Any] = given if isinstance(given, dict) else {}
        status = response.status_code
        if status == 401:
            raise PosReauth(f"the POS refused the hub's credentials ({code}): {message}")
        if status == 429 or status >= 500:
            retry_after = _retry_after(response.headers.get("retry-after"))
            raise PosUnavailable(f"the POS answered {status} {code} to {method} {path}: {message}",
                                 retry_after=retry_after)  # fmt: skip
        raise PosRefused(status, code, message, details)

    def pages(self, path: str, key: str, params: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
        """Every item of a paged list (``next_cursor`` until null)."""
        cursor: str | None = None
        while True:
            page = self.request("GET", path, params={**params, "cursor": cursor})
            for item in page.get(key) or []:
                if isinstance(item, dict):
                    yield item
            cursor = page.get("next_cursor")
            if not cursor:
                return

    # --- the operations (§4) ---------------------------------------------------------------------------------

    def locations(self) -> list[dict[str, Any]]:
        return [item for item in self.request("GET", "/locations").get("locations") or [] if isinstance(item, dict)]

    def stock(self, location_id: str) -> tuple[int, list[dict[str, Any]]]:
        """A location's levels and the location's sequence when the first page was read (§4.6)."""
        sequence: int | None = None
        levels: list[dict[str, Any]] = []
        cursor: str | None = None
        while True:
            page = self.request("GET", "/stock", params={"location_id": location_id, "cursor": cursor})
            if sequence is None:
                sequence = int(page.get("sequence") or 0)
            levels += [level for level in page.get("levels") or [] if isinstance(level, dict)]
            cursor = page.get("next_cursor")
            if not cursor:
                return sequence, levels

    def create_task(self, body: Mapping[str, Any]) -> dict[str, Any]:
        return self.request("POST", "/fulfilment-tasks", body=body)

    def task_by_ref(self, task_ref: str) -> dict[str, Any] | None:
        try:
            tasks = self.request("GET", "/fulfilment-tasks", params={"task_ref": task_ref}).get("tasks") or []
        except PosRefused as refused:
            if refused.status == 404:
                return None
            raise
        return next((task for task in tasks if isinstance(task, dict)), None)

    def tasks_since(self, since: str | None) -> Iterator[dict[str, Any]]:
        return self.pages("/fulfilment-tasks", "tasks", {"updated_since": since})

    def cancel_task(self, task_id: str, reason: str) -> dict[str, Any]:
        return self.request("POST", f"/fulfilment-tasks/{quote(task_id, safe='')}/cancel", body={"reason": reason})

    def returns_since(self, since: str | None) -> Iterator[dict[str, Any]]:
        return self.pages("/returns", "returns", {"updated_since": since})


def _retry_after(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None
