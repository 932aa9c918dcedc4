"""OAuth with TikTok Shop: the seller's authorization link, the code exchange and token refresh (reference §3).

Token endpoints are unsigned GETs carrying the app secret; ``*_expire_in`` are absolute Unix timestamps, not
durations (a common bug in other clients)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

import httpx

from shopbridge.channels.tiktok.client import TikTokApp, unwrap
from shopbridge.channels.tiktok.errors import TikTokPermanent, TikTokRetryable


@dataclass(frozen=True)
class TokenSet:
    access_token: str
    access_token_expires_at: datetime
    refresh_token: str
    refresh_token_expires_at: datetime
    open_id: str
    seller_name: str
    seller_base_region: str
    granted_scopes: tuple[str, ...]

    def to_secrets(self) -> dict[str, Any]:
        return {
            "access_token": self.access_token,
            "access_token_expires_at": int(self.access_token_expires_at.timestamp()),
            "refresh_token": self.refresh_token,
            "refresh_token_expires_at": int(self.refresh_token_expires_at.timestamp()),
            "open_id": self.open_id,
            "seller_name": self.seller_name,
            "seller_base_region": self.seller_base_region,
            "granted_scopes": list(self.granted_scopes),
        }

    @classmethod
    def from_secrets(cls, secrets: dict[str, Any]) -> TokenSet:
        return cls(
            access_token=secrets["access_token"],
            access_token_expires_at=datetime.fromtimestamp(secrets["access_token_expires_at"], UTC),
            refresh_token=secrets["refresh_token"],
            refresh_token_expires_at=datetime.fromtimestamp(secrets["refresh_token_expires_at"], UTC),
            open_id=secrets.get("open_id", ""),
            seller_name=secrets.get("seller_name", ""),
            seller_base_region=secrets.get("seller_base_region", ""),
            granted_scopes=tuple(secrets.get("granted_scopes", ())),
        )


def authorization_url(app: TikTokApp, state: str) -> str:
    return f"{app.authorize_base_url}/open/authorize?{urlencode({'service_id': app.service_id, 'state': state})}"


def exchange_code(http: httpx.Client, app: TikTokApp, code: str) -> TokenSet:
    return _token_call(http, app, "get", {"auth_code": code, "grant_type": "authorized_code"})


def refresh_tokens(http: httpx.Client, app: TikTokApp, refresh_token: str) -> TokenSet:
    return _token_call(http, app, "refresh", {"refresh_token": refresh_token, "grant_type": "refresh_token"})


def _token_call(http: httpx.Client, app: TikTokApp, action: str, params: dict[str, str]) -> TokenSet:
    query = {"app_key": app.app_key, "app_secret": app.app_secret, **params}
    try:
        response = http.get(f"{app.auth_base_url}/api/v2/token/{action}", params=query)
    except httpx.HTTPError as error:
        raise TikTokRetryable(f"token {action} failed: {type(error).__name__}") from error
    data = unwrap(response)
    try:
        return TokenSet(
            access_token=str(data["access_token"]),
            access_token_expires_at=datetime.fromtimestamp(int(data["access_token_expire_in"]), UTC),
            refresh_token=str(data["refresh_token"]),
            refresh_token_expires_at=datetime.fromtimestamp(int(data["refresh_token_expire_in"]), UTC),
            open_id=str(data.get("open_id", "")),
            seller_name=str(data.get("seller_name", "")),
            seller_base_region=str(data.get("seller_base_region", "")),
            granted_scopes=tuple(str(scope) for scope in data.get("granted_scopes") or ()),
        )
    except (KeyError, TypeError, ValueError) as error:
        raise TikTokPermanent(f"token {action} answered without a usable {error}") from None
