"""The TikTok Shop Partner API client: signs every call, sends ``shop_cipher`` only where the endpoint takes it,
goes through the shop's rate limiter, and turns every failure into one of the engine's error classes."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import httpx

from shopbridge.channels.tiktok.errors import TikTokError, TikTokPermanent, TikTokRetryable, classify
from shopbridge.channels.tiktok.signing import sign_request
from shopbridge.runtime.ratelimit import RateLimiter

API_BASE_URL = "https://open-api.tiktokglobalshop.com"
AUTH_BASE_URL = "https://auth.tiktok-shops.com"
AUTHORIZE_BASE_URL = "https://services.tiktokshop.com"
MAX_PAGES = 10_000

QueryValue = str | int | Sequence[str]


@dataclass(frozen=True)
class TikTokApp:
    """A Partner Center app: its credentials and where TikTok (or the sandbox) answers."""

    app_key: str
    app_secret: str
    service_id: str = ""
    api_base_url: str = API_BASE_URL
    auth_base_url: str = AUTH_BASE_URL
    authorize_base_url: str = AUTHORIZE_BASE_URL


def _query_pairs(query: Mapping[str, QueryValue]) -> list[tuple[str, str]]:
    """Lists are sent comma-joined: the one form every SDK and the gateway agree on (reference §1.3)."""
    pairs = []
    for key, value in query.items():
        text = ",".join(value) if isinstance(value, (list, tuple)) else str(value)
        pairs.append((key, text))
    return pairs


class TikTokClient:
    def __init__(
        self,
        app: TikTokApp,
        http: httpx.Client,
        *,
        limiter: RateLimiter | None = None,
        channel_account_id: int = 0,
        unix_time: Callable[[], float] = time.time,
    ) -> None:
        self.app = app
        self.http = http
        self.limiter = limiter
        self.channel_account_id = channel_account_id
        self.unix_time = unix_time

    def call(
        self,
        method: str,
        path: str,
        *,
        access_token: str,
        shop_cipher: str | None = None,
        query: Mapping[str, QueryValue] | None = None,
        body: Mapping[str, Any] | None = None,
        bucket: str | None = None,
    ) -> dict[str, Any]:
        """One signed call; returns ``data`` of a code-0 envelope, raises a classified TikTokError otherwise."""
        if self.limiter is not None:
            self.limiter.acquire(self.channel_account_id, bucket or path.split("/")[1])
        pairs = _query_pairs(query or {})
        pairs += [("app_key", self.app.app_key), ("timestamp", str(int(self.unix_time())))]
        if shop_cipher is not None:
            pairs.append(("shop_cipher", shop_cipher))
        raw_body = json.dumps(body, separators=(",", ":")).encode() if body is not None else None
        pairs.append(("sign", sign_request(self.app.app_secret, path, pairs, raw_body)))
        url = f"{self.app.api_base_url}{path}?{urlencode(pairs)}"
        headers = {"x-tts-access-token": access_token, "content-type": "application/json"}
        try:
            response = self.http.request(method, url, content=raw_body, headers=headers)
        except httpx.TimeoutException as error:
            raise TikTokRetryable(f"{method} {path} timed out: {error}") from error
        except httpx.TransportError as error:
            raise TikTokRetryable(f"{method} {path} failed to connect: {error}") from error
        return unwrap(response)

    def pages(
        self,
        method: str,
        path: str,
        items_key: str,
        *,
        access_token: str,
        shop_cipher: str | None = None,
        query: Mapping[str, QueryValue] | None = None,
        body: Mapping[str, Any] | None = None,
        page_size: int = 50,
    ) -> Iterator[dict[str, Any]]:
        """Every item of a cursor-paginated search, page after page to the end. A token that comes back twice or
        a search longer than MAX_PAGES stops with an error instead of looping or stopping short silently."""
        seen: set[str] = set()
        token = ""
        for _ in range(MAX_PAGES):
            page_query: dict[str, QueryValue] = {**(query or {}), "page_size": page_size}
            if token:
                page_query["page_token"] = token
            data = self.call(method, path, access_token=access_token, shop_cipher=shop_cipher, query=page_query,
                             body=body)  # fmt: skip
            items = data.get(items_key)
            if items is None:
                items = []
            if not isinstance(items, list):
                raise TikTokPermanent(f"{path}: '{items_key}' is not a list")
            yield from items
            token = str(data.get("next_page_token") or "")
            if not token:
                return
            if token in seen:
                raise TikTokPermanent(f"{path}: next_page_token repeated; the pagination would never end")
            seen.add(token)
        raise TikTokPermanent(f"{path}: more than {MAX_PAGES} pages")


def unwrap(response: httpx.Response) -> dict[str, Any]:
    """``data`` of a successful envelope; a classified error for anything else, with TikTok's own message."""
    retry_after = _retry_after(response.headers.get("retry-after"))
    try:
        envelope = response.json()
    except ValueError:
        raise classify(response.status_code, None, f"HTTP {response.status_code} with a body that is not JSON",
                       retry_after=retry_after) from None  # fmt: skip
    if not isinstance(envelope, dict) or "code" not in envelope:
        raise classify(response.status_code, None, f"HTTP {response.status_code} without TikTok's envelope")
    code, message = envelope.get("code"), str(envelope.get("message") or "")
    request_id = envelope.get("request_id")
    if code == 0 and response.status_code < 400:
        data = envelope.get("data")
        return data if isinstance(data, dict) else {}
    numeric = code if isinstance(code, int) else None
    raise classify(response.status_code, numeric, message, request_id=request_id, retry_after=retry_after)


def _retry_after(value: str | None) -> float | None:
    try:
        return float(value) if value else None
    except ValueError:
        return None


__all__ = ["TikTokApp", "TikTokClient", "TikTokError", "unwrap"]
