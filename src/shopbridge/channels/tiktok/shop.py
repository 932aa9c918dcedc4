"""A connected TikTok shop as the sync routines use it: its decrypted tokens, its cipher, and calls that refresh
an expired access token once before giving up (reference §3)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from shopbridge.channels.tiktok.auth import TokenSet, refresh_tokens
from shopbridge.channels.tiktok.client import QueryValue, TikTokApp, TikTokClient
from shopbridge.channels.tiktok.errors import AccessTokenExpired, TikTokError, TikTokReauth
from shopbridge.store.db import reading, transaction
from shopbridge.store.secrets import SecretBox
from shopbridge.store.tables import ChannelAccount


@dataclass(frozen=True)
class TikTokContext:
    """What every TikTok routine needs, wired once by the composition root."""

    app: TikTokApp
    http: httpx.Client
    sessions: sessionmaker[Session]
    inbox_sessions: sessionmaker[Session]  # the inbox's database (the hub's own, or a file of its own on SQLite)
    secrets: SecretBox
    client: TikTokClient


def seal_credentials(secrets: SecretBox, tokens: TokenSet, shop_cipher: str) -> bytes:
    return secrets.seal({**tokens.to_secrets(), "shop_cipher": shop_cipher})


class Shop:
    def __init__(self, context: TikTokContext, account_id: int) -> None:
        self.context = context
        self.account_id = account_id
        with reading(context.sessions) as session:
            account = session.get(ChannelAccount, account_id)
            if account is None or account.channel != "tiktok":
                raise TikTokReauth(f"channel account {account_id} is not a connected TikTok shop")
            if account.status == "needs_reauth":
                raise TikTokReauth(f"{account.label} needs to be reconnected: {account.status_reason}")
            if account.credentials is None:
                raise TikTokReauth(f"{account.label} has no stored credentials")
            self.label = account.label
            self.shop_id = account.external_id
            secrets = context.secrets.open(account.credentials)
        self.tokens = TokenSet.from_secrets(secrets)
        self.cipher: str = secrets["shop_cipher"]

    def call(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, QueryValue] | None = None,
        body: Mapping[str, Any] | None = None,
        shop_scoped: bool = True,
    ) -> dict[str, Any]:
        cipher = self.cipher if shop_scoped else None
        try:
            return self.context.client.call(method, path, access_token=self.tokens.access_token, shop_cipher=cipher,
                                            query=query, body=body)  # fmt: skip
        except AccessTokenExpired:
            self.refresh()
            return self.context.client.call(method, path, access_token=self.tokens.access_token, shop_cipher=cipher,
                                            query=query, body=body)  # fmt: skip

    def pages(
        self, method: str, path: str, items_key: str, *, query: Mapping[str, QueryValue] | None = None,
        body: Mapping[str, Any] | None = None, page_size: int = 50,
    ) -> Iterator[dict[str, Any]]:  # fmt: skip
        def read() -> Iterator[dict[str, Any]]:
            return self.context.client.pages(
                method, path, items_key, access_token=self.tokens.access_token, shop_cipher=self.cipher,
                query=query, body=body, page_size=page_size,
            )  # fmt: skip

        try:
            yield from read()
        except AccessTokenExpired:
            self.refresh()  # a search restarts from its first page with the new token; the upsert is idempotent
            yield from read()

    def refresh(self, *, now: datetime | None = None) -> TokenSet:
        """Refresh under the account's row lock and persist the new pair at once, in its own transaction: a rotated
        refresh token must never be lost with a job that later fails. If another worker refreshed meanwhile, its
        tokens are taken instead of refreshing twice."""
        with transaction(self.context.sessions) as session:
            account = session.scalar(
                select(ChannelAccount).where(ChannelAccount.id == self.account_id).with_for_update()
            )
            assert account is not None and account.credentials is not None
            stored = TokenSet.from_secrets(self.context.secrets.open(account.credentials))
            if stored.access_token != self.tokens.access_token:
                self.tokens = stored
                return stored
            try:
                fresh = refresh_tokens(self.context.http, self.context.app, stored.refresh_token)
            except TikTokError as error:
                raise TikTokReauth(f"refreshing the access token of {account.label} failed: {error}") from error
            account.credentials = seal_credentials(self.context.secrets, fresh, self.cipher)
            account.credentials_expire_at = fresh.access_token_expires_at
            if now is not None:
                account.updated_at = now
        self.tokens = fresh
        return fresh
