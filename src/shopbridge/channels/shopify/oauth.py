"""Installing the hub's Shopify app on a store (reference §1.3 authorization code grant, §1.5 callback HMAC), and
the routes that connect a store: the install link, its callback, and a connection with an Admin API token.

The link is made for an owner only: a store connected to the hub is sent the orders other channels release, so a
stranger's store must never get in. Its ``state`` is sealed by the hub (the store and the stock master inside),
valid 30 minutes and used once; the callback is checked for Shopify's HMAC and a fresh timestamp before the state is
spent and the code exchanged."""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets as random_tokens
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, Literal
from urllib.parse import urlencode

import httpx
from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.security import HTTPAuthorizationCredentials
from jinja2 import Environment
from pydantic import BaseModel, Field
from sqlalchemy import delete

from shopbridge.channels.shopify.connect import ConnectedStore, SetupError, connect_with_token, normalise_domain
from shopbridge.channels.shopify.context import HUB_MASTER, NAME, STORE_MASTER, ShopifyContext
from shopbridge.domain.clock import Clock
from shopbridge.logs import get_logger
from shopbridge.services import audit
from shopbridge.services.access import Caller, authenticate, mark_used
from shopbridge.store.db import dialect_insert, reading, transaction
from shopbridge.store.secrets import SecretKeyMissing
from shopbridge.store.tables import OAuthState

STATE_TTL_SECONDS = 30 * 60
TIMESTAMP_MAX_AGE = timedelta(hours=24)  # §1.5: ShopifyAPI's validate_params refuses older callbacks
CALLBACK_PATH = "/connect/shopify/callback"

log = get_logger("shopbridge.shopify.oauth")

Params = Mapping[str, str | Sequence[str]]


def calculate_hmac(params: Params, secret: str) -> str:
    """§1.5: without ``hmac``, ``%`` escaped in keys and values, ``=`` in keys and ``&`` in each pair, ``foo[]``
    keys as ``foo`` with a JSON list, the pairs sorted and joined with ``&``; hex HMAC-SHA256 with the app secret."""
    pairs = []
    for key, value in params.items():
        if key == "hmac":
            continue
        if key.endswith("[]"):
            key, text = key.removesuffix("[]"), json.dumps([str(item) for item in value])
        else:
            text = value if isinstance(value, str) else ",".join(value)
        escaped_key = key.replace("%", "%25").replace("=", "%3D")
        pairs.append(f"{escaped_key}={text.replace('%', '%25')}".replace("&", "%26"))
    message = "&".join(sorted(pairs))
    return hmac.new(secret.encode(), message.encode(), hashlib.sha256).hexdigest()


def callback_params(items: Iterable[tuple[str, str]]) -> dict[str, str | list[str]]:
    """A query string's items as §1.5 signs them: a ``foo[]`` key keeps every value, any other its last one."""
    params: dict[str, str | list[str]] = {}
    for key, value in items:
        if key.endswith("[]"):
            listed = params.setdefault(key, [])
            assert isinstance(listed, list)
            listed.append(value)
        else:
            params[key] = value
    return params


def verify_callback(params: Params, secret: str, *, now: datetime) -> None:
    """The callback's HMAC must be Shopify's and its timestamp less than a day old; SetupError says which not."""
    given = params.get("hmac")
    if not isinstance(given, str) or not hmac.compare_digest(given.lower(), calculate_hmac(params, secret)):
        raise SetupError("the callback's hmac does not match its parameters: it did not come from Shopify")
    timestamp = params.get("timestamp")
    if not isinstance(timestamp, str) or not timestamp.isdigit():
        raise SetupError("the callback has no timestamp")
    if int(timestamp) < (now - TIMESTAMP_MAX_AGE).timestamp():
        raise SetupError("the callback is more than 24 hours old: start again")


def _app_keys(context: ShopifyContext) -> tuple[str, str]:
    app = context.app
    if not (app.api_key and app.api_secret):
        raise SetupError("no Shopify app is configured: set SHOPBRIDGE_SHOPIFY_API_KEY and "
                         "SHOPBRIDGE_SHOPIFY_API_SECRET (or connect with an Admin API token)")  # fmt: skip
    return app.api_key, app.api_secret


def _admin_url(context: ShopifyContext, domain: str) -> str:
    return (context.app.base_url or f"https://{domain}").rstrip("/")


def start(context: ShopifyContext, shop: str, *, stock_master: str = HUB_MASTER) -> str:
    """The link the store's owner opens to install the app; Shopify then sends them back to the callback."""
    api_key, _ = _app_keys(context)
    domain = normalise_domain(shop)
    if stock_master not in (HUB_MASTER, STORE_MASTER):
        raise SetupError(f"stock master must be {HUB_MASTER} or {STORE_MASTER}, got {stock_master!r}")
    public_url = context.settings.public_url
    if not public_url:
        raise SetupError("SHOPBRIDGE_PUBLIC_URL is not set: Shopify needs it to send the owner back to the hub")
    state = context.secrets.seal({"nonce": random_tokens.token_urlsafe(16), "shop": domain,
                                  "stock_master": stock_master}).decode()  # fmt: skip
    query = urlencode({
        "client_id": api_key, "scope": context.app.scopes or context.settings.shopify_scopes,
        "redirect_uri": public_url.rstrip("/") + CALLBACK_PATH, "state": state,
    })  # fmt: skip
    return f"{_admin_url(context, domain)}/admin/oauth/authorize?{query}"


def check_state(context: ShopifyContext, state: str, *, now: datetime) -> dict[str, Any]:
    """The state must be one the hub sealed less than 30 minutes ago, and not used before: each link connects once
    (recorded in its own transaction, so a callback that fails later still uses its link up)."""
    try:
        sealed = context.secrets.open(state.encode(), ttl=STATE_TTL_SECONDS)
    except (SecretKeyMissing, ValueError) as error:
        raise SetupError("the install state is invalid or older than 30 minutes: start again") from error
    nonce = str(sealed.get("nonce") or "")
    if not nonce:
        raise SetupError("the install state is invalid: start again")
    with transaction(context.sessions) as session:
        session.execute(delete(OAuthState).where(OAuthState.used_at < now - timedelta(seconds=STATE_TTL_SECONDS)))
        first_use = session.scalar(
            dialect_insert(session)(OAuthState)
            .values(nonce=nonce, channel=NAME, used_at=now)
            .on_conflict_do_nothing(index_elements=["nonce"])
            .returning(OAuthState.nonce)
        )
    if first_use is None:
        raise SetupError("this install link was already used: start again with a new link")
    return sealed


def complete(context: ShopifyContext, params: Params, *, now: datetime) -> ConnectedStore:
    """The callback's work: HMAC and timestamp, the state (for this store), the code exchanged for a token
    (POST /admin/oauth/access_token), then the store connected with it; webhooks are signed with the app secret."""
    api_key, api_secret = _app_keys(context)
    verify_callback(params, api_secret, now=now)
    shop, code, state = (params.get(name) for name in ("shop", "code", "state"))
    if not isinstance(shop, str) or not isinstance(state, str) or not state:
        raise SetupError("the callback names no store or no state")
    domain = normalise_domain(shop)
    sealed = check_state(context, state, now=now)
    if sealed.get("shop") != domain:
        raise SetupError(f"the install link was made for {sealed.get('shop')}, not {domain}: start again")
    if not isinstance(code, str) or not code:
        raise SetupError("Shopify sent no authorization code (did the owner decline?)")
    try:
        exchange = {"client_id": api_key, "client_secret": api_secret, "code": code}
        response = context.http.post(f"{_admin_url(context, domain)}/admin/oauth/access_token", json=exchange)
    except httpx.TransportError as error:
        raise SetupError(f"the store could not be reached to exchange the code: {error}") from error
    try:
        body = response.json()
    except ValueError:
        body = {}
    token = body.get("access_token") if isinstance(body, dict) else None
    if response.status_code != 200 or not token:
        reason = body.get("error_description") or body.get("error") if isinstance(body, dict) else None
        raise SetupError(f"Shopify refused the authorization code (HTTP {response.status_code}): "
                         f"{reason or response.text[:200]}")  # fmt: skip
    return connect_with_token(context, domain, str(token), stock_master=str(sealed.get("stock_master") or HUB_MASTER),
                              now=now)  # fmt: skip


# --- routes ---------------------------------------------------------------------------------------------------

_PAGES = Environment(autoescape=True)  # whatever Shopify or a store's name says is shown as text, never as markup
_REFUSED = _PAGES.from_string("<h1>The store was not connected</h1><p>{{ error }}</p>")
_CONNECTED = _PAGES.from_string(
    "<h1>Connected</h1><p>{{ store.name }} ({{ store.shop_domain }}), stock master: {{ store.stock_master }}. "
    "Its catalogue is being imported.</p>"
)
_CHALLENGE = {"WWW-Authenticate": "Bearer"}


class TokenConnection(BaseModel):
    shop: str = Field(min_length=1, max_length=255, description="my-store.myshopify.com (or just my-store).")
    access_token: str = Field(min_length=1, max_length=500, description="An Admin API access token (shpat_…).")
    webhook_secret: str | None = Field(
        default=None, max_length=500, description="The secret the store signs webhooks with (default: the app's)."
    )
    stock_master: Literal["hub", "shopify"] = Field(
        default="hub", description="hub: the hub's truth is written to the store; shopify: the store's is mirrored."
    )


class InstallLink(BaseModel):
    shop: str = Field(min_length=1, max_length=255)
    stock_master: Literal["hub", "shopify"] = "hub"


def _connected(store: ConnectedStore) -> dict[str, Any]:
    return {"account_id": store.account_id, "shop_domain": store.shop_domain, "name": store.name,
            "stock_master": store.stock_master, "webhooks_subscribed": store.webhooks_subscribed}  # fmt: skip


def web_routes(context: ShopifyContext, clock: Clock) -> APIRouter:
    """The install link (owner only), its callback, and connecting with a token (owner only)."""
    from shopbridge.web.auth import bearer  # web/ imports the composition root, which imports the channels
    from shopbridge.web.errors import refusals

    routes = APIRouter(tags=["shopify"])

    token = Depends(bearer)

    def owner(credentials: HTTPAuthorizationCredentials | None = token) -> Caller:
        return _owner(context, credentials, clock.now())

    an_owner = Depends(owner)

    @routes.post(
        "/api/v1/connections/shopify", summary="Connect a store with an Admin API token (owner).",
        responses=refusals(400, 401, 403, 413, 422),
    )  # fmt: skip
    def connect_store(body: TokenConnection, caller: Caller = an_owner) -> dict[str, Any]:
        try:
            store = connect_with_token(context, body.shop, body.access_token, webhook_secret=body.webhook_secret,
                                       stock_master=body.stock_master, now=clock.now())  # fmt: skip
        except SetupError as error:
            raise HTTPException(400, str(error)) from None
        log.info("shopify.connected", shop=store.shop_domain, account_id=store.account_id, by=caller.email)
        with transaction(context.sessions) as session:
            after = {"shop": store.shop_domain, "stock_master": body.stock_master}
            audit.record(session, caller.email, "connection.shopify", "channel_account", store.account_id,
                         now=clock.now(), after=after)  # fmt: skip
        return _connected(store)

    @routes.post(
        "/api/v1/connections/shopify/install", summary="The link a store's owner opens to install the app (owner).",
        responses=refusals(400, 401, 403, 413, 422),
    )  # fmt: skip
    def install_link(body: InstallLink, caller: Caller = an_owner) -> dict[str, str]:
        try:
            url = start(context, body.shop, stock_master=body.stock_master)
        except SetupError as error:
            raise HTTPException(400, str(error)) from None
        with transaction(context.sessions) as session:
            audit.record(session, caller.email, "connection.shopify_install_link", "shop", body.shop, now=clock.now(),
                         after={"stock_master": body.stock_master})  # fmt: skip
        return {"url": url}

    @routes.get(
        "/connect/shopify/start", summary="Redirect to the store's install page (owner).",
        responses={302: {"description": "To the store's install page."}, **refusals(400, 401, 403, 422)},
        response_class=RedirectResponse, status_code=302,
    )  # fmt: skip
    def start_install(
        shop: str, stock_master: Literal["hub", "shopify"] = "hub", caller: Caller = an_owner
    ) -> RedirectResponse:
        try:
            return RedirectResponse(start(context, shop, stock_master=stock_master), status_code=302)
        except SetupError as error:
            raise HTTPException(400, str(error)) from None

    @routes.get(
        CALLBACK_PATH, summary="Where Shopify sends the owner back after installing the app.",
        response_class=HTMLResponse,
        responses={200: _html("The store connected."), 400: _html("The store was not connected, and why.")},
    )  # fmt: skip
    def shopify_callback(request: Request) -> HTMLResponse:
        try:
            store = complete(context, callback_params(request.query_params.multi_items()), now=clock.now())
        except SetupError as error:
            log.warning("shopify.connect_refused", error=str(error))
            return HTMLResponse(_REFUSED.render(error=str(error)), status_code=400)
        log.info("shopify.connected", shop=store.shop_domain, account_id=store.account_id)
        return HTMLResponse(_CONNECTED.render(store=store))

    return routes


def _owner(context: ShopifyContext, credentials: HTTPAuthorizationCredentials | None, now: datetime) -> Caller:
    """The owner role, as web/auth.py's ``require`` checks it (which takes the whole hub, which a channel has not)."""
    if credentials is None:
        raise HTTPException(401, "an API token is required: Authorization: Bearer <token>", headers=_CHALLENGE)
    with reading(context.sessions) as session:
        found = authenticate(session, credentials.credentials.strip(), now=now)
    if found is None:
        raise HTTPException(401, "the API token is unknown or its user is disabled", headers=_CHALLENGE)
    caller, stale_token = found
    if stale_token is not None:
        with transaction(context.sessions) as session:
            mark_used(session, stale_token, now=now)
    if caller.role != "owner":
        raise HTTPException(403, f"role {caller.role} may not do this; it needs one of: owner")
    return caller


def _html(description: str) -> dict[str, object]:
    return {"description": description, "content": {"text/html": {"schema": {"type": "string"}}}}
