"""OAuth (reference §1.3-§1.5): the merchant's consent, the callback HMAC and ``/admin/oauth/access_token``.

* ``GET /admin/oauth/authorize?client_id&scope&redirect_uri&state``: the shop owner approves at once; 302 to
  ``redirect_uri`` with ``code``, ``hmac``, ``host``, ``shop``, ``state`` and ``timestamp``. The HMAC is computed
  exactly as ShopifyAPI's ``Session.calculate_hmac`` (§1.5): drop ``hmac``, escape ``%``/``=``/``&``, ``foo[]`` array
  keys become ``foo`` with a JSON list, sort, join with ``&``, hex HMAC-SHA256 with the app secret.
* ``POST /admin/oauth/access_token`` takes form-encoded or JSON bodies:
  - authorization code (``client_id``, ``client_secret``, ``code``): ``{"access_token", "scope"}``; codes are single
    use and expire (``auth_code_ttl_seconds``). With ``expiring=1`` the token expires (``expires_in`` 3600) and
    comes with a ``refresh_token`` (``refresh_token_expires_in`` 90 days), §1.4;
  - ``grant_type=refresh_token``: a new access token and a new refresh token; the used one is spent (§1.4);
  - ``grant_type=client_credentials``: a token that lives 24 h (``expires_in``), §1.3.
  Token prefixes (``shpua_``, ``shpat_``, ``shprt_``) are [INFERRED].
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from fastapi import Request
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response

from .models import AuthCode, RefreshToken, Token

if TYPE_CHECKING:
    from .runtime import ShopifySandbox


def calculate_hmac(params: Mapping[str, str | Sequence[str]], secret: str) -> str:
    """§1.5, as ShopifyAPI's ``Session.calculate_hmac``."""

    def pairs() -> list[str]:
        out = []
        for key, value in params.items():
            if key == "hmac":
                continue
            if key.endswith("[]"):
                key = key.rstrip("[]")
                value = json.dumps([str(v) for v in value])
            k = str(key).replace("%", "%25").replace("=", "%3D")
            v = str(value).replace("%", "%25")
            out.append(f"{k}={v}".replace("&", "%26"))
        return out

    message = "&".join(sorted(pairs()))
    return hmac.new(secret.encode(), message.encode(), hashlib.sha256).hexdigest()


def _oauth_error(status: int, error: str, description: str) -> JSONResponse:
    return JSONResponse({"error": error, "error_description": description}, status_code=status)


def authorize(sb: ShopifySandbox, request: Request) -> Response:
    q = request.query_params
    config = sb.config
    if q.get("client_id") != config.api_key:
        return PlainTextResponse(
            "Oauth error invalid_request: The client_id is not recognized (expected the sandbox app's api key).",
            status_code=400,
        )
    redirect = q.get("redirect_uri") or config.redirect_url
    wanted, allowed = urlsplit(redirect), urlsplit(config.redirect_url)
    if (wanted.scheme, wanted.hostname) != (allowed.scheme, allowed.hostname):
        return PlainTextResponse(
            f"Oauth error invalid_request: The redirect_uri is not whitelisted (allowed: {allowed.scheme}://"
            f"{allowed.hostname}).",
            status_code=400,
        )
    now = sb.now()
    code = AuthCode(
        id=sb.ids.code(),
        scope=q.get("scope") or config.scopes,
        expires_at=now + sb.world.settings.auth_code_ttl_seconds,
    )
    sb.world.save(code)
    shop = sb.world.shop
    if not shop.app_installed:
        sb.install_app()
    store = shop.domain.split(".")[0]
    params: dict[str, str] = {
        "code": code.id,
        "host": base64.b64encode(f"admin.shopify.com/store/{store}".encode()).decode().rstrip("="),
        "shop": shop.domain,
        "timestamp": str(int(sb.clock.wall())),
    }
    if q.get("state") is not None:
        params["state"] = q["state"]
    params["hmac"] = calculate_hmac(params, config.api_secret)
    sb.world.commit()
    separator = "&" if wanted.query else "?"
    return RedirectResponse(f"{redirect}{separator}{urlencode(params)}", status_code=302)


async def _params(request: Request) -> dict[str, str]:
    raw = await request.body()
    params: dict[str, str] = dict(request.query_params)
    if not raw:
        return params
    if "json" in request.headers.get("content-type", ""):
        try:
            body = json.loads(raw)
        except ValueError:
            return params
        if isinstance(body, dict):
            params.update({k: str(v) for k, v in body.items() if v is not None and not isinstance(v, (dict, list))})
        return params
    params.update(dict(parse_qsl(raw.decode(errors="replace"), keep_blank_values=True)))
    return params


def _issue(sb: ShopifySandbox, kind: str, scope: str, ttl: float | None) -> Token:
    now = sb.now()
    prefix = {"offline": "shpua_", "expiring": "shpua_", "client_credentials": "shpat_"}[kind]
    token = Token(
        id=sb.ids.token(prefix),
        kind=kind,
        scope=scope,
        created_at=now,
        expires_at=now + ttl if ttl is not None else None,
    )
    sb.world.save(token)
    return token


def _with_refresh(sb: ShopifySandbox, token: Token) -> dict[str, Any]:
    settings = sb.world.settings
    refresh = RefreshToken(
        id=sb.ids.token("shprt_"),
        access_token=token.id,
        scope=token.scope,
        expires_at=sb.now() + settings.refresh_token_ttl_seconds,
    )
    sb.world.save(refresh)
    return {
        "access_token": token.id,
        "scope": token.scope,
        "expires_in": int(settings.expiring_access_token_ttl_seconds),
        "refresh_token": refresh.id,
        "refresh_token_expires_in": int(settings.refresh_token_ttl_seconds),
    }


async def access_token(sb: ShopifySandbox, request: Request) -> JSONResponse:
    p = await _params(request)
    config = sb.config
    if p.get("client_id") != config.api_key or not hmac.compare_digest(p.get("client_secret", ""), config.api_secret):
        return _oauth_error(
            400, "invalid_client", "Client authentication failed: unknown client_id or wrong client_secret."
        )
    grant = p.get("grant_type") or ("authorization_code" if p.get("code") else "")
    settings = sb.world.settings
    now = sb.now()
    try:
        if grant == "authorization_code":
            code = sb.world.get(AuthCode, p.get("code"))
            if code is None or code.used or code.expires_at < now:
                return _oauth_error(400, "invalid_request", "The authorization code was not found or was already used")
            code.used = True
            sb.world.save(code)
            if p.get("expiring") == "1":
                token = _issue(sb, "expiring", code.scope, settings.expiring_access_token_ttl_seconds)
                return JSONResponse(_with_refresh(sb, token))
            token = _issue(sb, "offline", code.scope, None)
            return JSONResponse({"access_token": token.id, "scope": token.scope})
        if grant == "client_credentials":
            ttl = settings.client_credentials_ttl_seconds
            token = _issue(sb, "client_credentials", config.scopes, ttl)
            return JSONResponse({"access_token": token.id, "scope": token.scope, "expires_in": int(ttl)})
        if grant == "refresh_token":
            refresh = sb.world.get(RefreshToken, p.get("refresh_token"))
            if refresh is None or refresh.used or refresh.expires_at < now:
                return _oauth_error(400, "invalid_grant", "The refresh token is invalid, expired or already used.")
            refresh.used = True
            sb.world.save(refresh)
            token = _issue(sb, "expiring", refresh.scope, settings.expiring_access_token_ttl_seconds)
            return JSONResponse(_with_refresh(sb, token))
        return _oauth_error(
            400,
            "unsupported_grant_type",
            f"grant_type {grant!r} is not supported by the sandbox "
            "(authorization_code, client_credentials, refresh_token).",
        )
    finally:
        sb.world.commit()
